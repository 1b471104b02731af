"""SQLite-specific behaviour: schema and migrations, damaged files, pragmas, typing, threads."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from contract.records import make_record

from sessionward import AsyncSQLiteStore, SQLiteStore
from sessionward.core.record import SessionRecord
from sessionward.errors import (
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


# -- schema version and migrations ---------------------------------------------------------


def test_fresh_file_gets_the_current_schema(store: SQLiteStore, db: Path) -> None:
    assert async_sqlite.SCHEMA_VERSION == 3
    assert _query(db, "SELECT version FROM sessionward_schema") == [(3,)]
    names = {r[0] for r in _query(db, "SELECT name FROM sqlite_master")}
    assert {"sessionward_schema", "sessionward_meta", "sessions", "sessions_untagged"} <= names
    assert "sessions_by_user" not in names  # schema 2 clusters by user instead of indexing


def test_per_user_queries_use_primary_keys_only(store: SQLiteStore, db: Path) -> None:
    for sql in (async_sqlite._BY_USER, async_sqlite._USER_IDS, async_sqlite._USER_LIVE_IDS):
        conn = _raw(db)
        try:
            params = ("abcd", "abcd~", "u", 0.0)[: 4 if "?4" in sql else 3]
            plan = str(conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
        finally:
            conn.close()
        # The tag's range of the sessions table's key, the untagged list by its key, and no
        # scan of the whole sessions table anywhere.
        assert "SEARCH sessions USING PRIMARY KEY (id>? AND id<?)" in plan, plan
        assert "SEARCH sessions_untagged USING PRIMARY KEY (user_id=?)" in plan, plan
        assert "SCAN sessions " not in plan + " ", plan


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
    assert _query(db, "SELECT version FROM sessionward_schema") == [(3,)]


def test_older_schema_is_migrated(db: Path) -> None:
    conn = _raw(db)
    conn.execute("CREATE TABLE sessionward_schema (version INTEGER NOT NULL) STRICT")
    conn.execute("INSERT INTO sessionward_schema VALUES (0)")
    conn.close()
    store = SQLiteStore(db, create=False)
    try:
        record = make_record(FakeClock().now())
        store.add(record)
        assert store.get(record.id) == record
    finally:
        store.close()
    assert _query(db, "SELECT version FROM sessionward_schema") == [(3,)]


def _schema_1_file(db: Path, records: list[SessionRecord]) -> None:
    """A file as sessionward with schema 1 wrote it (per-user index, random ids)."""
    conn = _raw(db)
    conn.execute("CREATE TABLE sessionward_schema (version INTEGER NOT NULL) STRICT")
    conn.execute("INSERT INTO sessionward_schema VALUES (1)")
    for statement in async_sqlite.MIGRATIONS[1]:
        conn.execute(statement)
    columns = SessionRecord._fields[:17]  # the record's fields as schema 1 stored them
    insert = f"INSERT INTO sessions ({', '.join(columns)}) VALUES ({', '.join('?' * 17)})"  # noqa: S608
    conn.executemany(insert, [r[:17] for r in records])
    conn.close()


def test_schema_1_file_keeps_every_users_sessions(db: Path) -> None:
    clock = FakeClock()
    old = [
        make_record(clock.now(), user_id=user, id=f"{user}-{i}-".ljust(16, "x"))
        for user in ("alice", "bob")
        for i in range(3)
    ]
    anonymous = make_record(clock.now(), user_id=None, id="anonymous".ljust(16, "x"))
    _schema_1_file(db, [*old, anonymous])
    store = SQLiteStore(db)
    try:
        assert _query(db, "SELECT version FROM sessionward_schema") == [(3,)]
        assert _query(db, "SELECT count(*) FROM sessions_untagged") == [(6,)]
        fresh = make_record(clock.now() + 1, user_id="alice", id=store.new_session_id("alice"))
        store.add(fresh)
        assert _query(db, "SELECT count(*) FROM sessions_untagged") == [(6,)]  # tagged: none
        listed = [r.id for r in store.list_user("alice")]
        assert listed == [r.id for r in old[:3]] + [fresh.id]
        assert store.get(anonymous.id) == anonymous
        assert sorted(store.delete_user("alice", keep=old[1].id)) == sorted(
            [old[0].id, old[2].id, fresh.id]
        )
        assert [r.id for r in store.list_user("alice")] == [old[1].id]
        assert [r.id for r in store.list_user("bob")] == [r.id for r in old[3:]]
        # The triggers took the deleted sessions' entries with them.
        assert _query(db, "SELECT id FROM sessions_untagged WHERE user_id = 'alice'") == [
            (old[1].id,)
        ]
    finally:
        store.close()


def test_ids_carry_a_keyed_user_tag(tmp_path: Path) -> None:
    first, second = SQLiteStore(tmp_path / "a.db"), SQLiteStore(tmp_path / "b.db")
    try:
        ids = {first.new_session_id("alice") for _ in range(50)}
        assert len(ids) == 50
        assert {i[:4] for i in ids} == {first.new_session_id("alice")[:4]}
        assert all(len(i) == 16 for i in ids)
        assert first.new_session_id("bob")[:4] != first.new_session_id("alice")[:4]
        # The tag is keyed by a random per-file salt: another file tags alice differently
        # (one chance in 2**24 to collide), so an id does not reveal a guessable user.
        assert second.new_session_id("alice")[:4] != first.new_session_id("alice")[:4]
        anonymous = {first.new_session_id(None)[:4] for _ in range(20)}
        assert len(anonymous) > 1
    finally:
        first.close()
        second.close()
    reopened = SQLiteStore(tmp_path / "a.db")
    try:  # the salt lives in the file: the same user keeps the same tag across opens
        assert reopened.new_session_id("alice")[:4] == next(iter(ids))[:4]
    finally:
        reopened.close()


@pytest.mark.parametrize(
    "weird",
    ["{tag}~tail", "{tag}\u00e9", "{tag}", "{tag}\U0010ffffz", "{tag}\x7f"],
)
def test_ids_that_only_look_tagged_are_still_listed(db: Path, weird: str) -> None:
    # The range scan and the Python-side test are one predicate: an id that starts with the
    # tag but sorts outside the range is kept in the untagged list, never lost.
    store = SQLiteStore(db)
    try:
        tag = store.new_session_id("alice")[:4]
        session_id = weird.format(tag=tag).encode().decode("unicode_escape")
        record = make_record(FakeClock().now(), user_id="alice", id=session_id)
        store.add(record)
        assert [r.id for r in store.list_user("alice")] == [session_id]
        store.replace(record._replace(version=2, data='{"a":1}'), expected_version=1)
        assert [r.data for r in store.list_user("alice")] == ['{"a":1}']
        assert store.delete_user("alice") == [session_id]
        assert store.list_user("alice") == []
        assert _query(db, "SELECT count(*) FROM sessions_untagged") == [(0,)]
    finally:
        store.close()


def test_moving_a_record_between_users_moves_its_listing(db: Path) -> None:
    store = SQLiteStore(db)
    try:
        clock = FakeClock()
        tagged_for_bob = store.new_session_id("bob")
        record = make_record(clock.now(), user_id="alice", id=tagged_for_bob)
        store.add(record)  # untagged for alice
        assert [r.id for r in store.list_user("alice")] == [tagged_for_bob]
        moved = record._replace(user_id="bob", version=2)
        store.replace(moved, expected_version=1)  # tagged for bob
        assert store.list_user("alice") == []
        assert store.list_user("bob") == [moved]
        assert _query(db, "SELECT count(*) FROM sessions_untagged") == [(0,)]
        back = moved._replace(user_id="carol", version=3)
        store.replace(back, expected_version=2)  # untagged for carol
        assert store.list_user("bob") == []
        assert store.list_user("carol") == [back]
        assert store.delete(back.id)
        assert _query(db, "SELECT count(*) FROM sessions_untagged") == [(0,)]
    finally:
        store.close()


def test_a_login_writes_one_page(db: Path) -> None:
    # What schema 2 is for: a login's INSERT changes the sessions table only, so its commit
    # appends one page to the WAL (a page split now and then adds more).
    from sessionward import SessionManager
    from sessionward.core.events import EventBus

    store = SQLiteStore(db)
    try:
        manager = SessionManager(store, events=EventBus([]))
        for i in range(300):
            manager.issue(f"user{i}", data={"pad": "x" * 200})
        conn = store._connection()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        wal = Path(f"{db}-wal")
        frames = []
        for i in range(40):
            before = wal.stat().st_size
            manager.issue(f"newcomer{i}")
            frames.append((wal.stat().st_size - before) // (4096 + 24))
        assert sorted(frames)[len(frames) // 2] == 1, frames
        assert _query(db, "SELECT count(*) FROM sessions_untagged") == [(0,)]
    finally:
        store.close()


def test_failed_migration_rolls_back_entirely(db: Path) -> None:
    conn = _raw(db)
    conn.execute("CREATE TABLE sessionward_schema (version INTEGER NOT NULL) STRICT")
    conn.execute("INSERT INTO sessionward_schema VALUES (0)")
    conn.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY)")  # blocks migration 1
    conn.close()
    with pytest.raises(StoreCorrupt):
        SQLiteStore(db)
    assert _query(db, "SELECT version FROM sessionward_schema") == [(0,)]
    assert not _query(db, "SELECT name FROM sqlite_master WHERE name = 'sessions_by_user'")


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
    assert _query(db, "SELECT version FROM sessionward_schema") == [(3,)]


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
