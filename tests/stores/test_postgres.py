"""PostgreSQL store specifics: schema and migrations, prepared statements, races, purge.

The contract suite (tests/contract) proves the store's behaviour; these tests prove what is
particular to PostgreSQL: the schema-version table, statements prepared on the server, no
lost update and no double grant when threads race, and a purge that leaves readers alone.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from servers import PostgresServer, free_port
from servers import postgres_server as postgres_server  # a fixture

from sessionward import AsyncSessionManager, Policy, SessionManager
from sessionward.core.record import SessionRecord
from sessionward.errors import (
    ConfigError,
    InvalidToken,
    SessionLimitReached,
    StoreCorrupt,
    StoreUnavailable,
)
from sessionward.stores.postgres import AsyncPostgresStore, PostgresStore
from sessionward.testing import FakeClock

from .nodes import NodeB


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
    first = PostgresStore(server.conninfo, schema="future")
    first.open()
    first.close()  # an unclosed pool's __del__ can fail later, inside another test
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
        written = [row[0] for row in conn.execute("SELECT statement FROM pg_prepared_statements")]
    reader = store._readers.reader  # reads run on this thread's own connection
    read = [row[0] for row in reader.conn.execute("SELECT statement FROM pg_prepared_statements")]
    store.close()
    assert any(s.startswith("SELECT id, secret_hash") for s in read)
    assert any(s.startswith("INSERT INTO sessionward.sessions") for s in written)


def test_reads_run_outside_the_pool(server: PostgresServer) -> None:
    store = PostgresStore(server.conninfo, min_size=2, max_size=2, timeout=0.5)
    manager = SessionManager(store, clock=FakeClock())
    try:
        session = manager.issue("alice")  # a write: through the pool
        with store._pool.connection(), store._pool.connection():  # the whole pool is taken
            found: list[object] = []
            worker = threading.Thread(target=lambda: found.append(store.get(session.id)))
            worker.start()
            worker.join(timeout=5)
            # Each thread's first read opens a connection of its own (max_size of them).
            assert found == [session.record]
            assert store.get(session.id) == session.record
    finally:
        store.close()


def test_a_dead_reader_is_replaced(server: PostgresServer) -> None:
    store = PostgresStore(server.conninfo)
    manager = SessionManager(store, clock=FakeClock())
    try:
        session = manager.issue("alice", data={"n": 1})
        other = manager.issue("bob", data={"n": 2})
        assert store.get(session.id) == session.record
        pid = store._readers.reader.conn.info.backend_pid
        sql(server, "SELECT pg_terminate_backend(%s)", pid)
        time.sleep(0.1)
        # The read meets the dead connection and is answered through the pool instead.
        assert store.get(other.id) == other.record
        deadline = time.monotonic() + 3
        while getattr(store._readers, "reader", None) is None:
            assert time.monotonic() < deadline, "no new reader was opened"
            assert store.get(session.id) == session.record
            time.sleep(0.05)
        assert store._readers.reader.conn.info.backend_pid != pid
        assert store.get(session.id) == session.record
    finally:
        store.close()


def test_a_forked_child_reads_on_a_connection_of_its_own(server: PostgresServer) -> None:
    store = PostgresStore(server.conninfo)
    manager = SessionManager(store, clock=FakeClock())
    try:
        session = manager.issue("alice")
        assert store.get(session.id) == session.record
        parent = store._readers.reader.conn.info.backend_pid
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            try:
                same = store.get(session.id) == session.record
                own = store._readers.reader.conn.info.backend_pid != parent
                os.write(write_end, b"1" if same and own else b"0")
            finally:
                os._exit(0)
        os.close(write_end)
        os.waitpid(child, 0)
        assert os.read(read_end, 1) == b"1"
        os.close(read_end)
        # The child neither used nor closed the parent's connection.
        assert store.get(session.id) == session.record
        assert store._readers.reader.conn.info.backend_pid == parent
    finally:
        store.close()


def test_a_cancelled_async_read_leaves_no_reply_behind(server: PostgresServer) -> None:
    async def scenario() -> int:
        store = AsyncPostgresStore(server.conninfo)
        manager = AsyncSessionManager(store, clock=FakeClock())
        cancelled = 0
        try:
            sessions = [await manager.issue(f"user-{i}", data={"i": i}) for i in range(4)]
            records = {s.id: s.record for s in sessions}
            for round_ in range(200):
                wanted = sessions[round_ % 4].id
                try:  # a deadline that often expires while the reply is on its way
                    found = await asyncio.wait_for(store.get(wanted), timeout=(round_ % 7) * 5e-5)
                except TimeoutError:
                    cancelled += 1
                    continue
                assert found == records[wanted]  # never another read's reply
                assert await store.get(wanted) == records[wanted]
            return cancelled
        finally:
            await store.close()

    assert asyncio.run(scenario()) > 0


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


# -- local read cache (LISTEN/NOTIFY) ------------------------------------------------------------

NEVER_TOUCH = Policy(idle_timeout=3600, absolute_timeout=7200, touch_interval=3000)


def _seen_by(node_b: NodeB, token: str, before: object, after: object) -> bool:
    """Validate on B until it answers ``after`` (within 2 s), answering only ``before`` until
    then; returns whether the very first answer was ``after``. Answers are ``{"ok": data}`` or
    ``{"rejected": reason}``.

    PostgreSQL signals every listener at commit, and A's write waits to hear its own echo,
    but nothing acknowledges B's delivery (NOTIFY has no equivalent of the Redis store's PING):
    on a starved CPU B's server process may send it a moment later."""
    deadline = time.monotonic() + 2.0
    first = True
    while True:
        answer = node_b.validate(token)
        outcome = {k: v for k, v in answer.items() if k in ("ok", "rejected")}
        if outcome == after:
            return first
        assert outcome == before, outcome
        assert time.monotonic() < deadline, f"B never saw the change: {answer}"
        first = False
        time.sleep(0.001)


def test_a_revoke_on_one_node_is_seen_by_the_next_validate_on_another(
    server: PostgresServer,
) -> None:
    node_a = SessionManager(
        PostgresStore(server.conninfo, schema="cached", cache_size=1000), policy=NEVER_TOUCH
    )
    assert isinstance(node_a.store, PostgresStore)
    node_a.store.open()  # installs the announcing trigger before B starts listening
    node_b = NodeB("postgres", server.conninfo, "cached")
    served_from_memory = 0
    at_once = 0
    try:
        for round_ in range(40):
            session = node_a.issue(f"user-{round_ % 5}", data={"round": round_})
            token = session.token
            assert token is not None
            first = node_b.validate(token)
            second = node_b.validate(token)
            assert first["ok"] == second["ok"] == {"round": round_}
            assert isinstance(first["hits"], int)
            assert isinstance(second["hits"], int)
            served_from_memory += second["hits"] - first["hits"]
            node_a.update_data(session, lambda d: d.update(changed=True))
            changed = {"round": round_, "changed": True}
            at_once += _seen_by(node_b, token, {"ok": {"round": round_}}, {"ok": changed})
            if round_ % 2:
                node_a.revoke(session.id)
            else:
                node_a.revoke_user(f"user-{round_ % 5}")
            at_once += _seen_by(node_b, token, {"ok": changed}, {"rejected": "unknown"})
        assert served_from_memory >= 30  # B answered the repeat validate from memory
        print(f"B's very next validate saw the change in {at_once}/80 cases")
    finally:
        node_b.close()
        node_a.close()


def test_changes_made_behind_the_stores_back_are_announced(server: PostgresServer) -> None:
    store = PostgresStore(server.conninfo, schema="cached", cache_size=100)
    manager = SessionManager(store, policy=NEVER_TOUCH)
    try:
        session = manager.issue("alice", data={"n": 1})
        assert session.token is not None
        manager.validate(session.token)
        before = store.cache_info()["hits"]
        for _ in range(10):
            assert manager.validate(session.token).data == {"n": 1}
        assert store.cache_info()["hits"] == before + 10
        # Another tool (psql, a migration script) changes the row: the trigger announces it.
        sql(server, "UPDATE cached.sessions SET data = '{\"n\": 2}' WHERE id = %s", session.id)
        deadline = time.monotonic() + 2
        while manager.validate(session.token).data != {"n": 2}:
            assert time.monotonic() < deadline, "the change never reached the cache"
            time.sleep(0.001)
        sql(server, "DELETE FROM cached.sessions WHERE id = %s", session.id)
        deadline = time.monotonic() + 2
        while True:
            try:
                manager.validate(session.token)
            except InvalidToken:
                break
            assert time.monotonic() < deadline, "the deletion never reached the cache"
            time.sleep(0.001)
    finally:
        manager.close()


def test_no_cache_while_the_listener_is_down(server: PostgresServer) -> None:
    store = PostgresStore(server.conninfo, schema="cached", cache_size=100)
    manager = SessionManager(store, policy=NEVER_TOUCH)
    try:
        session = manager.issue("alice")
        assert session.token is not None
        manager.validate(session.token)
        manager.validate(session.token)
        assert store.cache_info()["size"] == 1
        assert store.cache_info()["listening"] == 1
        # The listening connection dies; the announcement of the deletion is lost with it.
        sql(
            server,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN sessionward_%%' AND pid <> pg_backend_pid()",
        )
        sql(server, "DELETE FROM cached.sessions WHERE id = %s", session.id)
        time.sleep(0.2)  # whatever the server sends before closing has arrived
        with pytest.raises(InvalidToken):
            manager.validate(session.token)
        assert store.cache_info()["size"] == 0
        fresh = manager.issue("alice")
        assert fresh.token is not None
        hits = store.cache_info()["hits"]
        deadline = time.monotonic() + 5
        while store.cache_info()["hits"] == hits:
            assert time.monotonic() < deadline, "never listened again"
            manager.validate(fresh.token)  # listens again after a pause, then caches again
            time.sleep(0.05)
        assert store.cache_info()["listening"] == 1
    finally:
        manager.close()


def test_stores_without_a_cache_install_no_trigger(server: PostgresServer) -> None:
    plain = PostgresStore(server.conninfo, schema="uncached")
    try:
        plain.open()
        assert (
            sql(
                server,
                "SELECT tgname FROM pg_trigger WHERE tgname = 'sessions_announce'"
                " AND tgrelid = 'uncached.sessions'::regclass",
            )
            == []
        )
        assert plain.cache_info() == {"hits": 0, "misses": 0, "size": 0, "listening": 0}
    finally:
        plain.close()
    cached = PostgresStore(server.conninfo, schema="uncached", cache_size=10)
    try:
        cached.open()
        assert sql(
            server,
            "SELECT tgname FROM pg_trigger WHERE tgname = 'sessions_announce'"
            " AND tgrelid = 'uncached.sessions'::regclass",
        ) == [("sessions_announce",)]
    finally:
        cached.close()


def test_async_cached_store_sees_revocations(server: PostgresServer) -> None:
    async def scenario() -> None:
        writer = AsyncSessionManager(
            AsyncPostgresStore(server.conninfo, schema="cached", cache_size=100),
            policy=NEVER_TOUCH,
        )
        reader_store = AsyncPostgresStore(server.conninfo, schema="cached", cache_size=100)
        reader = AsyncSessionManager(reader_store, policy=NEVER_TOUCH)
        try:
            for round_ in range(10):
                session = await writer.issue("bob", data={"r": round_})
                assert session.token is not None
                await reader.validate(session.token)
                assert (await reader.validate(session.token)).data == {"r": round_}
                await writer.revoke(session.id)
                deadline = time.monotonic() + 2.0  # see _seen_by: delivery is PostgreSQL's
                while True:
                    try:
                        await reader.validate(session.token)
                    except InvalidToken:
                        break
                    assert time.monotonic() < deadline, "the revocation never reached B"
                    await asyncio.sleep(0.001)
            assert reader_store.cache_info()["hits"] >= 5
        finally:
            await writer.close()
            await reader.close()

    asyncio.run(scenario())
