"""Sessions in PostgreSQL: psycopg 3, a connection pool, prepared statements.

* One table, ``<schema>.sessions``, its columns in ``SessionRecord`` order, so a row becomes a
  record with one call. Ids and user ids use the ``"C"`` collation: byte order, the same order
  Python sorts strings in, whatever the database's locale.
* A schema-version table and ordered migrations, applied under an advisory lock by whichever
  process opens the store first; a schema newer than this code is refused, not misread.
* Every statement on the hot path runs prepared, in autocommit: ``get`` is one round trip.
* ``replace`` is a single ``UPDATE ... WHERE id = $1 AND version = $2``: PostgreSQL re-checks
  the version on the locked row, so two concurrent writers cannot both win (no lost update).
* ``add`` with a cap takes a per-user transaction-scoped advisory lock, then counts, evicts and
  inserts in one transaction: two logins of one user are serialised, no double grant.
  Readers never wait on it (MVCC).
* ``purge_expired`` walks the primary key in chunks of 1,000, one short autocommit statement
  per chunk, so it never holds locks for long. There is no index on ``expires_at``: ``touch``
  then changes no indexed column and stays a cheap HOT update (``fillfactor`` leaves room).
* A lost connection (server restart, failover) raises ``StoreUnavailable`` for the request that
  met it and makes the store start a fresh pool, so service resumes as soon as the server
  accepts connections again; reads retry once on a fresh connection first.
* Single-row reads (``get``) run on a connection of the calling thread's own, outside the
  pool (at most ``max_size`` of them): the pool's checkout and return cost about as much
  client CPU as the query itself. While that connection is busy (another task of the same
  event loop), broken, or the server is known to be down, reads take the pool as before.
* Opt-in local read cache (``cache_size``): records served from process memory, invalidated
  through ``LISTEN``/``NOTIFY``. A trigger announces every update and delete of a row (from
  any node, any tool) on a channel of the schema; each caching node keeps one listening
  connection and, before every cached read, applies what is already on its socket (a
  non-blocking read, no round trip). See ``AsyncPostgresStore`` for the guarantees.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from contextlib import suppress
from typing import Any, Final

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from sessionward import _forks
from sessionward._backoff import async_sleep
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

__all__ = ["AsyncPostgresStore"]

SCHEMA_VERSION: Final = 1
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_PURGE_CHUNK: Final = 1000
_RESET_INTERVAL: Final = 0.25
_DOWN_WAIT: Final = 0.25
_ECHO_WAIT: Final = 0.5  # how long a write waits to hear its own announcement
_RELISTEN_INTERVAL: Final = 1.0
_HEARD_MEMO: Final = 50_000


def _spell(template: str, schema: str) -> str:
    """Fill ``{s}`` (the schema, a validated plain identifier), ``{columns}`` and ``{values}``
    into a statement template. No value ever goes into SQL text: values are parameters."""
    return (
        template.replace("{s}", schema)
        .replace("{columns}", ", ".join(FIELDS))
        .replace("{values}", ", ".join(["%s"] * len(FIELDS)))
        .replace("{assignments}", ", ".join(f"{name} = %s" for name in FIELDS[1:]))
    )


MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
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
            context text NOT NULL
        ) WITH (fillfactor = 85)""",
        "CREATE INDEX sessions_by_user ON {s}.sessions (user_id, created_at, id)"
        " WHERE user_id IS NOT NULL",
    ),
}


class _Queries:
    """Every statement, spelled once per schema."""

    def __init__(self, schema: str) -> None:
        def spell(template: str) -> str:
            return _spell(template, schema)

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
        self.lock = "SELECT pg_advisory_xact_lock(%s)"
        self.purge = spell(
            "WITH chunk AS (SELECT id FROM {s}.sessions WHERE id > %s ORDER BY id LIMIT %s),"
            " doomed AS (DELETE FROM {s}.sessions t USING chunk WHERE t.id = chunk.id"
            " AND t.expires_at <= %s RETURNING 1)"
            " SELECT (SELECT max(id) FROM chunk), (SELECT count(*) FROM doomed)"
        )
        self.count = spell("SELECT count(*) FROM {s}.sessions")
        self.channel = "sessionward_" + hashlib.sha256(schema.encode()).hexdigest()[:16]
        self.announcer = (
            spell(
                "CREATE OR REPLACE FUNCTION {s}.sessions_announce() RETURNS trigger"
                " LANGUAGE plpgsql AS $$BEGIN PERFORM pg_notify('"
                + self.channel
                + "', OLD.id); RETURN NULL; END$$"
            ),
            spell(
                "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname ="
                " 'sessions_announce' AND tgrelid = '{s}.sessions'::regclass) THEN"
                " CREATE TRIGGER sessions_announce AFTER UPDATE OR DELETE ON {s}.sessions"
                " FOR EACH ROW EXECUTE FUNCTION {s}.sessions_announce(); END IF; END$$"
            ),
        )
        self.create_schema = spell("CREATE SCHEMA IF NOT EXISTS {s}")
        self.create_version = spell(
            "CREATE TABLE IF NOT EXISTS {s}.schema_version (version integer NOT NULL)"
        )
        self.read_version = spell("SELECT version FROM {s}.schema_version")
        self.init_version = spell("INSERT INTO {s}.schema_version VALUES (0)")
        self.set_version = spell("UPDATE {s}.schema_version SET version = %s")
        self.migrations = {
            step: tuple(spell(statement) for statement in statements)
            for step, statements in MIGRATIONS.items()
        }


def _connection_lost(exc: BaseException) -> bool:
    """True when ``exc`` means the connection (not the statement) failed."""
    if isinstance(exc, PoolTimeout | PoolClosed | psycopg.InterfaceError):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")


def _translate(exc: psycopg.Error) -> StoreError | InvalidArgument:
    name = type(exc).__name__
    if isinstance(exc, pg_errors.UniqueViolation):
        return AlreadyExists("a session with this id exists")
    if isinstance(exc, PoolClosed):
        return StoreUnavailable("postgres: the store is closed")
    if _connection_lost(exc) or isinstance(exc, psycopg.OperationalError):
        return StoreUnavailable(f"postgres: {name}: {exc}")
    if isinstance(
        exc, pg_errors.UndefinedTable | pg_errors.UndefinedColumn | pg_errors.InvalidSchemaName
    ):
        return StoreCorrupt(f"postgres: not a sessionward schema ({exc})")
    if isinstance(exc, psycopg.DataError):
        return InvalidArgument(f"postgres cannot store this value ({name})")
    if isinstance(exc, psycopg.ProgrammingError | psycopg.IntegrityError):
        return StoreCorrupt(f"postgres: {name}: {exc}")
    return StoreUnavailable(f"postgres: {name}: {exc}")


class _LocalCache:
    """Records in process memory, and what the listening connection has heard.

    ``seq`` counts the announcements heard; a record read from the server is kept only if
    none arrived while it was being read (it might be older than the change announced).
    ``heard`` maps a session id to the ``seq`` of its latest announcement, for a writer that
    waits to hear its own. ``lock`` serialises use of the listening connection; whoever cannot
    take it reads from the server instead (never from a cache that may be behind)."""

    def __init__(self, size: int, ttl: float) -> None:
        self.size = size
        self.ttl = ttl
        self.entries: dict[str, tuple[float, SessionRecord]] = {}
        self.listener: Any = None
        self.seq = 0
        self.heard: dict[str, int] = {}
        self.lock = threading.Lock()
        self.retry_at = 0.0
        self.hits = 0
        self.misses = 0

    def drain(self) -> bool:
        """Apply every announcement already received (no waiting). False, with the cache
        emptied and the listener dropped, when the listening connection is unusable. Call
        with ``lock`` held."""
        conn = self.listener
        if conn is None:
            return False
        pgconn = conn.pgconn
        try:
            # Twice: a server that ends the connection sends an error, then closes; libpq
            # reads the error on one call and meets the end of the stream only on the next.
            pgconn.consume_input()
            pgconn.consume_input()
            while (notice := pgconn.notifies()) is not None:
                session_id = notice.extra.decode("utf-8", "surrogateescape")
                self.seq += 1
                self.entries.pop(session_id, None)
                if len(self.heard) >= _HEARD_MEMO:
                    self.heard.clear()  # a writer waiting for an echo then times out: safe
                self.heard[session_id] = self.seq
        except psycopg.Error:
            self.lost()
            return False
        return True

    def lost(self) -> None:
        """Announcements may have been missed: trust nothing cached until resubscribed."""
        conn, self.listener = self.listener, None
        self.entries.clear()
        self.seq += 1
        if conn is not None:
            with suppress(Exception):
                conn.pgconn.finish()

    def keep(self, session_id: str, record: SessionRecord, now: float) -> None:
        entries = self.entries
        if len(entries) >= self.size:
            with suppress(StopIteration, KeyError):
                del entries[next(iter(entries))]  # the oldest entry
        entries[session_id] = (now + self.ttl, record)


class _Reader:
    """A thread's own connection for single-row reads. ``busy`` while a read is in flight
    (another task of the same event loop then uses the pool); ``fork`` is the
    ``_forks.generation`` it was opened in."""

    __slots__ = ("busy", "conn", "fork")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.busy = False
        self.fork = _forks.generation


# Readers inherited through fork(): never closed by the child (closing would end the
# parent's session on the shared socket), never garbage-collected either.
_INHERITED: list[_Reader] = []


class AsyncPostgresStore:
    """Sessions in a PostgreSQL table, through a psycopg connection pool.

    ``conninfo`` is a libpq connection string or URL (``postgresql://user@host:5432/db``).
    ``schema`` names the PostgreSQL schema holding the tables (created if missing).
    ``min_size`` / ``max_size`` bound the pool; ``timeout`` is how long a request waits for a
    connection before ``StoreUnavailable``. Connections open lazily on first use (or on
    :meth:`open`).

    ``cache_size`` (default 0: off) keeps up to that many records in process memory, each
    for at most ``cache_ttl`` seconds. Opening a caching store installs, once per schema, a
    trigger that announces (``NOTIFY``) every update and delete of a session row, whoever
    makes it; from then on every write to the table pays that announcement (PostgreSQL
    serialises committing transactions that notify: measure before enabling it on a
    write-heavy database). Guarantees:

    * before each cached read, the announcements already received are applied; while the
      listening connection is down, nothing is served from memory;
    * a write that revokes or changes a session (``replace``, ``delete``, ``delete_user``, a
      cap eviction) returns only after this node has heard its own announcement, which
      PostgreSQL signals to every listening connection at commit; a node that cannot hear it
      within 0.5 s stops serving from memory until it resubscribes. Delivery to the other
      nodes is PostgreSQL's: in the same signalling pass, not acknowledged to the writer
      (the Redis store's PING makes that step strict; NOTIFY has no equivalent).
    * ``touch`` is announced but not awaited: a node may, for at most ``cache_ttl``, see an
      older idle deadline, which can only refuse a session early, never accept one late.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "sessionward",
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 2.0,
        connect_timeout: int = 2,
        cache_size: int = 0,
        cache_ttl: float = 5.0,
    ) -> None:
        if not _IDENTIFIER.fullmatch(schema):
            raise ConfigError("schema must be a lower-case SQL identifier")
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ConfigError("need 0 <= min_size <= max_size and max_size >= 1")
        if not timeout > 0:
            raise ConfigError("timeout must be positive")
        if cache_size < 0 or not 0 < cache_ttl < float("inf"):
            raise ConfigError("need cache_size >= 0 and a positive, finite cache_ttl")
        self._cache = _LocalCache(cache_size, cache_ttl) if cache_size else None
        self.schema = schema
        self._conninfo = conninfo
        self._sizes = (min_size, max_size)
        self._timeout = timeout
        self._connect_timeout = max(2, int(connect_timeout))
        self._q = _Queries(schema)
        self._lock = threading.Lock()
        self._pool = self._new_pool()
        self._opened = False
        self._migrated = False
        self._closed = False
        self._last_reset = 0.0
        self._readers = threading.local()
        self._open_readers: list[_Reader] = []
        self._reader_retry = 0.0
        # How long a request waits for a connection: the pool's timeout normally, a short
        # one while the server is known to be down, so an outage answers fast.
        self._wait: float | None = None

    def _new_pool(self) -> AsyncConnectionPool:
        return AsyncConnectionPool(
            self._conninfo,
            min_size=self._sizes[0],
            max_size=self._sizes[1],
            timeout=self._timeout,
            open=False,
            name=f"sessionward-{self.schema}",
            kwargs=self._connect_options(),
        )

    def _connect_options(self) -> dict[str, Any]:
        """How every connection of the store is opened, pooled or not."""
        return {"autocommit": True, "connect_timeout": self._connect_timeout}

    async def _connect(self) -> Any:
        """A connection outside the pool (a thread's reader, the cache's listener)."""
        return await psycopg.AsyncConnection.connect(self._conninfo, **self._connect_options())

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the pool and bring the schema up to date (done on first use otherwise)."""
        if self._closed:
            raise StoreUnavailable("postgres: the store is closed")
        if not self._opened:
            self._opened = True
            await self._pool.open(wait=False)
        if not self._migrated:
            try:
                await self._migrate()
            except psycopg.Error as exc:
                await self._failed(exc)
                raise _translate(exc) from exc
            self._migrated = True
            if self._cache is not None:
                await self._relisten(self._cache)

    async def _migrate(self) -> None:
        q = self._q
        async with self._pool.connection(timeout=self._wait) as conn, conn.transaction():
            lock = hashlib.sha256(f"sessionward:{self.schema}".encode()).digest()[:8]
            await conn.execute(q.lock, (int.from_bytes(lock) - (1 << 63),))
            await conn.execute(q.create_schema)
            await conn.execute(q.create_version)
            cursor = await conn.execute(q.read_version)
            rows = await cursor.fetchall()
            if not rows:
                await conn.execute(q.init_version)
                version = 0
            elif len(rows) != 1 or not isinstance(rows[0][0], int):
                raise StoreCorrupt("the schema version table is damaged")
            else:
                version = rows[0][0]
            if version > SCHEMA_VERSION:
                raise StoreCorrupt(
                    f"database schema {version} is newer than this sessionward ({SCHEMA_VERSION})"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in q.migrations[step]:
                    await conn.execute(statement)
                await conn.execute(q.set_version, (step,))
            if self._cache is not None:
                for statement in q.announcer:
                    await conn.execute(statement)

    async def _ready(self) -> None:
        if not self._migrated:
            await self.open()

    async def _failed(self, exc: BaseException) -> None:
        """After a lost connection, replace the pool (at most every 0.25 s): a fresh pool
        connects at once, where the old one would back off for seconds before retrying.
        Until an operation succeeds again, requests wait at most 0.25 s for a connection."""
        if self._closed or not _connection_lost(exc) or isinstance(exc, PoolClosed):
            return
        self._wait = _DOWN_WAIT
        now = time.monotonic()
        with self._lock:
            if now - self._last_reset < _RESET_INTERVAL:
                return
            self._last_reset = now
            old, self._pool = self._pool, self._new_pool()
        await self._pool.open(wait=False)
        await old.close(timeout=0)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._cache is not None:
            self._cache.lost()
        with self._lock:
            readers, self._open_readers = self._open_readers, []
        for reader in readers:
            if reader.fork == _forks.generation:
                with suppress(Exception):
                    reader.conn.pgconn.finish()
        if self._opened:
            await self._pool.close(timeout=5)

    # -- the store interface ----------------------------------------------------------------

    async def _reader(self) -> _Reader | None:
        """This thread's read connection, opened on first use; None when it is busy, when the
        server is known to be down, or when ``max_size`` readers are open already."""
        reader: _Reader | None = getattr(self._readers, "reader", None)
        if reader is not None:
            if reader.fork == _forks.generation:
                return None if reader.busy else reader
            # Inherited through fork(): the parent's socket. Kept (unused, never finished)
            # and replaced by a connection of this process's own.
            with self._lock:
                inherited = [r for r in self._open_readers if r.fork != _forks.generation]
                self._open_readers = [r for r in self._open_readers if r not in inherited]
            _INHERITED.extend(inherited)
            self._readers.reader = None
        now = time.monotonic()
        if self._wait is not None or self._closed or now < self._reader_retry:
            return None
        with self._lock:
            if len(self._open_readers) >= self._sizes[1]:
                return None
            self._reader_retry = now + _RELISTEN_INTERVAL  # one attempt at a time, at most 1/s
        try:
            conn = await self._connect()
        except psycopg.Error:
            return None  # the pool path answers (and notices an outage)
        reader = _Reader(conn)
        with self._lock:
            self._open_readers.append(reader)
            self._reader_retry = 0.0
        self._readers.reader = reader
        return reader

    def _drop_reader(self, reader: _Reader) -> None:
        if getattr(self._readers, "reader", None) is reader:
            self._readers.reader = None
        with self._lock:
            if reader in self._open_readers:
                self._open_readers.remove(reader)
        with suppress(Exception):
            reader.conn.pgconn.finish()

    async def _one(self, query: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """A read of at most one row: on this thread's reader when it can, else on a pooled
        connection, retried once on a fresh one if the first turns out to be dead (a pooled
        connection that outlived a server restart)."""
        await self._ready()
        reader = await self._reader()
        if reader is not None:
            reader.busy = True
            try:
                cursor = await reader.conn.execute(query, params, prepare=True)
                row: tuple[Any, ...] | None = await cursor.fetchone()
                reader.busy = False
                self._wait = None
                return row
            except psycopg.Error as exc:
                self._drop_reader(reader)
                if not _connection_lost(exc):
                    raise _translate(exc) from exc
                # A dead reader (server restart): the pool decides, and notices an outage.
            except BaseException:
                self._drop_reader(reader)  # cancelled mid-read: its reply may still come
                raise
        for attempt in range(2):
            try:
                # getconn/putconn rather than pool.connection(): in autocommit there is no
                # transaction for its "with conn" to end, and the read is the hot path. putconn
                # still checks the connection and replaces a broken one.
                pool = self._pool
                conn = await pool.getconn(timeout=self._wait)
                try:
                    cursor = await conn.execute(query, params, prepare=True)
                    row = await cursor.fetchone()
                finally:
                    await pool.putconn(conn)
                self._wait = None
                return row
            except psycopg.Error as exc:
                await self._failed(exc)
                if attempt or isinstance(exc, PoolTimeout) or not _connection_lost(exc):
                    raise _translate(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def get(self, session_id: str) -> SessionRecord | None:
        cache = self._cache
        if cache is None:
            row = await self._one(self._q.get, (session_id,))
            return None if row is None else SessionRecord._make(row)
        seq = -1  # -1: the cache may be behind; the record read now is not kept
        if cache.lock.acquire(blocking=False):
            try:
                if cache.drain():
                    hit = cache.entries.get(session_id)
                    if hit is not None and hit[0] > time.monotonic():
                        cache.hits += 1
                        return hit[1]
                    seq = cache.seq
            finally:
                cache.lock.release()
        cache.misses += 1
        row = await self._one(self._q.get, (session_id,))
        if row is None:
            return None
        record = SessionRecord._make(row)
        if seq < 0:
            if cache.listener is None:
                await self._relisten(cache)  # the server answers: listen again
        elif cache.lock.acquire(blocking=False):
            try:  # kept only if nothing was announced while it was read
                if cache.drain() and cache.seq == seq:
                    cache.keep(session_id, record, time.monotonic())
            finally:
                cache.lock.release()
        return record

    def cache_info(self) -> dict[str, int]:
        """Local cache counters: ``hits``, ``misses``, ``size``, ``listening`` (0 or 1)."""
        cache = self._cache
        if cache is None:
            return {"hits": 0, "misses": 0, "size": 0, "listening": 0}
        return {
            "hits": cache.hits,
            "misses": cache.misses,
            "size": len(cache.entries),
            "listening": int(cache.listener is not None),
        }

    async def _relisten(self, cache: _LocalCache) -> None:
        """Open the listening connection (at most once a second while it fails)."""
        now = time.monotonic()
        if cache.listener is not None or now < cache.retry_at or self._closed:
            return
        if not cache.lock.acquire(blocking=False):
            return
        try:
            cache.retry_at = now + _RELISTEN_INTERVAL
            conn = await self._connect()
            try:
                await conn.execute("LISTEN " + self._q.channel)
            except BaseException:
                await conn.close()
                raise
            cache.entries.clear()
            cache.seq += 1  # reads begun before the subscription are not kept
            cache.listener = conn
        except psycopg.Error:
            pass  # still down; reads go to the server meanwhile
        finally:
            cache.lock.release()

    async def _announced(self, ids: list[str], mark: int) -> None:
        """After a write that changed or deleted ``ids`` (announced by the trigger): forget
        them here, then wait until this node has heard the announcements, so that when the
        write returns PostgreSQL has signalled every listening node."""
        cache = self._cache
        if cache is None or not ids:
            return
        for session_id in ids:
            cache.entries.pop(session_id, None)
        deadline = time.monotonic() + _ECHO_WAIT
        while cache.listener is not None:
            if cache.lock.acquire(blocking=False):
                try:
                    if not cache.drain():
                        return
                    heard = cache.heard
                    if all(heard.get(i, -1) > mark for i in ids):
                        return
                    if time.monotonic() > deadline:
                        cache.lost()  # cannot confirm: serve nothing from memory for now
                        return
                finally:
                    cache.lock.release()
            await async_sleep(0.0002)

    def _mark(self) -> int:
        return -1 if self._cache is None else self._cache.seq

    async def add(self, record: SessionRecord, *, cap: UserCap | None = None) -> list[str]:
        await self._ready()
        mark = self._mark()
        try:
            async with self._pool.connection(timeout=self._wait) as conn:
                if cap is None or record.user_id is None:
                    await conn.execute(self._q.insert, record, prepare=True)
                    self._wait = None
                    return []
                async with conn.transaction():
                    await conn.execute(self._q.lock, (self._user_lock(record.user_id),))
                    cursor = await conn.execute(
                        self._q.live_ids, (record.user_id, cap.now), prepare=True
                    )
                    live = [row[0] for row in await cursor.fetchall()]
                    excess = len(live) - cap.limit + 1
                    evicted: list[str] = []
                    if excess > 0:
                        if not cap.evict_oldest:
                            raise SessionLimitReached(f"user already has {len(live)} sessions")
                        evicted = live[:excess]
                        await conn.execute(self._q.evict, (evicted,))
                    await conn.execute(self._q.insert, record, prepare=True)
                self._wait = None
        except psycopg.Error as exc:
            await self._failed(exc)
            raise _translate(exc) from exc
        await self._announced(evicted, mark)
        return evicted

    def _user_lock(self, user_id: str) -> int:
        digest = hashlib.sha256(f"{self.schema}\0{user_id}".encode("utf-8", "surrogatepass"))
        return int.from_bytes(digest.digest()[:8]) - (1 << 63)

    async def replace(self, record: SessionRecord, *, expected_version: int) -> None:
        await self._ready()
        mark = self._mark()
        try:
            async with self._pool.connection(timeout=self._wait) as conn:
                cursor = await conn.execute(
                    self._q.update, (*record[1:], record.id, expected_version), prepare=True
                )
                self._wait = None
                updated = cursor.rowcount == 1
                if not updated:
                    cursor = await conn.execute(self._q.exists, (record.id,), prepare=True)
                    exists = await cursor.fetchone()
        except psycopg.Error as exc:
            await self._failed(exc)
            raise _translate(exc) from exc
        if updated:
            await self._announced([record.id], mark)
            return
        raise VersionConflict(record.id) if exists else NotFound(record.id)

    async def touch(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        await self._write(self._q.touch, (last_seen, expires_at, session_id, last_seen))

    async def _write(self, query: str, params: tuple[Any, ...]) -> int:
        await self._ready()
        try:
            async with self._pool.connection(timeout=self._wait) as conn:
                cursor = await conn.execute(query, params, prepare=True)
                count = cursor.rowcount
            self._wait = None
            return count
        except psycopg.Error as exc:
            await self._failed(exc)
            raise _translate(exc) from exc

    async def delete(self, session_id: str) -> bool:
        mark = self._mark()
        if await self._write(self._q.delete, (session_id,)) > 0:
            await self._announced([session_id], mark)
            return True
        return False

    async def _rows(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        await self._ready()
        try:
            async with self._pool.connection(timeout=self._wait) as conn:
                cursor = await conn.execute(query, params, prepare=True)
                rows = await cursor.fetchall()
            self._wait = None
            return rows
        except psycopg.Error as exc:
            await self._failed(exc)
            raise _translate(exc) from exc

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        rows = await self._rows(self._q.by_user, (user_id,))
        return [SessionRecord._make(row) for row in rows]

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        mark = self._mark()
        rows = await self._rows(self._q.delete_user, (user_id, "" if keep is None else keep))
        deleted = [row[0] for row in rows]
        await self._announced(deleted, mark)
        return deleted

    async def purge_expired(self, now: float) -> int:
        """Walks the table by primary key, 1,000 ids per statement, each statement its own
        short transaction: readers are never blocked, writers at most for one chunk."""
        total = 0
        after = ""
        while True:
            rows = await self._rows(self._q.purge, (after, _PURGE_CHUNK, now))
            last, deleted = rows[0]
            total += int(deleted)
            if last is None:
                return total
            after = last

    async def count(self) -> int:
        """Number of stored records (expired ones included until purged)."""
        rows = await self._rows(self._q.count, ())
        return int(rows[0][0])
