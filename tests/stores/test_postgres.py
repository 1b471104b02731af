"""PostgreSQL store specifics: schema and migrations, prepared statements, races, purge.

The contract suite (tests/contract) proves the store's behaviour; these tests prove what is
particular to PostgreSQL: the schema-version table, statements prepared on the server, no
lost update and no double grant when threads race, and a purge that leaves readers alone.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from servers import PostgresServer, free_port
from servers import postgres_server as postgres_server  # a fixture

from sessionward import AsyncSessionManager, Policy, SessionManager
from sessionward.core.record import SessionRecord
from sessionward.errors import ConfigError, SessionLimitReached, StoreCorrupt, StoreUnavailable
from sessionward.stores.postgres import AsyncPostgresStore, PostgresStore
from sessionward.testing import FakeClock


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


# -- schema ------------------------------------------------------------------------------------


def test_schema_is_created_and_versioned(server: PostgresServer, store: PostgresStore) -> None:
    store.open()
    assert sql(server, "SELECT version FROM sessionward.schema_version") == [(1,)]
    indexes = {
        row[0]
        for row in sql(server, "SELECT indexname FROM pg_indexes WHERE schemaname = 'sessionward'")
    }
    assert {"sessions_pkey", "sessions_by_user"} <= indexes


def test_a_newer_schema_is_refused(server: PostgresServer) -> None:
    PostgresStore(server.conninfo, schema="future").open()
    sql(server, "UPDATE future.schema_version SET version = 99")
    later = PostgresStore(server.conninfo, schema="future")
    with pytest.raises(StoreCorrupt, match="newer"):
        later.get("AAAAAAAAAAAAAAAA")
    later.close()
    sql(server, "DROP SCHEMA future CASCADE")


def test_concurrent_first_opens_migrate_once(server: PostgresServer) -> None:
    stores = [PostgresStore(server.conninfo, schema="racing") for _ in range(6)]
    try:
        results = _race(6, lambda i: stores[i].open())
        assert results == [None] * 6
        assert sql(server, "SELECT version FROM racing.schema_version") == [(1,)]
    finally:
        for opened in stores:
            opened.close()
        sql(server, "DROP SCHEMA racing CASCADE")


def test_schema_names_are_checked() -> None:
    with pytest.raises(ConfigError):
        PostgresStore("host=127.0.0.1", schema="x; DROP TABLE y")


def test_hot_statements_are_prepared_on_the_server(server: PostgresServer) -> None:
    store = PostgresStore(server.conninfo, min_size=1, max_size=1)  # one connection to look at
    manager = SessionManager(store, clock=FakeClock())
    session = manager.issue("alice")
    assert session.token is not None
    for _ in range(5):
        manager.validate(session.token)
    with store._pool.connection() as conn:  # the pool's only connection (min_size=1, serial)
        statements = [
            row[0] for row in conn.execute("SELECT statement FROM pg_prepared_statements")
        ]
    store.close()
    assert any(s.startswith("SELECT id, secret_hash") for s in statements)
    assert any(s.startswith("INSERT INTO sessionward.sessions") for s in statements)


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


def test_no_double_grant_under_racing_logins(store: PostgresStore) -> None:
    clock = FakeClock()
    reject = SessionManager(
        store, clock=clock, policy=Policy(max_sessions_per_user=3, on_session_limit="reject")
    )
    results = _race(10, lambda i: reject.issue("carol"))
    granted = [r for r in results if not isinstance(r, Exception)]
    assert len(granted) == 3
    assert all(isinstance(r, SessionLimitReached) for r in results if isinstance(r, Exception))
    assert len(reject.list_user("carol")) == 3
    evict = SessionManager(store, clock=clock, policy=Policy(max_sessions_per_user=3))
    results = _race(10, lambda i: evict.issue("dave"))
    assert not [r for r in results if isinstance(r, Exception)]
    assert len(evict.list_user("dave")) == 3


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


def test_purge_leaves_readers_alone(server: PostgresServer, store: PostgresStore) -> None:
    clock = FakeClock()
    now = clock.now()
    rows = [
        (f"x{i:015d}", b"\x00" * 32, None, 0.0, 0, f"u{i % 50}", 1, now, "", "{}",
         now - 5000, now - 5000, now - 5000, now - 10, now + 100, 1, "[]")
        for i in range(6000)
    ]  # fmt: skip
    store.open()
    with psycopg.connect(server.conninfo) as conn, conn.cursor() as cursor:
        cursor.executemany(store._q.insert, rows)
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
    try:
        assert store.purge_expired(now) == 6000
    finally:
        done.set()
        reader.join(timeout=10)
    assert store.count() == 1
    assert slowest < 0.5


def test_unreachable_server_is_store_unavailable() -> None:
    store = PostgresStore(f"host=127.0.0.1 port={free_port()} user=nobody", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.get("AAAAAAAAAAAAAAAA")
    assert time.monotonic() - started < 5
    store.close()


def test_records_survive_a_clean_restart(server: PostgresServer, store: PostgresStore) -> None:
    clock = FakeClock()
    manager = SessionManager(store, clock=clock)
    sessions = [manager.issue(f"user-{i}") for i in range(20)]
    server.restart("fast")
    deadline = time.monotonic() + 5
    while True:
        try:
            found = [manager.store.get(s.id) for s in sessions]
            break
        except StoreUnavailable:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert found == [s.record for s in sessions]
    assert all(isinstance(r, SessionRecord) for r in found)
