"""SessionManager over one real SQLite file: threads, processes, and a writer killed by -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from servers import WAIT

from sessionward import SessionManager, SQLiteStore
from sessionward.testing import FakeClock

WORKER = Path(__file__).with_name("sqlite_worker.py")
START = 1_800_000_000.0
THREADS = 8
ITEMS = 40


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
def manager(db: Path) -> Iterator[SessionManager]:
    with SessionManager(SQLiteStore(db), clock=FakeClock(START)) as opened:
        yield opened


def _appender(item: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data.setdefault("cart", []).append(item)

    return change


def _cart(db: Path, session_id: str) -> list[str]:
    """The cart as a fresh store on the file sees it (no cache shared with the writers)."""
    with SessionManager(SQLiteStore(db, create=False), clock=FakeClock(START)) as reader:
        session = reader.get(session_id)
        assert session is not None
        cart = session.data["cart"]
        assert isinstance(cart, list)
        return cart


def _expected(tags: list[str], count: int) -> list[str]:
    return sorted(f"{tag}-{i}" for tag in tags for i in range(count))


def test_update_data_from_eight_threads_loses_nothing(manager: SessionManager, db: Path) -> None:
    session = manager.issue("alice", data={"cart": []})
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def shop(tag: str) -> None:
        try:
            barrier.wait(timeout=10)
            for i in range(ITEMS):
                # A stale Session on purpose: every thread starts from the same version.
                manager.update_data(session, _appender(f"{tag}-{i}"))
        except BaseException as exc:
            errors.append(exc)

    tags = [f"t{n}" for n in range(THREADS)]
    threads = [threading.Thread(target=shop, args=(tag,)) for tag in tags]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    cart = _cart(db, session.id)
    assert sorted(cart) == _expected(tags, ITEMS)
    for tag in tags:  # each thread's items in its own order
        assert [c for c in cart if c.startswith(f"{tag}-")] == [f"{tag}-{i}" for i in range(ITEMS)]
    current = manager.get(session.id)
    assert current is not None
    assert current.version == 1 + THREADS * ITEMS


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _readline(stream: IO[str] | None) -> str:
    assert stream is not None
    return stream.readline().strip()


def test_update_data_from_two_processes_loses_nothing(manager: SessionManager, db: Path) -> None:
    session = manager.issue("alice", data={"cart": []})
    count = 150
    tags = ["p0", "p1"]
    workers = [_spawn("append", str(db), session.id, tag, str(count), str(START)) for tag in tags]
    try:
        assert [_readline(w.stdout) for w in workers] == ["ready", "ready"]
        for worker in workers:  # release both at once
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = [w.communicate(timeout=30) for w in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, (out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
        assert out.strip() == "done"
    cart = _cart(db, session.id)
    assert sorted(cart) == _expected(tags, count)
    # The parent's own store sees the other processes' commits (its read cache included).
    current = manager.get(session.id)
    assert current is not None
    assert sorted(current.data["cart"]) == _expected(tags, count)


def test_other_process_writes_are_seen_at_once(manager: SessionManager, db: Path) -> None:
    session = manager.issue("alice", data={"cart": []})
    assert manager.get(session.id) is not None  # now in the parent's read cache
    worker = _spawn("append", str(db), session.id, "child", "1", str(START))
    out, err = worker.communicate("go\n", timeout=30)
    assert worker.returncode == 0, err
    assert out.split() == ["ready", "done"]
    current = manager.get(session.id)
    assert current is not None
    assert current.data == {"cart": ["child-0"]}
    assert manager.validate(session.token).data == {"cart": ["child-0"]}
    # A revocation by another store on the file is seen by the next validation.
    with SessionManager(SQLiteStore(db), clock=FakeClock(START)) as other:
        assert other.revoke(session.id)
    assert manager.get(session.id) is None


def test_kill_9_of_a_writer_leaves_a_consistent_database(db: Path) -> None:
    SQLiteStore(db).close()  # the schema exists before the child starts
    issued: list[str] = []
    updated: dict[str, int] = {}
    deadline = time.monotonic() + WAIT  # it stops at 150 updates; this is for a slow start
    with _spawn("churn", str(db), str(START)) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        try:
            while len(updated) < 150 and time.monotonic() < deadline:
                line = child.stdout.readline()
                if not line:
                    break
                _note(line, issued, updated)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        # Not communicate(): it would skip lines already in this pipe's read buffer.
        rest = child.stdout.read()
        err = child.stderr.read()
    assert child.returncode == -signal.SIGKILL, err
    for line in rest.splitlines(keepends=True):
        if line.endswith("\n"):  # a line cut by the kill reports nothing
            _note(line, issued, updated)
    assert len(updated) >= 50, "the child made too little progress to test anything"

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    store = SQLiteStore(db, create=False)
    with SessionManager(store, clock=FakeClock(START)) as manager:
        # Every reported commit is there; at most one unreported one (killed before printing).
        assert len(issued) <= store.count() <= len(issued) + 1
        for session_id in issued:
            record = store.get(session_id)
            assert record is not None
            session = manager.get(session_id)
            assert session is not None
            items = session.data["cart"]
            assert items == [f"item-{n}" for n in range(1, len(items) + 1)]
            assert len(items) >= updated.get(session_id, 0)
        # ... and the file takes new writes.
        after = manager.issue("after")
        assert manager.validate(after.token).user_id == "after"


def _note(line: str, issued: list[str], updated: dict[str, int]) -> None:
    kind, session_id, *rest = line.split()
    if kind == "issued":
        issued.append(session_id)
    else:
        assert kind == "updated"
        assert session_id in issued
        updated[session_id] = int(rest[0])
