"""The event log in a SQLite file: by default the session store's own file, in tables of its own.

Tables (their own schema version, beside the session store's and the service's)::

    sessionward_events_schema  one row: the version (1); any other is refused (StoreCorrupt)
    sessionward_events         id INTEGER PRIMARY KEY AUTOINCREMENT (the cursor: never reused,
                               even after every row is pruned), at, kind, session_id, user_id,
                               application, fields (JSON text)
    indexes                    (user_id, id), (session_id, id), (application, id), (kind, id)
                               and (at): each filter of ``query`` reads its index newest first.
                               A batch is one ``executemany`` in one transaction.

WAL journal with ``synchronous=NORMAL``, as the session store: a batch is one transaction, so a
crash keeps or loses a batch whole, and readers never wait for the writer. Open the session
store first on a new file: it refuses a file whose only tables are somebody else's.
Each thread uses its own connection. ``prune`` deletes in chunks, each its own transaction.
"""

from __future__ import annotations

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

SCHEMA_VERSION = 1
_SCHEMA = (
    "CREATE TABLE sessionward_events_schema (version INTEGER NOT NULL) STRICT",
    f"INSERT INTO sessionward_events_schema VALUES ({SCHEMA_VERSION})",  # noqa: S608 - constant
    """CREATE TABLE sessionward_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        session_id TEXT,
        user_id TEXT,
        application TEXT,
        fields TEXT NOT NULL
    ) STRICT""",
    "CREATE INDEX sessionward_events_by_user ON sessionward_events (user_id, id)"
    " WHERE user_id IS NOT NULL",
    "CREATE INDEX sessionward_events_by_session ON sessionward_events (session_id, id)"
    " WHERE session_id IS NOT NULL",
    "CREATE INDEX sessionward_events_by_application ON sessionward_events (application, id)",
    "CREATE INDEX sessionward_events_by_kind ON sessionward_events (kind, id)",
    "CREATE INDEX sessionward_events_by_time ON sessionward_events (at)",
)
_COLUMNS = "id, at, kind, session_id, user_id, application, fields"
_INSERT = (
    "INSERT INTO sessionward_events (at, kind, session_id, user_id, application, fields)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_READ = f"SELECT {_COLUMNS} FROM sessionward_events WHERE id > ? ORDER BY id LIMIT ?"  # noqa: S608
_PRUNE = (
    "DELETE FROM sessionward_events WHERE id IN"
    " (SELECT id FROM sessionward_events WHERE at < ? LIMIT ?)"
)
_PRUNE_CHUNK = 5000
_CHECKPOINT_PAGES = 4000  # as the session store: fewer, larger checkpoints


def _translate(exc: sqlite3.Error) -> SessionwardError:
    return schema_error(
        exc,
        missing="the event log's tables are missing",
        refused="event refused by the events table",
    )


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
            conn.executemany(_INSERT, rows)
            # One writer holds the lock and AUTOINCREMENT counts up: the batch's ids are the
            # consecutive numbers ending at the last one inserted.
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        return [cursor(number) for number in range(last - len(rows) + 1, last + 1)]

    def read(self, after: str | None, limit: int) -> list[LoggedEvent]:
        start = 0 if after is None else number(after)
        rows = self._db.query(_READ, (start, check_limit(limit)))
        return [row_event(r) for r in rows]

    def query(self, query: EventQuery) -> EventPage:
        clause, params = where(query, "?")
        sql = f"SELECT {_COLUMNS} FROM sessionward_events{clause} ORDER BY id DESC LIMIT ?"  # noqa: S608 - filters are parameters
        limit = check_limit(query.limit)
        rows = self._db.query(sql, (*params, limit + 1))
        events = [row_event(r) for r in rows[:limit]]
        return EventPage(events, events[-1].id if len(rows) > limit else None)

    def prune(self, before: float) -> int:
        total = 0
        while True:
            deleted = self._db.execute(_PRUNE, (float(before), _PRUNE_CHUNK))
            total += deleted
            if deleted < _PRUNE_CHUNK:
                return total

    def close(self) -> None:
        self._db.close()
