"""PostgreSQL store specifics: schema, prepared statements, races, purge, failures, fork and
the LISTEN/NOTIFY broadcast.

The contract suite (tests/contract) proves the store's behaviour; these tests prove what is
particular to PostgreSQL. Outages and kill -9 are in test_failures.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from servers import WAIT, PostgresServer, free_port
from servers import postgres_server as postgres_server  # a fixture

from sessionward import AsyncSessionManager, Policy, SessionManager
from sessionward.core.record import SessionRecord
from sessionward.errors import (
    ConfigError,
    InvalidArgument,
    SessionLimitReached,
    StoreCorrupt,
    StoreUnavailable,
)
from sessionward.stores import AsyncBroadcast, AsyncUserIndex, Broadcast, UserCap, UserIndex
from sessionward.stores.postgres import AsyncPostgresStore, PostgresStore
from sessionward.testing import FakeClock

NOW = 1_800_000_000.0


@pytest.fixture
def server(request: pytest.FixtureRequest) -> PostgresServer:
    found = request.getfixturevalue("postgres_server")
    assert isinstance(found, PostgresServer)
    found.empty()
    return found


@pytest.fixture
def store(server: PostgresServer) -> Iterator[PostgresStore]:
    opened = PostgresStore(server.conninfo, max_size=10)
    yield opened
    opened.close()


def sql(server: PostgresServer, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(server.conninfo, autocommit=True) as conn:
        cursor = conn.execute(query, params or None)
        return cursor.fetchall() if cursor.description else []


def record(session_id: str, user_id: str | None = "alice", **fields: Any) -> SessionRecord:
    base = SessionRecord(
        session_id, b"\x01" * 16, None, 0.0, 0, user_id, 1, NOW, "", "{}",
        NOW, NOW, NOW, NOW + 1800, NOW + 28_800, 1, "[]",
    )  # fmt: skip
    return base._replace(**fields)


def _race(count: int, work: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            results[i] = work(i)
        except Exception as exc:  # the outcome is what we check
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _drop_schema(server: PostgresServer, schema: str) -> None:
    sql(server, f"DROP SCHEMA IF EXISTS {schema} CASCADE")


# -- schema ------------------------------------------------------------------------------------


def test_schema_is_created_with_its_index_and_trigger(
    server: PostgresServer, store: PostgresStore
) -> None:
    store.open()
    assert sql(server, "SELECT version FROM sessionward.schema_version") == [(2,)]
    indexes = {
        row[0]
        for row in sql(
            server,
            "SELECT indexname FROM pg_indexes"
            " WHERE schemaname = 'sessionward' AND tablename = 'sessions'",
        )
    }
    assert indexes == {"sessions_pkey", "sessions_by_user"}
    triggers = sql(
        server,
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'sessionward.sessions'::regclass"
        " AND NOT tgisinternal",
    )
    assert triggers == [("announce_change",)]


@pytest.mark.parametrize("version", [1, 3, 99])
def test_another_schema_version_is_refused(server: PostgresServer, version: int) -> None:
    first = PostgresStore(server.conninfo, schema="other_version")
    first.open()
    first.close()
    sql(server, "UPDATE other_version.schema_version SET version = %s", version)
    later = PostgresStore(server.conninfo, schema="other_version")
    try:
        with pytest.raises(StoreCorrupt, match=f"version {version};.* reads version 2 only"):
            later.get("AAAAAAAAAAAAAAAA")
    finally:
        later.close()
        _drop_schema(server, "other_version")


def test_a_schema_sessionward_did_not_make_is_refused(server: PostgresServer) -> None:
    sql(server, "CREATE SCHEMA foreign_app")
    sql(server, "CREATE TABLE foreign_app.sessions (key text PRIMARY KEY, value bytea)")
    store = PostgresStore(server.conninfo, schema="foreign_app")
    try:
        with pytest.raises(StoreCorrupt, match="not the schema sessionward expects"):
            store.get("AAAAAAAAAAAAAAAA")
        # Nothing was left behind by the refused creation.
        assert sql(server, "SELECT to_regclass('foreign_app.schema_version')") == [(None,)]
    finally:
        store.close()
        _drop_schema(server, "foreign_app")


def test_a_dropped_table_is_store_corrupt(server: PostgresServer) -> None:
    store = PostgresStore(server.conninfo, schema="dropped")
    try:
        store.open()
        sql(server, "DROP TABLE dropped.sessions")
        with pytest.raises(StoreCorrupt):
            store.get("AAAAAAAAAAAAAAAA")
        with pytest.raises(StoreCorrupt):
            store.add(record("AAAAAAAAAAAAAAAA"))
    finally:
        store.close()
        _drop_schema(server, "dropped")


def test_concurrent_first_opens_create_the_schema_once(server: PostgresServer) -> None:
    stores = [PostgresStore(server.conninfo, schema="racing") for _ in range(6)]
    try:
        assert _race(6, lambda i: stores[i].open()) == [None] * 6
        assert sql(server, "SELECT version FROM racing.schema_version") == [(2,)]
    finally:
        for opened in stores:
            opened.close()
        _drop_schema(server, "racing")


def test_an_existing_schema_needs_only_data_rights(server: PostgresServer) -> None:
    owner = PostgresStore(server.conninfo, schema="least")
    owner.open()
    owner.close()
    sql(server, "DROP ROLE IF EXISTS sw_app")
    sql(server, "CREATE ROLE sw_app LOGIN")
    sql(server, "GRANT USAGE ON SCHEMA least TO sw_app")
    sql(server, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA least TO sw_app")
    conninfo = server.conninfo.replace(f"user={server.user}", "user=sw_app")
    store = PostgresStore(conninfo, schema="least")
    try:
        store.add(record("AAAAAAAAAAAAAAAA"))
        store.touch("AAAAAAAAAAAAAAAA", last_seen=NOW + 1, expires_at=NOW + 1801)
        found = store.get("AAAAAAAAAAAAAAAA")
        assert found is not None
        assert found.last_seen == NOW + 1
    finally:
        store.close()
        _drop_schema(server, "least")
        sql(server, "DROP ROLE sw_app")


@pytest.mark.parametrize(
    "options",
    [
        {"schema": "x; DROP TABLE y"},
        {"schema": "Upper"},
        {"schema": "s" * 56},
        {"min_size": 5, "max_size": 2},
        {"max_size": 0},
        {"timeout": 0},
        {"connect_timeout": 0},
    ],
    ids=repr,
)
def test_bad_options_are_config_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        PostgresStore("host=127.0.0.1", **options)


def test_the_store_offers_its_capabilities() -> None:
    assert isinstance(PostgresStore("host=127.0.0.1"), UserIndex)
    assert isinstance(PostgresStore("host=127.0.0.1"), Broadcast)
    assert isinstance(AsyncPostgresStore("host=127.0.0.1"), AsyncUserIndex)
    assert isinstance(AsyncPostgresStore("host=127.0.0.1"), AsyncBroadcast)


# -- records -------------------------------------------------------------------------------------


def test_the_successor_field_round_trips(store: PostgresStore) -> None:
    fresh = record("AAAAAAAAAAAAAAAA")
    store.add(fresh)
    stored = store.get(fresh.id)
    assert stored == fresh
    assert stored.successor is None
    linked = fresh._replace(successor=bytes(range(256)), version=2)
    store.replace(linked, expected_version=1)
    found = store.get(fresh.id)
    assert found == linked
    assert found is not None
    assert type(found.successor) is bytes
    assert store.list_user("alice") == [linked]
    second = record("BBBBBBBBBBBBBBBB", successor=b"")
    store.add(second)
    assert store.get(second.id) == second


@pytest.mark.parametrize(
    "bad",
    [{"data": '{"a":"\x00"}'}, {"user_id": "lone \ud800 surrogate"}],
    ids=["nul", "surrogate"],
)
def test_text_postgres_cannot_hold_is_invalid_argument(
    store: PostgresStore, bad: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgument):
        store.add(record("AAAAAAAAAAAAAAAA", **bad))
    assert store.get("AAAAAAAAAAAAAAAA") is None


def test_hot_statements_are_prepared_on_the_server(server: PostgresServer) -> None:
    store = PostgresStore(server.conninfo, min_size=1, max_size=1)  # one connection to look at
    manager = SessionManager(store, clock=FakeClock())
    try:
        session = manager.issue("alice")
        assert session.token is not None
        for _ in range(3):
            manager.validate(session.token)
        assert store._pool is not None
        with store._pool.connection() as conn:  # the pool's only connection
            prepared = [
                row[0] for row in conn.execute("SELECT statement FROM pg_prepared_statements")
            ]
    finally:
        store.close()
    assert any(s.startswith("SELECT id, secret_hash") for s in prepared)
    assert any(s.startswith("INSERT INTO sessionward.sessions") for s in prepared)


# -- races -------------------------------------------------------------------------------------


def test_no_lost_update_under_racing_writers(store: PostgresStore) -> None:
    manager = SessionManager(store, clock=FakeClock())
    session = manager.issue("erin", data={"n": 0})

    def bump(i: int) -> None:
        for _ in range(25):
            manager.update_data(session.id, lambda d: d.update(n=d["n"] + 1), retries=500)

    assert _race(8, bump) == [None] * 8
    final = manager.get(session.id)
    assert final is not None
    assert final.data["n"] == 200
    assert final.version == 201


def test_touch_never_moves_last_seen_backwards(store: PostgresStore) -> None:
    store.add(record("AAAAAAAAAAAAAAAA"))
    times = [NOW + t for t in (5, 3, 9, 1, 7)]
    _race(5, lambda i: store.touch("AAAAAAAAAAAAAAAA", last_seen=times[i], expires_at=times[i]))
    found = store.get("AAAAAAAAAAAAAAAA")
    assert found is not None
    assert (found.last_seen, found.expires_at, found.version) == (NOW + 9, NOW + 9, 1)


# Many processes log one user in at once, each with a store (and pool) of its own.
_LOGINS = r"""
import sys
from sessionward.errors import SessionLimitReached
from sessionward.stores import UserCap
from sessionward.stores.postgres import PostgresStore
from sessionward.core.record import SessionRecord

conninfo, evict, name = sys.argv[1], sys.argv[2] == "evict", sys.argv[3]
store = PostgresStore(conninfo, max_size=1)
store.open()
print("ready", flush=True)
sys.stdin.readline()
for i in range(4):
    record = SessionRecord(f"{name}{i:08d}", b"h", None, 0.0, 0, "carol", 1, None, "", "{}",
                           1e9 + i, 0.0, 0.0, 4e9, 4e9, 1, "[]")
    try:
        print(" ".join(["granted", *store.add(record, cap=UserCap(3, evict, 2e9))]), flush=True)
    except SessionLimitReached:
        print("rejected", flush=True)
store.close()
"""


@pytest.mark.parametrize("mode", ["reject", "evict"])
def test_the_cap_holds_across_processes(server: PostgresServer, mode: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _LOGINS, server.conninfo, mode, f"p{k}x"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for k in range(6)
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.close()
    lines = []
    for worker in workers:
        assert worker.stdout is not None
        lines += worker.stdout.read().split("\n")
        worker.stdout.close()
        assert worker.wait(timeout=60) == 0
    granted = [line for line in lines if line.startswith("granted")]
    left = sql(server, "SELECT count(*) FROM sessionward.sessions WHERE user_id = 'carol'")
    assert left == [(3,)]
    if mode == "reject":
        assert len(granted) == 3
        assert lines.count("rejected") == 21
    else:
        assert len(granted) == 24
        evicted = [i for line in granted for i in line.split()[1:]]
        assert len(evicted) == len(set(evicted)) == 21


def test_async_races_hold_too(server: PostgresServer) -> None:
    async def scenario() -> tuple[int, int]:
        store = AsyncPostgresStore(server.conninfo, max_size=6)
        manager = AsyncSessionManager(
            store,
            clock=FakeClock(),
            policy=Policy(max_sessions_per_user=2, on_session_limit="reject"),
        )
        outcomes = await asyncio.gather(
            *(manager.issue("frank") for _ in range(8)), return_exceptions=True
        )
        assert all(isinstance(o, SessionLimitReached) for o in outcomes if isinstance(o, Exception))
        session = await manager.issue("grace", data={"n": 0})
        await asyncio.gather(
            *(
                manager.update_data(session.id, lambda d: d.update(n=d["n"] + 1), retries=100)
                for _ in range(20)
            )
        )
        final = await manager.get(session.id)
        await manager.close()
        assert final is not None
        return sum(not isinstance(o, BaseException) for o in outcomes), final.data["n"]

    assert asyncio.run(scenario()) == (2, 20)


# -- purge -------------------------------------------------------------------------------------


def test_purge_deletes_in_chunks_and_leaves_readers_alone(
    server: PostgresServer, store: PostgresStore
) -> None:
    clock = FakeClock()
    now = clock.now()
    store.open()
    sql(
        server,
        "INSERT INTO sessionward.sessions SELECT 'x' || lpad(i::text, 15, '0'), '\\x00', NULL,"
        " 0, 0, 'u' || (i %% 50), 1, %s, '', '{}', %s, %s, %s, %s, %s, 1, '[]', NULL"
        " FROM generate_series(1, 6000) AS i",
        now, now - 5000, now - 5000, now - 5000, now - 10, now + 100,
    )  # fmt: skip
    manager = SessionManager(store, clock=clock)
    live = manager.issue("reader")
    assert live.token is not None
    token = live.token
    slowest = 0.0
    done = threading.Event()

    def read() -> None:
        nonlocal slowest
        while not done.is_set():
            started = time.monotonic()
            manager.validate(token)
            slowest = max(slowest, time.monotonic() - started)

    reader = threading.Thread(target=read)
    reader.start()
    started = time.monotonic()
    try:
        assert store.purge_expired(now) == 6000
    finally:
        purging = time.monotonic() - started
        done.set()
        reader.join(timeout=10)
    assert store.count() == 1
    # A reader held up by the purge would wait about as long as the purge (longer than usual
    # on a loaded machine): no read took half of it, nor half a second.
    assert slowest < max(0.5, purging / 2), (slowest, purging)


# -- failures ----------------------------------------------------------------------------------


def test_unreachable_server_is_store_unavailable() -> None:
    store = PostgresStore(f"host=127.0.0.1 port={free_port()} user=nobody", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.get("AAAAAAAAAAAAAAAA")
    assert time.monotonic() - started < 5
    store.close()


def test_a_closed_store_is_unavailable(server: PostgresServer) -> None:
    store = PostgresStore(server.conninfo)
    store.open()
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreUnavailable, match="closed"):
        store.get("AAAAAAAAAAAAAAAA")


def test_a_read_after_a_restart_is_retried_on_a_fresh_connection(
    server: PostgresServer,
) -> None:
    store = PostgresStore(server.conninfo, min_size=1, max_size=1)
    try:
        store.add(record("AAAAAAAAAAAAAAAA"))
        server.restart("fast")  # the pool's only connection is now a dead one
        assert store.get("AAAAAAAAAAAAAAAA") == record("AAAAAAAAAAAAAAAA")
    finally:
        store.close()


def test_while_the_server_is_down_requests_fail_fast(server: PostgresServer) -> None:
    store = PostgresStore(server.conninfo, timeout=30.0)
    try:
        store.add(record("AAAAAAAAAAAAAAAA"))
        server.stop("immediate")
        took = []
        for _ in range(5):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                store.get("AAAAAAAAAAAAAAAA")
            took.append(time.monotonic() - started)
        assert max(took) < 5.0, took  # not the 30 s pool timeout
    finally:
        server.start()
    deadline = time.monotonic() + WAIT
    while True:  # and back on its own once the server is
        try:
            assert store.get("AAAAAAAAAAAAAAAA") == record("AAAAAAAAAAAAAAAA")
            break
        except StoreUnavailable:
            assert time.monotonic() < deadline, "the store did not come back"
            time.sleep(0.05)
    store.close()


# -- fork --------------------------------------------------------------------------------------


def _backend_pid(store: PostgresStore) -> int:
    assert store._pool is not None
    with store._pool.connection() as conn:
        return int(conn.info.backend_pid)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with the pool's threads
def test_a_forked_child_opens_its_own_pool(server: PostgresServer) -> None:
    store = PostgresStore(server.conninfo, min_size=1, max_size=1)
    subscription = store.subscribe()
    store.add(record("AAAAAAAAAAAAAAAA"))
    parent = _backend_pid(store)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            import gc

            same = store.get("AAAAAAAAAAAAAAAA") == record("AAAAAAAAAAAAAAAA")
            own = _backend_pid(store) != parent
            lost = subscription.changed() is None  # the parent's listener is not ours
            gc.collect()  # the inherited pool is garbage now: collecting it must be harmless
            store.close()
            code = 0 if same and own and lost else 2
        finally:
            os.write(write_end, bytes([code]))
            os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    assert os.read(read_end, 1) == b"\x00"
    os.close(read_end)
    try:
        # The child neither used nor ended the parent's connections.
        assert store.get("AAAAAAAAAAAAAAAA") == record("AAAAAAAAAAAAAAAA")
        assert _backend_pid(store) == parent
        store.delete("AAAAAAAAAAAAAAAA")
        assert _wait_for_ids(subscription, {"AAAAAAAAAAAAAAAA"})
    finally:
        subscription.close()
        store.close()


# -- broadcast ---------------------------------------------------------------------------------


def _wait_for_ids(subscription: object, wanted: set[str], timeout: float = WAIT) -> bool:
    """Poll ``changed()`` until every id in ``wanted`` was announced (False on a loss)."""
    heard: set[str] = set()
    deadline = time.monotonic() + timeout
    while not wanted <= heard:
        ids = subscription.changed()  # type: ignore[attr-defined]
        if ids is None:
            return False
        heard.update(ids)
        assert time.monotonic() < deadline, f"never heard {wanted - heard}"
        time.sleep(0.002)
    return True


def test_every_change_is_announced(server: PostgresServer, store: PostgresStore) -> None:
    subscription = store.subscribe()
    try:
        assert subscription.changed() == []
        ids = [f"{c}" * 16 for c in "ABCDEFGH"]
        for session_id in ids[:6]:
            store.add(record(session_id, created_at=NOW - ids.index(session_id)))
        store.add(record(ids[6], user_id=None, expires_at=NOW - 1))
        time.sleep(0.05)
        assert subscription.changed() == []  # inserts change no cached record
        store.touch(ids[0], last_seen=NOW + 1, expires_at=NOW + 1801)
        assert _wait_for_ids(subscription, {ids[0]})
        store.replace(record(ids[1], version=2), expected_version=1)
        assert _wait_for_ids(subscription, {ids[1]})
        assert store.delete(ids[2])
        assert _wait_for_ids(subscription, {ids[2]})
        evicted = store.add(record(ids[7]), cap=UserCap(3, True, NOW))
        assert _wait_for_ids(subscription, set(evicted))
        deleted = store.delete_user("alice", keep=ids[7])
        assert _wait_for_ids(subscription, set(deleted))
        assert store.purge_expired(NOW) == 1
        assert _wait_for_ids(subscription, {ids[6]})
        sql(server, "UPDATE sessionward.sessions SET data = '{}' WHERE id = %s", ids[7])
        assert _wait_for_ids(subscription, {ids[7]})  # a change behind the store's back
    finally:
        subscription.close()
        subscription.close()  # idempotent
    assert subscription.changed() is None


def test_a_change_rolled_back_is_not_announced(
    server: PostgresServer, store: PostgresStore
) -> None:
    store.add(record("AAAAAAAAAAAAAAAA"))
    subscription = store.subscribe()
    try:
        with psycopg.connect(server.conninfo) as conn:
            conn.execute("DELETE FROM sessionward.sessions WHERE id = 'AAAAAAAAAAAAAAAA'")
            conn.rollback()
            conn.execute("UPDATE sessionward.sessions SET version = 2")
            time.sleep(0.1)
            assert subscription.changed() == []  # not committed yet
            conn.commit()
        assert _wait_for_ids(subscription, {"AAAAAAAAAAAAAAAA"})
        time.sleep(0.05)
        assert subscription.changed() == []  # announced once
    finally:
        subscription.close()


def test_changed_reads_only_what_has_arrived(server: PostgresServer, store: PostgresStore) -> None:
    subscription = store.subscribe()
    listener = (
        "SELECT query, state_change FROM pg_stat_activity"
        " WHERE query LIKE 'LISTEN %%' AND pid <> pg_backend_pid()"
    )
    try:
        before = sql(server, listener)
        started = time.perf_counter()
        for _ in range(1000):
            assert subscription.changed() == []
        assert time.perf_counter() - started < 5.0  # no waiting (5 ms a call would be 5 s)
        assert sql(server, listener) == before  # and not one statement sent
    finally:
        subscription.close()


def test_a_lost_listener_is_reported_then_listens_again(
    server: PostgresServer, store: PostgresStore
) -> None:
    store.add(record("AAAAAAAAAAAAAAAA"))
    store.add(record("BBBBBBBBBBBBBBBB"))
    subscription = store.subscribe()
    try:
        sql(
            server,
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN sessionward_changes' AND pid <> pg_backend_pid()",
        )
        store.delete("AAAAAAAAAAAAAAAA")  # announced to nobody: the listener is gone
        time.sleep(0.1)  # what the server sent before it ended has reached our socket
        assert subscription.changed() is None  # the very next call reports the loss
        deadline = time.monotonic() + WAIT
        while True:  # None until it listens again (at most once a second)
            time.sleep(0.05)
            answer = subscription.changed()
            if answer is not None:
                break
            assert time.monotonic() < deadline, "never listened again"
        assert answer == []
        store.delete("BBBBBBBBBBBBBBBB")
        assert _wait_for_ids(subscription, {"BBBBBBBBBBBBBBBB"})
    finally:
        subscription.close()


def test_a_server_restart_is_reported_as_a_loss(
    server: PostgresServer, store: PostgresStore
) -> None:
    subscription = store.subscribe()
    try:
        server.restart("immediate")
        time.sleep(0.1)
        assert subscription.changed() is None
    finally:
        subscription.close()


def test_subscribe_when_the_server_is_down_is_unavailable() -> None:
    store = PostgresStore(f"host=127.0.0.1 port={free_port()} user=nobody", timeout=0.5)
    with pytest.raises(StoreUnavailable):
        store.subscribe()
    store.close()


def test_async_subscription_hears_changes(server: PostgresServer) -> None:
    async def scenario() -> None:
        store = AsyncPostgresStore(server.conninfo)
        subscription = await store.subscribe()
        try:
            await store.add(record("AAAAAAAAAAAAAAAA"))
            assert await subscription.changed() == []
            await store.delete("AAAAAAAAAAAAAAAA")
            heard: list[str] = []
            deadline = time.monotonic() + WAIT
            while not heard:
                answer = await subscription.changed()
                assert answer is not None
                heard += answer
                assert time.monotonic() < deadline
                await asyncio.sleep(0.002)
            assert heard == ["AAAAAAAAAAAAAAAA"]
            sql(
                server,
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                " WHERE query LIKE 'LISTEN %%' AND pid <> pg_backend_pid()",
            )
            await asyncio.sleep(0.2)
            assert await subscription.changed() is None
        finally:
            await subscription.close()
            await store.close()

    asyncio.run(scenario())
