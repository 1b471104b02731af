"""One contract for every consumer store (memory, SQLite, PostgreSQL, Redis): create-only adds,
state changes, the lease that keeps two deliverers apart, and the bounded history."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import (  # noqa: F401 - fixtures
    free_port,
    postgres_server,
    redis_cluster,
    redis_server,
)

from sessionward.errors import AlreadyExists, NotFound, StoreUnavailable
from sessionward.stores.consumers import (
    ACTIVE,
    DISABLED,
    Consumer,
    ConsumerStore,
    Delivery,
    MemoryConsumerStore,
    Outcome,
    SQLiteConsumerStore,
)

NOW = 1_800_000_000.0


def _memory(request: pytest.FixtureRequest, tmp_path: Path) -> ConsumerStore:
    return MemoryConsumerStore()


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> ConsumerStore:
    return SQLiteConsumerStore(tmp_path / "consumers.db")


def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> ConsumerStore:
    from sessionward.stores.consumers.postgres import PostgresConsumerStore

    server = request.getfixturevalue("postgres_server")
    store = PostgresConsumerStore(server.conninfo)
    store.clear()
    return store


def _redis(request: pytest.FixtureRequest, tmp_path: Path) -> ConsumerStore:
    from sessionward.stores.consumers.redis import RedisConsumerStore

    server = request.getfixturevalue("redis_server")
    server.call("FLUSHALL")
    return RedisConsumerStore(server.url)


def _redis_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> ConsumerStore:
    from sessionward.stores.consumers.redis import RedisConsumerStore

    cluster = request.getfixturevalue("redis_cluster")
    cluster.flush()
    return RedisConsumerStore(cluster.url)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], ConsumerStore]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgres": _postgres,
    "redis": _redis,
    "redis-cluster": _redis_cluster,
}


@pytest.fixture(params=list(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConsumerStore]:
    opened = BACKENDS[request.param](request, tmp_path)
    try:
        yield opened
    finally:
        opened.close()


def consumer(cid: str = "wh_1", **changes: Any) -> Consumer:
    base = Consumer(
        id=cid,
        kind="webhook",
        application="default",
        url="https://example.test/hook",
        created_at=NOW,
        config={"description": "x"},
        credentials={"secrets": [{"secret": "whsec_x", "expires": None}]},
        kinds=frozenset({"revoked"}),
        cursor="00000000000000000003",
        next_attempt=NOW,
    )
    return base.with_(**changes)


def attempt(cid: str, n: int, status: int | None = 200) -> Delivery:
    return Delivery(cid, f"e{n}", f"evt_e{n}", NOW + n, 1, status, 1.5, None if status else "x")


def test_add_get_roundtrip_and_create_only(store: ConsumerStore) -> None:
    store.add(consumer())
    assert store.get("wh_1") == consumer()
    assert store.get("missing") is None
    with pytest.raises(AlreadyExists):
        store.add(consumer(url="https://other.test/"))
    everything = consumer("wh_2", kinds=None, cursor=None, config={}, credentials={})
    store.add(everything)
    assert store.get("wh_2") == everything


def test_consumers_filter_by_application_and_kind_oldest_first(store: ConsumerStore) -> None:
    store.add(consumer("b", created_at=NOW + 2))
    store.add(consumer("a", created_at=NOW + 1))
    store.add(consumer("c", application="shop"))
    store.add(consumer("d", kind="ssf"))
    assert [c.id for c in store.consumers()] == ["c", "d", "a", "b"]
    assert [c.id for c in store.consumers("default")] == ["d", "a", "b"]
    assert [c.id for c in store.consumers("default", "webhook")] == ["a", "b"]
    assert [c.id for c in store.consumers(kind="ssf")] == ["d"]


def test_remove_is_idempotent_and_drops_the_history(store: ConsumerStore) -> None:
    store.add(consumer())
    assert [c.id for c in store.claim("me", NOW, 60, 10)] == ["wh_1"]
    assert store.finish("wh_1", "me", Outcome("c", 0, None, NOW), [attempt("wh_1", 1)], 10)
    assert store.remove("wh_1") is True
    assert store.remove("wh_1") is False
    assert store.deliveries("wh_1") == []
    store.add(consumer())  # the id is free again
    assert store.deliveries("wh_1") == []


def test_setters_change_one_thing_and_refuse_missing_consumers(store: ConsumerStore) -> None:
    store.add(consumer(failures=4, first_failure=NOW - 100, next_attempt=NOW + 500))
    store.set_credentials("wh_1", {"secrets": []})
    store.set_cursor("wh_1", "00000000000000000009")
    store.set_state("wh_1", DISABLED, "by_admin", NOW)
    got = store.get("wh_1")
    assert got is not None
    assert (got.credentials, got.cursor, got.state, got.disabled_reason, got.failures) == (
        {"secrets": []}, "00000000000000000009", DISABLED, "by_admin", 4,
    )  # fmt: skip
    store.set_state("wh_1", ACTIVE, None, NOW + 7)
    got = store.get("wh_1")
    assert got is not None
    assert (got.state, got.failures, got.first_failure, got.next_attempt) == (
        ACTIVE, 0, None, NOW + 7,
    )  # fmt: skip
    with pytest.raises(NotFound):
        store.set_cursor("nope", None)
    with pytest.raises(NotFound):
        store.set_credentials("nope", {})
    with pytest.raises(NotFound):
        store.set_state("nope", DISABLED, None, NOW)


def test_claim_takes_due_active_unleased_consumers_only(store: ConsumerStore) -> None:
    store.add(consumer("due"))
    store.add(consumer("later", next_attempt=NOW + 10))
    store.add(consumer("off", state=DISABLED))
    assert [c.id for c in store.claim("one", NOW, 60, 10)] == ["due"]
    assert store.claim("two", NOW + 5, 60, 10) == []  # "due" is held by "one"
    assert [c.id for c in store.claim("two", NOW + 30, 60, 10)] == ["later"]
    assert [c.id for c in store.claim("two", NOW + 61, 60, 10)] == ["due"]  # lease ran out
    assert store.claim("one", NOW + 62, 60, 10) == []


def test_claim_respects_the_limit_and_due_order(store: ConsumerStore) -> None:
    for n in range(5):
        store.add(consumer(f"c{n}", next_attempt=NOW - n))
    assert [c.id for c in store.claim("me", NOW, 60, 2)] == ["c4", "c3"]


def test_finish_needs_the_lease_and_releases_it(store: ConsumerStore) -> None:
    store.add(consumer())
    outcome = Outcome("00000000000000000005", 2, NOW, NOW + 40)
    assert store.finish("wh_1", "me", outcome, [], 10) is False  # never claimed
    store.claim("me", NOW, 60, 10)
    assert store.finish("wh_1", "thief", outcome, [], 10) is False
    assert store.finish("wh_1", "me", outcome, [attempt("wh_1", 1, None)], 10) is True
    got = store.get("wh_1")
    assert got is not None
    assert (got.cursor, got.failures, got.first_failure, got.next_attempt) == (
        "00000000000000000005", 2, NOW, NOW + 40,
    )  # fmt: skip
    assert store.finish("wh_1", "me", outcome, [], 10) is False  # released
    assert store.claim("other", NOW + 40, 60, 10)[0].id == "wh_1"


def test_a_stale_owner_cannot_finish_after_another_took_over(store: ConsumerStore) -> None:
    store.add(consumer())
    store.claim("slow", NOW, 60, 10)
    store.claim("fast", NOW + 61, 60, 10)
    assert store.finish("wh_1", "slow", Outcome("zzz", 0, None, NOW), [], 10) is False
    assert store.finish("wh_1", "fast", Outcome("y", 0, None, NOW), [], 10) is True
    got = store.get("wh_1")
    assert got is not None
    assert got.cursor == "y"


def test_finish_can_disable(store: ConsumerStore) -> None:
    store.add(consumer())
    store.claim("me", NOW, 60, 10)
    outcome = Outcome("c", 10, NOW - 9, NOW, DISABLED, "repeated_failure")
    assert store.finish("wh_1", "me", outcome, [], 10)
    got = store.get("wh_1")
    assert got is not None
    assert (got.state, got.disabled_reason) == (DISABLED, "repeated_failure")
    assert store.claim("me", NOW + 999, 60, 10) == []


def test_history_is_newest_first_and_bounded(store: ConsumerStore) -> None:
    store.add(consumer())
    store.add(consumer("wh_2"))
    for n in range(7):
        store.claim("me", NOW + n, 60, 10)
        store.finish("wh_1", "me", Outcome("c", 0, None, NOW), [attempt("wh_1", n)], 5)
    store.claim("me", NOW + 100, 60, 10)
    assert store.finish("wh_2", "me", Outcome("c", 0, None, NOW), [attempt("wh_2", 1, 503)], 5)
    history = store.deliveries("wh_1")
    assert [d.event_id for d in history] == ["e6", "e5", "e4", "e3", "e2"]
    assert history[0] == attempt("wh_1", 6)
    assert [d.event_id for d in store.deliveries("wh_1", limit=2)] == ["e6", "e5"]
    [other] = store.deliveries("wh_2")
    assert (other.status, other.ok, other.error) == (503, False, None)


def test_postgres_opens_while_the_server_is_down_and_fails_closed() -> None:
    pytest.importorskip("psycopg_pool")
    from sessionward.stores.consumers.postgres import PostgresConsumerStore

    port = free_port()
    store = PostgresConsumerStore(f"host=127.0.0.1 port={port} user=x dbname=x", timeout=0.5)
    try:
        with pytest.raises(StoreUnavailable):
            store.consumers()
        with pytest.raises(StoreUnavailable):
            store.claim("me", NOW, 60, 10)
    finally:
        store.close()


def test_set_config_replaces_only_the_config(store: ConsumerStore) -> None:
    store.add(consumer())
    assert [c.id for c in store.claim("me", NOW, 60, 10)] == ["wh_1"]
    assert store.finish("wh_1", "me", Outcome("c9", 0, None, NOW), [attempt("wh_1", 1)], 10)
    store.set_config("wh_1", {"subjects": [{"format": "opaque", "id": "s"}], "n": 2})
    got = store.get("wh_1")
    assert got is not None
    assert got.config == {"subjects": [{"format": "opaque", "id": "s"}], "n": 2}
    assert got == consumer(cursor="c9", config=got.config)  # the rest as it was
    assert [d.event_id for d in store.deliveries("wh_1")] == ["e1"]  # the history stays
    with pytest.raises(NotFound):
        store.set_config("missing", {})


def test_sqlite_asking_when_nothing_is_due_takes_no_write_lock(tmp_path: Path) -> None:
    """An idle deliverer asks every second; a worker stopped (or stalled) while asking must
    not leave the file's write lock held for every other process."""
    import sqlite3

    path = tmp_path / "consumers.db"
    store = SQLiteConsumerStore(path, busy_timeout=0.2)
    store.add(consumer("later", next_attempt=NOW + 10))
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process is writing
        assert store.claim("one", NOW, 60, 10) == []  # nothing due: a read, no wait
        with pytest.raises(StoreUnavailable):  # something due: it needs the write lock
            store.claim("one", NOW + 30, 60, 10)
        other.execute("ROLLBACK")
        assert [c.id for c in store.claim("one", NOW + 30, 60, 10)] == ["later"]
    finally:
        other.close()
        store.close()
