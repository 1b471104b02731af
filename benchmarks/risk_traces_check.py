"""A second, independent trace generator for ``sessionward risk eval``: the check corpus.

    python benchmarks/risk_traces_check.py --sessions 10000 --seed 7 > check.jsonl

Written apart from ``risk_traces.py`` so that a setting tuned on one corpus can be checked on
another whose artefacts differ. What differs on purpose:

* Networks are not a curated list: random IPv4 /24 blocks are looked up in geoip2fast's data
  and grouped by country and AS (a block whose address no AS block holds is skipped); a
  network's addresses are drawn from the blocks found. Carriers, hosting providers and ISPs
  are told apart by words in the AS name, so hosting networks include many that
  sessionward's hosting/VPN/Tor list does not name.
* Owners move between places by a per-user Markov chain (home, work, phone carrier, cafe,
  VPN, travel), with more carrier churn (a new address every few requests, across the
  carrier's blocks), IPv6 privacy addresses that change every few requests, daily home
  renumbering for some users, roaming phones that break out locally abroad half the time,
  and VPN users whose provider exits in several countries.
* User agents carry full build numbers (``Chrome/131.0.6778.86``), browsers update on their
  own cadence (major every 4 to 6 weeks, a build every few days), languages come in several
  header spellings.
* Thieves arrive after a log-normal delay (minutes to weeks), pace their requests slowly or
  in bursts, and come back; classes ``foreign``, ``foreign_copied_ua``, ``hosting_copied_ua``
  (any hosting network, listed or not), ``residential_proxy`` (another ISP in the owner's
  country), ``same_isp`` (the owner's own ISP or carrier, another block), ``concurrent``,
  ``after_logout``, ``full_clone``.

The numbers are assumptions, chosen to differ from ``risk_traces.py`` rather than to be right.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import random
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sessionward.risk.networks import _database

DAY = 86400.0
COUNTRIES = {"US": 5, "MX": 2, "PL": 2, "JP": 2, "ES": 2, "BR": 2, "GB": 1, "DE": 1, "KR": 1}
ABROAD = ["FR", "IT", "PT", "TH", "GR", "HR", "CA", "AT", "NL", "TR", "US", "GB", "DE"]
THIEVES = ["RU", "NG", "VN", "ID", "PK", "BD", "RO", "UA", "EG", "PH", "US", "DE", "BR"]
LANG = {
    "US": ["en-US,en;q=0.9", "en-US,en;q=0.5", "en-us"],
    "MX": ["es-MX,es;q=0.9,en;q=0.8", "es-419,es;q=0.9"],
    "PL": ["pl-PL,pl;q=0.9,en-US;q=0.8,en;q=0.7", "pl,en-US;q=0.7,en;q=0.3"],
    "JP": ["ja-JP,ja;q=0.9", "ja,en-US;q=0.9,en;q=0.8"],
    "ES": ["es-ES,es;q=0.9", "es,ca;q=0.9,en;q=0.8"],
    "BR": ["pt-BR,pt;q=0.9,en-US;q=0.8", "pt-BR"],
    "GB": ["en-GB,en-US;q=0.9,en;q=0.8"],
    "DE": ["de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7", "de,en-US;q=0.7,en;q=0.3"],
    "KR": ["ko-KR,ko;q=0.9,en-US;q=0.8"],
    "*": ["ru-RU,ru;q=0.9", "en-US,en;q=0.9", "vi-VN,vi;q=0.9", "id-ID,id;q=0.9", "en"],
}
_CARRIER = re.compile(
    r"mobile|wireless|cellular|gprs|jio|t-mobile|verizon|softbank|kddi|"
    r"docomo|claro|telcel|vivo|tim |play|plus|orange|vodafone|movistar",
    re.I,
)
_HOSTING = re.compile(
    r"amazon|google|microsoft|ovh|hetzner|digitalocean|linode|akamai|"
    r"vultr|choopa|contabo|leaseweb|host|server|cloud|data ?cent|colo",
    re.I,
)
_SKIP = re.compile(
    r"ministry|defen[cs]e|universit|research|school|bank|government|dnic|"
    r"national|network information",
    re.I,
)


class Atlas:
    """Networks found by looking up random addresses: country -> role -> [(AS, blocks)]."""

    def __init__(self, rng: random.Random, samples: int = 400_000) -> None:
        db = _database()
        found: dict[tuple[str, str], list[str]] = {}
        for _ in range(samples):
            block = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}"
            r = db.lookup(block + ".1")
            cc, asn = r.country_code, r.asn_name
            if r.is_private or not asn or len(str(cc)) != 2 or _SKIP.search(asn):
                continue
            # geoip2fast names the AS block before an address that no AS block holds.
            if ipaddress.ip_address(block + ".1") not in ipaddress.ip_network(r.asn_cidr):
                continue
            found.setdefault((str(cc), str(asn)), []).append(block + ".0/24")
        self.roles: dict[tuple[str, str], list[tuple[str, list[str], int]]] = {}
        for (cc, asn), blocks in found.items():
            role = (
                "hosting" if _HOSTING.search(asn) else "carrier" if _CARRIER.search(asn) else "isp"
            )
            self.roles.setdefault((cc, role), []).append((asn, sorted(set(blocks)), len(blocks)))
            self.roles.setdefault(("*", role), []).append((asn, sorted(set(blocks)), len(blocks)))

    def pick(self, rng: random.Random, cc: str, role: str) -> tuple[str, list[str]]:
        pool = self.roles.get((cc, role)) or self.roles.get((cc, "isp")) or self.roles[("*", role)]
        asn, blocks, _ = rng.choices(pool, [w for *_, w in pool])[0]
        return asn, blocks


def _in(rng: random.Random, blocks: list[str]) -> str:
    net = ipaddress.ip_network(rng.choice(blocks))
    return str(net.network_address + rng.randrange(1, max(net.num_addresses - 1, 2)))


def _v6(rng: random.Random, base: int) -> str:
    return str(ipaddress.IPv6Address(base | rng.getrandbits(64)))


@dataclass
class Browser:
    name: str
    os: str
    mobile: bool
    cadence: float  # days between majors
    lag: float
    hint: bool

    def ua(self, t: float) -> str:
        day = t / DAY + 400 - self.lag
        major, build = 100 + int(day // self.cadence), int(day * 7) % 500
        ios = f"{17 + int(day // 365)}.{int(day // 40) % 6}"
        full = f"{major}.0.{6000 + major * 7}.{build}"
        os = {
            "win": "Windows NT 10.0; Win64; x64",
            "mac": "Macintosh; Intel Mac OS X 10_15_7",
            "android": "Linux; Android 14; Pixel 8",
            "iphone": f"iPhone; CPU iPhone OS {ios.replace('.', '_')} like Mac OS X",
        }[self.os]
        if self.name == "firefox":
            tail = "Mobile; " if self.mobile else ""
            system = os.split(";")[0]
            return f"Mozilla/5.0 ({system}; {tail}rv:{major}.0) Gecko/20100101 Firefox/{major}.0"
        if self.name == "safari":
            m = " Mobile/15E148" if self.mobile else ""
            webkit = "AppleWebKit/605.1.15 (KHTML, like Gecko)"
            return f"Mozilla/5.0 ({os}) {webkit} Version/{ios}{m} Safari/604.1"
        extra = (
            f" Edg/{full}"
            if self.name == "edge"
            else f" OPR/{major - 15}.0.0.0"
            if self.name == "opera"
            else ""
        )
        m = "Mobile " if self.mobile else ""
        return (
            f"Mozilla/5.0 ({os}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{full} "
            f"{m}Safari/537.36{extra}"
        )

    def platform(self) -> str:
        return (
            {"win": "Windows", "mac": "macOS", "android": "Android"}.get(self.os, "")
            if self.hint
            else ""
        )


@dataclass
class Owner:
    cc: str
    lang: str
    home: tuple[str, list[str]]
    home_ip: str
    v6: int | None
    carrier: tuple[str, list[str]]
    work: str | None
    vpn: list[tuple[str, list[str]]]
    renumber: float
    trips: list[tuple[float, float, str]] = field(default_factory=list)


class Check:
    def __init__(self, seed: int, samples: int = 400_000) -> None:
        self.rng = random.Random(seed)
        self.atlas = Atlas(random.Random(seed + 1000), samples)

    def owner(self) -> Owner:
        rng, a = self.rng, self.atlas
        cc = rng.choices(list(COUNTRIES), list(COUNTRIES.values()))[0]
        home = a.pick(rng, cc, "isp")
        v6 = None  # random sampling finds too few IPv6 blocks to place a home in one
        work = _in(rng, a.pick(rng, cc, "isp")[1]) if rng.random() < 0.5 else None
        vpn = (
            [
                a.pick(rng, rng.choice([cc, "US", "NL", "DE", "GB"]), "hosting")
                for _ in range(rng.randint(1, 3))
            ]
            if rng.random() < 0.3
            else []
        )
        o = Owner(
            cc,
            rng.choice(LANG[cc]),
            home,
            _in(rng, home[1]),
            v6,
            a.pick(rng, cc, "carrier"),
            work,
            vpn,
            rng.choice([0.0, 0.02, 0.3]),
        )
        t = rng.expovariate(1 / 120) * DAY  # three trips a year
        while t < 45 * DAY:
            where = rng.choice([c for c in ABROAD if c != cc])
            end = t + rng.uniform(1, 8) * DAY
            o.trips.append((t, end, where))
            t = end + rng.expovariate(1 / 120) * DAY
        return o

    def browser(self, kind: str) -> Browser:
        rng = self.rng
        if kind == "phone":
            os = "iphone" if rng.random() < 0.45 else "android"
            name = "safari" if os == "iphone" and rng.random() < 0.85 else "chrome"
        else:
            os = "mac" if rng.random() < 0.25 else "win"
            name = rng.choices(
                ["chrome", "edge", "firefox", "opera", "safari"],
                [55, 15, 10, 5, 15 if os == "mac" else 0],
            )[0]
        hint = name in ("chrome", "edge", "opera") and os != "iphone"
        return Browser(
            name, os, kind == "phone", rng.choice([28, 35, 42]), rng.uniform(0, 15), hint
        )

    def place(self, o: Owner, phone: bool, t: float, place: str) -> str:
        """Markov step: stay mostly, move sometimes."""
        rng = self.rng
        trip = next((w for s, e, w in o.trips if s <= t < e), None)
        if trip:
            return rng.choice(["hotel", "roam"] if phone else ["hotel"])
        if o.vpn and rng.random() < 0.25:
            return "vpn"
        hour = (t % DAY) / 3600
        stay = 0.8 if place not in ("hotel", "roam") else 0.0
        if rng.random() < stay:
            return place
        options = {"home": 5, "work": 4 if o.work and 8 <= hour < 18 else 0, "cafe": 0.3}
        if phone:
            options["carrier"] = 5
        return rng.choices(list(options), list(options.values()))[0]

    def address(self, o: Owner, place: str, t: float, state: dict[str, Any]) -> str:
        rng, a = self.rng, self.atlas
        if place == "home":
            if o.v6 is not None and rng.random() < 0.6:
                return _v6(rng, o.v6)
            if rng.random() < o.renumber / 20:
                o.home_ip = _in(rng, o.home[1])
            return o.home_ip
        if place == "work" and o.work:
            return o.work
        if place == "carrier":
            if "carrier" not in state or rng.random() < 0.3:
                state["carrier"] = _in(rng, o.carrier[1])
            return str(state["carrier"])
        if place == "vpn":
            if "vpn" not in state or rng.random() < 0.01:
                state["vpn"] = _in(rng, rng.choice(o.vpn)[1])
            return str(state["vpn"])
        trip = next((w for s, e, w in o.trips if s <= t < e), o.cc)
        key = f"{place}:{trip}"
        if key not in state:
            local = place == "hotel" or rng.random() < 0.5
            state[key] = _in(
                rng,
                (
                    a.pick(rng, trip, "isp" if place != "roam" else "carrier")
                    if local
                    else o.carrier
                )[1],
            )
        return str(state[key])

    def sessions(self, uid: str, first: int) -> list[dict[str, Any]]:
        rng, o = self.rng, self.owner()
        kinds = (
            ["phone"]
            + (["computer"] if rng.random() < 0.75 else [])
            + (["computer"] if rng.random() < 0.2 else [])
        )
        out: list[dict[str, Any]] = []
        for kind in kinds:
            b = self.browser(kind)
            lang = o.lang if rng.random() < 0.9 else rng.choice(LANG["US"])
            t = rng.uniform(0, 3) * DAY
            while t < 45 * DAY:
                life = rng.choice([1, 7, 14, 30]) * DAY
                end, place = t + life, "home"
                events: list[dict[str, Any]] = []
                state: dict[str, Any] = {}
                while t < end and t < 45 * DAY:
                    place = self.place(o, kind == "phone", t, place)
                    for _ in range(1 + int(rng.expovariate(1 / 10))):
                        ev = {
                            "t": round(t, 2),
                            "actor": "user",
                            "ip": self.address(o, place, t, state),
                            "ua": b.ua(t),
                            "accept_language": lang,
                        }
                        if b.platform():
                            ev["ch_ua_platform"] = f'"{b.platform()}"'
                        events.append(ev)
                        t += rng.expovariate(1 / 30) if rng.random() < 0.7 else rng.uniform(0.1, 2)
                    if rng.random() < 0.08:
                        break  # logged out
                    t += rng.expovariate(1.0 / (DAY / (1.5 if kind == "phone" else 0.8)))
                    if (t % DAY) / 3600 < 7:
                        t += 7 * 3600
                session = {"session": f"c{first + len(out)}", "user": uid, "events": events}
                if rng.random() < 0.15:
                    self.attack(session, o, b, lang)
                out.append(session)
                t += rng.expovariate(1 / 2) * DAY
        return out

    def attack(self, s: dict[str, Any], o: Owner, b: Browser, lang: str) -> None:
        rng, a = self.rng, self.atlas
        ev = s["events"]
        kind = rng.choices(
            [
                "foreign",
                "foreign_copied_ua",
                "hosting_copied_ua",
                "residential_proxy",
                "same_isp",
                "concurrent",
                "after_logout",
                "full_clone",
            ],
            [10, 20, 15, 15, 10, 15, 10, 5],
        )[0]
        theft = rng.uniform(ev[0]["t"], ev[-1]["t"] + 1)
        start = theft + math.exp(rng.gauss(math.log(6 * 3600), 2.0))
        if kind == "concurrent":
            later = [e["t"] for e in ev if e["t"] > theft]
            start = rng.choice(later) + rng.uniform(1, 120) if later else start
        if kind == "after_logout":
            start = ev[-1]["t"] + rng.uniform(600, 5 * DAY)
        cc = rng.choice([c for c in THIEVES if c != o.cc])
        if kind in ("foreign", "foreign_copied_ua"):
            ip_blocks = a.pick(rng, cc, rng.choice(["isp", "carrier"]))[1]
        elif kind in ("residential_proxy", "after_logout", "concurrent") and (
            kind == "residential_proxy" or rng.random() < 0.4
        ):
            ip_blocks = a.pick(rng, o.cc, rng.choice(["isp", "carrier"]))[1]
        elif kind == "same_isp":
            ip_blocks = rng.choice([o.home, o.carrier])[1]
        else:
            ip_blocks = a.pick(rng, rng.choice([o.cc, cc, "US", "NL"]), "hosting")[1]
        copy = kind != "foreign" and rng.random() < 0.95
        own = Browser(rng.choice(["chrome", "firefox", "edge"]), "win", False, 28, 0, True)
        ip, t = _in(rng, ip_blocks), start
        slow = rng.random() < 0.4
        for _ in range(1 + int(rng.expovariate(1 / 10))):
            if kind == "full_clone":
                owner = [e for e in ev if e["actor"] == "user" and e["t"] <= t] or ev[:1]
                new = dict(owner[-1], t=round(t, 2), actor="attacker")
            else:
                src = b if copy else own
                new = {
                    "t": round(t, 2),
                    "actor": "attacker",
                    "ip": ip,
                    "ua": src.ua(theft if copy else t),
                    "accept_language": lang
                    if copy and rng.random() < 0.97
                    else rng.choice(LANG["*"]),
                }
                if src.platform() and (not copy or rng.random() < 0.8):
                    new["ch_ua_platform"] = f'"{src.platform()}"'
                if rng.random() < 0.1:
                    ip = _in(rng, ip_blocks)
            ev.append(new)
            t += rng.expovariate(1 / 600) if slow else rng.expovariate(1 / 8)
        ev.sort(key=lambda e: e["t"])
        s["attack"] = kind


def generate(sessions: int, seed: int, samples: int = 400_000) -> Iterator[dict[str, Any]]:
    """At least ``sessions`` sessions (whole users); ``samples``: addresses looked up to find
    the world's networks."""
    gen, made, user = Check(seed, samples), 0, 0
    while made < sessions:
        batch = gen.sessions(f"v{user}", made)
        user += 1
        made += len(batch)
        yield from batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    for session in sorted(generate(args.sessions, args.seed), key=lambda s: s["events"][0]["t"]):
        sys.stdout.write(json.dumps(session, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
