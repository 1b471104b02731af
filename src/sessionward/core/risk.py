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
from operator import attrgetter

from sessionward.core.risk_history import Path, Population, UserRisk
from sessionward.core.risk_network import DEPTHS, NetworkIndex, network_path, owner
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
    GROUPS,
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


_NO_INDEX = NetworkIndex({}, (), frozenset(), frozenset())


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
    #: Derived from ``networks`` (built when not given): see :class:`NetworkIndex`.
    index: NetworkIndex = field(default=_NO_INDEX, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.index is _NO_INDEX:
            object.__setattr__(self, "index", NetworkIndex.of(s.network for s in self.networks))

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
        _behaviour(obs, session, reasons, None, policy)
        return _decide(reasons, policy)
    extra: list[Reason] = []
    _behaviour(obs, session, extra, static.score, policy)
    return _decide([*static.reasons, *extra], policy) if extra else static


def decide(reasons: tuple[Reason, ...], policy: RiskPolicy) -> Verdict:
    """Thresholds, and for a revoke two groups of evidence that each pass ``corroboration``."""
    return _decide(list(reasons), policy)


_WEIGHT = attrgetter("weight")


def _decide(reasons: list[Reason], policy: RiskPolicy) -> Verdict:
    """:func:`decide` on a list it may reorder."""
    if len(reasons) > 1:
        # Heaviest first; the sort is stable, so equal weights keep their order.
        reasons.sort(key=_WEIGHT, reverse=True)
        score = sum([r.weight for r in reasons])
    else:
        score = reasons[0].weight if reasons else 0.0
    ordered = tuple(reasons)
    if score >= policy.step_up_at:
        groups: dict[str, float] = {}
        for reason in ordered:
            group = GROUPS[reason.signal]
            groups[group] = groups.get(group, 0.0) + reason.weight
        severe = score >= policy.revoke_at and (
            sum(1 for w in groups.values() if w >= policy.corroboration) >= 2
        )
        decision = Decision.REVOKE if severe else challenge(groups, score, policy)
    else:
        decision = Decision.LOG if score >= policy.log_at else Decision.ALLOW
    return Verdict(decision, score, ordered)


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
        index = (
            NetworkIndex.of(s.network for s in networks)
            if evicted
            else index.grown(obs.signals.network)
        )
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
        for depth in DEPTHS
    }
    new = [path[:depth] for depth in DEPTHS if path[:depth] not in seen]
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


# -- the network: Freeman's hierarchy with a session level in front (risk_network.py) ---------


def novelty(session: SessionRisk, net: Network) -> int:
    """The first depth of ``net``'s path (1: kind ... 4: prefix) the session has not used,
    or 0 when it has used the whole path (feeds ``PopulationCounter.moved``)."""
    if net == session.networks[-1].network:
        return 0
    path, tree = network_path(net), session.tree
    return next((d for d in DEPTHS if path[:d] not in tree.get(path[: d - 1], ())), 0)


# -- browser, language, client hint, device signal: compared with the session's own ----------


def _static(
    signals: Signals, session: SessionRisk, user: UserRisk, pop: Population, policy: RiskPolicy
) -> list[Reason]:
    reasons = [*session.index.reasons(signals.network, user, pop, policy)]
    reference = session.signals
    if reference.browser is not signals.browser:
        browser = browser_change(reference.browser, signals.browser, policy)
        if browser is not None:
            reasons.append(browser)
    if reference.language != signals.language:
        reasons.extend(language_change(reference.language, signals.language, policy))
    reasons.extend(platform_change(reference, signals, policy))
    if reference.device_signal or signals.device_signal:
        reasons.extend(device_change(reference.device_signal, signals.device_signal, policy))
    if policy.browser_same:
        reasons.extend(same_browser(reference, signals, policy))
    return reasons


# -- behaviour -------------------------------------------------------------------------------


def _rate(session: SessionRisk, t: float, policy: RiskPolicy) -> float:
    """The session's request count, decayed with ``rate_half_life``."""
    return session.rate * math.exp2(-max(t - session.last_t, 0.0) / policy.rate_half_life)


_LN2 = math.log(2)


def _behaviour(
    obs: Observation,
    session: SessionRisk,
    reasons: list[Reason],
    score: float | None,
    policy: RiskPolicy,
) -> None:
    """Appends the behaviour reasons to ``reasons``: the request's context reasons, whose sum
    is ``score`` (``None``: summed when needed), or none of them."""
    net, latest = obs.signals.network, session.networks[-1]
    if net is not latest.network and net != latest.network:
        _elsewhere(obs, session, reasons, score, policy)
    count = _rate(session, obs.t, policy) + 1.0
    per_minute = count * _LN2 / policy.rate_half_life * 60
    if per_minute > policy.velocity_limit:
        text = f"about {per_minute:.0f} requests a minute"
        reasons.append(Reason(Signal.VELOCITY, policy.velocity, text))
    if obs.previous_secret:
        same = (net.country, owner(net)) == (latest.network.country, owner(latest.network))
        if not (same and obs.signals.browser == session.signals.browser):
            # A rotation race stays in one place; a stale copy comes from elsewhere.
            text = "a rotated-out secret from another context"
            reasons.append(Reason(Signal.PREVIOUS_SECRET, policy.previous_secret, text))


def _elsewhere(
    obs: Observation,
    session: SessionRisk,
    reasons: list[Reason],
    score: float | None,
    policy: RiskPolicy,
) -> None:
    """Concurrent use and impossible travel: this request against the session's latest."""
    net, latest = obs.signals.network, session.networks[-1]
    last = latest.network
    gap = obs.t - latest.last
    country, name = net.country, owner(net)
    other_owner = last.country != country or owner(last) != name
    # Concurrent use needs one of the session's other networks with this country and owner
    # (the index knows whether the session has any) used within the window.
    if (
        other_owner
        and gap <= policy.concurrent_window
        and (country, name) in session.index.owners
        and any(
            s.network.country == country
            and owner(s.network) == name
            and obs.t - s.last <= policy.concurrent_window
            for s in session.networks[:-1]
        )
    ):  # here, there, here again: two holders
        if score is None:
            score = sum([r.weight for r in reasons])
        weight = max(score, latest.score) - score + policy.concurrent
        other = last.asn or "another network"
        text = f"also used from {other} {gap:.0f} s ago"
        reasons.append(Reason(Signal.CONCURRENT, weight, text))
    # Travel: a country new to the session on another network soon after the last request;
    # a phone going back and forth between a roaming carrier and a hotel's Wi-Fi is not.
    if (
        last.country != country
        and last.country
        and country
        and not (last.kind or net.kind)
        and gap <= policy.travel_window
        and owner(last) != name
        and country not in session.index.countries
    ):
        text = f"{last.country} -> {country} in {gap:.0f} s"
        reasons.append(Reason(Signal.TRAVEL, policy.travel, text))


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
