"""Audit-log benchmark: what the recorder adds to ``issue``, ``revoke`` and ``validate`` on
SQLite, in one run.

Run by hand (not in CI):

    .venv/bin/python benchmarks/bench_events.py [--ops 400] [--rounds 7]

Two managers on two SQLite files (WAL, the defaults): one whose event bus has no subscriber,
one whose bus has the :class:`~sessionward.signals.recorder.Recorder` appending to the event
log in the same file (the service's set-up). Each round times ``--ops`` calls of each
operation on both, interleaved; medians of the rounds, and their ratio, in three columns:

* caller CPU: the calling thread's CPU time in the loop (``time.thread_time``): what the
  request itself pays (queueing the event);
* process CPU: the whole process's CPU time until the recorder has written every entry of
  the batch (``flush()``): what the machine pays, the log's writes included;
* wall clock of the loop: what a caller waits for, on a busy machine mostly its queue for a
  core.

``validate`` of a live session that needs no write (no renewal, no rotation) emits no event;
the run checks that the recorder wrote nothing for it.

Then the writer thread's work per event, measured alone on a fresh file (``--entries`` events
with random session ids, appended in batches of 200, after as many already written): making the
entry's dict, its columns (the fields' JSON), and the append (columns, inserts, commit), once
for ``SessionCreated`` events of new sessions (what ``issue`` writes) and once for
``SessionRevoked`` events of those sessions (what ``revoke`` writes).
"""

from __future__ import annotations

import argparse
import gc
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sessionward import Policy, SessionManager, SQLiteStore
from sessionward.core.events import EventBus, SessionCreated, SessionRevoked
from sessionward.signals.recorder import Recorder, _entry
from sessionward.stores.eventlog import open_event_log
from sessionward.stores.eventlog._rows import columns
from sessionward.stores.eventlog.sqlite import SQLiteEventLog

Setup = Callable[[SessionManager, int], object]
POLICY = Policy(idle_timeout=3600, absolute_timeout=8 * 3600, rotate_after=None)


class Side:
    """One manager on its own file, with or without the recorder."""

    def __init__(self, path: Path, recorded: bool) -> None:
        self.store = SQLiteStore(path)
        self.log = open_event_log(str(path))
        self.recorder = Recorder(self.log) if recorded else None
        bus = EventBus([self.recorder] if self.recorder else [])
        self.manager = SessionManager(self.store, policy=POLICY, events=bus)
        self.counter = 0

    def settle(self) -> None:
        if self.recorder is not None and not self.recorder.flush(30):
            raise SystemExit("the recorder did not catch up")

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        self.log.close()
        self.manager.close()


Times = tuple[float, float, float]
COLUMNS = ("caller CPU", "process CPU", "wall clock")


def _now() -> Times:
    return time.thread_time(), time.process_time(), time.perf_counter()


def _since(start: Times, loop_end: Times) -> Times:
    """The calling thread's CPU seconds in the loop (what the request pays), the process's
    CPU seconds until the recorder caught up (every thread: what the machine pays), and the
    wall-clock seconds of the loop."""
    end = _now()
    return loop_end[0] - start[0], end[1] - start[1], loop_end[2] - start[2]


def time_issue(side: Side, ops: int) -> Times:
    side.settle()
    start = _now()
    for _ in range(ops):
        side.counter += 1
        side.manager.issue(f"user{side.counter}")
    loop_end = _now()
    side.settle()
    return _since(start, loop_end)


def time_revoke(side: Side, ops: int) -> Times:
    sessions = []
    for _ in range(ops):
        side.counter += 1
        sessions.append(side.manager.issue(f"user{side.counter}"))
    side.settle()
    start = _now()
    for session in sessions:
        side.manager.revoke(session)
    loop_end = _now()
    side.settle()
    return _since(start, loop_end)


def time_validate(side: Side, ops: int) -> Times:
    side.counter += 1
    token = side.manager.issue(f"user{side.counter}").token
    assert token is not None
    side.settle()
    written = side.recorder.stats()["written"] if side.recorder else 0
    start = _now()
    for _ in range(ops):
        side.manager.validate(token)
    loop_end = _now()
    side.settle()
    elapsed = _since(start, loop_end)
    if side.recorder is not None and side.recorder.stats()["written"] != written:
        raise SystemExit("validate that allows without a change emitted an event")
    return elapsed


def _per_event(work: Callable[[], object], count: int) -> float:
    start = time.thread_time()
    work()
    return (time.thread_time() - start) / count * 1e6


def writer_breakdown(tmp: Path, count: int) -> list[tuple[str, float]]:
    """Microseconds of CPU per event for each step of the writer thread's work."""
    created = [
        SessionCreated(session_id=secrets.token_urlsafe(16), user_id=f"user{i}", at=time.time())
        for i in range(count)
    ]
    revoked = [SessionRevoked(e.session_id, e.user_id, time.time()) for e in created]
    entries = [_entry(event, None) for event in created]
    steps = [
        ("entry dict", _per_event(lambda: [_entry(e, None) for e in revoked], count)),
        ("columns (fields JSON)", _per_event(lambda: [columns(e) for e in entries], count)),
    ]

    def append_all(log: SQLiteEventLog, batch: list[dict[str, Any]]) -> None:
        for i in range(0, count, 200):
            log.append(batch[i : i + 200])

    path = tmp / "breakdown.db"
    SQLiteStore(path).close()
    log = SQLiteEventLog(path)
    later = [_entry(event, None) for event in revoked]
    others = [
        _entry(SessionCreated(secrets.token_urlsafe(16), f"other{i}", time.time()), None)
        for i in range(count)
    ]
    append_all(log, others)  # a log that already holds as many entries, of other sessions
    steps.append(("append, new sessions", _per_event(lambda: append_all(log, entries), count)))
    steps.append(("append, sessions seen", _per_event(lambda: append_all(log, later), count)))
    log.close()
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=400, help="calls per batch")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--entries", type=int, default=10_000, help="for the breakdown")
    args = parser.parse_args(argv)
    benches = {"issue": time_issue, "revoke": time_revoke, "validate": time_validate}
    results: dict[tuple[str, bool], list[Times]] = {
        (n, bool(r)): [] for n in benches for r in (0, 1)
    }
    with tempfile.TemporaryDirectory() as tmp:
        sides = {r: Side(Path(tmp) / f"{r}.db", bool(r)) for r in (0, 1)}
        gc.disable()
        try:
            for round_ in range(args.rounds + 1):  # the first round warms up
                for name, bench in benches.items():
                    for recorded in (0, 1) if round_ % 2 else (1, 0):
                        elapsed = bench(sides[recorded], args.ops)
                        per_op: Times = (
                            elapsed[0] / args.ops,
                            elapsed[1] / args.ops,
                            elapsed[2] / args.ops,
                        )
                        if round_:
                            results[(name, bool(recorded))].append(per_op)
                gc.collect()
        finally:
            gc.enable()
            for side in sides.values():
                side.close()
        breakdown = writer_breakdown(Path(tmp), args.entries)
    print(f"SQLite, {args.ops} calls per batch, median of {args.rounds} rounds (Python "
          f"{sys.version.split()[0]})")  # fmt: skip
    print(f"{'per call':<10}" + "".join(f"{c + ': off / on':>30}" for c in COLUMNS))
    for name in benches:
        row = f"{name:<10}"
        for column in range(len(COLUMNS)):
            off: float = statistics.median(r[column] for r in results[(name, False)])
            on: float = statistics.median(r[column] for r in results[(name, True)])
            row += f"{off * 1e6:>10.1f} /{on * 1e6:>7.1f} µs {on / off:>5.2f}x"
        print(row)
    print(f"writer thread, CPU per event ({args.entries} entries):")
    for label, micros in breakdown:
        print(f"  {label:<26}{micros:>6.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
