"""The event log in a SQLite file: by default the session store's own file, in tables of its own.

Tables (their own schema version, beside the session store's and the service's)::

    sessionward_events_schema   one row: the version (2; a version 1 file is brought to 2 on
                                open); any other is refused (StoreCorrupt)
    sessionward_events          id INTEGER PRIMARY KEY AUTOINCREMENT (the cursor: never reused,
                                even after every row is pruned), at, kind, session_id, user_id,
                                application, fields (JSON text)
    sessionward_event_sessions  (session_id, user_id): each user a session's entries name,
                                written by the session's first entry, dropped with its last
    indexes                     (user_id, id), (application, id), (kind, id), (at), and
                                (session_id, id) for anonymous sessions' events only: each
                                filter of ``query`` reads its index newest first.

Session ids are random, so an index keyed by them takes each new entry on a different page, and
a batch writes every page it changes: the dearest part of an append. The events of a session
with a user are found through the user's index instead (the users a session names are in
``sessionward_event_sessions``, written once per session, looked up by the later events); only
an anonymous session's events are indexed by session. A batch is a few multi-row inserts and
one insert of the batch's (session, user) pairs, in one transaction.

WAL journal with ``synchronous=NORMAL``, as the session store: a batch is one transaction, so a
crash keeps or loses a batch whole, and readers never wait for the writer. Open the session
store first on a new file: it refuses a file whose only tables are somebody else's.
Each thread uses its own connection. ``prune`` deletes in chunks, each its own transaction.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sessionward.errors import (
    InvalidArgument,
    SessionwardError,
    StoreCorrupt,
    StoreUnavailable,
)
from sessionward.stores._sqlite_db import SQLiteDB, schema_error
from sessionward.stores.eventlog._rows import check_limit, columns, cursor, number, row_event, where
from sessionward.stores.eventlog.base import EventPage, EventQuery, LoggedEvent

__all__ = ["SQLiteEventLog"]

SCHEMA_VERSION = 2
_EVENTS_TABLE = """CREATE TABLE sessionward_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        session_id TEXT,
        user_id TEXT,
        application TEXT,
        fields TEXT NOT NULL
    ) STRICT"""
# What version 2 adds to version 1 (which indexed every entry by session).
_VERSION_2 = (
    """CREATE TABLE sessionward_event_sessions (
        session_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        PRIMARY KEY (session_id, user_id)
    ) STRICT, WITHOUT ROWID""",
    "CREATE INDEX sessionward_events_by_anonymous_session ON sessionward_events"
    " (session_id, id) WHERE session_id IS NOT NULL AND user_id IS NULL",
)
_SCHEMA = (
    "CREATE TABLE sessionward_events_schema (version INTEGER NOT NULL) STRICT",
    f"INSERT INTO sessionward_events_schema VALUES ({SCHEMA_VERSION})",  # noqa: S608 - constant
    _EVENTS_TABLE,
    "CREATE INDEX sessionward_events_by_user ON sessionward_events (user_id, id)"
    " WHERE user_id IS NOT NULL",
    "CREATE INDEX sessionward_events_by_application ON sessionward_events (application, id)",
    "CREATE INDEX sessionward_events_by_kind ON sessionward_events (kind, id)",
    "CREATE INDEX sessionward_events_by_time ON sessionward_events (at)",
    *_VERSION_2,
)
_UPGRADE_1 = (
    *_VERSION_2,
    "INSERT OR IGNORE INTO sessionward_event_sessions (session_id, user_id)"
    " SELECT DISTINCT session_id, user_id FROM sessionward_events"
    " WHERE session_id IS NOT NULL AND user_id IS NOT NULL",
    "DROP INDEX IF EXISTS sessionward_events_by_session",
    "UPDATE sessionward_events_schema SET version = 2",
)
_COLUMNS = "id, at, kind, session_id, user_id, application, fields"
# A batch is inserted by a few multi-row statements of 128, 64, ..., 1 rows (at most 768
# parameters, under any SQLite's limit): each is one step in SQLite, so the writer thread lets
# go of the interpreter and takes it back a few times per batch rather than once per row, and
# the batch holds the write lock for less time. Eight fixed texts stay in the statement cache.
_INSERT_SIZES = (128, 64, 32, 16, 8, 4, 2, 1)
_ROWS = "INSERT INTO sessionward_events (at, kind, session_id, user_id, application, fields) "
_ONE = "(?, ?, ?, ?, ?, ?)"
_INSERT = {size: _ROWS + "VALUES " + ", ".join([_ONE] * size) for size in _INSERT_SIZES}
_PAIRS = "INSERT OR IGNORE INTO sessionward_event_sessions (session_id, user_id) "
_PAIR = {size: _PAIRS + "VALUES " + ", ".join(["(?, ?)"] * size) for size in _INSERT_SIZES}
_READ = f"SELECT {_COLUMNS} FROM sessionward_events WHERE id > ? ORDER BY id LIMIT ?"  # noqa: S608
_PRUNE_SELECT = "SELECT id, session_id, user_id FROM sessionward_events WHERE at < ? LIMIT ?"
_PRUNE_ROW = "DELETE FROM sessionward_events WHERE id = ?"
# A (session, user) pair whose entries are all gone; the check walks the user's entries.
_PRUNE_PAIR = (
    "DELETE FROM sessionward_event_sessions WHERE session_id = ?1 AND user_id = ?2"
    " AND NOT EXISTS (SELECT 1 FROM sessionward_events WHERE user_id = ?2 AND session_id = ?1)"
)
_PRUNE_CHUNK = 5000
_CHECKPOINT_PAGES = 4000  # as the session store: fewer, larger checkpoints


def _translate(exc: sqlite3.Error) -> SessionwardError:
    return schema_error(
        exc,
        missing="the event log's tables are missing",
        refused="event refused by the events table",
    )


def _insert(conn: sqlite3.Connection, statements: dict[int, str], rows: list[Any]) -> None:
    start, left = 0, len(rows)
    for size in _INSERT_SIZES:
        while left >= size:
            chunk = rows[start : start + size]
            conn.execute(statements[size], [value for row in chunk for value in row])
            start, left = start + size, left - size


def _session_query(query: EventQuery) -> tuple[str, list[Any]]:
    """A session's entries (with the query's other filters), newest first: those naming a
    user through the user's index, for each user the session names; an anonymous session's
    through the index by session."""
    session = query.session_id
    clause, params = where(dataclasses.replace(query, session_id=None), "?")
    rest = clause.replace(" WHERE ", " AND ", 1)
    named = (
        f"SELECT {_COLUMNS} FROM sessionward_events"  # noqa: S608 - filters are parameters
        " INDEXED BY sessionward_events_by_user WHERE user_id IN"
        " (SELECT user_id FROM sessionward_event_sessions WHERE session_id = ?)"
        f" AND session_id = ?{rest}"
    )
    anonymous = (
        f"SELECT {_COLUMNS} FROM sessionward_events"  # noqa: S608 - filters are parameters
        " INDEXED BY sessionward_events_by_anonymous_session"
        f" WHERE session_id = ? AND user_id IS NULL{rest}"
    )
    sql = f"SELECT * FROM ({named} UNION ALL {anonymous}) ORDER BY id DESC"  # noqa: S608
    return sql, [session, session, *params, session, *params]


class SQLiteEventLog:
    """The event log in the SQLite file ``path``. ``create=False`` refuses a missing file."""

    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0, create: bool = True
    ) -> None:
        self.path = os.fspath(path)
        if self.path == ":memory:":
            raise InvalidArgument("an in-memory SQLite event log would be lost: use a file")
        if not create and not Path(self.path).is_file():
            raise StoreUnavailable(f"no database file at {self.path}")
        self._db = SQLiteDB(
            self.path,
            busy_timeout=busy_timeout,
            translate=_translate,
            per_thread=True,
            checkpoint_pages=_CHECKPOINT_PAGES,
            closed="the event log is closed",
        )
        try:
            self._check_schema()
        except BaseException:
            self.close()
            raise

    def _check_schema(self) -> None:
        with self._db.write() as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "sessionward_events_schema" not in names:
                for statement in _SCHEMA:
                    conn.execute(statement)
            rows = conn.execute("SELECT version FROM sessionward_events_schema").fetchall()
            if rows == [(1,)]:
                for statement in _UPGRADE_1:
                    conn.execute(statement)
                rows = [(2,)]
        if rows != [(SCHEMA_VERSION,)]:
            found = ", ".join(str(r[0]) for r in rows) or "none"
            raise StoreCorrupt(
                f"event log schema {found} is not one this sessionward reads ({SCHEMA_VERSION})"
            )

    def append(self, entries: Sequence[dict[str, Any]]) -> list[str]:
        rows = [columns(entry) for entry in entries]
        if not rows:
            return []
        with self._db.write() as conn:
            _insert(conn, _INSERT, rows)
            # One writer holds the lock and AUTOINCREMENT counts up: the batch's ids are the
            # consecutive numbers ending at the last one inserted.
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            # Each (session, user) pair once: a session's first entry writes it, the later
            # ones only look it up.
            pairs = {(r[2], r[3]) for r in rows if r[2] is not None and r[3] is not None}
            if pairs:
                _insert(conn, _PAIR, list(pairs))
        return [cursor(number) for number in range(last - len(rows) + 1, last + 1)]

    def read(self, after: str | None, limit: int) -> list[LoggedEvent]:
        start = 0 if after is None else number(after)
        rows = self._db.query(_READ, (start, check_limit(limit)))
        return [row_event(r) for r in rows]

    def query(self, query: EventQuery) -> EventPage:
        limit = check_limit(query.limit)
        if query.session_id is not None and query.user_id is None:
            sql, params = _session_query(query)
        else:
            clause, params = where(query, "?")
            sql = f"SELECT {_COLUMNS} FROM sessionward_events{clause} ORDER BY id DESC"  # noqa: S608 - filters are parameters
        rows = self._db.query(sql + " LIMIT ?", (*params, limit + 1))
        events = [row_event(r) for r in rows[:limit]]
        return EventPage(events, events[-1].id if len(rows) > limit else None)

    def prune(self, before: float) -> int:
        total = 0
        while True:
            # A chunk a transaction: its entries, then the pairs none of whose entries is left.
            with self._db.write() as conn:
                rows = conn.execute(_PRUNE_SELECT, (float(before), _PRUNE_CHUNK)).fetchall()
                conn.executemany(_PRUNE_ROW, [(r[0],) for r in rows])
                pairs = {(r[1], r[2]) for r in rows if r[1] is not None and r[2] is not None}
                conn.executemany(_PRUNE_PAIR, pairs)
            total += len(rows)
            if len(rows) < _PRUNE_CHUNK:
                return total

    def close(self) -> None:
        self._db.close()
