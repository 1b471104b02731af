"""The SQLite event log's own layout: a user's session is found through the user's index (no
index by session for it), the (session, user) pairs follow retention, and a version 1 file is
brought to version 2 on open with its entries found as before."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sessionward import SQLiteStore
from sessionward.errors import StoreCorrupt
from sessionward.stores.eventlog import EventQuery
from sessionward.stores.eventlog.sqlite import SQLiteEventLog, _session_query

NOW = 1_800_000_000.0


def entry(i: int, session: str, user: str | None, kind: str = "created") -> dict[str, Any]:
    return {"kind": kind, "at": NOW + i, "session_id": session, "user_id": user,
            "application": "app", "reason": "logout"}  # fmt: skip


@pytest.fixture
def path(tmp_path: Path) -> str:
    db = str(tmp_path / "s.db")
    SQLiteStore(db).close()
    return db


def pairs(path: str) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT session_id, user_id FROM sessionward_event_sessions")
        return sorted(rows.fetchall())


def indexed_by_session(path: str) -> int:
    """How many entries the index by (anonymous) session holds."""
    with sqlite3.connect(path) as conn:
        sql = (
            "SELECT count(*) FROM sessionward_events"
            " INDEXED BY sessionward_events_by_anonymous_session"
            " WHERE session_id IS NOT NULL AND user_id IS NULL"
        )
        return int(conn.execute(sql).fetchone()[0])


def test_a_user_s_session_is_written_once_and_read_through_the_user_s_index(path: str) -> None:
    log = SQLiteEventLog(path)
    try:
        log.append([entry(0, "S1", "alice"), entry(1, "S2", "alice"), entry(2, "S1", "alice")])
        log.append([entry(3, "S1", "alice", "revoked"), entry(4, "S9", None, "rejected")])
        assert pairs(path) == [("S1", "alice"), ("S2", "alice")]
        assert indexed_by_session(path) == 1  # only the anonymous entry
        sql, params = _session_query(EventQuery(session_id="S1"))
        with sqlite3.connect(path) as conn:
            explained = conn.execute(f"EXPLAIN QUERY PLAN {sql} LIMIT 5", params)
            plan = " ".join(str(row[3]) for row in explained)
        assert "USING INDEX sessionward_events_by_user" in plan
        assert "SCAN sessionward_events" not in plan  # never a walk through every entry
        got = log.query(EventQuery(session_id="S1")).events
        assert [(e.at, e.kind) for e in got] == [(NOW + 3, "revoked"), (NOW + 2, "created"),
                                                 (NOW, "created")]  # fmt: skip
    finally:
        log.close()


def test_retention_drops_a_pair_once_none_of_its_entries_is_left(path: str) -> None:
    log = SQLiteEventLog(path)
    try:
        log.append([entry(0, "S-old", "alice"), entry(1, "S-long", "bob")])
        log.append([entry(10, "S-long", "bob", "revoked"), entry(11, "S-new", "carol")])
        assert log.prune(NOW + 5) == 2
        # S-long's first entry is gone, its later one is still there.
        assert pairs(path) == [("S-long", "bob"), ("S-new", "carol")]
        assert [e.at for e in log.query(EventQuery(session_id="S-long")).events] == [NOW + 10]
        assert log.prune(NOW + 100) == 2
        assert pairs(path) == []
    finally:
        log.close()


VERSION_1 = (
    "CREATE TABLE sessionward_events_schema (version INTEGER NOT NULL) STRICT",
    "INSERT INTO sessionward_events_schema VALUES (1)",
    "CREATE TABLE sessionward_events (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,"
    " kind TEXT NOT NULL, session_id TEXT, user_id TEXT, application TEXT,"
    " fields TEXT NOT NULL) STRICT",
    "CREATE INDEX sessionward_events_by_user ON sessionward_events (user_id, id)"
    " WHERE user_id IS NOT NULL",
    "CREATE INDEX sessionward_events_by_session ON sessionward_events (session_id, id)"
    " WHERE session_id IS NOT NULL",
    "CREATE INDEX sessionward_events_by_application ON sessionward_events (application, id)",
    "CREATE INDEX sessionward_events_by_kind ON sessionward_events (kind, id)",
    "CREATE INDEX sessionward_events_by_time ON sessionward_events (at)",
)


def test_a_version_1_file_is_brought_to_version_2_on_open(path: str) -> None:
    with sqlite3.connect(path) as conn:
        for statement in VERSION_1:
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO sessionward_events (at, kind, session_id, user_id, application, fields)"
            " VALUES (?, ?, ?, ?, 'app', ?)",
            [
                (NOW, "created", "S1", "alice", "{}"),
                (NOW + 1, "created", "S0", None, "{}"),
                (NOW + 2, "revoked", "S1", "alice", '{"reason":"logout"}'),
            ],
        )
    log = SQLiteEventLog(path)
    try:
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT version FROM sessionward_events_schema").fetchall() == [
                (2,)
            ]
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "sessionward_events_by_session" not in names
        assert pairs(path) == [("S1", "alice")]
        got = log.query(EventQuery(session_id="S1")).events
        assert [(e.kind, e.fields) for e in got] == [("revoked", {"reason": "logout"}),
                                                     ("created", {})]  # fmt: skip
        assert [e.session_id for e in log.query(EventQuery(session_id="S0")).events] == ["S0"]
        written = log.append([entry(5, "S1", "alice", "expired")])
        assert int(written[0]) == 4  # the cursor goes on counting
    finally:
        log.close()
    SQLiteEventLog(path).close()  # and opens again as version 2


def test_another_version_is_refused(path: str) -> None:
    SQLiteEventLog(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE sessionward_events_schema SET version = 3")
    with pytest.raises(StoreCorrupt, match="schema 3"):
        SQLiteEventLog(path)
