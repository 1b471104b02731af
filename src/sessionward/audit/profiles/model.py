"""What a profile holds: its settings, its cookie jar and its per-origin localStorage.

A :class:`Cookie` names its domain as Playwright and curl do: ``".example.com"`` is a domain
cookie (sent to that domain and its subdomains), ``"example.com"`` a host-only cookie. An
``expires`` of ``None`` is a browser-session cookie; a profile keeps those too, as a browser
that was never closed would. localStorage is a mapping from origin
(``scheme://host[:port]``, default port left out) to its entries.

Everything is checked when it is built, so a profile file or an import that does not fit
is refused with a :class:`ProfileError` that says which field is wrong (never its value).
"""

from __future__ import annotations

import math
import re
import time
import zoneinfo
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import SplitResult, urlsplit

from sessionward.audit.profiles._errors import ProfileError

__all__ = [
    "FORMAT",
    "Cookie",
    "ProfileData",
    "SameSite",
    "Settings",
    "check_name",
    "normal_origin",
]

SameSite = Literal["Strict", "Lax", "None"]
FORMAT: Final = "sessionward-profile"
_VERSION: Final = 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LOCALE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f;]")
_DOMAIN = re.compile(r"\.?[a-z0-9_.:\[\]-]{1,253}")
_SAME_SITE: Final = {"strict": "Strict", "lax": "Lax", "none": "None"}
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
MAX_COOKIE_BYTES: Final = 4096
MAX_VIEWPORT: Final = 10_000


def check_name(name: str) -> str:
    """A profile name: 1-64 letters, digits, ``.``, ``_``, ``-``, not starting with a
    punctuation mark (so it is always a plain file name)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ProfileError(
            "a profile name is 1-64 letters, digits, '.', '_' or '-', starting with a letter"
            " or digit"
        )
    return name


def same_site(value: object) -> SameSite:
    """``Strict``, ``Lax`` or ``None`` in any case; anything else is refused."""
    found = _SAME_SITE.get(str(value).lower())
    if found is None:
        raise ProfileError("a cookie's SameSite must be Strict, Lax or None")
    return found  # type: ignore[return-value]  # the values are exactly SameSite's


@dataclass(frozen=True, slots=True)
class Cookie:
    """One cookie. The value is left out of ``repr`` (it is usually a credential)."""

    name: str
    value: str = field(repr=False)
    domain: str
    path: str = "/"
    expires: float | None = None
    secure: bool = False
    http_only: bool = False
    same_site: SameSite = "Lax"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _COOKIE_NAME.fullmatch(self.name):
            raise ProfileError("a cookie name must be a non-empty RFC 6265 token")
        if not isinstance(self.value, str) or _CONTROL.search(self.value):
            raise ProfileError(f"cookie {self.name!r}: a value holds no ';' or control character")
        if len(self.name) + len(self.value.encode("utf-8")) > MAX_COOKIE_BYTES:
            raise ProfileError(f"cookie {self.name!r} is over {MAX_COOKIE_BYTES} bytes")
        domain = self.domain.lower() if isinstance(self.domain, str) else ""
        if not _DOMAIN.fullmatch(domain) or domain.strip(".") == "" or ".." in domain:
            raise ProfileError(f"cookie {self.name!r}: not a domain name")
        object.__setattr__(self, "domain", domain)
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ProfileError(f"cookie {self.name!r}: a path starts with '/'")
        if _CONTROL.search(self.path):
            raise ProfileError(f"cookie {self.name!r}: a path holds no ';' or control character")
        if self.expires is not None and (
            isinstance(self.expires, bool)
            or not isinstance(self.expires, int | float)
            or not math.isfinite(self.expires)
        ):
            raise ProfileError(f"cookie {self.name!r}: expires must be a number of seconds")
        object.__setattr__(self, "same_site", same_site(self.same_site))
        for flag in ("secure", "http_only"):
            if not isinstance(getattr(self, flag), bool):
                raise ProfileError(f"cookie {self.name!r}: {flag} must be true or false")

    @property
    def host_only(self) -> bool:
        """Sent to ``domain`` exactly, not to its subdomains."""
        return not self.domain.startswith(".")

    @property
    def host(self) -> str:
        """The domain without its leading dot."""
        return self.domain.lstrip(".")

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies a cookie in a jar: a new cookie with the same key replaces it."""
        return (self.host, self.path, self.name)

    def expired(self, now: float) -> bool:
        return self.expires is not None and self.expires <= now

    def sent_to(self, host: str) -> bool:
        """Whether a request to ``host`` carries this cookie (domain matching only)."""
        host = host.lower()
        if self.host_only:
            return host == self.domain
        return host == self.host or host.endswith(self.domain)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "domain": self.domain,
            "path": self.path,
            "expires": self.expires,
            "secure": self.secure,
            "http_only": self.http_only,
            "same_site": self.same_site,
        }

    @classmethod
    def from_json(cls, item: object) -> Cookie:
        if not isinstance(item, dict):
            raise ProfileError("a cookie must be a JSON object")
        known = {"name", "value", "domain", "path", "expires", "secure", "http_only", "same_site"}
        if not {"name", "value", "domain"} <= item.keys() <= known:
            raise ProfileError(f"a cookie has the fields {sorted(known)}")
        return cls(**item)


def _check_proxy(proxy: str) -> SplitResult:
    try:
        parts = urlsplit(proxy)
        port = parts.port
    except ValueError:
        raise ProfileError("the proxy is not a URL") from None
    if parts.scheme not in ("http", "https", "socks5") or not parts.hostname or port is None:
        raise ProfileError("a proxy is http://, https:// or socks5://HOST:PORT")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ProfileError("a proxy URL has no path, query or fragment")
    return parts


@dataclass(frozen=True, slots=True)
class Settings:
    """How a profile presents itself. ``user_agent=None`` leaves each client its own
    (httpx's, chromium's); ``proxy`` is ``http://``, ``https://`` or ``socks5://``, with
    optional ``user:password@`` (kept out of ``repr``)."""

    user_agent: str | None = None
    locale: str = "en-US"
    timezone: str = "UTC"
    viewport: tuple[int, int] = (1280, 720)
    proxy: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        agent = self.user_agent
        if agent is not None and (
            not isinstance(agent, str)
            or not 0 < len(agent) <= 512
            or not agent.isprintable()
            or not agent.isascii()
        ):
            raise ProfileError("a user agent is 1-512 printable ASCII characters")
        if not isinstance(self.locale, str) or not _LOCALE.fullmatch(self.locale):
            raise ProfileError("a locale is a language tag such as en-US or fr")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            raise ProfileError("the time zone is not an IANA zone such as Europe/Paris") from None
        viewport = tuple(self.viewport) if isinstance(self.viewport, list | tuple) else ()
        if len(viewport) != 2 or not all(
            type(side) is int and 0 < side <= MAX_VIEWPORT for side in viewport
        ):
            raise ProfileError(f"a viewport is WIDTHxHEIGHT, each 1-{MAX_VIEWPORT} pixels")
        object.__setattr__(self, "viewport", viewport)
        if self.proxy is not None:
            if not isinstance(self.proxy, str):
                raise ProfileError("the proxy is not a URL")
            _check_proxy(self.proxy)

    @property
    def proxy_parts(self) -> SplitResult | None:
        return None if self.proxy is None else _check_proxy(self.proxy)

    def masked_proxy(self) -> str | None:
        """The proxy URL with any password replaced by ``***``."""
        parts = self.proxy_parts
        if parts is None or parts.password is None:
            return self.proxy
        netloc = f"{parts.username}:***@{parts.hostname}:{parts.port}"
        return parts._replace(netloc=netloc).geturl()

    def to_json(self) -> dict[str, Any]:
        width, height = self.viewport
        return {
            "user_agent": self.user_agent,
            "locale": self.locale,
            "timezone": self.timezone,
            "viewport": {"width": width, "height": height},
            "proxy": self.proxy,
        }

    @classmethod
    def from_json(cls, item: object) -> Settings:
        if not isinstance(item, dict) or not item.keys() <= set(cls.__dataclass_fields__):
            raise ProfileError(f"settings have the fields {sorted(cls.__dataclass_fields__)}")
        values = dict(item)
        viewport = values.get("viewport")
        if isinstance(viewport, dict):
            values["viewport"] = (viewport.get("width"), viewport.get("height"))
        return cls(**values)


def normal_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, the scheme's default port left out."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except (ValueError, TypeError, AttributeError):
        raise ProfileError("an origin is scheme://host[:port]") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ProfileError("an origin is http:// or https://host[:port]")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ProfileError("an origin has no path, query, fragment or user")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        host += f":{port}"
    return f"{parts.scheme}://{host}"


def _storage(item: object) -> dict[str, dict[str, str]]:
    if not isinstance(item, dict):
        raise ProfileError("local_storage maps origins to objects of strings")
    out: dict[str, dict[str, str]] = {}
    for origin, entries in item.items():
        if not isinstance(entries, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in entries.items()
        ):
            raise ProfileError("local_storage maps origins to objects of strings")
        if entries:
            out[normal_origin(origin)] = dict(entries)
    return out


@dataclass(slots=True)
class ProfileData:
    """A profile's whole content, as read from disk; change it inside ``Profile.edit()``."""

    name: str
    created_at: float = field(default_factory=time.time)
    settings: Settings = field(default_factory=Settings)
    cookies: list[Cookie] = field(default_factory=list)
    local_storage: dict[str, dict[str, str]] = field(default_factory=dict)

    def set_cookie(self, cookie: Cookie) -> None:
        """Add ``cookie``, replacing the one with the same domain, path and name."""
        self.cookies = [c for c in self.cookies if c.key != cookie.key] + [cookie]

    def drop_expired(self, now: float | None = None) -> None:
        moment = time.time() if now is None else now
        self.cookies = [c for c in self.cookies if not c.expired(moment)]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": _VERSION,
            "name": self.name,
            "created_at": self.created_at,
            "settings": self.settings.to_json(),
            "cookies": [c.to_json() for c in self.cookies],
            "local_storage": {o: dict(e) for o, e in sorted(self.local_storage.items()) if e},
        }

    @classmethod
    def from_json(cls, item: object, *, name: str | None = None) -> ProfileData:
        """Read a profile file or a JSON export (``name`` replaces the one inside)."""
        if not isinstance(item, dict) or item.get("format") != FORMAT:
            raise ProfileError(f'not a sessionward profile (no "format": "{FORMAT}")')
        if item.get("version") != _VERSION:
            raise ProfileError(f"profile format version {item.get('version')!r} is not known")
        created = item.get("created_at")
        if isinstance(created, bool) or not isinstance(created, int | float):
            raise ProfileError("created_at must be a number of seconds")
        cookies = item.get("cookies", [])
        if not isinstance(cookies, list):
            raise ProfileError("cookies must be a list")
        data = cls(
            check_name(name if name is not None else item.get("name")),  # type: ignore[arg-type]
            float(created),
            Settings.from_json(item.get("settings", {})),
            [],
            _storage(item.get("local_storage", {})),
        )
        for cookie in cookies:
            data.set_cookie(Cookie.from_json(cookie))
        return data
