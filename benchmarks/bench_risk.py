"""Risk engine benchmark: what scoring adds to an in-process validate, in one run.

Run by hand (not in CI):

    .venv/bin/pip install -e '.[risk]'
    .venv/bin/python benchmarks/bench_risk.py [--rounds 11]

Each request is modelled as a validate without scoring plus the engine's own work, which is
what the manager's ``risk=`` wiring adds to it: enrich the captured context (cached),
score it (``assess``) and update the session's history (``learn``). Folding a new network into
the user's history (``remember``) goes with the session's throttled context write, not with
every request; its own row gives its cost.

Every row, the baseline too, captures a fresh context (the adapters already do that today).

* unchanged: the session's own context again;
* changed, address in a known /24: a new address in a block seen before (a phone's carrier);
* changed, new network: an address in a /24 the enricher has not seen (Comcast's, in
  database blocks of /11 to /15 that the enricher caches as ranges after their first
  lookup), the browser's user agent cached;
* changed, block never looked up: addresses scattered over the IPv4 space, so that most
  need a lookup in geoip2fast's tables;
* changed, nothing cached: a new address and a new user agent string.

Two rows run the real wiring instead: ``manager.validate(token, context=...)`` of a manager
built with ``risk=RiskAssessor()``, against the same manager without it (both capture the
context; the manager's clock moves 0.2 s per request, so the periodic write comes every 300
requests, as it would for a busy session): the session's own context again, and a new address
in the session's /24 (the same signals: a phone's or a dual-stack home's next address).

The addresses are made before the runs (the rows time the engine, not the making of test
data). Method as in bench_core.py: calibrated batches (~40 ms, GC off), interleaved rounds, medians
and min-max; the added cost is the median of the row minus the median of plain validate. The
CPU-time columns (``time.process_time``) are the same medians without the time spent waiting
for a core, for a shared machine. ``--calls N [--row NAME]`` times nothing: it builds the
same world and calls one row N times, for an instruction counter (``valgrind
--tool=callgrind``) whose difference between two values of N is repeatable where timings are
not.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import sys
import time
from collections.abc import Callable

from sessionward import MemoryStore, Policy, SessionManager
from sessionward.clock import SystemClock
from sessionward.core.context import RequestContext
from sessionward.core.events import EventBus
from sessionward.core.risk import (
    assess,
    begin,
    learn,
    novelty,
    remember,
)
from sessionward.core.risk_history import Population, PopulationCounter, UserRisk
from sessionward.core.risk_policy import RiskPolicy
from sessionward.manager.risk import RiskAssessor
from sessionward.risk import Enricher
from sessionward.testing import FakeClock

Bench = Callable[[], object]
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0.{}.0 Safari/537.36"
)
HINTS = {"sec-ch-ua-platform": '"Windows"', "sec-ch-ua-mobile": "?0"}
# Real access networks (A&A, BT, Sky, EE): addresses the enricher resolves.
BLOCKS = ("81.2", "86.128", "90.216", "2.31")
DAY = 86400.0


def calibrate(fn: Bench, target: float = 0.04) -> int:
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - start >= target / 4:
            return max(1, int(n * target / (time.perf_counter() - start)))
        n *= 2


def run(benches: dict[str, Bench], rounds: int) -> dict[str, list[tuple[float, float]]]:
    """Per benchmark and round: (wall µs, CPU µs) per call."""
    loops = {name: calibrate(fn) for name, fn in benches.items()}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in benches}
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in benches.items():
                n = loops[name]
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(n):
                    fn()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                results[name].append((wall / n * 1e6, cpu / n * 1e6))
    finally:
        gc.enable()
    return results


def _context(address: str, build: int = 0) -> RequestContext:
    # Fresh strings each time, as headers parsed from a request would be.
    return RequestContext(
        ip="".join(address),
        user_agent=CHROME.format(build),
        accept_language="en-GB,en;q=0.9",
        client_hints=dict(HINTS),
    )


def _addresses() -> itertools.cycle[str]:
    """Addresses in /24s the enricher has not seen (more than it caches): Comcast's 73.0.0.0/8."""
    return itertools.cycle([f"73.{i // 256 % 256}.{i % 256}.{1 + i % 250}" for i in range(60_000)])


def _scattered() -> itertools.cycle[str]:
    """Addresses all over the IPv4 space: most fall in a database block not looked up yet."""
    step = 2_654_435_761  # a large odd stride through 2**32
    numbers = ((16_777_216 + i * step) % 3_758_096_384 for i in range(60_000))
    return itertools.cycle(
        [f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{1 + n % 250}" for n in numbers]
    )


def _neighbours() -> itertools.cycle[str]:
    """New addresses in a few known /24s, as a phone's carrier hands them out."""
    made = [f"{BLOCKS[i % len(BLOCKS)]}.9.{i // 4 % 254 + 1}" for i in range(60_000)]
    return itertools.cycle(made)


def _world(policy: RiskPolicy, enricher: Enricher, now: float) -> tuple[UserRisk, Population]:
    """A user with a month of sessions, and a population of a few thousand logins."""
    user = UserRisk()
    counter = PopulationCounter()
    for i in range(3000):
        counter.add(("", "GB", ("British Telecommunications PLC", "Sky UK Limited")[i % 2]))
        counter.moved(4 if i % 5 else 3)
    for day in range(30):
        for address in ("81.2.69.160", f"2.31.{day}.7"):
            obs = enricher.observe(_context(address), now - day * DAY)
            user = remember(user, None, obs, policy)
    return user, counter.snapshot()


def _wired(risk: RiskAssessor | None) -> tuple[SessionManager, str, FakeClock]:
    """A manager as an application builds it (with ``risk`` or without), one session, and
    the manager's clock."""
    clock = FakeClock()
    policy = Policy(idle_timeout=3600, absolute_timeout=30 * DAY)
    manager = SessionManager(
        MemoryStore(), events=EventBus([]), clock=clock, policy=policy, risk=risk
    )
    token = manager.issue("alice", context=_context("81.2.69.160")).token
    assert token is not None
    return manager, token, clock


def benches() -> dict[str, Bench]:
    clock, policy, enricher = SystemClock(), RiskPolicy(), Enricher()
    manager = SessionManager(MemoryStore(), events=EventBus([]))
    token = manager.issue("alice").token
    assert token is not None
    start = clock.now()
    user, population = _world(policy, enricher, start)
    login = enricher.observe(_context("81.2.69.160"), start - 10)
    session = begin(login)
    first = enricher.observe(_context("81.2.69.160"), start - 5)
    session = learn(session, first, assess(first, session, user, population, policy), policy)
    state = {"session": session}
    users = {"alice": user}
    addresses, neighbours, scattered = _addresses(), _neighbours(), _scattered()
    builds = itertools.count(1)

    def plain() -> object:
        _context("81.2.69.160")  # the adapters capture the context today already
        return manager.validate(token)

    ticks = itertools.count()

    def scored(context: RequestContext, keep: bool) -> object:
        result = manager.validate(token)
        current = state["session"]
        # The engine's clock: a request every few seconds, as a busy user makes them (the
        # benchmark's own rate would trip the velocity signal on every call).
        obs = enricher.observe(context, start + 5.0 * next(ticks))
        verdict = assess(obs, current, users["alice"], population, policy)
        after = learn(current, obs, verdict, policy)
        if keep:  # the unchanged case carries its history on, as a session would
            state["session"] = after
        return result

    remembered = [enricher.observe(_context(next(addresses)), start) for _ in range(4096)]
    pending = itertools.cycle(remembered)

    def history() -> object:
        # A network the session had not used, folded into the user's history: done with the
        # session's throttled context write, not on every request.
        obs = next(pending)
        current = state["session"]
        if novelty(current, obs.signals.network):
            users["alice"] = remember(users["alice"], current, obs, policy)
        return obs

    wired_plain, plain_token, plain_clock = _wired(None)
    wired_risk, risk_token, risk_clock = _wired(RiskAssessor(enricher=enricher))
    same_24 = itertools.cycle([f"81.2.69.{1 + i % 250}" for i in range(1000)])

    def through(manager: SessionManager, token: str, clock: FakeClock, address: str) -> object:
        clock.advance(0.2)  # 300 requests a minute: below the velocity signal
        return manager.validate(token, context=_context(address))

    return {
        PLAIN: plain,
        WIRED_PLAIN: lambda: through(wired_plain, plain_token, plain_clock, "81.2.69.160"),
        "manager + RiskAssessor, context unchanged": lambda: through(
            wired_risk, risk_token, risk_clock, "81.2.69.160"
        ),
        "manager + RiskAssessor, new address in its /24": lambda: through(
            wired_risk, risk_token, risk_clock, next(same_24)
        ),
        "validate + risk, context unchanged": lambda: scored(_context("81.2.69.160"), True),
        "validate + risk, changed: address in a known /24": lambda: scored(
            _context(next(neighbours)), False
        ),
        "validate + risk, changed: new network": lambda: scored(_context(next(addresses)), False),
        "validate + risk, changed: block never looked up": lambda: scored(
            _context(next(scattered)), False
        ),
        "validate + risk, changed: nothing cached": lambda: scored(
            _context(next(addresses), next(builds)), False
        ),
        "user history update (throttled write)": history,
    }


def report(results: dict[str, list[tuple[float, float]]]) -> str:
    def median(name: str, column: int) -> float:
        return statistics.median(r[column] for r in results[name])

    lines = [
        f"{'operation':<44} {'median µs':>10} {'min-max µs':>17} {'added µs':>9}"
        f" {'CPU µs':>7} {'added':>6}",
        "-" * 98,
    ]
    for name, values in results.items():
        wall = [w for w, _ in values]
        med, cpu = median(name, 0), median(name, 1)
        own = not name.startswith(("validate", "manager"))  # alone: its whole time is added
        baseline = WIRED_PLAIN if name.startswith("manager") else PLAIN
        base, base_cpu = median(baseline, 0), median(baseline, 1)
        added, added_cpu = (med, cpu) if own else (med - base, cpu - base_cpu)
        lines.append(
            f"{name:<44} {med:>10.2f} {min(wall):>8.2f}-{max(wall):<8.2f} {added:>9.2f}"
            f" {cpu:>7.2f} {added_cpu:>6.2f}"
        )
    lines += ["", "targets (added to validate, medians of this run; wall clock, then CPU time):"]
    for name, baseline, bound in TARGETS:  # the history update is its own cost
        added = median(name, 0) - median(baseline, 0)
        added_cpu = median(name, 1) - median(baseline, 1)
        verdict = "OK" if added <= bound else "MISSED"
        lines.append(
            f"  {name}: +{added:.2f} µs, CPU +{added_cpu:.2f} µs (want <= {bound}) {verdict}"
        )
    return "\n".join(lines)


PLAIN = "validate, memory store"
WIRED_PLAIN = "manager, no risk, context captured"
TARGETS = [
    ("validate + risk, context unchanged", PLAIN, 10.0),
    ("validate + risk, changed: address in a known /24", PLAIN, 60.0),
    ("validate + risk, changed: new network", PLAIN, 60.0),
    ("validate + risk, changed: block never looked up", PLAIN, 60.0),
    ("validate + risk, changed: nothing cached", PLAIN, 60.0),
    ("manager + RiskAssessor, context unchanged", WIRED_PLAIN, 10.0),
    ("manager + RiskAssessor, new address in its /24", WIRED_PLAIN, 60.0),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument(
        "--calls",
        type=int,
        metavar="N",
        help="no timing: call the row named by --row N times (for an instruction counter)",
    )
    parser.add_argument("--row", default="validate + risk, changed: block never looked up")
    args = parser.parse_args()
    if args.calls is not None:
        row = benches()[args.row]
        gc.disable()  # as in the timed runs
        for _ in range(args.calls):
            row()
        return 0
    print(f"python {sys.version.split()[0]}, {args.rounds} interleaved rounds\n")
    print(report(run(benches(), args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
