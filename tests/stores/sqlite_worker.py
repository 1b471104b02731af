"""A child process for the multi-process SQLite tests (run as a script, never imported).

    python sqlite_worker.py append DB SESSION_ID TAG COUNT START
        print "ready", wait for a line on stdin, then append COUNT items "TAG-i" to the
        session's cart with SessionManager.update_data; print "done".
    python sqlite_worker.py churn DB START
        issue sessions and update their data in a loop until killed (bounded in count and
        time), printing "issued ID" and "updated ID N" after each commit.

START is the fake clock's time, shared with the parent so both see the same live sessions.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from sessionward import SessionManager, SQLiteStore
from sessionward.testing import FakeClock

CHURN_MAX_ITERATIONS = 100_000
CHURN_MAX_SECONDS = 20.0


def _appender(item: str) -> Any:
    def change(data: dict[str, Any]) -> None:
        data.setdefault("cart", []).append(item)

    return change


def append(db: str, session_id: str, tag: str, count: int, start: float) -> None:
    with SessionManager(SQLiteStore(db, create=False), clock=FakeClock(start)) as manager:
        print("ready", flush=True)
        sys.stdin.readline()
        for i in range(count):
            manager.update_data(session_id, _appender(f"{tag}-{i}"))
        print("done", flush=True)


def churn(db: str, start: float) -> None:
    deadline = time.monotonic() + CHURN_MAX_SECONDS
    with SessionManager(SQLiteStore(db, create=False), clock=FakeClock(start)) as manager:
        for i in range(CHURN_MAX_ITERATIONS):
            if time.monotonic() > deadline:
                break
            session = manager.issue(f"user{i % 5}", data={"cart": []})
            print("issued", session.id, flush=True)
            for n in range(1, 3):
                manager.update_data(session.id, _appender(f"item-{n}"))
                print("updated", session.id, n, flush=True)


def main(argv: list[str]) -> int:
    mode, db, *rest = argv
    if mode == "append":
        session_id, tag, count, start = rest
        append(db, session_id, tag, int(count), float(start))
    elif mode == "churn":
        (start,) = rest
        churn(db, float(start))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
