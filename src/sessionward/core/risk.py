"""Hijack scoring: is this request the session's owner, or someone holding a copy of the token?

The model starts from Freeman et al., "Who are you? A statistical approach to measuring user
authenticity" (NDSS 2016): every feature contributes a log likelihood ratio
``log P(value | attacker) / P(value | this user)``. The attacker is modelled as a random
member of the population (plus a few known habits: hosting, VPN and Tor networks, proxies in
the victim's country, copying the victim's browser attributes); the user's estimate comes from
the session's own history, smoothed toward the user's history across sessions, smoothed toward
the population, along the hierarchy prefix -> network (AS) -> country. Browser attributes are
compared with the session's own (a cookie does not move between browsers): a version bump is
benign, another browser, system or device is not. Behaviour adds concurrent use from two
networks, impossible travel, request velocity and reuse of a rotated-out secret.

The score is the sum of the reasons' weights (natural log units: +2.3 means the request is ten
times likelier from an attacker than from the owner). Thresholds turn it into a
:class:`Decision`; revoking also needs two independent groups of evidence, so one benign
change alone never ends a session. Pure code: time comes in with the observation.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

from sessionward.core.risk_history import Population, Tally, UserRisk, smoothed
from sessionward.core.risk_policy import RiskPolicy

__all__ = [
    "Browser",
    "Decision",
    "Network",
    "Observation",
    "Reason",
    "SeenNetwork",
    "SessionRisk",
    "Signal",
    "Signals",
    "Verdict",
    "assess",
    "begin",
    "learn",
    "remember",
]


class Decision(enum.StrEnum):
    """What to do with the request, in increasing severity."""

    ALLOW = "allow"
    LOG = "log"  # allow, and record the reasons
    STEP_UP = "step_up"  # re-authenticate; the session survives
    REVOKE = "revoke"  # end the session


class Signal(enum.StrEnum):
    """Stable reason codes. The part before the dot is the group of evidence."""

    LOGIN = "login.authenticated"
    NETWORK_SAME = "network.same"
    NETWORK_PREFIX = "network.new_prefix"
    NETWORK_ASN = "network.new_network"
    NETWORK_COUNTRY = "network.new_country"
    NETWORK_KIND = "network.kind"
    BROWSER_UPDATE = "browser.update"
    BROWSER_DOWNGRADE = "browser.downgrade"
    BROWSER_JUMP = "browser.version_jump"
    BROWSER_FAMILY = "browser.other_browser"
    BROWSER_OS = "browser.other_system"
    BROWSER_DEVICE = "browser.other_device"
    LANGUAGE_CHANGED = "language.changed"
    LANGUAGE_REGION = "language.region"
    LANGUAGE_MISSING = "language.missing"
    LANGUAGE_ADDED = "language.added"
    PLATFORM_CHANGED = "platform.changed"
    PLATFORM_MISSING = "platform.missing"
    PLATFORM_ADDED = "platform.added"
    PLATFORM_MISMATCH = "platform.mismatch"
    DEVICE_SAME = "device.same"
    DEVICE_CHANGED = "device.changed"
    DEVICE_MISSING = "device.missing"
    DEVICE_ADDED = "device.added"
    CONCURRENT = "behaviour.concurrent"
    TRAVEL = "behaviour.impossible_travel"
    VELOCITY = "behaviour.velocity"
    PREVIOUS_SECRET = "behaviour.previous_secret"  # noqa: S105 (a reason code)

    @property
    def group(self) -> str:
        return self.value.partition(".")[0]


@dataclass(frozen=True, slots=True)
class Network:
    """Where a request came from, enriched: ``prefix`` is the /24 (IPv4) or /48 (IPv6),
    ``asn`` the autonomous system's name, ``country`` an ISO code, ``kind`` one of ``""``
    (an ordinary access network), ``"hosting"``, ``"vpn"``, ``"tor"``. Empty means unknown."""

    prefix: str = ""
    asn: str = ""
    country: str = ""
    kind: str = ""


@dataclass(frozen=True, slots=True)
class Browser:
    """The parsed user agent: browser family and major version, system family and major
    version, device class (``desktop``, ``mobile``, ``tablet``, ``bot``, ``tool`` or ``""``)."""

    family: str = ""
    major: int | None = None
    os: str = ""
    os_major: int | None = None
    device: str = ""


@dataclass(frozen=True, slots=True)
class Signals:
    """A request's context without its time: what the engine compares."""

    network: Network = Network()
    browser: Browser = Browser()
    language: str = ""  # the first Accept-Language range, lower case ("en-gb")
    platform: str = ""  # Sec-CH-UA-Platform without quotes ("Windows")
    device_signal: str = ""  # the optional device signal, opaque
    platform_mismatch: bool = False  # the client hint contradicts the user agent


@dataclass(frozen=True, slots=True)
class Observation:
    """One request: its signals, its time (from the injected clock) and whether it presented
    the secret a rotation replaced (inside the grace window)."""

    t: float
    signals: Signals
    previous_secret: bool = False


@dataclass(frozen=True, slots=True)
class Reason:
    """One piece of evidence: a code, its weight (log likelihood ratio) and a sentence."""

    signal: Signal
    weight: float
    detail: str

    @property
    def group(self) -> str:
        return self.signal.group


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision, the score (the sum of the weights) and the reasons, heaviest first."""

    decision: Decision
    score: float
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class SeenNetwork:
    """A network the session used: first and last use, and the score it arrived with."""

    network: Network
    first: float
    last: float
    score: float


@dataclass(frozen=True, slots=True)
class SessionRisk:
    """A session's bounded history: its recent networks (latest last), the signals it has
    settled on, the time and decayed count of its requests, and the verdict last computed for
    exactly those signals (reused while nothing changes)."""

    networks: tuple[SeenNetwork, ...]
    signals: Signals
    last_t: float
    rate: float = 1.0
    cached: Verdict | None = None


_BENIGN = frozenset({Decision.ALLOW, Decision.LOG})


def begin(obs: Observation) -> SessionRisk:
    """The history of a session whose first request is ``obs`` (the authenticated login)."""
    network = SeenNetwork(obs.signals.network, obs.t, obs.t, 0.0)
    return SessionRisk((network,), obs.signals, obs.t)


LOGIN = Verdict(Decision.ALLOW, 0.0, (Reason(Signal.LOGIN, 0.0, "the user just signed in"),))


def assess(
    obs: Observation,
    session: SessionRisk,
    user: UserRisk,
    population: Population,
    policy: RiskPolicy,
) -> Verdict:
    """Score ``obs`` against the session's and the user's history and the population."""
    static = session.cached
    if static is None or obs.signals != session.signals:
        static = decide(_static(obs.signals, session, user, population, policy), policy)
    extra = _behaviour(obs, session, static.score, policy)
    return decide(static.reasons + extra, policy) if extra else static


def decide(reasons: tuple[Reason, ...], policy: RiskPolicy) -> Verdict:
    """Thresholds, and for a revoke two groups of evidence that each pass ``corroboration``."""
    ordered = tuple(sorted(reasons, key=lambda r: -r.weight))
    score = sum(r.weight for r in ordered)
    if score >= policy.step_up_at:
        groups: dict[str, float] = {}
        for reason in ordered:
            groups[reason.group] = groups.get(reason.group, 0.0) + reason.weight
        strong = sum(1 for w in groups.values() if w >= policy.corroboration)
        severe = score >= policy.revoke_at and strong >= 2
        decision = Decision.REVOKE if severe else Decision.STEP_UP
    else:
        decision = Decision.LOG if score >= policy.log_at else Decision.ALLOW
    return Verdict(decision, score, ordered)


def learn(
    session: SessionRisk, obs: Observation, verdict: Verdict, policy: RiskPolicy
) -> SessionRisk:
    """The session's history after ``verdict`` on ``obs``. An allowed (or logged) request
    teaches its context; a challenged one does not until the user confirms it (pass an ALLOW
    verdict then)."""
    rate = _rate(session, obs.t, policy) + 1.0
    if verdict.decision not in _BENIGN:
        return replace(session, last_t=obs.t, rate=rate)
    networks, changed = _note_network(session.networks, obs, verdict.score, policy)
    signals = _settle(session.signals, obs.signals)
    changed = changed or signals != session.signals
    static = verdict
    if any(r.group == "behaviour" for r in verdict.reasons):
        static = decide(tuple(r for r in verdict.reasons if r.group != "behaviour"), policy)
    cached = None if changed or obs.signals != signals else static
    return SessionRisk(networks, signals, obs.t, rate, cached)


def remember(
    user: UserRisk, session: SessionRisk | None, obs: Observation, policy: RiskPolicy
) -> UserRisk:
    """The user's history after an allowed ``obs`` in ``session`` (``None`` for the login):
    values this session has not used before count one more session."""
    net = obs.signals.network
    seen = session.networks if session is not None else ()
    countries = [] if any(s.network.country == net.country for s in seen) else [net.country]
    pair = (net.country, net.asn)
    networks = [] if any((s.network.country, s.network.asn) == pair for s in seen) else [pair]
    prefix = (net.asn, net.prefix)
    prefixes = [] if any((s.network.asn, s.network.prefix) == prefix for s in seen) else [prefix]
    if not (countries or networks or prefixes):
        return user
    return user.add(
        countries=countries,
        networks=networks,
        prefixes=prefixes,
        now=obs.t,
        half_life=policy.history_half_life,
        retention=policy.history_retention,
        limits=(policy.user_countries, policy.user_networks, policy.user_prefixes),
    )


# -- the network: Freeman's hierarchy with a session level in front ---------------------------


def _share(values: list[str], value: str) -> float:
    return values.count(value) / len(values) if values else 0.0


def _network(
    net: Network, session: SessionRisk, user: UserRisk, pop: Population, policy: RiskPolicy
) -> tuple[Reason, ...]:
    seen = [s.network for s in session.networks]
    countries = list(dict.fromkeys(n.country for n in seen))
    asns = list(dict.fromkeys(n.asn for n in seen if n.country == net.country))
    prefixes = list(
        dict.fromkeys(n.prefix for n in seen if (n.country, n.asn) == (net.country, net.asn))
    )
    s_c, s_a, s_p = (
        _share(countries, net.country),
        _share(asns, net.asn),
        _share(prefixes, net.prefix),
    )

    # The population, as the attacker's distribution and the prior of the user's estimates.
    pop_c = pop.country(net.country, policy.countries_vocabulary)
    pop_a = pop.network(net.country, net.asn, policy.networks_vocabulary)
    pop_p = 1.0 / policy.prefixes_vocabulary

    # The user's estimate: Witten-Bell over past sessions, smoothed toward the population.
    cap = math.exp(-policy.novelty_cap)
    u_c = _user_level(user.countries.get(net.country), user.country_total(), pop_c, cap)
    u_a = _user_level(
        user.networks.get((net.country, net.asn)), user.network_total(net.country), pop_a, cap
    )
    u_p = _user_level(
        user.prefixes.get((net.asn, net.prefix)), user.prefix_total(net.asn), pop_p, cap
    )

    # The session's own networks in front: a legitimate request mostly stays where it was.
    l_c = _stay(policy.stay_country, s_c, u_c, bool(countries))
    l_a = _stay(policy.stay_network, s_a, u_a, bool(asns))
    l_p = _stay(policy.stay_prefix, s_p, u_p, bool(prefixes))
    legit = l_c * l_a * l_p

    # The attacker: on the victim's own network now and then, in the victim's country often
    # (residential proxies), otherwise anywhere, with a taste for hosting, VPN and Tor.
    local = policy.attacker_local * s_c * s_a * s_p
    where = policy.attacker_same_country * s_c + (1 - policy.attacker_same_country) * pop_c
    anywhere = (1 - policy.attacker_local) * where * pop_a * pop_p
    taste = policy.attacker_kind(net.kind) / pop.kind(
        net.kind, policy.population_kind(net.kind), policy.population_weight
    )
    plain = math.log((local + anywhere) / legit)
    total = math.log((local + anywhere * taste) / legit)

    level, detail = _level(net, s_c, s_a, s_p, user)
    reasons = [Reason(level, plain, detail)]
    if net.kind:
        reasons.append(
            Reason(Signal.NETWORK_KIND, total - plain, _KIND_TEXT.get(net.kind, net.kind))
        )
    else:
        reasons[0] = Reason(level, total, detail)
    return tuple(reasons)


def _user_level(tally: Tally | None, totals: tuple[float, int], prior: float, cap: float) -> float:
    count = tally.weight if tally is not None else 0.0
    return max(smoothed(count, totals[0], totals[1], prior), prior * cap)


def _stay(stay: float, session_share: float, user_estimate: float, has_session: bool) -> float:
    if not has_session:
        return user_estimate
    return stay * session_share + (1 - stay) * user_estimate


_KIND_TEXT = {"hosting": "a hosting provider", "vpn": "a VPN provider", "tor": "a Tor exit"}


def _level(net: Network, s_c: float, s_a: float, s_p: float, user: UserRisk) -> tuple[Signal, str]:
    where = f"{net.asn or 'unknown network'} ({net.country or '??'})"
    if s_p:
        return Signal.NETWORK_SAME, f"the session's network {where}"
    if s_a:
        known = (net.asn, net.prefix) in user.prefixes
        return Signal.NETWORK_PREFIX, f"new prefix of {where}" + (", used before" if known else "")
    known = (net.country, net.asn) in user.networks
    if s_c:
        return Signal.NETWORK_ASN, f"new network {where}" + (", used before" if known else "")
    known = net.country in user.countries
    return Signal.NETWORK_COUNTRY, f"new country: {where}" + (", used before" if known else "")


# -- browser, language, client hint, device signal: compared with the session's own ----------


def _static(
    signals: Signals, session: SessionRisk, user: UserRisk, pop: Population, policy: RiskPolicy
) -> tuple[Reason, ...]:
    reasons = list(_network(signals.network, session, user, pop, policy))
    reference = session.signals
    browser = _browser(reference.browser, signals.browser, policy)
    if browser is not None:
        reasons.append(browser)
    reasons.extend(_language(reference.language, signals.language, policy))
    reasons.extend(_platform(reference, signals, policy))
    reasons.extend(_device(reference.device_signal, signals.device_signal, policy))
    return tuple(reasons)


def _describe(b: Browser) -> str:
    version = f" {b.major}" if b.major is not None else ""
    return f"{b.family or 'unknown browser'}{version} on {b.os or 'unknown system'}"


def _browser(old: Browser, new: Browser, policy: RiskPolicy) -> Reason | None:
    if old == new or not (old.family or old.os):
        return None
    change = f"{_describe(old)} -> {_describe(new)}"
    if old.device != new.device:
        return Reason(Signal.BROWSER_DEVICE, policy.browser_device, change)
    if old.os != new.os:
        return Reason(Signal.BROWSER_OS, policy.browser_os, change)
    if old.family != new.family:
        return Reason(Signal.BROWSER_FAMILY, policy.browser_family, change)
    step = (new.major or 0) - (old.major or 0)
    os_step = (new.os_major or 0) - (old.os_major or 0)
    if step < 0 or os_step < 0:
        return Reason(Signal.BROWSER_DOWNGRADE, policy.browser_downgrade, change)
    if step > policy.browser_max_update:
        return Reason(Signal.BROWSER_JUMP, policy.browser_jump, change)
    return Reason(Signal.BROWSER_UPDATE, policy.browser_update, change)


def _language(old: str, new: str, policy: RiskPolicy) -> tuple[Reason, ...]:
    if old == new:
        return ()
    if not new:
        return (
            Reason(Signal.LANGUAGE_MISSING, policy.language_missing, f"no language (was {old})"),
        )
    if not old:
        return (Reason(Signal.LANGUAGE_ADDED, policy.language_added, f"language {new} appeared"),)
    change = f"{old} -> {new}"
    if old.partition("-")[0] == new.partition("-")[0]:
        return (Reason(Signal.LANGUAGE_REGION, policy.language_region, change),)
    return (Reason(Signal.LANGUAGE_CHANGED, policy.language_changed, change),)


def _platform(old: Signals, new: Signals, policy: RiskPolicy) -> tuple[Reason, ...]:
    reasons = []
    if new.platform_mismatch and not old.platform_mismatch:
        text = f"client hint {new.platform!r} contradicts the user agent"
        reasons.append(Reason(Signal.PLATFORM_MISMATCH, policy.platform_mismatch, text))
    if old.platform != new.platform:
        if not new.platform:
            signal, weight = Signal.PLATFORM_MISSING, policy.platform_missing
        elif not old.platform:
            signal, weight = Signal.PLATFORM_ADDED, policy.platform_added
        else:
            signal, weight = Signal.PLATFORM_CHANGED, policy.platform_changed
        text = f"platform hint {old.platform or 'none'} -> {new.platform or 'none'}"
        reasons.append(Reason(signal, weight, text))
    return tuple(reasons)


def _device(old: str, new: str, policy: RiskPolicy) -> tuple[Reason, ...]:
    if not old and not new:
        return ()
    if old == new:
        return (Reason(Signal.DEVICE_SAME, policy.device_same, "the session's device signal"),)
    if not new:
        return (Reason(Signal.DEVICE_MISSING, policy.device_missing, "no device signal"),)
    if not old:
        return (Reason(Signal.DEVICE_ADDED, policy.device_added, "device signal appeared"),)
    return (Reason(Signal.DEVICE_CHANGED, policy.device_changed, "another device signal"),)


# -- behaviour -------------------------------------------------------------------------------


def _rate(session: SessionRisk, t: float, policy: RiskPolicy) -> float:
    """The session's request count, decayed with ``rate_half_life``."""
    return session.rate * math.exp2(-max(t - session.last_t, 0.0) / policy.rate_half_life)


def _behaviour(
    obs: Observation, session: SessionRisk, score: float, policy: RiskPolicy
) -> tuple[Reason, ...]:
    reasons: list[Reason] = []
    net = obs.signals.network
    latest = session.networks[-1]
    elsewhere = (latest.network.country, latest.network.asn) != (net.country, net.asn)
    if elsewhere and obs.t - latest.last <= policy.concurrent_window:
        back = [
            s
            for s in session.networks[:-1]
            if (s.network.country, s.network.asn) == (net.country, net.asn)
            and obs.t - s.last <= policy.concurrent_window
        ]
        if back:  # here, then there, now here again: two holders of one token
            weight = max(score, latest.score) - score + policy.concurrent
            other = latest.network.asn or "another network"
            text = f"also used from {other} {obs.t - latest.last:.0f} s ago"
            reasons.append(Reason(Signal.CONCURRENT, weight, text))
    moved = latest.network.country != net.country and latest.network.country and net.country
    if (
        moved
        and not (latest.network.kind or net.kind)
        and obs.t - latest.last <= policy.travel_window
    ):
        text = f"{latest.network.country} -> {net.country} in {obs.t - latest.last:.0f} s"
        reasons.append(Reason(Signal.TRAVEL, policy.travel, text))
    per_minute = (_rate(session, obs.t, policy) + 1.0) * math.log(2) / policy.rate_half_life * 60
    if per_minute > policy.velocity_limit:
        text = f"about {per_minute:.0f} requests a minute"
        reasons.append(Reason(Signal.VELOCITY, policy.velocity, text))
    if obs.previous_secret:
        same = not elsewhere and obs.signals.browser == session.signals.browser
        if not same:  # a rotation race stays in one place; a stale copy comes from elsewhere
            text = "a rotated-out secret from another context"
            reasons.append(Reason(Signal.PREVIOUS_SECRET, policy.previous_secret, text))
    return tuple(reasons)


# -- learning --------------------------------------------------------------------------------


def _note_network(
    seen: tuple[SeenNetwork, ...], obs: Observation, score: float, policy: RiskPolicy
) -> tuple[tuple[SeenNetwork, ...], bool]:
    net = obs.signals.network
    for i, entry in enumerate(seen):
        if entry.network == net:
            # Order (latest last) is not part of the static verdict: only the set is.
            return (*seen[:i], *seen[i + 1 :], replace(entry, last=obs.t)), False
    kept = seen[-(policy.session_networks - 1) :] if policy.session_networks > 1 else ()
    return (*kept, SeenNetwork(net, obs.t, obs.t, score)), True


def _settle(old: Signals, new: Signals) -> Signals:
    """The session's reference signals after an allowed request: optional signals a request
    did not send keep their settled value."""
    return Signals(
        new.network,
        new.browser,
        new.language or old.language,
        new.platform or old.platform,
        new.device_signal or old.device_signal,
        new.platform_mismatch,
    )
