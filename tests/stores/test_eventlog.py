"""One contract for every event log (memory, SQLite, PostgreSQL, Redis): ids in append order,
reading forward from a cursor, filtered newest-first pages, retention, concurrency, outages.

PostgreSQL and Redis are private servers (tests/servers.py); each test gets a fresh schema or
key prefix on them.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from servers import PostgresServer, RedisClusterServers, RedisServer, free_port
from servers import postgres_server as postgres_server  # a fixture
from servers import redis_cluster as redis_cluster  # a fixture
from servers import redis_server as redis_server  # a fixture

from sessionward import SQLiteStore
from sessionward.errors import InvalidArgument, StoreUnavailable
from sessionward.stores.eventlog import (
    EventLog,
    EventQuery,
    LoggedEvent,
    MemoryEventLog,
    open_event_log,
)
from sessionward.stores.eventlog.postgres import PostgresEventLog
from sessionward.stores.eventlog.redis import RedisEventLog
from sessionward.stores.eventlog.sqlite import SQLiteEventLog

NOW = 1_800_000_000.0
Opener = Callable[[], EventLog]


def entry(i: int, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "created",
        "at": NOW + i,
        "session_id": f"S{i:015d}",
        "user_id": f"app/u{i % 3}",
        "application": "app" if i % 2 else "other",
        "anonymous": False,
    }
    out.update(fields)
    return out


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis", "redis-cluster"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    opened: list[EventLog] = []
    kind = request.param
    if kind == "memory":
        shared = MemoryEventLog()
        make: Opener = lambda: shared  # noqa: E731 - one process: one log
    elif kind == "sqlite":
        path = str(tmp_path / "events.db")
        SQLiteStore(path).close()  # the session store first, as the service opens them
        make = lambda: SQLiteEventLog(path)  # noqa: E731
    elif kind == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        schema = "ev_" + secrets.token_hex(4)
        make = lambda: PostgresEventLog(server.conninfo, schema=schema)  # noqa: E731
    elif kind == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        prefix = secrets.token_hex(4).encode()
        make = lambda: RedisEventLog(redis.url, prefix=prefix)  # noqa: E731
    else:
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        prefix = secrets.token_hex(4).encode()
        make = lambda: RedisEventLog(cluster.url, prefix=prefix)  # noqa: E731

    def open_one() -> EventLog:
        log = make()
        opened.append(log)
        return log

    open_one.kind = kind  # type: ignore[attr-defined]
    yield open_one
    for log in opened:
        log.close()


@pytest.fixture
def log(opener: Opener) -> EventLog:
    return opener()


def ids(events: list[LoggedEvent]) -> list[str]:
    return [e.id for e in events]


def every_page(log: EventLog, query: EventQuery) -> list[list[LoggedEvent]]:
    pages = []
    cursor: str | None = None
    while True:
        page = log.query(EventQuery(**{**_fields(query), "before": cursor}))
        pages.append(page.events)
        if page.next is None:
            return pages
        cursor = page.next


def _fields(query: EventQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in EventQuery.__dataclass_fields__}


def test_append_returns_ids_in_order_and_read_gives_entries_back(log: EventLog) -> None:
    assert log.append([]) == []
    first = log.append([entry(0, reason="x"), entry(1)])
    second = log.append([entry(2, kind="revoked", reason="logout")])
    all_ids = first + second
    assert len(set(all_ids)) == 3
    assert all_ids == sorted(all_ids)  # string order is append order
    events = log.read(None, 10)
    assert ids(events) == all_ids
    assert events[0].fields == {"anonymous": False, "reason": "x"}
    assert events[2].kind == "revoked"
    assert events[2].fields["reason"] == "logout"
    assert (events[1].at, events[1].session_id, events[1].user_id, events[1].application) == (
        NOW + 1,
        "S000000000000001",
        "app/u1",
        "app",
    )
    assert events[0].to_dict()["id"] == all_ids[0]


def test_ids_are_ordered_even_when_times_go_backwards(log: EventLog) -> None:
    late = log.append([entry(50)])
    early = log.append([entry(1), entry(0)])  # a node whose clock is behind
    assert late[0] < early[0] < early[1]
    assert [e.at for e in log.read(None, 10)] == [NOW + 50, NOW + 1, NOW]


def test_read_after_a_cursor_with_a_limit(log: EventLog) -> None:
    written = log.append([entry(i) for i in range(10)])
    assert ids(log.read(written[3], 4)) == written[4:8]
    assert ids(log.read(written[7], 100)) == written[8:]
    assert log.read(written[-1], 5) == []


def test_query_is_newest_first_and_pages_through_everything(log: EventLog) -> None:
    written = log.append([entry(i) for i in range(23)])
    pages = every_page(log, EventQuery(limit=10))
    assert [len(p) for p in pages] == [10, 10, 3]
    assert [e.id for p in pages for e in p] == written[::-1]
    exact = every_page(log, EventQuery(limit=23))
    assert len(exact) == 1
    assert len(exact[0]) == 23


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (EventQuery(user_id="app/u1"), lambda e: e["user_id"] == "app/u1"),
        (EventQuery(session_id="S000000000000007"), lambda e: e["session_id"].endswith("07")),
        (EventQuery(application="app"), lambda e: e["application"] == "app"),
        (EventQuery(kinds=frozenset({"revoked", "expired"})), lambda e: e["kind"] != "created"),
        (EventQuery(kinds=frozenset()), lambda e: False),
        (EventQuery(since=NOW + 5, until=NOW + 9), lambda e: NOW + 5 <= e["at"] < NOW + 9),
        (
            EventQuery(user_id="app/u0", application="other", kinds=frozenset({"revoked"})),
            lambda e: (e["user_id"], e["application"], e["kind"]) == ("app/u0", "other", "revoked"),
        ),
    ],
)
def test_query_filters(
    log: EventLog, query: EventQuery, expected: Callable[[dict[str, Any]], bool]
) -> None:
    entries = [entry(i, kind=("revoked", "created", "expired")[i % 3]) for i in range(30)]
    written = log.append(entries)
    want = [i for i, e in zip(written, entries, strict=True) if expected(e)][::-1]
    pages = every_page(log, EventQuery(**{**_fields(query), "limit": 4}))
    assert [e.id for p in pages for e in p] == want
    assert all(len(p) <= 4 for p in pages)


def test_prune_drops_what_is_older_and_keeps_the_rest(log: EventLog) -> None:
    written = log.append([entry(i) for i in range(10)])
    assert log.prune(NOW + 4) == 4
    assert ids(log.read(None, 100)) == written[4:]
    assert [e.id for e in log.query(EventQuery(limit=100)).events] == written[4:][::-1]
    assert log.prune(NOW + 4) == 0


def test_a_pruned_cursor_starts_at_the_oldest_entry_kept(log: EventLog) -> None:
    written = log.append([entry(i) for i in range(6)])
    log.prune(NOW + 3)
    assert ids(log.read(written[1], 100)) == written[3:]


def test_ids_are_never_reused_after_everything_is_pruned(log: EventLog) -> None:
    old = log.append([entry(0), entry(1)])
    assert log.prune(NOW + 100) == 2
    new = log.append([entry(200)])
    assert new[0] > old[-1]
    assert ids(log.read(old[-1], 10)) == new


def test_unicode_round_trips(log: EventLog) -> None:
    text = {"user_id": "app/Zoë 🌍 наталья", "application": "app", "detail": "名前 — ünïcode"}
    log.append([entry(0, **text)])
    [event] = log.read(None, 1)
    assert event.user_id == text["user_id"]
    assert event.fields["detail"] == text["detail"]
    found = log.query(EventQuery(user_id=text["user_id"]))
    assert ids(found.events) == [event.id]


def test_a_second_log_on_the_same_place_sees_the_same_entries(opener: Opener) -> None:
    one, two = opener(), opener()
    written = one.append([entry(0)]) + two.append([entry(1)])
    assert ids(one.read(None, 10)) == ids(two.read(None, 10)) == written


def test_appends_from_threads_keep_every_entry_once_and_in_each_threads_order(
    log: EventLog,
) -> None:
    per_thread: dict[int, list[str]] = {}

    def writer(n: int) -> None:
        got = per_thread.setdefault(n, [])
        for batch in range(10):
            got += log.append([entry(n * 1000 + batch * 5 + k, thread=n) for k in range(5)])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = log.read(None, 1000)
    assert len(events) == 200
    assert len(set(ids(events))) == 200
    assert ids(events) == sorted(ids(events))
    for n, written in per_thread.items():
        assert [e.id for e in events if e.fields["thread"] == n] == written


def test_a_malformed_cursor_is_refused(opener: Opener) -> None:
    if opener.kind == "memory":  # type: ignore[attr-defined]
        pytest.skip("the memory log's cursors are plain strings")
    log = opener()
    with pytest.raises(InvalidArgument):
        log.read("sw1_not-a-cursor", 10)
    with pytest.raises(InvalidArgument):
        log.query(EventQuery(before="12a"))
    with pytest.raises(InvalidArgument):
        log.read(None, 0)


def test_an_unreachable_backend_raises_store_unavailable(opener: Opener, tmp_path: Path) -> None:
    kind = opener.kind  # type: ignore[attr-defined]
    if kind == "memory":
        pytest.skip("the memory log has nothing to reach")
    if kind == "sqlite":
        path = str(tmp_path / "locked.db")
        log: EventLog = SQLiteEventLog(path, busy_timeout=0.05)
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            with pytest.raises(StoreUnavailable):
                log.append([entry(0)])
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert log.append([entry(1)])  # and it works again once the lock is gone
        log.close()
        return
    port = free_port()
    if kind == "redis-cluster":
        pytest.skip("an unreachable Redis is tested on the standalone URL")
    if kind == "postgres":
        spec = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        log = open_event_log(spec, timeout=0.5)
    else:
        log = open_event_log(f"redis://127.0.0.1:{port}/0", socket_timeout=0.5)
    try:
        with pytest.raises(StoreUnavailable):
            log.append([entry(0)])
        with pytest.raises(StoreUnavailable):
            log.query(EventQuery())
    finally:
        log.close()


def test_open_event_log_uses_the_session_stores_sqlite_file(tmp_path: Path) -> None:
    path = str(tmp_path / "sessions.db")
    with pytest.raises(StoreUnavailable):
        open_event_log(path, create=False)  # a typo in a path is no new database
    SQLiteStore(path).close()
    log = open_event_log(path)
    assert isinstance(log, SQLiteEventLog)
    log.append([entry(0)])
    log.close()
    store = SQLiteStore(path)  # the session store still opens the file beside the log
    store.close()
    tables = sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall()
    assert ("sessionward_events",) in tables
    assert ("sessions",) in tables


def test_postgres_log_lives_beside_the_session_tables(postgres_server: PostgresServer) -> None:
    log = open_event_log(postgres_server.url)
    try:
        log.append([entry(0)])
        with psycopg.connect(postgres_server.conninfo) as conn:
            row = conn.execute("SELECT version FROM sessionward.events_schema_version").fetchone()
        assert row == (1,)
    finally:
        log.close()


def test_any_digit_string_is_a_cursor(log: EventLog) -> None:
    written = log.append([entry(0), entry(1)])
    assert len({len(i) for i in written}) == 1
    assert all(i.isdigit() for i in written)
    assert log.read("9" * 32, 10) == []  # past the newest: nothing newer
    assert ids(log.query(EventQuery(before="9" * 32)).events) == written[::-1]
    assert ids(log.read("0", 10)) == written


def test_a_session_s_entries_across_batches_among_its_user_s_others(log: EventLog) -> None:
    """A session's entries, written over several batches between its user's other sessions'
    and other users' (and an anonymous session's, whose user is ``None``), page newest first
    with the other filters applied."""
    ours: list[str] = []
    anonymous: list[str] = []
    for batch in range(4):
        entries = [
            entry(10 * batch, session_id="S-ours", user_id="app/alice", kind="rotated"),
            entry(10 * batch + 1, session_id=f"S-other{batch}", user_id="app/alice"),
            entry(10 * batch + 2, session_id="S-ours-too", user_id="app/bob"),
            entry(10 * batch + 3, session_id="S-anonymous", user_id=None, kind="rotated"),
            entry(10 * batch + 4, session_id="S-ours", user_id="app/alice", kind="revoked"),
        ]
        written = log.append(entries)
        ours += [written[0], written[4]]
        anonymous.append(written[3])
    pages = every_page(log, EventQuery(session_id="S-ours", limit=3))
    assert [e.id for p in pages for e in p] == ours[::-1]
    assert {e.user_id for p in pages for e in p} == {"app/alice"}
    revoked = log.query(EventQuery(session_id="S-ours", kinds=frozenset({"revoked"}), limit=50))
    assert ids(revoked.events) == ours[1::2][::-1]
    later = log.query(EventQuery(session_id="S-ours", since=NOW + 20, limit=50))
    assert ids(later.events) == ours[4:][::-1]
    both = log.query(EventQuery(session_id="S-ours", user_id="app/alice", limit=50))
    assert ids(both.events) == ours[::-1]
    assert log.query(EventQuery(session_id="S-ours", user_id="app/bob")).events == []
    assert ids(log.query(EventQuery(session_id="S-anonymous")).events) == anonymous[::-1]
    assert log.query(EventQuery(session_id="S-nobody")).events == []
