"""``sessionward risk eval`` against the product: ``replay`` decides every event of a trace
file as ``SessionManager(store, risk=RiskAssessor())`` does, where the two models agree.

The manager side is a real manager on a ``MemoryStore``, one process, its clock set to each
event's time, with lifetimes long enough that no session expires, no time-based rotation, and
the default ``touch_interval`` (so histories are written and read back as in production).
Events are played in replay's global order, ``(t, trace, event)``: the first event of a
session is ``issue``, every other one ``validate``; a ``RiskChallenge`` on the owner's request
is answered with ``confirm`` (replay's ``reauth``), and a session revoked by the engine must
reject every later request.

Traces with an event that presents a rotated-out secret (``"secret": "previous"``) are left
out of both replays: the manager only sees such a request after a rotation it made itself,
inside or after its grace window, which the trace does not say. They are at most a few
``after_logout`` sessions.

On the shop corpus (300 sessions, seed 5) and the check corpus (1000 sessions, seed 7) every
event is decided alike. Where the two models still differ (``_MANAGER_RULES``), scores and
histories move a little, no decision on these corpora.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from sessionward import MemoryStore, Policy, SessionManager
from sessionward.core.events import EventBus
from sessionward.core.risk import (
    Decision,
)
from sessionward.errors import InvalidToken, RiskChallenge, RiskRevoked
from sessionward.manager.risk import RiskAssessor
from sessionward.risk.evaluate import replay
from sessionward.risk.traces import Trace, read_traces
from sessionward.testing import FakeClock

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
YEAR = 365 * 86400.0
REFRESH = 100  # replay's default population_refresh

Decisions = list[list[Decision]]

_MANAGER_RULES = """
What the manager does that replay does not (src/sessionward/manager/risk.py):
a written history (periodic write, confirmation) is read back without its cached verdict,
which is then computed again against the user's and the population's newest history.
"""


def _corpus(script: str, sessions: int, seed: int) -> list[Trace]:
    made = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / script),
            "--sessions",
            str(sessions),
            "--seed",
            str(seed),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    traces = read_traces(made.stdout.splitlines())
    return [t for t in traces if not any(e.previous_secret for e in t.events)]


def _order(traces: Sequence[Trace]) -> list[tuple[float, int, int]]:
    return sorted((e.t, n, i) for n, trace in enumerate(traces) for i, e in enumerate(trace.events))


def _through_manager(traces: Sequence[Trace]) -> Decisions:
    """Every event's decision as the manager takes it."""
    clock = FakeClock(0.0)
    manager = SessionManager(
        MemoryStore(),
        policy=Policy(idle_timeout=YEAR, absolute_timeout=YEAR),
        clock=clock,
        events=EventBus([]),
        risk=RiskAssessor(population_refresh=REFRESH),
    )
    decisions = [[Decision.ALLOW] * len(t.events) for t in traces]
    tokens: list[str] = [""] * len(traces)  # the owner's
    stolen: list[str | None] = [None] * len(traces)  # the thief's, copied before their first use
    revoked = [False] * len(traces)
    for t, n, i in _order(traces):
        trace, event = traces[n], traces[n].events[i]
        clock.set(t)
        if i == 0:
            issued = manager.issue(trace.user, context=event.context)
            assert issued.token is not None
            tokens[n] = issued.token
            continue
        if event.attacker and stolen[n] is None:
            stolen[n] = tokens[n]
        token = stolen[n] if event.attacker else tokens[n]
        assert token is not None
        try:
            served = manager.validate(token, context=event.context)
        except RiskChallenge:
            decisions[n][i] = Decision.STEP_UP
            if not event.attacker:  # the owner signs in again
                confirmed = manager.confirm(tokens[n], context=event.context)
                assert confirmed.token is not None
                tokens[n] = confirmed.token
            continue
        except RiskRevoked:
            decisions[n][i], revoked[n] = Decision.REVOKE, True
            continue
        except InvalidToken:
            # Revoked, or a thief whose secret the owner's confirmation rotated out.
            assert revoked[n] or token != tokens[n], f"{trace.session} event {i}: rejected"
            decisions[n][i] = Decision.REVOKE
            continue
        assert not revoked[n], f"{trace.session} event {i}: served after a revoke"
        assert served.risk is not None, f"{trace.session} event {i}: not scored"
        decisions[n][i] = served.risk.decision
        if served.token is not None and token == tokens[n]:
            tokens[n] = served.token
    return decisions


def _differing(
    traces: Sequence[Trace], a: Decisions, b: Decisions
) -> list[tuple[str | int, int, str, str]]:
    return [
        (trace.session, i, x.value, y.value)
        for trace, xs, ys in zip(traces, a, b, strict=True)
        for i, (x, y) in enumerate(zip(xs, ys, strict=True))
        if x is not y
    ]


def _thieves_cut_off(traces: Sequence[Trace], decisions: Decisions) -> int:
    """Sessions whose thief was refused while the owner was served after: the owner's
    confirmation rotated the thief's secret out."""
    return sum(
        any(
            e.attacker
            and d is Decision.REVOKE
            and any(
                not later.attacker and dl is not Decision.REVOKE
                for later, dl in zip(trace.events[i:], row[i:], strict=True)
            )
            for i, (e, d) in enumerate(zip(trace.events, row, strict=True))
        )
        for trace, row in zip(traces, decisions, strict=True)
    )


def _concurrent_users(traces: Sequence[Trace]) -> int:
    """Users with two sessions alive at once: where sharing the user's history matters."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for trace in traces:
        if trace.user:
            spans.setdefault(trace.user, []).append((trace.events[0].t, trace.events[-1].t))
    overlapping = 0
    for user_spans in spans.values():
        ends = [end for _, end in sorted(user_spans)]
        starts = [start for start, _ in sorted(user_spans)]
        overlapping += any(start < max(ends[:k]) for k, start in enumerate(starts) if k)
    return overlapping


def test_replay_decides_every_event_as_the_manager_on_the_shop_corpus() -> None:
    traces = _corpus("risk_traces.py", 300, 5)
    assert (len(traces), sum(len(t.events) for t in traces)) == (310, 16053)
    assert _concurrent_users(traces) >= 10

    evaluated, managed = replay(traces), _through_manager(traces)

    assert _differing(traces, evaluated, managed) == []
    counts = Counter(d for row in managed for d in row)
    confirmed = sum(
        d is Decision.STEP_UP and not e.attacker
        for trace, row in zip(traces, managed, strict=True)
        for e, d in zip(trace.events, row, strict=True)
    )
    # The corpus reaches every branch: logged, challenged and confirmed, revoked.
    assert counts[Decision.LOG] > 0
    assert counts[Decision.REVOKE] > 0
    assert confirmed > 0


def test_replay_decides_every_event_as_the_manager_on_the_check_corpus() -> None:
    traces = _corpus("risk_traces_check.py", 1000, 7)
    assert (len(traces), sum(len(t.events) for t in traces)) == (1006, 74799)

    evaluated, managed = replay(traces), _through_manager(traces)

    assert _differing(traces, evaluated, managed) == [], _MANAGER_RULES
    assert _thieves_cut_off(traces, managed) > 0
