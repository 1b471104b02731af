"""The recorder: events reach the durable log in order, in batches, off the caller's thread;
an unreachable log never blocks or fails the caller, and is caught up once it is back."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from servers import WAIT, wait_until

from sessionward import SessionManager, SQLiteStore
from sessionward.core.events import EventBus, SessionCreated, SessionRevoked
from sessionward.errors import InvalidArgument
from sessionward.signals.recorder import Recorder
from sessionward.stores.eventlog import EventQuery
from sessionward.stores.eventlog.sqlite import SQLiteEventLog
from sessionward.testing import FakeClock

NOW = 1_800_000_000.0


class CountingLog(SQLiteEventLog):
    """A real SQLite log that remembers the size of every append."""

    def __init__(self, path: str, **options: Any) -> None:
        super().__init__(path, **options)
        self.batches: list[int] = []

    def append(self, entries: Sequence[dict[str, Any]]) -> list[str]:
        ids = super().append(entries)
        self.batches.append(len(entries))
        return ids


@pytest.fixture
def path(tmp_path: Path) -> str:
    db = str(tmp_path / "s.db")
    SQLiteStore(db).close()
    return db


@pytest.fixture
def log(path: str) -> Iterator[CountingLog]:
    opened = CountingLog(path, busy_timeout=0.05)
    yield opened
    opened.close()


class Locked:
    """Another connection holding the database's write lock: the log cannot append."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def created(i: int, user: str = "alice") -> SessionCreated:
    return SessionCreated(f"S{i:015d}", user, NOW + i)


def test_events_of_a_manager_reach_the_log_in_order_with_their_application(
    log: CountingLog, path: str
) -> None:
    recorder = Recorder(log, application=lambda event: f"app-of-{event.user_id}")
    with SessionManager(SQLiteStore(path), events=EventBus([recorder])) as manager:
        session = manager.issue("alice")
        manager.revoke(session)
    assert recorder.flush(WAIT)
    events = log.read(None, 10)
    assert [e.kind for e in events] == ["created", "revoked"]
    assert all(e.session_id == session.id for e in events)
    assert events[0].application == "app-of-alice"
    assert events[1].fields["reason"] == "logout"
    recorder.close()


def test_bursts_are_written_in_a_few_large_batches(log: CountingLog) -> None:
    recorder = Recorder(log, linger=0.05)
    for i in range(300):
        recorder(created(i))
    assert recorder.flush(WAIT)
    assert sum(log.batches) == 300
    assert len(log.batches) < 30  # group commit: not one transaction per event
    assert [e.at for e in log.read(None, 1000)] == [NOW + i for i in range(300)]
    recorder.close()


def test_close_writes_what_is_queued(log: CountingLog) -> None:
    recorder = Recorder(log, linger=1.0)
    for i in range(5):
        recorder(created(i))
    recorder.close()
    assert len(log.read(None, 10)) == 5
    assert recorder.stats()["dropped"] == 0
    recorder(created(9))  # after close: dropped and counted, never raised
    assert recorder.stats()["dropped"] == 1


def test_an_outage_never_blocks_the_caller_and_is_caught_up(log: CountingLog, path: str) -> None:
    recorder = Recorder(log, linger=0.0)
    lock = Locked(path)
    try:
        started = time.perf_counter()
        for i in range(50):
            recorder(created(i))
        # Queued, not written: a caller that waited on the locked log would wait its busy
        # timeout (0.05 s) per event, 2.5 s in all.
        assert time.perf_counter() - started < 1.0
        wait_until(lambda: recorder.stats()["failures"] >= 1, "the writer to fail")
        assert not recorder.flush(timeout=0.3)
    finally:
        lock.release()
    assert recorder.flush(timeout=WAIT)
    assert len(log.read(None, 100)) == 50
    assert recorder.stats()["dropped"] == 0
    recorder.close()


def test_a_full_buffer_drops_and_counts_instead_of_waiting(log: CountingLog, path: str) -> None:
    recorder = Recorder(log, linger=0.0, buffer=5)
    lock = Locked(path)
    try:
        recorder(created(0))
        # The writer holds event 0 and retries.
        wait_until(lambda: recorder.stats()["failures"] >= 1, "the writer to fail")
        for i in range(1, 20):
            recorder(created(i))
        assert recorder.stats()["dropped"] == 14  # 5 queued behind the one in hand
    finally:
        lock.release()
    assert recorder.flush(timeout=WAIT)
    assert [e.at for e in log.read(None, 100)] == [NOW + i for i in range(6)]
    recorder.close()


def test_an_entry_the_log_refuses_is_dropped_alone(log: CountingLog) -> None:
    class Picky(CountingLog):
        def append(self, entries: Sequence[dict[str, Any]]) -> list[str]:
            if any(e["user_id"] == "bad" for e in entries):
                raise InvalidArgument("refused")
            return super().append(entries)

    picky = Picky(log.path)
    recorder = Recorder(picky, linger=0.2)
    for i, user in enumerate(["a", "bad", "c"]):
        recorder(created(i, user))
    assert recorder.flush(WAIT)
    assert [e.user_id for e in picky.read(None, 10)] == ["a", "c"]
    assert recorder.stats()["dropped"] == 1
    recorder.close()
    picky.close()


def test_retention_prunes_entries_older_than_it(log: CountingLog) -> None:
    clock = FakeClock(NOW + 100 * 86_400)
    log.append([created(0).to_dict(), {**created(1).to_dict(), "at": NOW + 95 * 86_400}])
    recorder = Recorder(log, clock=clock.now, retention=30 * 86_400)
    recorder(SessionRevoked("S000000000000002", "alice", clock.now()))
    assert recorder.flush(WAIT)
    assert [e.at for e in log.read(None, 10)] == [NOW + 95 * 86_400, clock.now()]
    assert recorder.stats()["pruned"] == 1
    recorder.close()


def test_many_threads_recording_at_once_lose_nothing(log: CountingLog) -> None:
    recorder = Recorder(log)

    def emit(n: int) -> None:
        for i in range(100):
            recorder(created(n * 1000 + i, user=f"u{n}"))

    threads = [threading.Thread(target=emit, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert recorder.flush(WAIT)
    for n in range(4):
        page = log.query(EventQuery(user_id=f"u{n}", limit=200))
        assert [e.at for e in page.events] == [NOW + n * 1000 + i for i in range(99, -1, -1)]
    recorder.close()


_KILLED_WRITER = """
import os, signal, sys, time
from sessionward.core.events import SessionCreated
from sessionward.signals.recorder import Recorder
from sessionward.stores.eventlog.sqlite import SQLiteEventLog

recorder = Recorder(SQLiteEventLog(sys.argv[1]))
for i in range(100):
    recorder(SessionCreated(f"S{i:015d}", "alice", 1_800_000_000.0 + i))
if not recorder.flush(float(sys.argv[2])):  # written by the writer thread
    sys.exit(3)
for i in range(100, 110):
    recorder(SessionCreated(f"S{i:015d}", "alice", 1_800_000_000.0 + i))
os.kill(os.getpid(), signal.SIGKILL)  # at once: the last ten are probably still queued
"""


def test_a_killed_process_loses_only_what_it_had_not_yet_written(path: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, path, str(WAIT)], timeout=60, check=False
    )
    assert done.returncode == -9
    log = SQLiteEventLog(path)
    kept = [e.session_id for e in log.read(None, 1000)]
    log.close()
    assert len(kept) >= 100  # everything flushed before the kill was written
    assert kept == [f"S{i:015d}" for i in range(len(kept))]  # a crash loses a tail, no gap


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX")
def test_a_forked_child_records_with_a_writer_thread_of_its_own(path: str) -> None:
    log = SQLiteEventLog(path)
    recorder = Recorder(log)
    recorder(SessionCreated("parent", "u", NOW))
    assert recorder.flush(WAIT)  # the parent's writer thread is running, and idle
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            recorder(SessionRevoked("child", "u", NOW))
            code = 0 if recorder.flush(WAIT) and recorder.stats()["written"] == 2 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    recorder.close()
    kinds = sorted((e.session_id, e.kind) for e in log.query(EventQuery()).events)
    log.close()
    assert kinds == [("child", "revoked"), ("parent", "created")]


def test_a_listener_runs_after_each_batch_once_its_entries_can_be_read(
    log: CountingLog, path: str
) -> None:
    recorder = Recorder(log, linger=0)
    seen: list[int] = []
    called = threading.Event()

    def listener() -> None:
        reader = SQLiteEventLog(path)  # another connection: the batch is committed
        try:
            seen.append(len(reader.read(None, 100)))
        finally:
            reader.close()
        called.set()

    def broken() -> None:
        raise RuntimeError("a listener's bug")

    recorder.on_append(broken)
    recorder.on_append(listener)
    recorder(created(1))
    assert called.wait(10)
    assert seen[0] >= 1
    called.clear()
    recorder(created(2))  # the broken listener stopped neither the writer nor the next one
    assert called.wait(10)
    assert recorder.flush()
    assert seen[-1] == 2
    assert recorder.stats()["written"] == 2
    recorder.close()
