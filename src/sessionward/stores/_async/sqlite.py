"""The embedded default store: one SQLite file, safe across threads and processes.

* WAL journal with ``synchronous=NORMAL``: readers never block the writer, a commit costs no
  fsync, and a crashed process (even ``kill -9``) loses no committed transaction. Only a power
  loss can drop the last few commits; the database stays consistent either way.
* ``STRICT`` tables: SQLite itself rejects a value of the wrong type, so every row we read has
  the types ``SessionRecord`` declares.
* One connection per thread (and per process after a fork); statements are cached by the
  driver. Multi-statement writes run in ``BEGIN IMMEDIATE`` transactions.
* A schema-version table and an ordered list of migrations: opening a file upgrades it in one
  transaction; a file from a newer sessionward is refused rather than misread.

The async flavour calls SQLite directly on the event loop: a primary-key lookup costs a few
microseconds, less than a thread hop. A writer waiting on another process's lock blocks the
loop for up to ``busy_timeout`` seconds; use the Redis or PostgreSQL stores for write-heavy
multi-process deployments.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sessionward import _forks
from sessionward._walindex import WalIndexWatch
from sessionward.core import token as tokens
from sessionward.core.record import FIELDS, SessionRecord
from sessionward.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    SessionLimitReached,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
    VersionConflict,
)
from sessionward.stores._async.base import UserCap

__all__ = ["AsyncSQLiteStore"]

SCHEMA_VERSION = 3
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY NOT NULL,
            secret_hash BLOB NOT NULL,
            prev_secret_hash BLOB,
            grace_until REAL NOT NULL,
            generation INTEGER NOT NULL,
            user_id TEXT,
            auth_level INTEGER NOT NULL,
            auth_time REAL,
            scopes TEXT NOT NULL,
            data TEXT NOT NULL,
            created_at REAL NOT NULL,
            rotated_at REAL NOT NULL,
            last_seen REAL NOT NULL,
            expires_at REAL NOT NULL,
            absolute_expires_at REAL NOT NULL,
            version INTEGER NOT NULL,
            context TEXT NOT NULL
        ) STRICT, WITHOUT ROWID""",
        "CREATE INDEX sessions_by_user ON sessions (user_id, created_at)"
        " WHERE user_id IS NOT NULL",
    ),
    # Schema 2 clusters a user's sessions in the primary key instead of indexing them: ids
    # minted here start with the user's tag (see AsyncSQLiteStore.new_session_id), so a
    # per-user query is a range scan of the table itself and a login writes one B-tree, not
    # two. Records whose id does not carry their user's tag (older files, imported records)
    # are listed in sessions_untagged; triggers drop those entries with the session.
    2: (
        "CREATE TABLE sessionward_meta (name TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL)"
        " STRICT, WITHOUT ROWID",
        "CREATE TABLE sessions_untagged (user_id TEXT NOT NULL, id TEXT NOT NULL,"
        " PRIMARY KEY (user_id, id)) STRICT, WITHOUT ROWID",
        "INSERT INTO sessions_untagged SELECT user_id, id FROM sessions WHERE user_id IS NOT NULL",
        "DROP INDEX sessions_by_user",
        "CREATE TRIGGER sessions_untagged_on_delete AFTER DELETE ON sessions"
        " WHEN old.user_id IS NOT NULL BEGIN"
        " DELETE FROM sessions_untagged WHERE user_id = old.user_id AND id = old.id; END",
        "CREATE TRIGGER sessions_untagged_on_move AFTER UPDATE OF user_id ON sessions"
        " WHEN old.user_id IS NOT NULL AND old.user_id IS NOT new.user_id BEGIN"
        " DELETE FROM sessions_untagged WHERE user_id = old.user_id AND id = old.id; END",
    ),
    3: ("ALTER TABLE sessions ADD COLUMN successor BLOB",),
}
_SALT_NAME = "user_tag_salt"

_COLUMNS = ", ".join(FIELDS)
_SELECT = f"SELECT {_COLUMNS} FROM sessions WHERE id = ?"  # noqa: S608 - fixed column list
_INSERT = f"INSERT INTO sessions ({_COLUMNS}) VALUES ({', '.join('?' * len(FIELDS))})"  # noqa: S608
_UPDATE = (
    "UPDATE sessions SET "  # noqa: S608 - fixed column list
    + ", ".join(f"{name} = ?" for name in FIELDS[1:])
    + " WHERE id = ? AND version = ?"
)


def _per_user(columns: str, where: str = "") -> str:
    """A user's sessions: the tagged ones by a range scan of the primary key (``?1 <= id <
    ?2``, the tag's range), then the untagged ones through ``sessions_untagged``. ``?3`` is
    the user id; ``where`` adds a condition on both halves."""
    return (
        f"SELECT {columns} FROM sessions WHERE id >= ?1 AND id < ?2 AND user_id = ?3{where}"  # noqa: S608
        f" UNION ALL SELECT {columns} FROM sessions WHERE id IN"
        " (SELECT id FROM sessions_untagged WHERE user_id = ?3)"
        f" AND user_id = ?3 AND NOT (id >= ?1 AND id < ?2){where}"
    )


_BY_USER = _per_user(_COLUMNS) + " ORDER BY created_at, id"
_USER_IDS = _per_user("id")
_USER_LIVE_IDS = _per_user("id, created_at", " AND expires_at > ?4") + " ORDER BY created_at, id"
_ADD_UNTAGGED = "INSERT OR IGNORE INTO sessions_untagged VALUES (?, ?)"
_TAG_BYTES = 3  # four base64url characters, a whole group: the id's first four characters
_TAG_MEMO = 4096
_PURGE_BATCH = 500
_CHECKPOINT_PAGES = 4000
_IS_STRICT = "SELECT strict FROM pragma_table_list WHERE schema = 'main' AND name = 'sessions'"
_CHUNK = "SELECT id FROM sessions WHERE id > ? ORDER BY id LIMIT ?"


class _Translated:
    """``with _TRANSLATED:`` maps sqlite3 exceptions onto ours; nothing of sqlite3 escapes
    this module. A class rather than a generator context manager: it sits on the hot path."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, sqlite3.Error):
            raise _translate(exc) from exc


def _translate(exc: sqlite3.Error) -> StoreError:
    if isinstance(exc, sqlite3.IntegrityError):
        return AlreadyExists(str(exc))
    message = str(exc)
    if isinstance(exc, sqlite3.OperationalError):
        if "no such table" in message or "no such column" in message:
            return StoreCorrupt(f"not a sessionward database ({message})")
        return StoreUnavailable(f"sqlite: {message}")
    if isinstance(exc, sqlite3.DatabaseError):
        return StoreCorrupt(f"database file is unreadable: {message}")
    return StoreUnavailable(f"sqlite: {message}")


class _Serialised(_Translated):
    """``_Translated`` plus a lock, for ``":memory:"``: its one connection is shared by every
    thread, and without the lock one thread's statements would run inside another's
    transaction (and be rolled back with it)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        try:
            super().__exit__(kind, exc, tb)
        finally:
            self._lock.release()


_TRANSLATED = _Translated()


class AsyncSQLiteStore:
    """Sessions in a SQLite file (or ``":memory:"`` for one connection's lifetime).

    ``create=False`` refuses to create a missing file (the CLI uses it so a typo in a path
    is an error, not a new empty database).

    ``read_cache`` (entries; 0 disables) serves repeat reads from process memory for as long
    as no connection of any process has committed to the file since the entry was read
    (see ``sessionward._walindex``). A write anywhere invalidates every entry at once, so a
    revocation by another process is seen by the very next read.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        create: bool = True,
        read_cache: int = 10_000,
    ) -> None:
        self.path = os.fspath(path)
        self._memory = self.path == ":memory:"
        if not self._memory and not create and not Path(self.path).is_file():
            raise StoreUnavailable(f"no database file at {self.path}")
        if busy_timeout < 0:
            raise InvalidArgument("busy_timeout must not be negative")
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._guard = _Serialised() if self._memory else _TRANSLATED
        if read_cache < 0:
            raise InvalidArgument("read_cache must not be negative")
        self._cache: dict[str, tuple[bytes, SessionRecord]] = {}
        self._cache_size = read_cache
        self._salt = b""
        self._tags: dict[str, str] = {}
        try:
            with _TRANSLATED:
                self._migrate(self._connection())
        except BaseException:
            for conn in self._all:  # a refused file is not left open
                conn.close()
            raise
        self._watch = None if self._memory or not read_cache else WalIndexWatch.open(self.path)

    # -- connections ------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.fork_generation == _forks.generation:
            return conn
        return self._open()

    def _open(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreUnavailable("store is closed")
        if self._memory and self._all:
            conn = self._all[0]  # one shared in-memory database; sqlite serialises access
        else:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,  # one per thread, by our own bookkeeping
                cached_statements=64,
            )
            with self._lock:
                self._all.append(conn)  # before the pragmas, which fail on a damaged file
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
            if not self._memory:
                conn.execute("PRAGMA journal_mode=WAL")
                # A checkpoint syncs the WAL and the file; at SQLite's default of 1000 pages the
                # commit that triggers it pays ~7 ms every ~500 logins. 4000 pages (16 MiB of
                # WAL) cuts the amortised cost per login by ~12 µs; see docs/design.md.
                conn.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")
        self._local.conn = conn
        self._local.fork_generation = _forks.generation
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            listed = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            tables = {r[0] for r in listed}
            if "sessionward_schema" not in tables:
                if tables:
                    raise StoreCorrupt("the database holds tables that are not sessionward's")
                conn.execute("CREATE TABLE sessionward_schema (version INTEGER NOT NULL) STRICT")
                conn.execute("INSERT INTO sessionward_schema VALUES (0)")
            row = conn.execute("SELECT version FROM sessionward_schema").fetchone()
            if row is None or not isinstance(row[0], int):
                raise StoreCorrupt("schema version table is damaged")
            version = row[0]
            if version > SCHEMA_VERSION:
                raise StoreCorrupt(
                    f"database schema {version} is newer than this sessionward ({SCHEMA_VERSION})"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                try:
                    for statement in MIGRATIONS[step]:
                        conn.execute(statement)
                except sqlite3.OperationalError as exc:
                    raise StoreCorrupt(f"cannot migrate to schema {step}: {exc}") from exc
                conn.execute("UPDATE sessionward_schema SET version = ?", (step,))
            if conn.execute(_IS_STRICT).fetchone() != (1,):
                # Rows of a non-STRICT table may hold any type; we would misread them.
                raise StoreCorrupt("the sessions table has lost its STRICT typing")
            conn.execute(
                "INSERT OR IGNORE INTO sessionward_meta VALUES (?, ?)",
                (_SALT_NAME, secrets.token_bytes(16)),
            )
            salt = conn.execute(
                "SELECT value FROM sessionward_meta WHERE name = ?", (_SALT_NAME,)
            ).fetchone()
            if salt is None or not isinstance(salt[0], bytes) or len(salt[0]) < 16:
                raise StoreCorrupt("the user tag salt is damaged")
            self._salt = salt[0]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- user tags ---------------------------------------------------------------------------

    def _tag(self, user_id: str) -> str:
        """The first four characters of every id this store mints for ``user_id``: a keyed
        hash (the salt is random per database file), so a session id does not let an outsider
        test a guessed user id."""
        tag = self._tags.get(user_id)
        if tag is None:
            digest = hashlib.sha256(self._salt + user_id.encode("utf-8", "surrogatepass"))
            tag = base64.urlsafe_b64encode(digest.digest()[:_TAG_BYTES]).decode("ascii")
            if len(self._tags) >= _TAG_MEMO:
                self._tags.clear()
            self._tags[user_id] = tag
        return tag

    def _user_range(self, user_id: str) -> tuple[str, str, str]:
        """``(?1, ?2, ?3)`` of the per-user queries: the tag's id range and the user."""
        tag = self._tag(user_id)
        return tag, tag + "~", user_id  # "~" sorts after every base64url character

    def _tagged(self, session_id: str, user_id: str) -> bool:
        """Whether the range scan finds ``session_id`` among ``user_id``'s sessions: the very
        predicate of the SQL (code-point order here is UTF-8 byte order there)."""
        low, high, _ = self._user_range(user_id)
        return low <= session_id < high

    def user_locality(self, user_id: str) -> bytes:
        """The user's tag as bytes: the manager starts the user's new session ids with it."""
        return base64.urlsafe_b64decode(self._tag(user_id))

    def new_session_id(self, user_id: str | None) -> str:
        """A fresh session id; a user's ids start with the user's tag, which keeps that user's
        sessions together in the primary key (no per-user index to write on every login).
        72 random bits follow the tag; the session manager calls this when issuing."""
        if user_id is None:
            return tokens.new_session_id()
        raw = secrets.token_bytes(tokens.ID_BYTES - _TAG_BYTES)
        return self._tag(user_id) + base64.urlsafe_b64encode(raw).decode("ascii")

    # -- the store interface ----------------------------------------------------------------

    async def get(self, session_id: str) -> SessionRecord | None:
        watch = self._watch
        if watch is None:
            with self._guard:
                row = self._connection().execute(_SELECT, (session_id,)).fetchone()
            return None if row is None else SessionRecord._make(row)
        stamp = watch.stamp()  # taken before the SELECT: the row is at least this fresh
        hit = self._cache.get(session_id)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        with self._guard:
            row = self._connection().execute(_SELECT, (session_id,)).fetchone()
        if row is None:
            return None
        record = SessionRecord._make(row)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[session_id] = (stamp, record)
        return record

    async def add(self, record: SessionRecord, *, cap: UserCap | None = None) -> list[str]:
        user_id = record.user_id
        with self._guard:
            if user_id is None:
                self._connection().execute(_INSERT, record)
                return []
            tagged = self._tagged(record.id, user_id)
            if cap is None and tagged:  # a login: one INSERT, one B-tree
                self._connection().execute(_INSERT, record)
                return []
            with self._transaction() as conn:
                evicted = [] if cap is None else self._make_room(conn, user_id, cap)
                conn.execute(_INSERT, record)
                if not tagged:
                    conn.execute(_ADD_UNTAGGED, (user_id, record.id))
                return evicted

    def _make_room(self, conn: sqlite3.Connection, user_id: str, cap: UserCap) -> list[str]:
        live = [r[0] for r in conn.execute(_USER_LIVE_IDS, (*self._user_range(user_id), cap.now))]
        excess = len(live) - cap.limit + 1
        if excess <= 0:
            return []
        if not cap.evict_oldest:
            raise SessionLimitReached(f"user already has {len(live)} sessions")
        evicted = live[:excess]
        conn.executemany("DELETE FROM sessions WHERE id = ?", [(i,) for i in evicted])
        return evicted

    async def replace(self, record: SessionRecord, *, expected_version: int) -> None:
        user_id = record.user_id
        with self._guard:
            if user_id is None or self._tagged(record.id, user_id):
                conn = self._connection()
                cursor = conn.execute(_UPDATE, (*record[1:], record.id, expected_version))
                if cursor.rowcount == 1:
                    return
            else:  # an untagged record (imported, or from an older file) keeps its list entry
                with self._transaction() as conn:
                    cursor = conn.execute(_UPDATE, (*record[1:], record.id, expected_version))
                    if cursor.rowcount == 1:
                        conn.execute(_ADD_UNTAGGED, (user_id, record.id))
                        return
            exists = conn.execute("SELECT 1 FROM sessions WHERE id = ?", (record.id,)).fetchone()
        raise VersionConflict(record.id) if exists else NotFound(record.id)

    async def touch(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        with self._guard:
            self._connection().execute(
                "UPDATE sessions SET last_seen = ?, expires_at = ? WHERE id = ? AND last_seen < ?",
                (last_seen, expires_at, session_id, last_seen),
            )

    async def delete(self, session_id: str) -> bool:
        with self._guard:
            cursor = self._connection().execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        return cursor.rowcount > 0

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        with self._guard:
            rows = self._connection().execute(_BY_USER, self._user_range(user_id)).fetchall()
        return [SessionRecord._make(r) for r in rows]

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        with self._guard, self._transaction() as conn:
            ids = [
                r[0]
                for r in conn.execute(_USER_IDS, self._user_range(user_id))
                if r[0] != keep
            ]
            conn.executemany("DELETE FROM sessions WHERE id = ?", [(i,) for i in ids])
        return ids

    async def purge_expired(self, now: float) -> int:
        """Walks the primary key in chunks, each its own short transaction, so readers and
        other writers are never locked out for long. There is deliberately no index on
        ``expires_at``: it would cost a page write on every issue and every touch, to speed
        up a background job (see docs/design.md)."""
        total = 0
        after = ""
        with self._guard:
            conn = self._connection()
            while True:
                ids = [r[0] for r in conn.execute(_CHUNK, (after, _PURGE_BATCH))]
                if not ids:
                    return total
                after = ids[-1]
                placeholders = ", ".join("?" * len(ids))
                cursor = conn.execute(
                    f"DELETE FROM sessions WHERE expires_at <= ? AND id IN ({placeholders})",  # noqa: S608
                    (now, *ids),
                )
                total += cursor.rowcount

    async def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._all = self._all, []
            watch, self._watch = self._watch, None
        self._cache.clear()
        if watch is not None:
            watch.close()  # before the connections: the map is valid only while they are open
        for conn in connections:
            with suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    async def count(self) -> int:
        """Number of stored records (expired ones included until purged)."""
        with self._guard:
            row = self._connection().execute("SELECT count(*) FROM sessions").fetchone()
        return int(row[0])

    async def delete_all(self, *, keep: str | None = None) -> int:
        """One statement, so it is all or nothing; the other processes' read caches see the
        commit like any other."""
        with self._guard:
            cursor = self._connection().execute("DELETE FROM sessions WHERE id != ?", (keep or "",))
        return cursor.rowcount
