"""The event log in PostgreSQL, beside the session store's tables (psycopg 3 and its pool).

Tables, in the session store's schema (default ``sessionward``), created on first use under an
advisory lock, or checked when they exist::

    <schema>.events_schema_version  one row: 1; any other value is refused (StoreCorrupt)
    <schema>.events                 id bigint identity (the cursor), at, kind, session_id,
                                    user_id, application, fields (JSON text)
    indexes                         (user_id, id), (session_id, id), (application, id),
                                    (kind, id), (at)

``append`` writes a batch in one transaction that first takes a transaction-level advisory
lock: appends from every process commit one after the other, so ids are committed in their
order and a reader walking forward from a cursor (``read``) never skips a row that commits
later with a smaller id. Driver errors become ``StoreUnavailable`` (no server, pool exhausted)
or ``StoreCorrupt`` (a schema sessionward did not make); text PostgreSQL cannot hold (a NUL
character) raises ``InvalidArgument``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import psycopg
from psycopg_pool import ConnectionPool

from sessionward.errors import InvalidArgument, StoreCorrupt, StoreError
from sessionward.stores._postgres_db import (
    DRIVER_ERRORS,
    LOCK,
    ProcessPool,
    lock_key,
    schema_name,
    translate,
)
from sessionward.stores.eventlog._rows import check_limit, columns, cursor, number, row_event, where
from sessionward.stores.eventlog.base import EventPage, EventQuery, LoggedEvent

__all__ = ["PostgresEventLog"]

SCHEMA_VERSION: Final = 1
_CREATE: Final = (
    "CREATE SCHEMA IF NOT EXISTS {s}",
    "CREATE TABLE {s}.events_schema_version (version integer NOT NULL)",
    """CREATE TABLE {s}.events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at double precision NOT NULL,
        kind text COLLATE "C" NOT NULL,
        session_id text COLLATE "C",
        user_id text COLLATE "C",
        application text COLLATE "C",
        fields text NOT NULL
    )""",
    "CREATE INDEX events_by_user ON {s}.events (user_id, id) WHERE user_id IS NOT NULL",
    "CREATE INDEX events_by_session ON {s}.events (session_id, id) WHERE session_id IS NOT NULL",
    "CREATE INDEX events_by_application ON {s}.events (application, id)",
    "CREATE INDEX events_by_kind ON {s}.events (kind, id)",
    "CREATE INDEX events_by_time ON {s}.events (at)",
)
_COLUMNS = "id, at, kind, session_id, user_id, application, fields"
_PRUNE_CHUNK = 5000


def _translate(exc: Exception) -> StoreError | InvalidArgument:
    return translate(exc, expected="the event log sessionward expects")


class PostgresEventLog:
    """Events in ``<schema>.events``. ``timeout``: how long a call waits for a connection."""

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "sessionward",
        max_size: int = 4,
        timeout: float = 2.0,
        connect_timeout: int = 2,
    ) -> None:
        self.schema = schema_name(schema)
        self._conninfo = conninfo
        self._max_size = max_size
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        t = f"{schema}.events"
        self._insert = (
            f"INSERT INTO {t} (at, kind, session_id, user_id, application, fields)"  # noqa: S608
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id"
        )
        self._read = f"SELECT {_COLUMNS} FROM {t} WHERE id > %s ORDER BY id LIMIT %s"  # noqa: S608
        self._select = f"SELECT {_COLUMNS} FROM {t}"  # noqa: S608 - a validated schema name
        self._prune = f"DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE at < %s LIMIT %s)"  # noqa: S608
        self._pools = ProcessPool(self._new_pool, closed="postgres: the event log is closed")
        self._ready = False
        self._append_lock = lock_key("sessionward-events", schema)

    def _new_pool(self) -> ConnectionPool[Any]:
        """A new process's pool (its schema not yet checked), open before any thread sees it."""
        pool: ConnectionPool[Any] = ConnectionPool(
            self._conninfo,
            min_size=0,
            max_size=self._max_size,
            timeout=self._timeout,
            reconnect_timeout=0.5,
            open=False,
            name=f"sessionward-events-{self.schema}",
            kwargs={"autocommit": True, "connect_timeout": self._connect_timeout},
        )
        self._ready = False
        pool.open(wait=False)
        return pool

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        pool = self._pools.get()
        try:
            with pool.connection() as conn:
                if not self._ready:
                    with conn.transaction():
                        self._check_schema(conn)
                    self._ready = True
                yield conn
        except DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    def _check_schema(self, conn: psycopg.Connection[Any]) -> None:
        s = self.schema
        conn.execute(LOCK, (lock_key(s),))
        found = conn.execute("SELECT to_regclass(%s)", (f"{s}.events_schema_version",)).fetchone()
        if found is None or found[0] is None:
            for statement in _CREATE:
                conn.execute(statement.replace("{s}", s))
            conn.execute(
                f"INSERT INTO {s}.events_schema_version VALUES (%s)",  # noqa: S608
                (SCHEMA_VERSION,),
            )
            return
        read = f"SELECT version FROM {s}.events_schema_version"  # noqa: S608
        versions = [r[0] for r in conn.execute(read)]
        if versions != [SCHEMA_VERSION]:
            raise StoreCorrupt(
                f"postgres: event log schema {versions or 'none'} is not one this sessionward"
                f" reads ({SCHEMA_VERSION})"
            )

    def append(self, entries: Sequence[dict[str, Any]]) -> list[str]:
        rows = [columns(entry) for entry in entries]
        if not rows:
            return []
        with self._connection() as conn, conn.transaction():
            conn.execute(LOCK, (self._append_lock,))
            with conn.cursor() as cur:
                cur.executemany(self._insert, rows, returning=True)
                ids = []
                while True:
                    row = cur.fetchone()
                    ids.append(cursor(int(row[0])) if row else "")
                    if not cur.nextset():
                        break
        return ids

    def read(self, after: str | None, limit: int) -> list[LoggedEvent]:
        start = 0 if after is None else number(after)
        with self._connection() as conn:
            rows = conn.execute(self._read, (start, check_limit(limit))).fetchall()
        return [row_event(r) for r in rows]

    def query(self, query: EventQuery) -> EventPage:
        clause, params = where(query, "%s")
        limit = check_limit(query.limit)
        sql = f"{self._select}{clause} ORDER BY id DESC LIMIT %s"
        with self._connection() as conn:
            rows = conn.execute(sql, (*params, limit + 1)).fetchall()
        events = [row_event(r) for r in rows[:limit]]
        return EventPage(events, events[-1].id if len(rows) > limit else None)

    def prune(self, before: float) -> int:
        total = 0
        with self._connection() as conn:
            while True:
                deleted = conn.execute(self._prune, (float(before), _PRUNE_CHUNK)).rowcount
                total += deleted
                if deleted < _PRUNE_CHUNK:
                    return total

    def close(self) -> None:
        pool = self._pools.close()
        if pool is not None:
            pool.close()
