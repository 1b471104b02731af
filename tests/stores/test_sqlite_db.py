"""The SQLite basement every SQLite-backed store stands on (``stores._sqlite_db``): one writer
at a time, rollback on failure, fail closed on a locked file, files created 0600; and each of
the five stores built on it keeps those promises."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from contract.records import make_record

from sessionward import SQLiteStore
from sessionward.core.events import SessionRevoked
from sessionward.errors import AlreadyExists, InvalidArgument, StoreCorrupt, StoreUnavailable
from sessionward.service.state import ServiceState
from sessionward.stores._sqlite_db import SQLiteDB, schema_error
from sessionward.stores.consumers.sqlite import SQLiteConsumerStore
from sessionward.stores.eventlog.sqlite import SQLiteEventLog
from sessionward.stores.ssf import SQLiteStreamStore
from sessionward.testing import FakeClock

DEADLINE = 30.0  # seconds any wait in this file may take before the test fails


def _translate(exc: sqlite3.Error) -> Exception:
    if isinstance(exc, sqlite3.IntegrityError):
        return AlreadyExists(str(exc))
    return StoreUnavailable(f"sqlite: {exc}")


def _open(path: Path, *, per_thread: bool, busy_timeout: float = DEADLINE) -> SQLiteDB:
    db = SQLiteDB(str(path), busy_timeout=busy_timeout, translate=_translate, per_thread=per_thread)
    with db.write() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    return db


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


# -- one writer at a time -------------------------------------------------------------------


@pytest.mark.parametrize("per_thread", [False, True], ids=["shared", "per-thread"])
def test_two_connections_on_one_file_never_both_hold_a_write(
    tmp_path: Path, per_thread: bool
) -> None:
    # Two databases on one file (two connections at least, one per thread with per_thread),
    # four threads each adding 1 to one counter read inside the transaction. A writer that
    # did not hold the write lock from BEGIN would overlap another (seen by `inside`), fail
    # on the lock upgrade, or lose an increment.
    path = tmp_path / "one.db"
    dbs = [_open(path, per_thread=per_thread), _open(path, per_thread=per_thread)]
    with dbs[0].write() as conn:
        conn.execute("INSERT INTO t VALUES (1, 0)")
    inside = [0]
    most = [0]
    count = threading.Lock()
    failures: list[BaseException] = []

    def work(db: SQLiteDB) -> None:
        try:
            for _ in range(50):
                with db.write() as conn:
                    with count:
                        inside[0] += 1
                        most[0] = max(most[0], inside[0])
                    (n,) = conn.execute("SELECT n FROM t WHERE id = 1").fetchone()
                    conn.execute("UPDATE t SET n = ? WHERE id = 1", (n + 1,))
                    with count:
                        inside[0] -= 1
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(dbs[i % 2],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
        assert not thread.is_alive()
    assert failures == []
    assert most[0] == 1
    assert dbs[1].query("SELECT n FROM t WHERE id = 1") == [(200,)]
    for db in dbs:
        db.close()


@pytest.mark.parametrize("per_thread", [False, True], ids=["shared", "per-thread"])
def test_an_open_write_holds_the_lock_from_its_start(tmp_path: Path, per_thread: bool) -> None:
    # The first write has only read so far; another connection's write waits its busy
    # timeout and fails closed rather than slipping in between the read and the write.
    path = tmp_path / "w.db"
    first = _open(path, per_thread=per_thread)
    second = SQLiteDB(str(path), busy_timeout=0.05, translate=_translate, per_thread=per_thread)
    with first.write() as conn:
        conn.execute("SELECT count(*) FROM t").fetchone()
        with pytest.raises(StoreUnavailable, match="locked"):
            second.execute("INSERT INTO t VALUES (1, 1)")
        conn.execute("INSERT INTO t VALUES (2, 2)")
    assert second.query("SELECT id FROM t") == [(2,)]
    first.close()
    second.close()


def test_per_thread_reads_do_not_wait_for_a_write_in_progress(tmp_path: Path) -> None:
    db = _open(tmp_path / "r.db", per_thread=True)
    with db.write() as conn:
        conn.execute("INSERT INTO t VALUES (1, 7)")
    seen: list[object] = []
    with db.write() as conn:
        conn.execute("UPDATE t SET n = 8 WHERE id = 1")
        reader = threading.Thread(target=lambda: seen.append(db.query("SELECT n FROM t")))
        reader.start()
        reader.join(DEADLINE)  # the write is still open: a read that took a lock would hang
        assert not reader.is_alive()
    assert seen == [[(7,)]]  # the last committed value
    assert db.query("SELECT n FROM t") == [(8,)]
    db.close()


# -- rollback -------------------------------------------------------------------------------


@pytest.mark.parametrize("per_thread", [False, True], ids=["shared", "per-thread"])
def test_a_failed_statement_rolls_back_and_the_next_write_works(
    tmp_path: Path, per_thread: bool
) -> None:
    db = _open(tmp_path / "f.db", per_thread=per_thread)
    with db.write() as conn:
        conn.execute("INSERT INTO t VALUES (1, 1)")

    def taken() -> None:
        with db.write() as conn:
            conn.execute("INSERT INTO t VALUES (2, 2)")
            conn.execute("INSERT INTO t VALUES (1, 3)")  # the primary key is taken

    def not_ours() -> None:
        with db.write() as conn:
            conn.execute("INSERT INTO t VALUES (3, 3)")
            raise ValueError("not ours")  # passes as it is, after the rollback

    with pytest.raises(AlreadyExists) as caught:
        taken()
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
    assert not db.connection().in_transaction
    assert db.query("SELECT id, n FROM t ORDER BY id") == [(1, 1)]  # row 2 went with it
    with pytest.raises(ValueError, match="not ours"):
        not_ours()
    with db.write() as conn:
        conn.execute("INSERT INTO t VALUES (4, 4)")
    assert db.query("SELECT id FROM t ORDER BY id") == [(1,), (4,)]
    assert db.execute("UPDATE t SET n = 0") == 2
    db.close()


# -- fail closed ----------------------------------------------------------------------------


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Another process's connection holds the file's write lock."""
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


@pytest.mark.parametrize("per_thread", [False, True], ids=["shared", "per-thread"])
def test_a_lock_held_beyond_the_busy_timeout_is_the_stores_unavailable_error(
    tmp_path: Path, per_thread: bool
) -> None:
    path = tmp_path / "l.db"
    db = _open(path, per_thread=per_thread, busy_timeout=0.05)
    with _locked(path):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="locked"), db.write() as conn:
            conn.execute("INSERT INTO t VALUES (1, 1)")
        with pytest.raises(StoreUnavailable, match="locked"):
            db.execute("INSERT INTO t VALUES (2, 2)")
        assert time.monotonic() - started < DEADLINE
    with db.write() as conn:  # and it works again once the lock is gone
        conn.execute("INSERT INTO t VALUES (3, 3)")
    assert db.query("SELECT id FROM t") == [(3,)]
    db.close()


def test_chain_false_leaves_the_sqlite_error_out(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    db = SQLiteDB(str(path), busy_timeout=0.05, translate=_translate, chain=False)
    with _locked(path), pytest.raises(StoreUnavailable) as caught:
        db.execute("CREATE TABLE u (x)")
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    db.close()


def test_a_closed_per_thread_database_is_unavailable(tmp_path: Path) -> None:
    db = SQLiteDB(
        str(tmp_path / "x.db"), busy_timeout=1, translate=_translate, per_thread=True, closed="shut"
    )
    db.query("SELECT 1")
    db.close()
    with pytest.raises(StoreUnavailable, match="shut"):
        db.query("SELECT 1")
    with pytest.raises(StoreUnavailable, match="shut"), db.write():
        pass


# -- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("per_thread", [False, True], ids=["shared", "per-thread"])
def test_the_file_is_created_0600_whatever_the_umask(tmp_path: Path, per_thread: bool) -> None:
    path = tmp_path / "new.db"
    with _umask(0):  # SQLite alone would create it 0644 here
        db = _open(path, per_thread=per_thread)
    try:
        assert _mode(path) == 0o600
        assert _mode(tmp_path / "new.db-wal") == 0o600  # SQLite copies the file's mode
        assert _mode(tmp_path / "new.db-shm") == 0o600
    finally:
        db.close()


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    path.touch()
    path.chmod(0o640)
    _open(path, per_thread=False).close()
    assert _mode(path) == 0o640


def test_a_missing_folder_is_sqlites_error_translated(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="unable to open"):
        SQLiteDB(str(tmp_path / "no" / "x.db"), busy_timeout=1, translate=_translate)
    assert not (tmp_path / "no").exists()


# -- the five stores ------------------------------------------------------------------------

Store = Callable[[Path, float], tuple[Callable[[], object], Callable[[], None]]]


def _sessions(path: Path, busy: float) -> tuple[Callable[[], object], Callable[[], None]]:
    store = SQLiteStore(path, busy_timeout=busy)
    return (lambda: store.add(make_record(FakeClock().now()))), store.close


def _events(path: Path, busy: float) -> tuple[Callable[[], object], Callable[[], None]]:
    SQLiteStore(path).close()  # the event log lives in the session store's file
    log = SQLiteEventLog(path, busy_timeout=busy)
    entry = {**SessionRevoked("s" * 16, "u", 1.0, reason="logout").to_dict(), "application": "a"}
    return (lambda: log.append([entry])), log.close


def _consumers(path: Path, busy: float) -> tuple[Callable[[], object], Callable[[], None]]:
    store = SQLiteConsumerStore(path, busy_timeout=busy)
    return (lambda: store.remove("c1")), store.close


def _streams(path: Path, busy: float) -> tuple[Callable[[], object], Callable[[], None]]:
    store = SQLiteStreamStore(path, busy_timeout=busy)
    return (lambda: store.save("s1", "shop", {})), store.close


def _state(path: Path, busy: float) -> tuple[Callable[[], object], Callable[[], None]]:
    state = ServiceState(path, busy_timeout=busy)
    return (lambda: state.mark_served(1.0)), state.close


STORES: dict[str, Store] = {
    "sessions": _sessions,
    "events": _events,
    "consumers": _consumers,
    "streams": _streams,
    "state": _state,
}


@pytest.mark.parametrize("name", STORES)
def test_each_store_fails_closed_on_a_locked_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / "store.db"
    write, close = STORES[name](path, 0.05)
    try:
        write()
        with _locked(path):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                write()
            assert time.monotonic() - started < DEADLINE
        write()
    finally:
        close()


@pytest.mark.parametrize("name", STORES)
def test_each_store_creates_its_file_0600(tmp_path: Path, name: str) -> None:
    path = tmp_path / "store.db"
    with _umask(0o022):
        write, close = STORES[name](path, 5.0)
    try:
        write()
        assert _mode(path) == 0o600
        assert _mode(tmp_path / "store.db-wal") == 0o600
    finally:
        close()


def test_schema_error_maps_each_kind_of_sqlite_failure(tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT")
    conn.execute("INSERT INTO t VALUES (1)")

    def caught(sql: str) -> sqlite3.Error:
        with pytest.raises(sqlite3.Error) as raised:
            conn.execute(sql)
        return raised.value

    def mapped(exc: sqlite3.Error) -> Exception:
        return schema_error(exc, missing="tables gone", refused="row refused")

    assert isinstance(mapped(caught("INSERT INTO t VALUES (1)")), InvalidArgument)
    missing = mapped(caught("SELECT * FROM nowhere"))
    assert isinstance(missing, StoreCorrupt)
    assert str(missing).startswith("tables gone (no such table")
    assert isinstance(mapped(sqlite3.DatabaseError("file is not a database")), StoreCorrupt)
    path = tmp_path / "busy.db"
    other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    with _locked(path), pytest.raises(sqlite3.OperationalError, match="locked") as locked:
        other.execute("CREATE TABLE u (x)")
    assert isinstance(mapped(locked.value), StoreUnavailable)
    conn.close()
    other.close()
