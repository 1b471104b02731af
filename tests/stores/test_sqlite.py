"""SQLite-specific behaviour: schema, damaged files, pragmas, typing, threads, the event loop."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from contract.records import make_record

from sessionward import AsyncSQLiteStore, SQLiteStore
from sessionward.core.record import FIELDS, SessionRecord
from sessionward.errors import (
    InvalidArgument,
    SessionwardError,
    StoreCorrupt,
    StoreUnavailable,
    VersionConflict,
)
from sessionward.stores import UserCap
from sessionward.stores._async import sqlite as async_sqlite
from sessionward.testing import FakeClock


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(db)
    yield opened
    opened.close()


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _query(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = _raw(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- schema ---------------------------------------------------------------------------------


def test_fresh_file_gets_the_schema(store: SQLiteStore, db: Path) -> None:
    assert _query(db, "SELECT version FROM sessionward_schema") == [(async_sqlite.SCHEMA_VERSION,)]
    names = {r[0] for r in _query(db, "SELECT name FROM sqlite_master")}
    assert names == {"sessionward_schema", "sessions", "sessions_by_user"}
    columns = [r[1] for r in _query(db, "PRAGMA table_info(sessions)")]
    assert tuple(columns) == FIELDS  # a record is a row, column for field


@pytest.mark.parametrize(
    "sql", ["_BY_USER", "_LIVE_IDS", "_DELETE_USER"], ids=["list", "cap", "delete-user"]
)
def test_per_user_queries_use_the_index(store: SQLiteStore, db: Path, sql: str) -> None:
    statement = getattr(async_sqlite, sql)
    params = ("u", 0.0) if statement.count("?") == 2 else ("u",)
    plan = str(_query_with(db, "EXPLAIN QUERY PLAN " + statement, params))
    assert "INDEX sessions_by_user (user_id=?)" in plan, plan
    assert "SCAN sessions" not in plan, plan


def _query_with(path: Path, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
    conn = _raw(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_reopening_keeps_data_and_version(db: Path) -> None:
    record = make_record(FakeClock().now())
    first = SQLiteStore(db)
    first.add(record)
    first.close()
    second = SQLiteStore(db, create=False)
    try:
        assert second.get(record.id) == record
    finally:
        second.close()
    assert _query(db, "SELECT version FROM sessionward_schema") == [(async_sqlite.SCHEMA_VERSION,)]


def test_successor_is_null_until_set(store: SQLiteStore, db: Path) -> None:
    fresh = make_record(FakeClock().now())
    store.add(fresh)
    assert _query(db, "SELECT successor FROM sessions") == [(None,)]
    linked = fresh._replace(successor=b"\x00next\xff", version=2)
    store.replace(linked, expected_version=1)
    assert _query(db, "SELECT successor FROM sessions") == [(b"\x00next\xff",)]
    assert store.get(fresh.id) == linked


@pytest.mark.parametrize("version", [0, 1, 2])
def test_other_schema_versions_are_refused_untouched(db: Path, version: int) -> None:
    # Files of earlier development schemas are not migrated: they are refused, unchanged.
    conn = _raw(db)
    conn.execute("CREATE TABLE sessionward_schema (version INTEGER NOT NULL) STRICT")
    conn.execute("INSERT INTO sessionward_schema VALUES (?)", (version,))
    conn.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY NOT NULL) STRICT, WITHOUT ROWID")
    conn.close()
    with pytest.raises(StoreCorrupt, match=f"schema {version} is not supported"):
        SQLiteStore(db)
    assert _query(db, "SELECT version FROM sessionward_schema") == [(version,)]
    assert {r[0] for r in _query(db, "SELECT name FROM sqlite_master")} == {
        "sessionward_schema",
        "sessions",
    }


def test_newer_schema_is_refused_untouched(db: Path) -> None:
    conn = _raw(db)
    conn.execute("CREATE TABLE sessionward_schema (version INTEGER NOT NULL) STRICT")
    conn.execute("INSERT INTO sessionward_schema VALUES (4)")
    conn.close()
    with pytest.raises(StoreCorrupt, match="newer"):
        SQLiteStore(db)
    assert _query(db, "SELECT version FROM sessionward_schema") == [(4,)]
    assert _query(db, "SELECT name FROM sqlite_master WHERE name = 'sessions'") == []


def test_foreign_tables_are_refused_untouched(db: Path) -> None:
    conn = _raw(db)
    conn.execute("CREATE TABLE django_session (session_key TEXT PRIMARY KEY, data TEXT)")
    conn.execute("INSERT INTO django_session VALUES ('k', 'v')")
    conn.close()
    with pytest.raises(StoreCorrupt, match="not sessionward"):
        SQLiteStore(db)
    assert {r[0] for r in _query(db, "SELECT name FROM sqlite_master")} == {
        "django_session",
        "sqlite_autoindex_django_session_1",
    }
    assert _query(db, "SELECT * FROM django_session") == [("k", "v")]


@pytest.mark.parametrize(
    "setup",
    [
        ["CREATE TABLE sessionward_schema (version INTEGER NOT NULL) STRICT"],
        [
            "CREATE TABLE sessionward_schema (version)",
            "INSERT INTO sessionward_schema VALUES ('1')",
        ],
    ],
    ids=["no-row", "text-version"],
)
def test_damaged_schema_table_is_refused(db: Path, setup: list[str]) -> None:
    conn = _raw(db)
    for statement in setup:
        conn.execute(statement)
    conn.close()
    with pytest.raises(StoreCorrupt, match="schema version"):
        SQLiteStore(db)


# -- damaged and missing files -------------------------------------------------------------


def _full_database(path: Path, count: int = 2000) -> None:
    store = SQLiteStore(path)
    now = FakeClock().now()
    try:
        for i in range(count):
            store.add(make_record(now, user_id=f"user{i % 40}", data='{"pad":"' + "x" * 200 + '"}'))
    finally:
        store.close()  # last connection: WAL checkpointed into the main file


def _damaged(kind: str, path: Path, tmp_path: Path) -> None:
    if kind == "random-bytes":
        path.write_bytes(os.urandom(16384))
    elif kind == "text-file":
        path.write_text("id,user\n1,alice\n", encoding="utf-8")
    else:
        full = tmp_path / "full.db"
        _full_database(full)
        content = full.read_bytes()
        assert len(content) > 100_000
        cut = {"truncated-half": len(content) // 2 // 4096 * 4096, "truncated-header": 60}
        path.write_bytes(content[: cut[kind]])


DAMAGE = ["random-bytes", "text-file", "truncated-half", "truncated-header"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_file_is_refused_on_open(db: Path, tmp_path: Path, kind: str) -> None:
    _damaged(kind, db, tmp_path)
    before = db.read_bytes()
    with pytest.raises(StoreCorrupt) as caught:
        SQLiteStore(db, create=False)
    message = str(caught.value)
    assert "database" in message
    assert "malformed" in message or "not a database" in message
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    assert db.read_bytes() == before  # nothing written into a file we do not understand


@pytest.mark.parametrize("kind", DAMAGE)
def test_async_flavour_refuses_damaged_file(db: Path, tmp_path: Path, kind: str) -> None:
    _damaged(kind, db, tmp_path)
    with pytest.raises(StoreCorrupt):
        AsyncSQLiteStore(db)


def _open_fds_to(path: Path) -> list[str]:
    fd_dir = Path("/proc/self/fd")
    found = []
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / fd)
        except OSError:
            continue
        if target.startswith(str(path)):
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("kind", ["random-bytes", "newer-schema"])
def test_refused_file_is_not_left_open(db: Path, tmp_path: Path, kind: str) -> None:
    if kind == "newer-schema":
        conn = _raw(db)
        conn.execute("CREATE TABLE sessionward_schema (version INTEGER NOT NULL) STRICT")
        conn.execute("INSERT INTO sessionward_schema VALUES (9)")
        conn.close()
    else:
        _damaged(kind, db, tmp_path)
    with pytest.raises(StoreCorrupt):
        SQLiteStore(db)
    assert _open_fds_to(db) == []


def test_empty_file_becomes_a_fresh_database(db: Path) -> None:
    db.touch()  # SQLite treats a zero-length file as an empty database
    store = SQLiteStore(db, create=False)
    try:
        assert store.count() == 0
    finally:
        store.close()
    assert _query(db, "SELECT version FROM sessionward_schema") == [(async_sqlite.SCHEMA_VERSION,)]


@pytest.mark.parametrize("flavour", [SQLiteStore, AsyncSQLiteStore])
def test_create_false_on_missing_path_creates_nothing(
    tmp_path: Path, flavour: Callable[..., object]
) -> None:
    with pytest.raises(StoreUnavailable, match="no database file"):
        flavour(tmp_path / "typo.db", create=False)
    assert _files(tmp_path) == []


def test_create_false_on_a_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        SQLiteStore(tmp_path, create=False)


def test_missing_parent_directory_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        SQLiteStore(tmp_path / "missing" / "sessions.db")
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    assert _files(tmp_path) == []


def test_closed_store_is_unavailable(store: SQLiteStore) -> None:
    store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        store.get("AAAAAAAAAAAAAAAA")


def test_errors_are_ours(db: Path, tmp_path: Path) -> None:
    # Every failure mode above surfaces as a SessionwardError with a readable message.
    _damaged("random-bytes", db, tmp_path)
    with pytest.raises(SessionwardError) as caught:
        SQLiteStore(db)
    assert str(caught.value).strip()
    assert not isinstance(caught.value, sqlite3.Error)


# -- pragmas ---------------------------------------------------------------------------------


def _pragmas(conn: sqlite3.Connection) -> tuple[object, ...]:
    names = ("journal_mode", "synchronous", "busy_timeout")
    return tuple(conn.execute(f"PRAGMA {name}").fetchone()[0] for name in names)


def test_wal_and_synchronous_normal(store: SQLiteStore, db: Path) -> None:
    # journal_mode is a property of the file; synchronous and busy_timeout of each connection,
    # so they are read through the store's own connection (private, for this check only).
    assert _query(db, "PRAGMA journal_mode") == [("wal",)]
    assert _pragmas(store._connection()) == ("wal", 1, 5000)
    store.add(make_record(FakeClock().now()))
    assert (db.parent / "sessions.db-wal").exists()


def test_every_thread_connection_gets_the_pragmas(store: SQLiteStore) -> None:
    seen: list[tuple[object, ...]] = []
    worker = threading.Thread(target=lambda: seen.append(_pragmas(store._connection())))
    worker.start()
    worker.join()
    assert seen == [("wal", 1, 5000)]
    assert store._connection() is not None


def test_async_flavour_pragmas(db: Path) -> None:
    async def check() -> tuple[object, ...]:
        store = AsyncSQLiteStore(db, busy_timeout=2.5)
        try:
            await store.add(make_record(FakeClock().now()))
            return _pragmas(store._connection())
        finally:
            await store.close()

    assert asyncio.run(check()) == ("wal", 1, 2500)


# -- STRICT typing ---------------------------------------------------------------------------

WRONG_TYPES = {
    "text-in-real": ("expires_at", "'soon'"),
    "fraction-in-integer": ("version", "1.5"),
    "text-in-blob": ("secret_hash", "'abc'"),
    "null-in-not-null": ("data", "NULL"),
    "blob-in-text": ("user_id", "x'00ff'"),
}


def _raw_insert(conn: sqlite3.Connection, record_id: str, column: str, value: str) -> None:
    record = make_record(FakeClock().now(), id=record_id)
    columns = list(record._fields)
    values = ["?"] * len(columns)
    values[columns.index(column)] = value
    params = [v for name, v in zip(columns, record, strict=True) if name != column]
    conn.execute(
        f"INSERT INTO sessions ({', '.join(columns)}) VALUES ({', '.join(values)})",  # noqa: S608
        params,
    )


@pytest.mark.parametrize("case", WRONG_TYPES, ids=list(WRONG_TYPES))
def test_strict_table_refuses_wrong_types_written_behind_our_back(
    store: SQLiteStore, db: Path, case: str
) -> None:
    live = make_record(FakeClock().now())
    store.add(live)
    column, value = WRONG_TYPES[case]
    conn = _raw(db)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            _raw_insert(conn, "AAAAAAAAAAAAAAAA", column, value)
    finally:
        conn.close()
    assert store.get("AAAAAAAAAAAAAAAA") is None
    assert store.get(live.id) == live


@pytest.mark.parametrize(("field", "value"), [("expires_at", "soon"), ("version", 1.5)])
def test_a_record_of_the_wrong_types_is_refused_by_us(
    store: SQLiteStore, field: str, value: object
) -> None:
    fields: dict[str, Any] = {field: value}
    record = make_record(FakeClock().now(), **fields)
    with pytest.raises(InvalidArgument, match=field):
        store.add(record)
    assert store.get(record.id) is None


def test_lossless_values_written_behind_our_back_read_as_declared_types(
    store: SQLiteStore, db: Path
) -> None:
    # STRICT converts what it can convert losslessly, so reads still have the declared types.
    conn = _raw(db)
    try:
        _raw_insert(conn, "BBBBBBBBBBBBBBBB", "expires_at", "1900000000")
        conn.execute("UPDATE sessions SET version = '7', generation = 2.0, user_id = 42")
    finally:
        conn.close()
    record = store.get("BBBBBBBBBBBBBBBB")
    assert record is not None
    assert (record.expires_at, record.version, record.generation, record.user_id) == (
        1_900_000_000.0,
        7,
        2,
        "42",
    )
    assert type(record.expires_at) is float
    assert type(record.version) is int
    assert type(record.generation) is int


def test_sessions_table_without_strict_typing_is_refused(store: SQLiteStore, db: Path) -> None:
    # Someone rebuilt the table without STRICT: rows could then hold any type, so we refuse
    # the file rather than hand the manager a record whose deadline is a string.
    store.add(make_record(FakeClock().now()))
    store.close()
    conn = _raw(db)
    ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'sessions'").fetchone()[0]
    conn.execute("ALTER TABLE sessions RENAME TO old_sessions")
    conn.execute(ddl.replace("STRICT,", ""))
    conn.execute("INSERT INTO sessions SELECT * FROM old_sessions")
    conn.execute("DROP TABLE old_sessions")
    conn.execute("UPDATE sessions SET expires_at = 'soon'")
    conn.close()
    with pytest.raises(StoreCorrupt, match="STRICT"):
        SQLiteStore(db)


# -- threads ---------------------------------------------------------------------------------

THREADS = 8


def _run_threads(target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            target(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


@pytest.mark.parametrize("where", ["file", "memory"])
def test_store_used_from_eight_threads(tmp_path: Path, where: str) -> None:
    store = SQLiteStore(tmp_path / "threads.db" if where == "file" else ":memory:")
    clock = FakeClock()
    now = clock.now()
    counter = make_record(now, user_id=None, data='{"n":0}')
    store.add(counter)
    rounds = 40
    kept: dict[int, list[str]] = {}

    def work(index: int) -> None:
        user = f"user{index}"
        mine = []
        for i in range(rounds):
            record = make_record(now + i, user_id=user)
            store.add(record)
            store.replace(record._replace(data=f'{{"i":{i}}}', version=2), expected_version=1)
            store.touch(record.id, last_seen=now + i + 1, expires_at=now + 9999)
            assert store.get(record.id) == record._replace(
                data=f'{{"i":{i}}}', version=2, last_seen=now + i + 1, expires_at=now + 9999
            )
            if i % 4 == 0:
                assert store.delete(record.id)
            else:
                mine.append(record.id)
            # A shared user under a cap of 3: never more than 3 live, whoever adds.
            store.add(make_record(now, user_id="shared"), cap=UserCap(3, True, now))
            _increment(store, counter.id)
        kept[index] = mine
        assert [r.id for r in store.list_user(user)] == mine

    try:
        _run_threads(work)
        for index in range(THREADS):
            assert [r.id for r in store.list_user(f"user{index}")] == kept[index]
        assert len(store.list_user("shared")) == 3
        final = store.get(counter.id)
        assert final is not None
        assert final.data == f'{{"n":{THREADS * rounds}}}'
        assert store.count() == 1 + 3 + THREADS * rounds * 3 // 4
    finally:
        store.close()


def _increment(store: SQLiteStore, record_id: str) -> None:
    """A compare-and-swap loop on the store alone: no update may be lost."""
    for _ in range(1000):
        current = store.get(record_id)
        assert current is not None
        n = int(current.data[5:-1])
        try:
            store.replace(
                current._replace(data=f'{{"n":{n + 1}}}', version=current.version + 1),
                expected_version=current.version,
            )
        except VersionConflict:
            continue
        return
    raise AssertionError("no progress in 1000 attempts")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_store_opened_before_fork_works_in_the_child(store: SQLiteStore, db: Path) -> None:
    now = FakeClock().now()
    parent_record = make_record(now)
    store.add(parent_record)
    child_record = make_record(now, user_id="child")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            store.add(child_record)
            code = 0 if store.get(parent_record.id) == parent_record else 2
            store.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get(child_record.id) == child_record
    store.add(make_record(now))
    assert _query(db, "PRAGMA integrity_check") == [("ok",)]


def test_a_process_writers_queue_instead_of_failing_on_the_lock(db: Path) -> None:
    # With no busy timeout, two connections writing at once would fail with "database is
    # locked"; the store's threads take turns, so none of them sees the lock.
    store = SQLiteStore(db, busy_timeout=0)
    now = FakeClock().now()

    def write(index: int) -> None:
        for _ in range(50):
            store.add(make_record(now))

    try:
        _run_threads(write)
        assert store.count() == THREADS * 50
    finally:
        store.close()


# -- the event loop ----------------------------------------------------------------------------


def test_async_write_waits_off_the_event_loop(db: Path) -> None:
    # Another process holds the write lock: the async store's write waits for it on the
    # worker thread while the loop keeps running, and reads keep answering meanwhile.
    async def scenario() -> tuple[int, bool, bool]:
        store = AsyncSQLiteStore(db)
        now = FakeClock().now()
        first = make_record(now)
        await store.add(first)
        other = _raw(db)
        other.execute("BEGIN IMMEDIATE")
        ticks = 0
        try:
            pending = asyncio.ensure_future(store.add(make_record(now)))
            for _ in range(20):
                await asyncio.sleep(0.005)
                ticks += 1
            read_while_locked = await store.get(first.id) == first
            waited = not pending.done()
        finally:
            other.execute("ROLLBACK")
            other.close()
        await pending
        count = await store.count()
        await store.close()
        return ticks, read_while_locked and waited, count == 2

    assert asyncio.run(scenario()) == (20, True, True)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_async_store_used_before_fork_works_in_the_child(db: Path) -> None:
    store = AsyncSQLiteStore(db)
    now = FakeClock().now()
    parent_record = make_record(now)
    asyncio.run(store.add(parent_record))  # the worker thread exists in the parent
    child_record = make_record(now, user_id="child")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child

        async def child() -> bool:
            await store.add(child_record)  # a worker thread of the child's own
            found = await store.get(parent_record.id) == parent_record
            await store.close()
            return found

        code = 1
        try:
            code = 0 if asyncio.run(child()) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

    async def parent() -> SessionRecord | None:
        found = await store.get(child_record.id)
        await store.add(make_record(now))
        await store.close()
        return found

    assert asyncio.run(parent()) == child_record
    assert _query(db, "PRAGMA integrity_check") == [("ok",)]
