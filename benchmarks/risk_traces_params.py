"""The parameters of ``risk_traces.py``: the two variants, languages, browsers and their
user-agent templates, release calendars. Their sources are in ``risk_traces.py``'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Variant:
    countries: dict[str, float]
    days: float = 60.0
    phone: float = 0.85
    computer: float = 0.8
    tablet: float = 0.15
    visits_per_day: float = 0.9
    requests_per_visit: float = 8.0
    logout: float = 0.15  # a visit ends with a logout
    idle_days: float = 7.0  # the site's idle timeout
    max_days: float = 30.0  # and absolute lifetime
    home_ipv6: float = 0.4
    family_switch: float = 0.15  # per request, IPv4 <-> IPv6 at a dual-stack home
    renumber_per_day: float = 0.05
    mobile_new_address: float = 0.08  # per request inside a visit
    phone_on_wifi: float = 0.55
    work: float = 0.45
    cafe: float = 0.03  # per computer visit
    vpn_users: float = 0.12
    vpn_visit: float = 0.3
    trips_per_month: float = 0.04
    other_language: float = 0.08
    device_signal: float = 0.0  # share of devices where the site's device script runs
    update_lag_days: float = 4.0
    attacked: float = 0.12
    attacks: dict[str, float] = field(default_factory=dict)
    thief_networks: dict[str, float] = field(default_factory=dict)
    copy_language: float = 0.8
    copy_hint: float = 0.6
    thief_tool: float = 0.1


SHOP = Variant(
    countries={
        "US": 0.3,
        "GB": 0.15,
        "DE": 0.15,
        "FR": 0.1,
        "IT": 0.05,
        "ES": 0.05,
        "NL": 0.05,
        "CA": 0.05,
        "AU": 0.05,
        "BR": 0.025,
        "IN": 0.025,
    },
    attacks={
        "foreign": 0.2,
        "foreign_copied_ua": 0.25,
        "residential_proxy": 0.15,
        "concurrent": 0.15,
        "after_logout": 0.15,
        "full_clone": 0.1,
    },
    thief_networks={
        "residential": 0.45,
        "hosting": 0.25,
        "vpn": 0.2,
        "tor": 0.05,
        "unlisted": 0.05,
    },
)
SAAS = replace(
    SHOP,
    countries={
        "BR": 0.2,
        "IN": 0.2,
        "JP": 0.1,
        "US": 0.1,
        "DE": 0.1,
        "FR": 0.1,
        "AU": 0.1,
        "CA": 0.1,
    },
    phone=0.95,
    computer=0.7,
    visits_per_day=1.4,
    requests_per_visit=12.0,
    logout=0.05,
    max_days=14.0,
    home_ipv6=0.6,
    renumber_per_day=0.15,
    mobile_new_address=0.15,
    work=0.6,
    cafe=0.06,
    vpn_users=0.25,
    vpn_visit=0.5,
    trips_per_month=0.08,
    device_signal=0.4,
    update_lag_days=8.0,
    attacked=0.2,
    attacks={
        "foreign": 0.1,
        "foreign_copied_ua": 0.2,
        "residential_proxy": 0.25,
        "concurrent": 0.2,
        "after_logout": 0.1,
        "full_clone": 0.15,
    },
    thief_networks={
        "residential": 0.65,
        "hosting": 0.15,
        "vpn": 0.15,
        "tor": 0.02,
        "unlisted": 0.03,
    },
    copy_language=0.9,
    copy_hint=0.8,
    thief_tool=0.05,
)
VARIANTS = {"shop": SHOP, "saas": SAAS}

LANGUAGES = {
    "US": "en-US,en;q=0.9",
    "GB": "en-GB,en;q=0.9",
    "DE": "de-DE,de;q=0.9,en;q=0.8",
    "FR": "fr-FR,fr;q=0.9,en;q=0.8",
    "IT": "it-IT,it;q=0.9",
    "ES": "es-ES,es;q=0.9",
    "NL": "nl-NL,nl;q=0.9,en;q=0.8",
    "CA": "en-CA,en;q=0.9,fr-CA;q=0.8",
    "AU": "en-AU,en;q=0.9",
    "BR": "pt-BR,pt;q=0.9",
    "IN": "en-IN,en;q=0.9,hi;q=0.8",
    "JP": "ja,en-US;q=0.9",
    "RU": "ru-RU,ru;q=0.9",
    "UA": "uk-UA,uk;q=0.9",
    "NG": "en-NG,en;q=0.9",
    "VN": "vi-VN,vi;q=0.9",
    "CN": "zh-CN,zh;q=0.9",
    "ID": "id-ID,id;q=0.9",
    "TR": "tr-TR,tr;q=0.9",
}
THIEF_COUNTRIES = ["RU", "UA", "NG", "VN", "CN", "ID", "TR", "BR", "IN", "US", "NL", "DE"]

# Browsers: (name, device kind, share, user agent template, Sec-CH-UA-Platform or "" when the
# browser sends no client hints). {v}: major version; {i}, {u}: Safari and iOS versions.
_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64"
_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) "
_LINUX = "Mozilla/5.0 (X11; Linux x86_64"
_ANDROID = "Mozilla/5.0 (Linux; Android 10; K) "
_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS {u} like Mac OS X) "
_BLINK = "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
_WEBKIT = "AppleWebKit/605.1.15 (KHTML, like Gecko) "
_GECKO = "; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"
BROWSERS: list[tuple[str, str, float, str, str]] = [
    ("chrome", "computer", 0.5, _WIN + ") " + _BLINK + "Safari/537.36", "Windows"),
    ("edge", "computer", 0.12, _WIN + ") " + _BLINK + "Safari/537.36 Edg/{v}.0.0.0", "Windows"),
    ("firefox", "computer", 0.07, _WIN + _GECKO, ""),
    ("chrome", "computer", 0.08, _MAC + _BLINK + "Safari/537.36", "macOS"),
    ("safari", "computer", 0.12, _MAC + _WEBKIT + "Version/{i} Safari/605.1.15", ""),
    ("firefox", "computer", 0.03, _LINUX + _GECKO, ""),
    ("chrome", "computer", 0.03, _LINUX + ") " + _BLINK + "Safari/537.36", "Linux"),
    ("chrome", "phone", 0.6, _ANDROID + _BLINK + "Mobile Safari/537.36", "Android"),
    (
        "samsung",
        "phone",
        0.06,
        _ANDROID + _BLINK.replace("Chrome", "SamsungBrowser/{s}.0 Chrome") + "Mobile Safari/537.36",
        "Android",
    ),
    ("safari", "phone", 0.3, _IPHONE + _WEBKIT + "Version/{i} Mobile/15E148 Safari/604.1", ""),
    ("crios", "phone", 0.04, _IPHONE + _WEBKIT + "CriOS/{v}.0.0.0 Mobile/15E148 Safari/604.1", ""),
    ("safari", "tablet", 0.55, _MAC + _WEBKIT + "Version/{i} Safari/605.1.15", ""),
    ("chrome", "tablet", 0.45, _ANDROID + _BLINK + "Safari/537.36", "Android"),
]
TOOLS = ["python-requests/2.32.3", "curl/8.7.1", "Go-http-client/1.1", "okhttp/4.12.0"]


def release_of(name: str, day: float) -> int:
    """The major version released by ``day`` (day 0: early June 2024)."""
    if name in ("chrome", "edge", "crios"):
        return 125 + int((day + 20) // 28)
    if name == "firefox":
        return 126 + int((day + 25) // 28)
    return 25 + int((day + 10) // 60)  # Samsung Internet


def apple_versions(day: float) -> tuple[str, str]:
    """Safari's "Version/x.y" and iOS's "x_y" by ``day`` (18.0 in mid-September)."""
    major, minor = (17, 5 + min(int(day // 40), 1)) if day < 105 else (18, int((day - 105) // 45))
    return f"{major}.{minor}", f"{major}_{minor}"
