"""The shared PostgreSQL plumbing (``sessionward.stores._postgres_db``) and the stores on it:
schema names, advisory-lock keys, error mapping, the per-process pool, closing."""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import psycopg
import pytest
from psycopg_pool import PoolTimeout
from servers import PostgresServer, free_port
from servers import postgres_server as postgres_server  # a fixture

from sessionward.errors import ConfigError, InvalidArgument, StoreCorrupt, StoreUnavailable
from sessionward.service.throttle_storage import PostgresWindows
from sessionward.stores._postgres_db import ProcessPool, lock_key, schema_name, translate
from sessionward.stores.consumers.base import Consumer
from sessionward.stores.consumers.postgres import PostgresConsumerStore
from sessionward.stores.eventlog.postgres import PostgresEventLog
from sessionward.stores.postgres import AsyncPostgresStore, PostgresStore

REFUSED = ["", "Sessionward", "a-b", "1abc", "a b", "a;drop", "s.t", "é", "x" * 56, "a\0"]
OPENERS: dict[str, Callable[[str], object]] = {
    "sessions": lambda schema: PostgresStore("host=127.0.0.1", schema=schema),
    "async sessions": lambda schema: AsyncPostgresStore("host=127.0.0.1", schema=schema),
    "event log": lambda schema: PostgresEventLog("host=127.0.0.1", schema=schema),
    "consumers": lambda schema: PostgresConsumerStore("host=127.0.0.1", schema=schema),
}


# -- schema names ------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", REFUSED)
def test_a_schema_name_that_is_not_a_plain_identifier_is_refused(schema: str) -> None:
    with pytest.raises(ConfigError, match="schema"):
        schema_name(schema)
    for open_store in OPENERS.values():
        with pytest.raises(ConfigError, match="schema"):
            open_store(schema)


@pytest.mark.parametrize("schema", ["sessionward", "_x", "a1_b2", "x" * 55])
def test_a_plain_identifier_is_a_schema_name(schema: str) -> None:
    assert schema_name(schema) == schema
    assert schema_name(schema, "other message") == schema


def test_the_refusal_says_what_the_store_asks_for() -> None:
    with pytest.raises(ConfigError, match=r"^letters only$"):
        schema_name("A", "letters only")


# -- advisory-lock keys ------------------------------------------------------------------------

# The keys every released sessionward takes: a change would let two versions create one
# schema at the same time, or let two event-log writers commit ids out of order.
PINNED = {
    ("sessionward",): -3029878316238756964,
    ("sessionward", "alice"): 8780020201295690641,
    ("sessionward-events", "sessionward"): 8498249571857776739,
    ("sessionward", "al\udc80"): -4233738980744189250,
}


def test_lock_keys_are_the_pinned_ones() -> None:
    for parts, key in PINNED.items():
        assert lock_key(*parts) == key
        assert -(2**63) <= key < 2**63  # a PostgreSQL bigint


def test_lock_keys_are_the_same_in_another_process() -> None:
    script = (
        "from sessionward.stores._postgres_db import lock_key\n"
        "print(lock_key('sessionward'), lock_key('sessionward', 'alice'),"
        " lock_key('sessionward-events', 'sessionward'))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    expected = [
        lock_key("sessionward"),
        lock_key("sessionward", "alice"),
        lock_key("sessionward-events", "sessionward"),
    ]
    assert [int(word) for word in done.stdout.split()] == expected


def test_lock_keys_of_different_parts_differ() -> None:
    keys = {lock_key("s", "ab"), lock_key("s", "a", "b"), lock_key("sa", "b"), lock_key("s")}
    assert len(keys) == 4


# -- errors ------------------------------------------------------------------------------------


def test_driver_errors_become_store_errors() -> None:
    unicode_error = UnicodeEncodeError("utf-8", "\udc80", 0, 1, "surrogates not allowed")
    assert type(translate(unicode_error, expected="x")) is InvalidArgument
    assert type(translate(psycopg.DataError("nul"), expected="x")) is InvalidArgument
    corrupt = translate(psycopg.errors.UndefinedTable("no table"), expected="the schema it wants")
    assert type(corrupt) is StoreCorrupt
    assert "not the schema it wants" in str(corrupt)
    for down in (
        psycopg.OperationalError("connection refused"),
        psycopg.InterfaceError("connection closed"),
        PoolTimeout("couldn't get a connection"),
        psycopg.errors.AdminShutdown("terminating"),
    ):
        error = translate(down, expected="x")
        assert type(error) is StoreUnavailable
        assert type(down).__name__ in str(error)


def test_an_unreachable_server_is_unavailable_within_the_timeouts() -> None:
    conninfo = f"host=127.0.0.1 port={free_port()} user=x dbname=x"
    store = PostgresStore(conninfo, timeout=0.5, connect_timeout=1)
    log = PostgresEventLog(conninfo, timeout=0.5, connect_timeout=1)
    uses: list[Callable[[], object]] = [
        lambda: store.get("AAAAAAAAAAAAAAAA"),
        lambda: log.read(None, 10),
    ]
    try:
        for use in uses:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                use()
            # The pool's wait (0.5 s) bounds it; the rest is slack for a loaded machine.
            assert time.monotonic() - started < 5
    finally:
        store.close()
        log.close()


# -- the per-process pool ----------------------------------------------------------------------


class Made:
    """A stand-in pool: which process made it."""

    def __init__(self) -> None:
        self.pid = os.getpid()


def maker(made: list[Made]) -> Callable[[], Made]:
    def make() -> Made:
        made.append(Made())
        return made[-1]

    return make


def test_one_pool_per_process_made_once_under_concurrent_use() -> None:
    made: list[Made] = []
    pools = ProcessPool(maker(made), closed="closed")
    assert pools.pool is None
    start = threading.Barrier(8)
    got: list[Made] = []

    def use() -> None:
        start.wait(timeout=10)
        got.append(pools.get())

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(made) == 1
    assert got == made * 8
    assert pools.pool is made[0]


def test_a_closed_pool_refuses_use_and_hands_back_its_pool_once() -> None:
    made: list[Made] = []
    pools = ProcessPool(maker(made), closed="postgres: closed")
    first = pools.get()
    assert pools.close() is first  # for the caller to close
    assert pools.close() is None  # idempotent
    with pytest.raises(StoreUnavailable, match=r"^postgres: closed$"):
        pools.get()
    assert made == [first]  # nothing made after closing
    assert pools.pool is None


def test_closed_stores_refuse_use_without_connecting() -> None:
    conninfo = f"host=127.0.0.1 port={free_port()} user=x dbname=x"
    log = PostgresEventLog(conninfo)
    log.close()
    with pytest.raises(StoreUnavailable, match="event log is closed"):
        log.read(None, 1)
    store = PostgresStore(conninfo)
    store.close()
    with pytest.raises(StoreUnavailable, match="store is closed"):
        store.get("AAAAAAAAAAAAAAAA")


def _in_child(work: Callable[[], bool]) -> bool:
    """``work()`` in a forked child; its answer, read with a deadline."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 2
        try:
            code = 0 if work() else 1
        finally:
            os.write(write_end, bytes([code]))
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 30)
        assert ready, "the child did not answer"
        answer = os.read(read_end, 1)
    finally:
        os.close(read_end)
        os.waitpid(child, 0)
    return answer == b"\x00"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() in a threaded process
def test_a_forked_child_makes_its_own_pool_and_leaves_the_parents() -> None:
    made: list[Made] = []
    pools = ProcessPool(maker(made), closed="closed")
    parent = pools.get()

    def child_uses_its_own() -> bool:
        own = pools.get()
        return own is not parent and own.pid == os.getpid() and pools.get() is own

    def child_closes() -> bool:
        # The inherited pool is the parent's: closing hands back nothing to close.
        return pools.close() is None

    assert _in_child(child_uses_its_own)
    assert _in_child(child_closes)
    assert pools.get() is parent
    assert made == [parent]


def _consumers_backend(store: PostgresConsumerStore) -> int:
    with store._tx() as conn:
        return int(conn.info.backend_pid)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with the pool's threads
def test_a_forked_child_opens_its_own_consumer_pool(postgres_server: PostgresServer) -> None:
    store = PostgresConsumerStore(postgres_server.conninfo, schema="sw_fork_consumers", max_size=1)
    try:
        store.clear()
        store.add(Consumer("wh_fork", "webhook", "app", "https://h.example/", 0.0))
        parent = _consumers_backend(store)

        def child_uses_its_own() -> bool:
            import gc

            found = store.get("wh_fork")
            own = _consumers_backend(store) != parent
            gc.collect()  # the inherited pool is garbage now: collecting it must be harmless
            store.close()
            return found is not None and found.url == "https://h.example/" and own

        assert _in_child(child_uses_its_own)
        # The child neither used nor ended the parent's connection.
        assert _consumers_backend(store) == parent
        found = store.get("wh_fork")
        assert found is not None
        assert found.url == "https://h.example/"
    finally:
        store.close()


async def _windows_backend(windows: PostgresWindows) -> int:
    async with await windows._conn() as conn:
        return int(conn.info.backend_pid)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with the pool's threads
def test_a_forked_child_opens_its_own_rate_limit_pool(postgres_server: PostgresServer) -> None:
    windows = PostgresWindows(postgres_server.conninfo, time.time, max_size=1)
    key = f"fork-{time.monotonic_ns()}"
    loop = asyncio.new_event_loop()  # the parent's one loop, as in a served process
    try:
        assert loop.run_until_complete(windows.acquire_entry(key, 3, 60))
        parent = loop.run_until_complete(_windows_backend(windows))

        def child_uses_its_own() -> bool:
            async def use() -> bool:
                hit = await windows.acquire_entry(key, 3, 60)
                own = await _windows_backend(windows) != parent
                await windows.close()
                return hit and own

            return asyncio.run(use())

        assert _in_child(child_uses_its_own)
        assert loop.run_until_complete(_windows_backend(windows)) == parent
        assert loop.run_until_complete(windows.get_moving_window(key, 3, 60))[1] == 2
        assert loop.run_until_complete(windows.acquire_entry(key, 3, 60))
        assert not loop.run_until_complete(windows.acquire_entry(key, 3, 60))
    finally:
        loop.run_until_complete(windows.close())
        loop.close()
