"""Synthetic session traces for ``sessionward risk eval``: owners going about their day, and
thieves replaying their cookies.

    python benchmarks/risk_traces.py --sessions 10000 --seed 1 > shop.jsonl
    python benchmarks/risk_traces.py --sessions 10000 --seed 2 --variant saas > saas.jsonl

One JSON object per session (the format ``sessionward risk eval`` reads), events in time
order, the first event the login. Extra fields the engine never reads: ``"attack"`` on a
session names the attack class; ``"actor"`` on each event says who made the request;
``"secret": "previous"`` marks a request that presented a secret a rotation had replaced.
Addresses are real addresses of real networks (``risk_networks.json``, built from the
GeoLite2 data in geoip2fast); the documentation ranges (RFC 5737) stand for attackers on
networks no database lists.

Assumptions about owners (each a parameter of :class:`Variant`; the sources say why the
behaviour exists, the numbers are ours):

* Devices. A user has a computer, a phone and sometimes a tablet, each with its own sessions
  (cookies do not move between browsers); smartphone and computer ownership as in Pew's
  mobile fact sheet (https://www.pewresearch.org/internet/fact-sheet/mobile/). Browser
  shares follow StatCounter's order (https://gs.statcounter.com/browser-market-share).
  Safari on an iPad sends the macOS user agent (desktop-class browsing since iPadOS 13).
* Browser updates. Chrome, Edge and Firefox ship a major version every four weeks
  (https://chromiumdash.appspot.com/schedule, https://whattrainisitnow.com/calendar/); each
  device picks it up a few days later, so long sessions see a version bump. Chromium sends the
  reduced user agent (https://www.chromium.org/updates/ua-reduction/) and the
  Sec-CH-UA-Platform hint (https://developer.mozilla.org/docs/Web/HTTP/Headers/Sec-CH-UA-Platform);
  Firefox and Safari send no client hints.
* Home. A fixed line keeps its address for days, but some operators renumber often
  (Padmanabhan et al., "Reasons Dynamic Addresses Change", IMC 2016); with IPv6 at home the
  browser switches between the IPv4 and IPv6 address per connection (Happy Eyeballs, RFC 8305;
  IPv6 share: https://www.google.com/intl/en/ipv6/statistics.html).
* Mobile. Carriers put phones behind carrier-grade NAT and hand out a new public address for
  new connections, often in another /24 of the carrier's pools (RFC 6888; Richter et al.,
  "A Multi-perspective Analysis of Carrier-Grade NAT Deployment", IMC 2016). Phones switch
  between the carrier and the home or office Wi-Fi. Roaming abroad is mostly home-routed, so a
  travelling phone keeps its home carrier's addresses.
* Work, cafes, travel. Computers move between home and an office network on workdays, now and
  then use a cafe's or a friend's network, and go abroad on trips (hotel networks).
* VPN. A share of users run a commercial VPN for some visits (surveys put regular VPN use at a
  quarter to a third of internet users: GlobalWebIndex 2018, PCMag 2018).
* Tabs. Pages fire bursts of requests; several tabs interleave.

Assumptions about thieves (the classes the eval reports): infostealer malware copies cookies
and often the browser's user agent and other attributes, which are sold and replayed
(https://blog.chromium.org/2024/04/fighting-cookie-theft-using-device.html; Genesis Market
sold cookies with "browser fingerprints":
https://thepaypers.com/digital-identity-security-online-fraud/cybercrime-website-genesis-market-taken-down-by-police--1262129),
through hosting, VPN, Tor or residential proxies, the latter often in the victim's country
(Mi et al., "Resident Evil: Understanding Residential IP Proxy as a Dark Service", IEEE S&P
2019). Classes: ``foreign`` (another country and network, the thief's own browser),
``foreign_copied_ua`` (the same with the victim's user agent), ``residential_proxy`` (a
residential address in the victim's country, user agent copied), ``concurrent`` (while the
victim is active), ``after_logout`` (after the victim's last request; half present a secret a
rotation replaced), ``full_clone`` (the victim's own network and every attribute: malware
relaying through the victim's machine; expected to pass).
"""

from __future__ import annotations

import argparse
import bisect
import ipaddress
import json
import math
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from risk_traces_params import (  # the sibling module: run as a script from benchmarks/
    BROWSERS,
    LANGUAGES,
    THIEF_COUNTRIES,
    TOOLS,
    VARIANTS,
    Variant,
    apple_versions,
    release_of,
)

DAY = 86400.0
NETWORKS = Path(__file__).with_name("risk_networks.json")
UNLISTED = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"]


@dataclass
class Net:
    asn: str
    country: str
    role: str
    share: float
    v4: list[str]
    v6: list[str]


class World:
    """The networks, by country and role, with weighted picks."""

    def __init__(self, path: Path = NETWORKS) -> None:
        data = json.loads(path.read_text("utf-8"))
        self.by: dict[tuple[str, str], list[Net]] = {}
        for item in data["networks"]:
            net = Net(
                item["asn"], item["country"], item["role"], item["share"], item["v4"], item["v6"]
            )
            key = (net.country if net.role not in ("hosting", "vpn", "tor") else "*", net.role)
            self.by.setdefault(key, []).append(net)

    def pick(self, rng: random.Random, country: str, role: str) -> Net:
        options = self.by.get((country, role))
        if not options:  # a country whose only listed networks are of another role
            options = self.by.get((country, "fixed")) or self.by[(country, "mobile")]
        return rng.choices(options, [n.share for n in options])[0]

    def service(self, rng: random.Random, role: str) -> Net:
        return rng.choice(self.by[("*", role)])


def _address(rng: random.Random, cidr: str) -> str:
    net = ipaddress.ip_network(cidr)
    if net.version == 4:
        size = net.num_addresses
        return str(net.network_address + (rng.randrange(1, size - 1) if size > 2 else 0))
    return str(net.network_address + rng.getrandbits(min(net.max_prefixlen - net.prefixlen, 64)))


def _prefix_address(rng: random.Random, net: Net, v6: bool = False) -> str:
    """A fresh address in one of the network's blocks (its /24 or /48 usually new)."""
    blocks = net.v6 if v6 and net.v6 else net.v4
    return _address(rng, rng.choice(blocks))


def _neighbour(rng: random.Random, address: str) -> str:
    """Another address in the same /24 (IPv4) or /64 (IPv6)."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return str(ipaddress.IPv4Address((int(ip) & ~0xFF) | rng.randrange(1, 255)))
    return str(ipaddress.IPv6Address((int(ip) >> 64 << 64) | rng.getrandbits(64)))


@dataclass
class Device:
    kind: str
    browser: str
    template: str
    platform: str
    lag: float
    signal: str
    language: str

    def user_agent(self, t: float) -> str:
        day = t / DAY - self.lag
        version, ios = apple_versions(day)
        return self.template.format(
            v=release_of("chrome" if self.browser == "samsung" else self.browser, day),
            s=release_of("samsung", day),
            i=version,
            u=ios,
        )

    def request(self, t: float, ip: str, rng: random.Random) -> dict[str, Any]:
        event: dict[str, Any] = {
            "t": round(t, 3),
            "actor": "user",
            "ip": ip,
            "ua": self.user_agent(t),
            "accept_language": self.language,
        }
        if self.platform:
            event["ch_ua_platform"] = f'"{self.platform}"'
        if self.signal and rng.random() > 0.1:  # some requests (API calls) carry none
            event["device_signal"] = self.signal
        return event


@dataclass
class Person:
    id: str
    country: str
    language: str
    home: Net
    home_v4: str
    home_v6: str | None
    mobile: Net
    work: tuple[Net, str] | None
    vpn: str | None
    trips: list[tuple[float, float, str]]  # start, end, the hotel's address
    devices: list[Device]
    renumbered: float = 0.0


class Generator:
    def __init__(self, variant: Variant, seed: int, world: World) -> None:
        self.v, self.rng, self.world = variant, random.Random(seed), world
        self.countries = list(variant.countries)
        self.weights = list(variant.countries.values())

    # -- people ---------------------------------------------------------------------------

    def person(self, number: int) -> Person:
        rng, v = self.rng, self.v
        country = rng.choices(self.countries, self.weights)[0]
        language = LANGUAGES["US"] if rng.random() < v.other_language else LANGUAGES[country]
        home = self.world.pick(rng, country, "fixed")
        v6 = _prefix_address(rng, home, True) if home.v6 and rng.random() < v.home_ipv6 else None
        work = None
        if rng.random() < v.work:
            office = self.world.pick(rng, country, rng.choice(["business", "fixed"]))
            work = (office, _prefix_address(rng, office))
        vpn = None
        if rng.random() < v.vpn_users:
            vpn = rng.choice(sorted({n.asn for n in self.world.by[("*", "vpn")]}))
        trips = []
        day = rng.expovariate(v.trips_per_month / 30)
        while day < v.days:
            length = rng.uniform(2, 10)
            where = rng.choice([c for c in [*self.countries, "ES", "IT", "TR"] if c != country])
            hotel = self.world.pick(rng, where, "fixed")
            trips.append((day * DAY, (day + length) * DAY, _prefix_address(rng, hotel)))
            day += length + rng.expovariate(v.trips_per_month / 30)
        devices = [
            self.device(kind, language)
            for kind, share in (("computer", v.computer), ("phone", v.phone), ("tablet", v.tablet))
            if rng.random() < share
        ] or [self.device("phone", language)]
        return Person(
            f"u{number}",
            country,
            language,
            home,
            _prefix_address(rng, home),
            v6,
            self.world.pick(rng, country, "mobile"),
            work,
            vpn,
            trips,
            devices,
        )

    def device(self, kind: str, language: str) -> Device:
        rng = self.rng
        options = [b for b in BROWSERS if b[1] == kind]
        name, _, _, template, platform = rng.choices(options, [b[2] for b in options])[0]
        signal = f"d{rng.getrandbits(48):012x}" if rng.random() < self.v.device_signal else ""
        return Device(
            kind,
            name,
            template,
            platform,
            rng.expovariate(1 / self.v.update_lag_days),
            signal,
            language,
        )

    # -- where a request comes from ---------------------------------------------------------

    def visit_network(self, p: Person, d: Device, t: float) -> tuple[str, Net | None]:
        """How this visit connects: ``home``, ``work``, ``hotel`` (the trip's address),
        ``mobile`` or ``fixed`` (a new address in ``network``)."""
        rng, v = self.rng, self.v
        if p.vpn and rng.random() < v.vpn_visit:
            exits = [n for n in self.world.by[("*", "vpn")] if n.asn == p.vpn]
            local = [n for n in exits if n.country == p.country]
            return "fixed", rng.choice(local if local and rng.random() < 0.6 else exits)
        trip = next((a for start, end, a in p.trips if start <= t < end), None)
        hour, weekday = (t % DAY) / 3600, int(t // DAY) % 7 < 5
        if trip is not None:
            if d.kind == "phone" and rng.random() < 0.7:
                return "mobile", p.mobile  # home-routed roaming
            return "hotel", None
        at_work = p.work is not None and weekday and 9 <= hour < 17
        if d.kind == "computer":
            if at_work and rng.random() < 0.85:
                return "work", None
            return (
                ("fixed", self.world.pick(rng, p.country, "fixed"))
                if rng.random() < v.cafe
                else ("home", None)
            )
        if d.kind == "phone":
            if at_work and rng.random() < 0.3:
                return "work", None
            return ("home", None) if rng.random() < v.phone_on_wifi else ("mobile", p.mobile)
        return (
            ("fixed", self.world.pick(rng, p.country, "fixed"))
            if rng.random() < v.cafe * 3
            else ("home", None)
        )

    def addresses(self, p: Person, d: Device, t: float, count: int) -> Iterator[str]:
        rng, v = self.rng, self.v
        days = (t - p.renumbered) / DAY
        if days > 0 and rng.random() < 1 - (1 - v.renumber_per_day) ** days:
            p.home_v4 = _prefix_address(rng, p.home)
        p.renumbered = t
        how, net = self.visit_network(p, d, t)
        if how == "home":
            family6 = p.home_v6 is not None and rng.random() < 0.7
            for _ in range(count):
                if p.home_v6 is not None and rng.random() < v.family_switch:
                    family6 = not family6
                yield _neighbour(rng, p.home_v6) if family6 and p.home_v6 else p.home_v4
        elif how == "work" and p.work is not None:
            yield from (p.work[1] for _ in range(count))
        elif how == "hotel":
            hotel = next(a for start, end, a in p.trips if start <= t < end)
            yield from (hotel for _ in range(count))
        elif how == "mobile" and net is not None:
            address = _prefix_address(rng, net, rng.random() < 0.5)
            for _ in range(count):
                if rng.random() < v.mobile_new_address:
                    address = _prefix_address(rng, net, rng.random() < 0.5)
                yield address
        else:
            assert net is not None
            address = _prefix_address(rng, net)
            yield from (address for _ in range(count))

    # -- sessions -----------------------------------------------------------------------------

    def sessions(self, p: Person, first: int) -> list[dict[str, Any]]:
        rng, v = self.rng, self.v
        out: list[dict[str, Any]] = []
        activity = math.exp(rng.gauss(0, 0.7))
        for d in p.devices:
            rate = (
                v.visits_per_day * activity * {"computer": 1.0, "phone": 1.2, "tablet": 0.4}[d.kind]
            )
            t = rng.expovariate(rate) * DAY
            current: dict[str, Any] | None = None
            while t < v.days * DAY:
                t = _awake(t, rng)
                events = self.visit(p, d, t)
                alive = current is not None and (
                    events[0]["t"] - current["events"][-1]["t"] < v.idle_days * DAY
                    and events[0]["t"] - current["events"][0]["t"] < v.max_days * DAY
                    and not current.get("ended")
                )
                if current is not None and alive:
                    current["events"].extend(events)
                else:
                    current = {
                        "session": f"s{first + len(out)}",
                        "user": p.id,
                        "events": events,
                        "_device": d,
                    }
                    out.append(current)
                if rng.random() < v.logout:
                    current["ended"] = True
                t = events[-1]["t"] + rng.expovariate(rate) * DAY
        return out

    def visit(self, p: Person, d: Device, t: float) -> list[dict[str, Any]]:
        rng = self.rng
        count = 1 + int(rng.expovariate(1 / self.v.requests_per_visit))
        events = []
        for address in self.addresses(p, d, t, count):
            events.append(d.request(t, address, rng))
            burst = rng.random() < 0.25  # a page's parallel requests, or another tab
            t += rng.uniform(0.05, 1.5) if burst else rng.expovariate(1 / 20)
        return events

    # -- thieves ------------------------------------------------------------------------------

    def attack(self, session: dict[str, Any], p: Person) -> None:
        rng, v = self.rng, self.v
        kind = rng.choices(list(v.attacks), list(v.attacks.values()))[0]
        victim: list[dict[str, Any]] = session["events"]
        d: Device = session["_device"]
        t0, last = victim[0]["t"], victim[-1]["t"]
        theft = rng.uniform(t0 + 1, max(last, t0 + 2))
        if kind == "concurrent":
            later = [e["t"] for e in victim if e["t"] > theft]
            if len(later) < 3:
                kind = "after_logout"
            else:
                start = rng.choice(later[:-2])
                times = sorted(
                    rng.uniform(start, later[-1] if later[-1] - start < 900 else start + 900)
                    for _ in range(2 + int(rng.expovariate(1 / 6)))
                )
        if kind == "after_logout":
            times = _burst(rng, last + rng.uniform(3600, 3 * DAY))
        elif kind != "concurrent":
            times = _burst(rng, theft + rng.expovariate(1 / DAY))
        stolen = d.user_agent(theft)
        network = self.thief_network(kind, p, victim, theft)
        own = self.thief_browser(rng.choice(THIEF_COUNTRIES))
        copied = (
            kind in ("foreign_copied_ua", "residential_proxy")
            or (kind == "concurrent" and rng.random() < 0.7)
            or (kind == "after_logout" and rng.random() < 0.5)
        )
        previous = kind == "after_logout" and rng.random() < 0.5
        thief_signal = f"d{rng.getrandbits(48):012x}" if d.signal and rng.random() < 0.7 else ""
        # What a thief copies is decided once: it is how their browser is set up.
        language = d.language if rng.random() < v.copy_language else own.get("accept_language")
        hint = d.platform if d.platform and rng.random() < v.copy_hint else ""
        for t in times:
            ip = network() if callable(network) else network
            if kind == "full_clone":
                event = d.request(t, _neighbour(rng, _owner_address(victim, t)), rng)
            else:
                event = {"t": round(t, 3), "ip": ip}
                if copied:
                    event["ua"] = stolen
                    if language:
                        event["accept_language"] = language
                    if hint:
                        event["ch_ua_platform"] = f'"{hint}"'
                else:
                    event.update(own)
                if thief_signal:
                    event["device_signal"] = thief_signal
            event["actor"] = "attacker"
            if previous:
                event["secret"] = "previous"  # noqa: S105 (a trace field, not a password)
            victim.append(event)
        victim.sort(key=lambda e: e["t"])
        session["attack"] = kind

    def thief_network(self, kind: str, p: Person, victim: list[dict[str, Any]], t: float) -> Any:
        rng = self.rng
        local = kind == "residential_proxy" or (
            kind in ("concurrent", "after_logout") and rng.random() < 0.5
        )
        if kind == "full_clone":
            return None
        if local:
            net = self.world.pick(rng, p.country, "fixed" if rng.random() < 0.7 else "mobile")
            return _prefix_address(rng, net)
        where = rng.choices(list(self.v.thief_networks), list(self.v.thief_networks.values()))[0]
        if where == "unlisted":
            return _address(rng, rng.choice(UNLISTED))
        if where == "residential":
            country = rng.choice([c for c in THIEF_COUNTRIES if c != p.country])
            return _prefix_address(
                rng, self.world.pick(rng, country, rng.choice(["fixed", "mobile"]))
            )
        net = self.world.service(rng, where)
        if where == "tor":  # a new circuit, often a new exit, every few minutes
            return lambda: _prefix_address(rng, self.world.service(rng, "tor"))
        return _prefix_address(rng, net)

    def thief_browser(self, country: str) -> dict[str, Any]:
        rng = self.rng
        if rng.random() < self.v.thief_tool:
            return {"ua": rng.choice(TOOLS)}
        kind = "computer" if rng.random() < 0.8 else "phone"
        d = self.device(kind, LANGUAGES[country])
        event = d.request(self.v.days * DAY / 2, "", rng)
        return {k: event[k] for k in ("ua", "accept_language", "ch_ua_platform") if k in event}


def _awake(t: float, rng: random.Random) -> float:
    """People browse from 7:00 to midnight."""
    hour = (t % DAY) / 3600
    return t if hour >= 7 else t - t % DAY + rng.uniform(7, 23) * 3600


def _burst(rng: random.Random, start: float) -> list[float]:
    times, t = [], start
    for _ in range(1 + int(rng.expovariate(1 / 8))):
        times.append(t)
        t += rng.expovariate(1 / 10)
    return times


def _owner_address(victim: list[dict[str, Any]], t: float) -> str:
    owner = [e for e in victim if e.get("actor") == "user"]
    index = bisect.bisect_right([e["t"] for e in owner], t)
    return str(owner[max(index - 1, 0)]["ip"])


def generate(
    sessions: int, seed: int, variant: Variant, world: World | None = None
) -> Iterator[dict[str, Any]]:
    """At least ``sessions`` sessions (whole users), attacks injected."""
    gen = Generator(variant, seed, world or World())
    made, number = 0, 0
    while made < sessions:
        person = gen.person(number)
        number += 1
        for session in gen.sessions(person, made):
            if gen.rng.random() < variant.attacked:
                gen.attack(session, person)
            made += 1
            yield {k: v for k, v in session.items() if not k.startswith("_") and k != "ended"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="shop")
    args = parser.parse_args(argv)
    out = sys.stdout
    for session in generate(args.sessions, args.seed, VARIANTS[args.variant]):
        out.write(json.dumps(session, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
