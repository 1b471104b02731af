"""Replay traces through the risk engine and score its decisions.

Replay runs every event of every session in time order across the whole file, as a site
would see them: each session keeps its history, each user's history grows across sessions,
and the population counts every login. It plays what ``manager.risk.RiskAssessor`` does in
one process: the user's history is one, shared by all their sessions at once and kept after
they end (nothing in a trace calls ``revoke_user``, which would forget it). The first event
of a session is its login (allowed, and learned); a revoked session answers ``revoke`` to
everything after. The engine sees the request context and its time only: never ``actor`` or
``attack``.

A step-up asks the requester to sign in again. The owner can, and the context they confirmed
is then learned, as the manager does after a successful step-up; an attacker cannot. The
confirmation rotates the secret with no grace window, so a thief who had already used the
token holds a dead secret from then on: the manager refuses every later request of theirs,
and the replay writes ``revoke`` for them (the token is over for its holder; the owner's
session goes on). These are the only places the replay uses ``actor``: to play the world's
answer to a challenge and who holds which secret, never as an input to the engine.
``reauth=False`` turns both off (nothing challenged is ever learned).

Scoring: a session is attacked if any event is an attacker's. It is *detected* at the first
event from the attacker's first request on whose decision is ``step_up`` or ``revoke`` (a
challenge acts on the session, so it stops every holder of the token); the attacker requests
*served* are those allowed before that. A legitimate session is *challenged* if any of its
decisions is ``step_up`` or ``revoke``, *revoked* if any is ``revoke``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from sessionward.core.risk import (
    Decision,
    SessionRisk,
    assess,
    begin,
    confirm,
    learn,
    network_path,
    novelty,
    remember,
)
from sessionward.core.risk_history import PopulationCounter, UserRisk
from sessionward.core.risk_policy import RiskPolicy
from sessionward.risk.enrich import Enricher
from sessionward.risk.traces import Trace

__all__ = ["ClassResult", "Report", "replay", "score"]

_CHALLENGE = frozenset({Decision.STEP_UP, Decision.REVOKE})


def replay(
    traces: Sequence[Trace],
    *,
    enricher: Enricher | None = None,
    policy: RiskPolicy | None = None,
    population_refresh: int = 100,
    reauth: bool = True,
) -> list[list[Decision]]:
    """Every event's decision, per trace, in the traces' own order."""
    enricher = enricher or Enricher()
    policy = policy or RiskPolicy()
    order = sorted(
        ((event.t, n, i) for n, trace in enumerate(traces) for i, event in enumerate(trace.events))
    )
    decisions: list[list[Decision]] = [[Decision.ALLOW] * len(t.events) for t in traces]
    sessions: list[SessionRisk | None] = [None] * len(traces)
    revoked = [False] * len(traces)
    # The thief's first request: from then on they hold the secret current at that time.
    thief = [next((i for i, e in enumerate(t.events) if e.attacker), None) for t in traces]
    cut_off = [False] * len(traces)  # the owner's confirmation rotated the thief's secret out
    users: dict[str, UserRisk] = {}
    counter = PopulationCounter()
    population = counter.snapshot()
    logins = 0
    for _, n, i in order:
        trace = traces[n]
        event = trace.events[i]
        obs = enricher.observe(event.context, event.t, previous_secret=event.previous_secret)
        user = users.get(trace.user, UserRisk()) if trace.user else UserRisk()
        session = sessions[n]
        if i == 0 or session is None:
            sessions[n] = begin(obs)
            user = remember(user, None, obs, policy)
            counter.add(network_path(obs.signals.network))
            logins += 1
            if logins % population_refresh == 0 or logins == 1:  # as the manager's assessor
                population = counter.snapshot()
        elif revoked[n]:
            decisions[n][i] = Decision.REVOKE
            continue
        elif cut_off[n] and event.attacker:  # a secret rotated out with no grace window
            decisions[n][i] = Decision.REVOKE  # refused for good; the owner's session goes on
            continue
        else:
            verdict = assess(obs, session, user, population, policy)
            decisions[n][i] = verdict.decision
            confirmed = reauth and verdict.decision is Decision.STEP_UP and not event.attacker
            if verdict.decision is Decision.ALLOW or confirmed:
                user = remember(user, session, obs, policy)  # a logged request: the session only
                counter.moved(novelty(session, obs.signals.network))
            if confirmed:  # the owner signs in again: the context is theirs
                # The challenged request, then the sign-in that confirms it: two requests.
                sessions[n] = confirm(learn(session, obs, verdict, policy), obs, policy)
                first = thief[n]
                cut_off[n] = cut_off[n] or (first is not None and first < i)
            else:
                sessions[n] = learn(session, obs, verdict, policy)
            revoked[n] = verdict.decision is Decision.REVOKE
        if trace.user:
            users[trace.user] = user
    return decisions


@dataclass(frozen=True, slots=True)
class ClassResult:
    """One group of attacked sessions: how many, detected, detected by the attacker's third
    request, and the attacker requests served before detection (an undetected session counts
    all of its attacker's requests)."""

    name: str
    sessions: int
    detected: int
    by_third: int
    served_median: float
    served_p95: float

    def row(self) -> str:
        return (
            f"{self.name:48} {self.sessions:8d} {_pct(self.detected, self.sessions):>9}"
            f" {_pct(self.by_third, self.sessions):>7} {self.served_median:7g} {self.served_p95:5g}"
        )


@dataclass(frozen=True, slots=True)
class Report:
    """Per attack class, per origin of the attack, and for legitimate sessions."""

    classes: tuple[ClassResult, ...]
    origins: tuple[ClassResult, ...]
    legitimate: int
    challenged: int
    revoked: int
    events: int
    decisions: dict[str, int]

    def format(self) -> str:
        sessions = self.legitimate + sum(c.sessions for c in self.classes)
        header = f"{'':48} {'sessions':>8} {'detected':>9} {'by 3rd':>7} {'served':>7} {'p95':>5}"
        return "\n".join(
            [
                f"{self.events} events in {sessions} sessions",
                "",
                header.replace(" " * 12, "attack class", 1),
                *(c.row() for c in self.classes),
                "",
                "attacker's first request from",
                *(c.row() for c in self.origins),
                "",
                f"legitimate sessions {self.legitimate}: challenged"
                f" {_pct(self.challenged, self.legitimate, 2)} ({self.challenged}),"
                f" revoked {_pct(self.revoked, self.legitimate, 2)} ({self.revoked})",
                "decisions: " + ", ".join(f"{k} {v}" for k, v in self.decisions.items()),
            ]
        )


def _pct(part: int, whole: int, digits: int = 1) -> str:
    return f"{100 * part / whole:.{digits}f}%" if whole else "-"


def _p95(values: list[int]) -> float:
    ordered = sorted(values)
    return float(ordered[max(0, -(-95 * len(ordered) // 100) - 1)]) if ordered else 0.0


def _outcome(trace: Trace, decisions: Sequence[Decision]) -> tuple[bool, int]:
    """(detected, attacker requests served before detection)."""
    first = next(i for i, e in enumerate(trace.events) if e.attacker)
    served = 0
    for event, decision in zip(trace.events[first:], decisions[first:], strict=True):
        if decision in _CHALLENGE:
            return True, served
        served += event.attacker
    return False, served


ELSEWHERE = "another country, or a hosting/VPN/Tor network"
SAME_COUNTRY = "another network in the owner's country"
OWN_NETWORK = "the owner's own /24 or /48"
ORIGINS = (ELSEWHERE, SAME_COUNTRY, OWN_NETWORK)


def _origin(trace: Trace, enricher: Enricher) -> str:
    """Where the attacker's first request came from, compared with the owner's requests
    before it."""
    first = next(i for i, e in enumerate(trace.events) if e.attacker)
    owner = [enricher.signals(e.context).network for e in trace.events[:first] if not e.attacker]
    thief = enricher.signals(trace.events[first].context).network
    if thief.prefix in {n.prefix for n in owner}:
        return OWN_NETWORK
    if not thief.kind and thief.country in {n.country for n in owner}:
        return SAME_COUNTRY
    return ELSEWHERE


def score(
    traces: Sequence[Trace],
    decisions: Sequence[Sequence[Decision]],
    enricher: Enricher | None = None,
) -> Report:
    """The figures; ``enricher`` places each attacker's first request (see :func:`_origin`)."""
    enricher = enricher or Enricher()
    by_class: dict[str, list[tuple[bool, int]]] = {}
    by_origin: dict[str, list[tuple[bool, int]]] = {}
    legitimate = challenged = revoked = 0
    for trace, made in zip(traces, decisions, strict=True):
        if not trace.attacked:
            legitimate += 1
            challenged += any(d in _CHALLENGE for d in made)
            revoked += Decision.REVOKE in made
            continue
        outcome = _outcome(trace, made)
        by_class.setdefault(trace.attack or "unlabelled", []).append(outcome)
        by_origin.setdefault(_origin(trace, enricher), []).append(outcome)
    return Report(
        tuple(_summary(name, by_class[name]) for name in sorted(by_class)),
        tuple(_summary(name, by_origin[name]) for name in ORIGINS if name in by_origin),
        legitimate,
        challenged,
        revoked,
        sum(len(t.events) for t in traces),
        {d.value: sum(row.count(d) for row in decisions) for d in Decision},
    )


def _summary(name: str, outcomes: list[tuple[bool, int]]) -> ClassResult:
    served = [s for _, s in outcomes]
    return ClassResult(
        name,
        len(outcomes),
        sum(1 for d, _ in outcomes if d),
        sum(1 for d, s in outcomes if d and s <= 2),
        float(statistics.median(served)) if served else 0.0,
        _p95(served),
    )
