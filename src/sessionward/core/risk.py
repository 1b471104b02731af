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

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from sessionward.core.risk_history import Path, Population, UserRisk, smoothed
from sessionward.core.risk_policy import RiskPolicy
from sessionward.core.risk_signals import (
    browser_change,
    challenge,
    device_change,
    language_change,
    platform_change,
    same_browser,
)
from sessionward.core.risk_types import (
    Browser,
    Decision,
    Network,
    Observation,
    Reason,
    Signal,
    Signals,
    Verdict,
)

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
    "confirm",
    "decide",
    "learn",
    "network_path",
    "novelty",
    "owner",
    "remember",
]


@dataclass(frozen=True, slots=True)
class SeenNetwork:
    """A network the session used: first and last use, and the score it arrived with."""

    network: Network
    first: float
    last: float
    score: float


class _Index(NamedTuple):
    """What the network model asks of a session's networks, computed once per change."""

    tree: Mapping[Path, tuple[Path, ...]]
    countries: tuple[str, ...]  # one per network remembered: repeats count
    owners: frozenset[tuple[str, str]]  # (country, AS name)
    prefixes: frozenset[tuple[str, str]]  # (AS name, prefix)
    #: The network reasons computed against exactly these networks, per network, with the
    #: user history, population and policy they were computed with (a phone going back and
    #: forth between Wi-Fi and its carrier asks the same question again). Bounded.
    memo: dict[Network, tuple[int, int, RiskPolicy, tuple[Reason, ...]]]
    #: The kind, country and network part of those reasons, per path to the network and AS
    #: name, kept the same way: a new /24 of a known network computes only its prefix part.
    upper: dict[tuple[Path, str], tuple[int, int, RiskPolicy, _Upper]]

    @classmethod
    def of(cls, networks: tuple[SeenNetwork, ...]) -> _Index:
        nets = [s.network for s in networks]
        return cls(
            _tree(networks),
            tuple(n.country for n in nets),
            frozenset((n.country, owner(n)) for n in nets),
            frozenset((owner(n), n.prefix) for n in nets),
            {},
            {},
        )

    def grown(self, net: Network) -> _Index:
        """The index with one more network."""
        return _Index(
            _grown(self.tree, network_path(net)),
            (*self.countries, net.country),
            self.owners | {(net.country, owner(net))},
            self.prefixes | {(owner(net), net.prefix)},
            {},
            {},
        )


_NO_INDEX = _Index({}, (), frozenset(), frozenset(), {}, {})
_MEMO_SIZE = 16


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
    #: Derived from ``networks`` (built when not given): see :class:`_Index`.
    index: _Index = field(default=_NO_INDEX, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.index is _NO_INDEX:
            object.__setattr__(self, "index", _Index.of(self.networks))

    @property
    def tree(self) -> Mapping[Path, tuple[Path, ...]]:
        """The networks as a tree: parent path -> child paths."""
        return self.index.tree


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
    if static is None or (obs.signals is not session.signals and obs.signals != session.signals):
        # A changed context: one decision over the context's and the behaviour's reasons.
        reasons = _static(obs.signals, session, user, population, policy)
        score = sum(r.weight for r in reasons)
        return decide(reasons + _behaviour(obs, session, score, policy), policy)
    extra = _behaviour(obs, session, static.score, policy)
    return decide(static.reasons + extra, policy) if extra else static


def decide(reasons: tuple[Reason, ...], policy: RiskPolicy) -> Verdict:
    """Thresholds, and for a revoke two groups of evidence that each pass ``corroboration``."""
    ordered = reasons if len(reasons) < 2 else tuple(sorted(reasons, key=_heaviest))
    score = sum(r.weight for r in ordered) if len(ordered) > 1 else _first(ordered)
    if score >= policy.step_up_at:
        groups: dict[str, float] = {}
        for reason in ordered:
            groups[reason.group] = groups.get(reason.group, 0.0) + reason.weight
        strong = sum(1 for w in groups.values() if w >= policy.corroboration)
        severe = score >= policy.revoke_at and strong >= 2
        decision = Decision.REVOKE if severe else challenge(groups, score, policy)
    else:
        decision = Decision.LOG if score >= policy.log_at else Decision.ALLOW
    return Verdict(decision, score, ordered)


def _heaviest(reason: Reason) -> float:
    return -reason.weight


def _first(reasons: tuple[Reason, ...]) -> float:
    return reasons[0].weight if reasons else 0.0


def learn(
    session: SessionRisk, obs: Observation, verdict: Verdict, policy: RiskPolicy
) -> SessionRisk:
    """The session's history after ``verdict`` on ``obs``. An allowed (or logged) request
    teaches its context; a challenged one does not until the user confirms it (see
    :func:`confirm`)."""
    rate = _rate(session, obs.t, policy) + 1.0
    if verdict.decision not in _BENIGN:
        return SessionRisk(
            session.networks, session.signals, obs.t, rate, session.cached, session.index
        )
    latest = session.networks[-1]
    if obs.signals is session.signals or obs.signals == session.signals:
        # The common case, kept cheap: the same context again.
        moved = SeenNetwork(latest.network, latest.first, obs.t, latest.score)
        again = session.cached or _static_part(verdict, policy)
        networks = (*session.networks[:-1], moved)
        return SessionRisk(networks, session.signals, obs.t, rate, again, session.index)
    networks, changed = _note_network(session.networks, obs, verdict.score, policy)
    signals = _settle(session.signals, obs.signals)
    index = session.index
    if changed:  # grow the index rather than rebuild it, unless a network was forgotten
        evicted = len(networks) <= len(session.networks)
        index = _Index.of(networks) if evicted else index.grown(obs.signals.network)
    changed = changed or signals != session.signals
    cached = None if changed or obs.signals != signals else _static_part(verdict, policy)
    return SessionRisk(networks, signals, obs.t, rate, cached, index)


def _static_part(verdict: Verdict, policy: RiskPolicy) -> Verdict:
    """The verdict without its behaviour reasons: what the same context will score again."""
    if not any(r.group == "behaviour" for r in verdict.reasons):
        return verdict
    return decide(tuple(r for r in verdict.reasons if r.group != "behaviour"), policy)


def confirm(session: SessionRisk, obs: Observation, policy: RiskPolicy) -> SessionRisk:
    """The session's history after the owner confirmed ``obs`` (signed in again after a
    step-up, or answered "this was me"): the context is learned as the owner's own."""
    return learn(session, obs, _CONFIRMED, policy)


_CONFIRMED = Verdict(Decision.ALLOW, 0.0, ())


def remember(
    user: UserRisk, session: SessionRisk | None, obs: Observation, policy: RiskPolicy
) -> UserRisk:
    """The user's history after an allowed ``obs`` in ``session`` (``None`` for the login):
    each level of the network this session has not used before counts one more session. Call
    it for logins, allowed requests and confirmed step-ups, not for logged ones: a suspicious
    context may serve its session but should not become the user's habit."""
    path = network_path(obs.signals.network)
    seen = {
        network_path(s.network)[:depth]
        for s in (session.networks if session else ())
        for depth in _DEPTHS
    }
    new = [path[:depth] for depth in _DEPTHS if path[:depth] not in seen]
    if not new:
        return user
    return user.add(
        new,
        now=obs.t,
        half_life=policy.history_half_life,
        retention=policy.history_retention,
        limits=(4, policy.user_countries, policy.user_networks, policy.user_prefixes),
        moved=len(new[0]) if session else 0,
    )


# -- the network: Freeman's hierarchy with a session level in front ---------------------------

_DEPTHS = (1, 2, 3, 4)
_SPREAD_DEPTH = 2  # kind and country: see _network


def novelty(session: SessionRisk, net: Network) -> int:
    """The first depth of ``net``'s path (1: kind ... 4: prefix) the session has not used,
    or 0 when it has used the whole path (feeds ``PopulationCounter.moved``)."""
    if net == session.networks[-1].network:
        return 0
    path, tree = network_path(net), session.tree
    return next((d for d in _DEPTHS if path[:d] not in tree.get(path[: d - 1], ())), 0)


def _grown(tree: Mapping[Path, tuple[Path, ...]], path: Path) -> dict[Path, tuple[Path, ...]]:
    out = dict(tree)
    for depth in _DEPTHS:
        kids = out.get(path[: depth - 1], ())
        if path[:depth] not in kids:
            out[path[: depth - 1]] = (*kids, path[:depth])
    return out


def _tree(networks: tuple[SeenNetwork, ...]) -> dict[Path, tuple[Path, ...]]:
    children: dict[Path, dict[Path, None]] = {}
    for seen in networks:
        path = network_path(seen.network)
        for depth in _DEPTHS:
            children.setdefault(path[: depth - 1], {})[path[:depth]] = None
    return {parent: tuple(kids) for parent, kids in children.items()}


def owner(net: Network) -> str:
    """Who runs the network: its AS name, or for an address no database lists, its /16
    (IPv4) or /32 (IPv6) as the best stand-in (``"198.51/16"``), so that two unlisted
    networks are not taken for one."""
    if net.asn or not net.prefix:
        return net.asn
    address = net.prefix.partition("/")[0]
    if ":" in address:
        return ":".join(address.split(":")[:2]) + "/32"
    return ".".join(address.split(".")[:2]) + "/16"


def network_path(net: Network) -> Path:
    """The network's place in the hierarchy: kind, country, network (AS), prefix. For VPN,
    hosting and Tor networks the provider comes before the country: a VPN user's habit is the
    provider, and its exits hop between countries."""
    if net.kind:
        return (net.kind, owner(net), net.country, net.prefix)
    return (net.kind, net.country, owner(net), net.prefix)


def _network(
    net: Network, session: SessionRisk, user: UserRisk, pop: Population, policy: RiskPolicy
) -> tuple[Reason, ...]:
    memo = session.index.memo
    known = memo.get(net)
    if (
        known is not None
        and known[0] == user.serial
        and known[1] == pop.serial
        and known[2] is policy
    ):
        return known[3]
    reasons = _network_reasons(net, session, user, pop, policy)
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[net] = (user.serial, pop.serial, policy, reasons)
    return reasons


class _Upper(NamedTuple):
    """The network reasons' depths 1 to 3 (kind, country, network), shared by every prefix of
    one network: the running products, the first new depth (0: none), the kind's own odds
    and what the reason's text needs."""

    legit: float
    attacker: float
    local: float
    first_new: int
    kind_legit: float
    kind_attacker: float
    where: str
    owned: bool  # the session used this network (same country and owner) before
    level: tuple[Signal, str]  # the reason code and text when it did not
    kind_known: bool  # no network kind, or one the session used before


def _network_reasons(
    net: Network, session: SessionRisk, user: UserRisk, pop: Population, policy: RiskPolicy
) -> tuple[Reason, ...]:
    path, tree = network_path(net), session.tree
    memo, name = session.index.upper, (path[:3], net.asn)
    kept = memo.get(name)
    if kept and kept[0] == user.serial and kept[1] == pop.serial and kept[2] is policy:
        up = kept[3]
    else:
        up = _upper(net, session, user, pop, policy)
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[name] = (user.serial, pop.serial, policy, up)
    # The prefix: the session's own prefixes of this network in front, else the user's.
    key, parent, prior = path, path[:3], 1.0 / policy.prefixes_vocabulary
    here = tree.get(parent, ())
    share = 1.0 / len(here) if key in here else 0.0
    first_new = up.first_new or (0 if share else 4)
    if first_new:
        total, distinct = user.total(parent)
        floor = math.exp(-policy.novelty_cap)
        likely = max(smoothed(user.weight(key), total, distinct, prior), prior * floor)
        if first_new == 4:
            usual = pop.move(4, policy.move_prefix, policy.move_weight)
            likely *= user.move(4, usual, policy.user_move_weight)
    else:
        likely = share
    legit, attacker, local = up.legit * likely, up.attacker * prior, up.local * share
    # Now and then the attacker works from the victim's own network (malware relaying).
    total_weight = math.log(
        (policy.attacker_local * local + (1 - policy.attacker_local) * attacker) / legit
    )
    # The reason code: the finest level (prefix, network, country) shared with the session.
    if (owner(net), net.prefix) in session.index.prefixes:
        level, detail = Signal.NETWORK_SAME, f"the session's network {up.where}"
    elif up.owned:
        used = ", used before" if user.weight(path) else ""
        level, detail = Signal.NETWORK_PREFIX, f"new prefix of {up.where}{used}"
    else:
        level, detail = up.level
    if up.kind_known:
        return (Reason(level, total_weight, detail),)
    kind_weight = math.log(up.kind_attacker / up.kind_legit)
    return (
        Reason(level, total_weight - kind_weight, detail),
        Reason(Signal.NETWORK_KIND, kind_weight, _KIND_TEXT.get(net.kind, net.kind)),
    )


def _upper(
    net: Network, session: SessionRisk, user: UserRisk, pop: Population, policy: RiskPolicy
) -> _Upper:
    path, tree = network_path(net), session.tree
    first_new = 0  # the first depth the session has not used, found on the way down
    country_depth = 3 if net.kind else 2
    floor = math.exp(-policy.novelty_cap)
    moves = (policy.move_kind, policy.move_country, policy.move_network)
    # The population, per depth: the attacker's distribution and the prior the user's
    # estimate is smoothed toward.
    priors = (
        pop.kind(net.kind, policy.population_kind(net.kind), policy.population_weight),
        pop.share(path[:2], _vocabulary(policy, country_depth == 2)),
        pop.share(path[:3], _vocabulary(policy, country_depth == 3)),
    )
    legit = attacker = local = 1.0
    kind_legit = kind_attacker = 1.0
    for depth in _UPPER_DEPTHS:
        key, parent, prior = path[:depth], path[: depth - 1], priors[depth - 1]
        here = tree.get(parent, ())
        share = 1.0 / len(here) if key in here else 0.0
        if not share and not first_new:
            first_new = depth
        # The session's own values in front: a legitimate request mostly stays put. One that
        # moves is weighed against where legitimate requests move to, learned from the
        # population (the odds that matter are those of a move being an attack), and against
        # the user's own habits: Witten-Bell over past sessions, smoothed toward the population.
        if first_new and depth >= first_new:
            total, distinct = user.total(parent)
            likely = max(smoothed(user.weight(key), total, distinct, prior), prior * floor)
            if depth == first_new:  # this user's habit, smoothed toward the population's
                # (a user whose sessions are spread over kinds of network, or over
                # countries, switches there: VPN on and off, a commute across a border)
                usual = pop.move(depth, moves[depth - 1], policy.move_weight)
                if depth <= _SPREAD_DEPTH:
                    usual = max(usual, user.spread(parent))
                likely *= user.move(depth, usual, policy.user_move_weight)
        else:
            likely = share
        # The attacker: mostly anyone, often in the victim's country (residential proxies),
        # with a taste for hosting, VPN and Tor networks.
        if depth == 1:
            chance = policy.attacker_kind(net.kind)
            kind_legit, kind_attacker = likely, chance
        elif depth == country_depth:
            countries = session.index.countries
            same = countries.count(net.country) / len(countries)
            # Elsewhere, the population's countries, or any country at all: a country the
            # site never sees is no less likely for a thief, and far less for the owner.
            anywhere = policy.attacker_anywhere / policy.countries_vocabulary
            elsewhere = (1 - policy.attacker_anywhere) * prior + anywhere
            chance = (
                policy.attacker_same_country * same + (1 - policy.attacker_same_country) * elsewhere
            )
        else:
            chance = prior
        legit, attacker, local = legit * likely, attacker * chance, local * share
    where = f"{net.asn or 'unlisted network ' + owner(net)} ({net.country or '??'})"
    index = session.index
    owned = (net.country, owner(net)) in index.owners
    known = ", used before" if user.weight(path[:3]) else ""
    if net.country in index.countries:
        level = Signal.NETWORK_ASN, f"new network {where}{known}"
    else:
        level = Signal.NETWORK_COUNTRY, f"new country: {where}{known}"
    kinds = not net.kind or (net.kind,) in tree.get((), ())
    return _Upper(
        legit, attacker, local, first_new, kind_legit, kind_attacker, where, owned, level, kinds
    )


_UPPER_DEPTHS = (1, 2, 3)


def _vocabulary(policy: RiskPolicy, countries: bool) -> int:
    return policy.countries_vocabulary if countries else policy.networks_vocabulary


_KIND_TEXT = {"hosting": "a hosting provider", "vpn": "a VPN provider", "tor": "a Tor exit"}


# -- browser, language, client hint, device signal: compared with the session's own ----------


def _static(
    signals: Signals, session: SessionRisk, user: UserRisk, pop: Population, policy: RiskPolicy
) -> tuple[Reason, ...]:
    reasons = list(_network(signals.network, session, user, pop, policy))
    reference = session.signals
    browser = browser_change(reference.browser, signals.browser, policy)
    if browser is not None:
        reasons.append(browser)
    reasons.extend(language_change(reference.language, signals.language, policy))
    reasons.extend(platform_change(reference, signals, policy))
    reasons.extend(device_change(reference.device_signal, signals.device_signal, policy))
    reasons.extend(same_browser(reference, signals, policy))
    return tuple(reasons)


# -- behaviour -------------------------------------------------------------------------------


def _rate(session: SessionRisk, t: float, policy: RiskPolicy) -> float:
    """The session's request count, decayed with ``rate_half_life``."""
    return session.rate * math.exp2(-max(t - session.last_t, 0.0) / policy.rate_half_life)


def _behaviour(
    obs: Observation, session: SessionRisk, score: float, policy: RiskPolicy
) -> tuple[Reason, ...]:
    net, latest = obs.signals.network, session.networks[-1]
    here = net is latest.network or net == latest.network
    reasons = [] if here else _elsewhere(obs, session, score, policy)
    count = _rate(session, obs.t, policy) + 1.0
    per_minute = count * math.log(2) / policy.rate_half_life * 60
    if per_minute > policy.velocity_limit:
        text = f"about {per_minute:.0f} requests a minute"
        reasons.append(Reason(Signal.VELOCITY, policy.velocity, text))
    if obs.previous_secret:
        same = (net.country, owner(net)) == (latest.network.country, owner(latest.network))
        if not (same and obs.signals.browser == session.signals.browser):
            # A rotation race stays in one place; a stale copy comes from elsewhere.
            text = "a rotated-out secret from another context"
            reasons.append(Reason(Signal.PREVIOUS_SECRET, policy.previous_secret, text))
    return tuple(reasons)


def _elsewhere(
    obs: Observation, session: SessionRisk, score: float, policy: RiskPolicy
) -> list[Reason]:
    """Concurrent use and impossible travel: this request against the session's latest."""
    reasons: list[Reason] = []
    net, latest = obs.signals.network, session.networks[-1]
    gap = obs.t - latest.last
    if (latest.network.country, owner(latest.network)) != (net.country, owner(net)):
        back = any(
            (s.network.country, owner(s.network)) == (net.country, owner(net))
            and obs.t - s.last <= policy.concurrent_window
            for s in session.networks[:-1]
        )
        if back and gap <= policy.concurrent_window:  # here, there, here again: two holders
            weight = max(score, latest.score) - score + policy.concurrent
            other = latest.network.asn or "another network"
            text = f"also used from {other} {gap:.0f} s ago"
            reasons.append(Reason(Signal.CONCURRENT, weight, text))
    # Travel: a country new to the session on another network soon after the last request;
    # a phone going back and forth between a roaming carrier and a hotel's Wi-Fi is not.
    moved = (
        latest.network.country != net.country
        and owner(latest.network) != owner(net)
        and latest.network.country
        and net.country
        and net.country not in session.index.countries
    )
    if moved and not (latest.network.kind or net.kind) and gap <= policy.travel_window:
        text = f"{latest.network.country} -> {net.country} in {gap:.0f} s"
        reasons.append(Reason(Signal.TRAVEL, policy.travel, text))
    return reasons


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
    if (new.language and new.platform and new.device_signal) or old == new:
        return new
    return Signals(
        new.network,
        new.browser,
        new.language or old.language,
        new.platform or old.platform,
        new.device_signal or old.device_signal,
        new.platform_mismatch,
    )
