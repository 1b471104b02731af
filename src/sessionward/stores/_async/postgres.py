"""Sessions in PostgreSQL, through psycopg 3 and its connection pool (``psycopg_pool``).

Options (:class:`AsyncPostgresStore`): ``conninfo`` (a libpq string or a
``postgresql://`` URL), ``schema`` (default ``sessionward``), ``min_size``/``max_size`` of
the pool (1/10), ``timeout`` (2 s: how long a request waits for a pooled connection before
``StoreUnavailable``) and ``connect_timeout`` (2 s).

Schema, created on first use by whichever process gets there first (under an advisory lock),
or checked when it exists; only ``SELECT``/``INSERT``/``UPDATE``/``DELETE`` rights are needed
once it does::

    <schema>.schema_version  one row: 2; any other value is refused (StoreCorrupt)
    <schema>.sessions        the SessionRecord fields as columns, in order; id and user_id
                             in the "C" collation (byte order, as Python sorts)
    sessions_by_user         index on (user_id, created_at, id) for list_user and the cap
    announce_change          trigger: NOTIFY <schema>_changes, '<id>' on every UPDATE or
                             DELETE of a row, whoever makes it (psql included)

Behaviour:

* Every statement goes through the pool in autocommit, prepared on the server after its
  first use on a connection: ``get`` is one primary-key ``SELECT``.
* ``add`` with a cap takes a per-user advisory lock, then counts, evicts and inserts in one
  transaction: concurrent logins of one user, from any number of processes, never exceed it.
* ``replace`` is ``UPDATE ... WHERE id = $1 AND version = $2``: PostgreSQL rechecks the
  version on the locked row, so of two racing writers exactly one wins. ``touch`` only moves
  ``last_seen`` forward. ``purge_expired`` deletes in chunks of 1,000 ids, each its own short
  transaction. There is no index on ``expires_at``, so a touch stays a cheap HOT update.
* Scan (admin listings) walks the primary key a page at a time; ``count`` counts sessions
  (internal records, those with an empty verifier, left out) with one sequential scan.
* Broadcast: :meth:`AsyncPostgresStore.subscribe` listens on a dedicated connection. The
  trigger's NOTIFY is part of the writing transaction: it is delivered if and only if the
  change commits. A subscriber must call ``changed()`` regularly (or close): PostgreSQL keeps
  every announcement until each listener has read it.
* Failures: a lost connection, a server that refuses connections or an exhausted pool raise
  ``StoreUnavailable`` (fail closed); a read that met a connection the server had dropped is
  retried once on another. While the server is known to be down, requests wait at most
  0.25 s for a connection and the pool tries to connect every 0.5 s while requests keep
  coming, so service resumes within about a second of the server accepting connections
  again. Missing tables or a schema sessionward did not make raise ``StoreCorrupt``; a value
  PostgreSQL cannot hold (a NUL character, a lone surrogate) raises ``InvalidArgument``.
* Fork: the pool opens in the process that first uses the store. A child that inherits an
  opened store leaves the parent's connections alone (psycopg never ends a connection another
  process opened) and opens a pool of its own on first use.
"""

from __future__ import annotations

import os
import selectors
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from sessionward.core.cap import UserCap
from sessionward.core.record import FIELDS, SessionRecord
from sessionward.errors import (
    AlreadyExists,
    ConfigError,
    InvalidArgument,
    NotFound,
    SessionLimitReached,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
    VersionConflict,
)
from sessionward.stores._postgres_db import (
    DRIVER_ERRORS,
    LOCK,
    ProcessPool,
    lock_key,
    schema_name,
    translate,
)

__all__ = ["AsyncPostgresStore", "AsyncPostgresSubscription"]

SCHEMA_VERSION: Final = 2
_PURGE_CHUNK: Final = 1000
_DOWN_WAIT: Final = 0.25  # pool wait while the server is known to be down
_RECONNECT: Final = 0.5  # the pool's reconnect_timeout: retry on demand after this
_RELISTEN: Final = 1.0  # a lost subscription reconnects at most this often
# A silent network partition would leave a listener waiting forever: TCP keepalives notice
# it within about 10 s (libpq options; ignored on Unix sockets).
_KEEPALIVES: Final = {"keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}


def _spell(template: str, schema: str) -> str:
    """Fill ``{s}`` (the validated schema name) and the column lists into a statement.
    Values never go into SQL text: they are parameters."""
    return (
        template.replace("{s}", schema)
        .replace("{columns}", ", ".join(FIELDS))
        .replace("{values}", ", ".join(["%s"] * len(FIELDS)))
        .replace("{assignments}", ", ".join(f"{name} = %s" for name in FIELDS[1:]))
    )


_CREATE: Final = (
    "CREATE SCHEMA IF NOT EXISTS {s}",
    "CREATE TABLE {s}.schema_version (version integer NOT NULL)",
    """CREATE TABLE {s}.sessions (
        id text COLLATE "C" PRIMARY KEY,
        secret_hash bytea NOT NULL,
        prev_secret_hash bytea,
        grace_until double precision NOT NULL,
        generation bigint NOT NULL,
        user_id text COLLATE "C",
        auth_level bigint NOT NULL,
        auth_time double precision,
        scopes text NOT NULL,
        data text NOT NULL,
        created_at double precision NOT NULL,
        rotated_at double precision NOT NULL,
        last_seen double precision NOT NULL,
        expires_at double precision NOT NULL,
        absolute_expires_at double precision NOT NULL,
        version bigint NOT NULL,
        context text NOT NULL,
        successor bytea
    ) WITH (fillfactor = 85)""",
    "CREATE INDEX sessions_by_user ON {s}.sessions (user_id, created_at, id)"
    " WHERE user_id IS NOT NULL",
    "CREATE FUNCTION {s}.announce_change() RETURNS trigger LANGUAGE plpgsql"
    " AS $$BEGIN PERFORM pg_notify('{s}_changes', OLD.id); RETURN NULL; END$$",
    "CREATE TRIGGER announce_change AFTER UPDATE OR DELETE ON {s}.sessions"
    " FOR EACH ROW EXECUTE FUNCTION {s}.announce_change()",
)


class _Queries:
    """Every statement, spelled once for one schema."""

    def __init__(self, schema: str) -> None:
        def spell(template: str) -> str:
            return _spell(template, schema)

        self.create = tuple(spell(statement) for statement in _CREATE)
        self.version_table = f"{schema}.schema_version"
        self.read_version = spell("SELECT version FROM {s}.schema_version")
        self.init_version = spell("INSERT INTO {s}.schema_version VALUES (%s)")
        self.channel = f"{schema}_changes"
        self.get = spell("SELECT {columns} FROM {s}.sessions WHERE id = %s")
        self.insert = spell("INSERT INTO {s}.sessions ({columns}) VALUES ({values})")
        self.update = spell("UPDATE {s}.sessions SET {assignments} WHERE id = %s AND version = %s")
        self.exists = spell("SELECT 1 FROM {s}.sessions WHERE id = %s")
        self.touch = spell(
            "UPDATE {s}.sessions SET last_seen = %s, expires_at = %s"
            " WHERE id = %s AND last_seen < %s"
        )
        self.delete = spell("DELETE FROM {s}.sessions WHERE id = %s")
        self.by_user = spell(
            "SELECT {columns} FROM {s}.sessions WHERE user_id = %s ORDER BY created_at, id"
        )
        self.live_ids = spell(
            "SELECT id FROM {s}.sessions WHERE user_id = %s AND expires_at > %s"
            " ORDER BY created_at, id"
        )
        self.evict = spell("DELETE FROM {s}.sessions WHERE id = ANY(%s)")
        self.delete_user = spell(
            "DELETE FROM {s}.sessions WHERE user_id = %s AND id <> %s RETURNING id"
        )
        # Sessions only: the mark of ``SessionRecord.is_internal`` is an empty verifier.
        self.delete_all = spell(
            "DELETE FROM {s}.sessions WHERE id <> %s AND octet_length(secret_hash) > 0"
        )
        self.scan = spell("SELECT {columns} FROM {s}.sessions WHERE id > %s ORDER BY id LIMIT %s")
        self.lock = LOCK
        self.purge = spell(
            "WITH chunk AS (SELECT id FROM {s}.sessions WHERE id > %s ORDER BY id LIMIT %s),"
            " doomed AS (DELETE FROM {s}.sessions t USING chunk WHERE t.id = chunk.id"
            " AND t.expires_at <= %s RETURNING 1)"
            " SELECT (SELECT max(id) FROM chunk), (SELECT count(*) FROM doomed)"
        )
        # Sessions only: the mark of ``SessionRecord.is_internal`` is an empty verifier.
        self.count = spell("SELECT count(*) FROM {s}.sessions WHERE octet_length(secret_hash) > 0")


def _dropped(exc: BaseException) -> bool:
    """True when ``exc`` means the server dropped the connection (not that a statement
    failed, nor that the pool had no connection to give)."""
    if not isinstance(exc, psycopg.OperationalError) or isinstance(exc, PoolTimeout):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")


def _translate(exc: Exception) -> StoreError | InvalidArgument:
    if isinstance(exc, pg_errors.UniqueViolation):
        return AlreadyExists("a session with this id exists")
    return translate(exc, expected="the schema sessionward expects")


class AsyncPostgresStore:
    """Sessions in a PostgreSQL table, through a psycopg connection pool (see the module
    docstring for the options, the schema and the guarantees)."""

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "sessionward",
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 2.0,
        connect_timeout: int = 2,
    ) -> None:
        schema_name(schema)
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ConfigError("need 0 <= min_size <= max_size and max_size >= 1")
        if not timeout > 0 or connect_timeout < 1:
            raise ConfigError("timeout must be positive and connect_timeout at least 1 s")
        self.schema = schema
        self._conninfo = conninfo
        self._sizes = (min_size, max_size)
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._q = _Queries(schema)
        self._pools = ProcessPool(self._new_pool, closed="postgres: the store is closed")
        self._ready_pid = 0  # the process in which the pool is open and the schema checked
        self._down = False  # the last request met an unreachable server

    @property
    def _pool(self) -> AsyncConnectionPool[Any] | None:
        return self._pools.pool

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the pool and create or check the schema (otherwise done on first use)."""
        await self._open()

    def _new_pool(self) -> AsyncConnectionPool[Any]:
        return AsyncConnectionPool(
            self._conninfo,
            min_size=self._sizes[0],
            max_size=self._sizes[1],
            timeout=self._timeout,
            reconnect_timeout=_RECONNECT,
            open=False,
            name=f"sessionward-{self.schema}",
            kwargs=self._connect_options(),
        )

    async def _open(self) -> AsyncConnectionPool[Any]:
        pid = os.getpid()
        pool = self._pools.get()
        await pool.open(wait=False)
        try:
            async with pool.connection(self._wait()) as conn, conn.transaction():
                await self._check_schema(conn)
        except DRIVER_ERRORS as exc:
            raise self._failed(exc) from exc
        self._ready_pid = pid
        return pool

    def _connect_options(self) -> dict[str, Any]:
        return {"autocommit": True, "connect_timeout": self._connect_timeout}

    async def _check_schema(self, conn: psycopg.AsyncConnection[Any]) -> None:
        q = self._q
        await conn.execute(q.lock, (lock_key(self.schema),))
        cursor = await conn.execute("SELECT to_regclass(%s)", (q.version_table,))
        found = await cursor.fetchone()
        if found is None or found[0] is None:
            for statement in q.create:
                await conn.execute(statement)
            await conn.execute(q.init_version, (SCHEMA_VERSION,))
            return
        cursor = await conn.execute(q.read_version)
        versions = [row[0] for row in await cursor.fetchall()]
        if versions != [SCHEMA_VERSION]:
            raise StoreCorrupt(
                f"postgres: schema {self.schema!r} is at version"
                f" {', '.join(map(str, versions)) or 'none'}; this sessionward reads version"
                f" {SCHEMA_VERSION} only"
            )

    async def _ready(self) -> AsyncConnectionPool[Any]:
        pool = self._pool
        if pool is None or self._ready_pid != os.getpid():
            pool = await self._open()
        return pool

    def _wait(self) -> float | None:
        """How long to wait for a pooled connection: the pool's timeout, or a short one while
        the server is known to be down so that an outage answers fast."""
        return _DOWN_WAIT if self._down else None

    def _failed(self, exc: Exception) -> StoreError | InvalidArgument:
        error = _translate(exc)
        if isinstance(error, StoreUnavailable):
            self._down = True
        return error

    async def close(self) -> None:
        self._ready_pid = 0
        pool = self._pools.close()
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection, driver errors translated on the way out."""
        pool = await self._ready()
        try:
            async with pool.connection(self._wait()) as conn:
                yield conn
        except DRIVER_ERRORS as exc:
            raise self._failed(exc) from exc
        self._down = False

    async def _read(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Rows of a read, retried once when the pooled connection turned out to be one the
        server had dropped (say, after a restart)."""
        for attempt in (1, 2):
            pool = await self._ready()
            try:
                async with pool.connection(self._wait()) as conn:
                    cursor = await conn.execute(query, params, prepare=True)
                    rows: list[tuple[Any, ...]] = await cursor.fetchall()
                self._down = False
                return rows
            except DRIVER_ERRORS as exc:
                error = self._failed(exc)
                if attempt == 2 or not _dropped(exc):
                    raise error from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- AsyncStore -------------------------------------------------------------------------

    async def get(self, session_id: str) -> SessionRecord | None:
        rows = await self._read(self._q.get, (session_id,))
        return SessionRecord._make(rows[0]) if rows else None

    async def add(self, record: SessionRecord, *, cap: UserCap | None = None) -> list[str]:
        q = self._q
        async with self._connection() as conn:
            if cap is None or record.user_id is None:
                await conn.execute(q.insert, record, prepare=True)
                return []
            async with conn.transaction():
                await conn.execute(q.lock, (lock_key(self.schema, record.user_id),))
                cursor = await conn.execute(q.live_ids, (record.user_id, cap.now), prepare=True)
                live = [row[0] for row in await cursor.fetchall()]
                excess = len(live) - cap.limit + 1
                evicted: list[str] = []
                if excess > 0:
                    if not cap.evict_oldest:
                        raise SessionLimitReached(f"user already has {len(live)} sessions")
                    evicted = live[:excess]
                    await conn.execute(q.evict, (evicted,), prepare=True)
                await conn.execute(q.insert, record, prepare=True)
        return evicted

    async def replace(self, record: SessionRecord, *, expected_version: int) -> None:
        params = (*record[1:], record.id, expected_version)
        async with self._connection() as conn:
            cursor = await conn.execute(self._q.update, params, prepare=True)
            if cursor.rowcount == 1:
                return
            cursor = await conn.execute(self._q.exists, (record.id,), prepare=True)
            exists = await cursor.fetchone() is not None
        raise VersionConflict(record.id) if exists else NotFound(record.id)

    async def touch(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        async with self._connection() as conn:
            params = (last_seen, expires_at, session_id, last_seen)
            await conn.execute(self._q.touch, params, prepare=True)

    async def delete(self, session_id: str) -> bool:
        async with self._connection() as conn:
            cursor = await conn.execute(self._q.delete, (session_id,), prepare=True)
            return cursor.rowcount > 0

    async def purge_expired(self, now: float) -> int:
        """Walks the table by primary key, 1,000 ids per statement, each statement its own
        short transaction: readers are never blocked, writers at most for one chunk."""
        total = 0
        after = ""
        while True:
            async with self._connection() as conn:
                params = (after, _PURGE_CHUNK, now)
                cursor = await conn.execute(self._q.purge, params, prepare=True)
                [(last, deleted)] = await cursor.fetchall()
            total += int(deleted)
            if last is None:
                return total
            after = last

    async def delete_all(self, *, keep: str | None = None) -> int:
        """One statement, so all or nothing; the trigger announces every deleted id."""
        async with self._connection() as conn:
            cursor = await conn.execute(self._q.delete_all, ("" if keep is None else keep,))
            return cursor.rowcount

    async def scan(self, *, after: str = "", limit: int = 500) -> list[SessionRecord]:
        """A page of the primary key's order (ids are ``COLLATE "C"``: Python's order)."""
        if limit < 1:
            raise InvalidArgument("limit must be at least 1")
        rows = await self._read(self._q.scan, (after, limit))
        return [SessionRecord._make(row) for row in rows]

    async def count(self) -> int:
        """Number of stored sessions (expired ones included until purged; internal records,
        ``SessionRecord.is_internal``, not counted)."""
        rows = await self._read(self._q.count, ())
        return int(rows[0][0])

    # -- AsyncUserIndex ---------------------------------------------------------------------

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        rows = await self._read(self._q.by_user, (user_id,))
        return [SessionRecord._make(row) for row in rows]

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        async with self._connection() as conn:
            params = (user_id, "" if keep is None else keep)
            cursor = await conn.execute(self._q.delete_user, params, prepare=True)
            return [row[0] for row in await cursor.fetchall()]

    # -- AsyncBroadcast ---------------------------------------------------------------------

    async def subscribe(self) -> AsyncPostgresSubscription:
        """Listen for changed ids on a dedicated connection (outside the pool). Raises
        ``StoreUnavailable`` when the server cannot be reached now."""
        await self._ready()  # the schema (and its trigger) exists before anyone listens
        options = {**self._connect_options(), **_KEEPALIVES}
        subscription = AsyncPostgresSubscription(self._conninfo, self._q.channel, options)
        if not await subscription._listen():
            raise StoreUnavailable("postgres: cannot listen for changes")
        return subscription


class AsyncPostgresSubscription:
    """Announcements of changed session ids, from ``LISTEN <schema>_changes``.

    ``changed()`` reads only what has already reached this process (a zero-timeout poll of
    the socket, then psycopg's ``notifies(timeout=0)``). It answers ``None`` when the
    connection was lost (the server ended it, or it broke), when it belongs to the parent of
    a forked process, and on the call that listens again (at most once a second): what was
    announced in between is unknown.
    """

    def __init__(self, conninfo: str, channel: str, options: dict[str, Any]) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._options = options
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._selector: selectors.BaseSelector | None = None
        self._pid = 0
        self._ended = False  # the server said it is ending the connection
        self._retry_at = 0.0
        self._closed = False

    async def _listen(self) -> bool:
        """Connect and LISTEN; False (and nothing held) when the server cannot be reached."""
        self._retry_at = time.monotonic() + _RELISTEN
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, **self._options)
        except psycopg.Error:
            return False
        try:
            conn.add_notice_handler(self._on_notice)
            await conn.execute("LISTEN " + self._channel)
        except psycopg.Error:
            await conn.close()
            return False
        if self._conn is not None or self._closed:  # another thread got there first
            await conn.close()
            return self._conn is not None
        selector = selectors.DefaultSelector()
        selector.register(conn.fileno(), selectors.EVENT_READ)
        self._conn, self._selector, self._pid = conn, selector, os.getpid()
        self._ended = False
        return True

    def _on_notice(self, diagnostic: psycopg.errors.Diagnostic) -> None:
        # A server that ends the connection says so before closing the socket (FATAL, or a
        # WARNING with an operator-intervention code on an immediate shutdown); what it would
        # have announced after that is lost.
        ending = (diagnostic.sqlstate or "").startswith(("57P", "08"))
        if ending or diagnostic.severity_nonlocalized in ("FATAL", "PANIC"):
            self._ended = True

    async def changed(self) -> list[str] | None:
        conn, selector = self._conn, self._selector
        if conn is None or selector is None or self._pid != os.getpid():
            self._forget()
            if not self._closed and time.monotonic() >= self._retry_at:
                await self._listen()
            return None
        ids: list[str] = []
        try:
            if selector.select(0):
                ids = [notice.payload async for notice in conn.notifies(timeout=0)]
        except psycopg.Error:
            self._ended = True
        if self._ended:
            await self._drop()
            return None
        return ids

    def _forget(self) -> None:
        """Let go of the connection without closing it (it may be a parent process's)."""
        if self._selector is not None and self._pid == os.getpid():
            self._selector.close()
        self._conn = self._selector = None

    async def _drop(self) -> None:
        conn, pid = self._conn, self._pid
        self._forget()
        if conn is not None and pid == os.getpid():
            await conn.close()

    async def close(self) -> None:
        """Stop listening. Idempotent."""
        self._closed = True
        await self._drop()
