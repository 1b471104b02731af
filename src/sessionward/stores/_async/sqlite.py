"""The embedded default store: one SQLite file, safe across threads and processes.

* WAL journal with ``synchronous=NORMAL``: readers never wait for the writer, a commit costs no
  fsync, and a crashed process (even ``kill -9``) loses no committed transaction. Only a power
  loss can drop the last few commits; the database stays consistent either way.
* ``STRICT`` tables: SQLite itself rejects a value of the wrong type, so every row we read has
  the types ``SessionRecord`` declares.
* One schema, checked on open: a file written with another schema version is refused with a
  clear error, never migrated or misread.
* A user's sessions are found through an index on ``(user_id, created_at)``.
* Each thread uses its own connection, and only in the process that opened it: a store opened
  before ``fork()`` opens fresh connections in the child and leaves the parent's alone.

Async flavour: ``get`` and ``list_user`` run on the event loop. They read a row or a user's few
rows by index, and in WAL mode a reader does not wait for writers, so they cost less than a
thread hop would. Every write, and every read that walks the table (``scan``, ``count``), runs on
one worker thread per store, in order: a write may wait up to ``busy_timeout`` for another
process to commit, and the commit that triggers a checkpoint syncs the file. A process's writes
are serialised (by that thread, or in the sync flavour by a lock), so they queue in order rather
than sleeping in SQLite's busy handler. As with any thread hop, a write whose caller is
cancelled may still complete.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sessionward.core.record import FIELDS, SessionRecord
from sessionward.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    SessionLimitReached,
    SessionwardError,
    StoreCorrupt,
    StoreUnavailable,
    VersionConflict,
)
from sessionward.stores._async.base import UserCap
from sessionward.stores._sqlite_db import SQLiteDB, schema_error, translated
from sessionward.stores._worker import Worker

__all__ = ["AsyncSQLiteStore"]

SCHEMA_VERSION = 3
SCHEMA = (
    "CREATE TABLE sessionward_schema (version INTEGER NOT NULL) STRICT",
    f"INSERT INTO sessionward_schema VALUES ({SCHEMA_VERSION})",  # noqa: S608 - a constant
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
        context TEXT NOT NULL,
        successor BLOB
    ) STRICT, WITHOUT ROWID""",
    "CREATE INDEX sessions_by_user ON sessions (user_id, created_at) WHERE user_id IS NOT NULL",
)

_COLUMNS = ", ".join(FIELDS)
_SELECT = f"SELECT {_COLUMNS} FROM sessions WHERE id = ?"  # noqa: S608 - fixed column list
_INSERT = f"INSERT INTO sessions ({_COLUMNS}) VALUES ({', '.join('?' * len(FIELDS))})"  # noqa: S608
_UPDATE = (
    "UPDATE sessions SET "  # noqa: S608 - fixed column list
    + ", ".join(f"{name} = ?" for name in FIELDS[1:])
    + " WHERE id = ? AND version = ?"
)
_TOUCH = "UPDATE sessions SET last_seen = ?, expires_at = ? WHERE id = ? AND last_seen < ?"
_BY_USER = f"SELECT {_COLUMNS} FROM sessions WHERE user_id = ? ORDER BY created_at, id"  # noqa: S608
_LIVE_IDS = "SELECT id FROM sessions WHERE user_id = ? AND expires_at > ? ORDER BY created_at, id"
_DELETE_USER = "DELETE FROM sessions WHERE user_id = ? AND id IS NOT ? RETURNING id"
# Sessions only: the mark of ``SessionRecord.is_internal`` is an empty verifier.
_COUNT = "SELECT count(*) FROM sessions WHERE length(secret_hash) > 0"
_DELETE_ALL = "DELETE FROM sessions WHERE id != ? AND length(secret_hash) > 0"
_SCAN = f"SELECT {_COLUMNS} FROM sessions WHERE id > ? ORDER BY id LIMIT ?"  # noqa: S608
_CHUNK = "SELECT id FROM sessions WHERE id > ? ORDER BY id LIMIT ?"
_IS_STRICT = "SELECT strict FROM pragma_table_list WHERE schema = 'main' AND name = 'sessions'"
_PURGE_BATCH = 500
# A checkpoint syncs the WAL and the file; fewer, larger ones cost less per commit. 4000 pages
# is 16 MiB of WAL at the default page size.
_CHECKPOINT_PAGES = 4000


def _translate(exc: sqlite3.Error) -> SessionwardError:
    """sqlite3's exceptions as ours; nothing of sqlite3 escapes this module."""
    if (
        isinstance(exc, sqlite3.IntegrityError)
        and exc.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
    ):
        return AlreadyExists(str(exc))
    return schema_error(
        exc, missing="not a sessionward database", refused="record refused by the sessions table"
    )


_translated = translated(_translate)


class AsyncSQLiteStore:
    """Sessions in a SQLite file (or ``":memory:"``: one connection, gone when it closes).

    ``create=False`` refuses to create a missing file (the CLI uses it so a typo in a path is
    an error, not a new empty database). ``busy_timeout`` is how long a write waits for
    another process's write to finish before failing with ``StoreUnavailable``.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0, create: bool = True
    ) -> None:
        self.path = os.fspath(path)
        self._memory = self.path == ":memory:"
        if not self._memory and not create and not Path(self.path).is_file():
            raise StoreUnavailable(f"no database file at {self.path}")
        if busy_timeout < 0:
            raise InvalidArgument("busy_timeout must not be negative")
        self._db = SQLiteDB(
            self.path,
            busy_timeout=busy_timeout,
            translate=_translate,
            per_thread=True,
            checkpoint_pages=_CHECKPOINT_PAGES,
        )
        self._connection = self._db.connection
        self._transaction = self._db.write
        self._worker = Worker("sessionward-sqlite")
        try:
            self._check_schema()
        except BaseException:
            self._close()  # a refused file is not left open
            raise

    @_translated
    def _check_schema(self) -> None:
        with self._transaction() as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "sessionward_schema" not in tables:
                if tables:
                    raise StoreCorrupt("the database holds tables that are not sessionward's")
                for statement in SCHEMA:
                    conn.execute(statement)
            rows = conn.execute("SELECT version FROM sessionward_schema").fetchall()
            if len(rows) != 1 or type(rows[0][0]) is not int:
                raise StoreCorrupt("the schema version table is damaged")
            version = rows[0][0]
            if version > SCHEMA_VERSION:
                raise StoreCorrupt(
                    f"database schema {version} is newer than this sessionward"
                    f" (it reads schema {SCHEMA_VERSION})"
                )
            if version != SCHEMA_VERSION:
                raise StoreCorrupt(
                    f"database schema {version} is not supported by this sessionward"
                    f" (it reads schema {SCHEMA_VERSION})"
                )
            if conn.execute(_IS_STRICT).fetchone() != (1,):
                # Rows of a non-STRICT table may hold any type; we would misread them.
                raise StoreCorrupt("the sessions table has lost its STRICT typing")

    # -- reads --------------------------------------------------------------------------------

    async def get(self, session_id: str) -> SessionRecord | None:
        if self._memory:
            return await self._worker.async_call(self._get, session_id)
        return self._get(session_id)

    def _get(self, session_id: str) -> SessionRecord | None:
        try:
            row = self._connection().execute(_SELECT, (session_id,)).fetchone()
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        return None if row is None else SessionRecord._make(row)

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        if self._memory:
            return await self._worker.async_call(self._list_user, user_id)
        return self._list_user(user_id)

    @_translated
    def _list_user(self, user_id: str) -> list[SessionRecord]:
        rows = self._connection().execute(_BY_USER, (user_id,)).fetchall()
        return [SessionRecord._make(r) for r in rows]

    async def scan(self, *, after: str = "", limit: int = 500) -> list[SessionRecord]:
        if limit < 1:
            raise InvalidArgument("limit must be at least 1")
        return await self._worker.async_call(self._scan, after, limit)

    @_translated
    def _scan(self, after: str, limit: int) -> list[SessionRecord]:
        rows = self._connection().execute(_SCAN, (after, limit)).fetchall()
        return [SessionRecord._make(r) for r in rows]

    async def count(self) -> int:
        """Number of stored sessions (expired ones included until purged; internal records,
        ``SessionRecord.is_internal``, not counted)."""
        return await self._worker.async_call(self._count)

    @_translated
    def _count(self) -> int:
        return int(self._connection().execute(_COUNT).fetchone()[0])

    # -- writes -------------------------------------------------------------------------------

    async def add(self, record: SessionRecord, *, cap: UserCap | None = None) -> list[str]:
        return await self._worker.async_call(self._add, record, cap)

    @_translated
    def _add(self, record: SessionRecord, cap: UserCap | None) -> list[str]:
        if cap is None or record.user_id is None:
            self._connection().execute(_INSERT, record)
            return []
        with self._transaction() as conn:
            live = [r[0] for r in conn.execute(_LIVE_IDS, (record.user_id, cap.now))]
            excess = len(live) - cap.limit + 1
            evicted = live[: max(excess, 0)]
            if evicted and not cap.evict_oldest:
                raise SessionLimitReached(f"user already has {len(live)} sessions")
            conn.executemany("DELETE FROM sessions WHERE id = ?", [(i,) for i in evicted])
            conn.execute(_INSERT, record)
        return evicted

    async def replace(self, record: SessionRecord, *, expected_version: int) -> None:
        await self._worker.async_call(self._replace, record, expected_version)

    @_translated
    def _replace(self, record: SessionRecord, expected_version: int) -> None:
        conn = self._connection()
        if conn.execute(_UPDATE, (*record[1:], record.id, expected_version)).rowcount == 1:
            return
        exists = conn.execute("SELECT 1 FROM sessions WHERE id = ?", (record.id,)).fetchone()
        raise VersionConflict(record.id) if exists else NotFound(record.id)

    async def touch(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        await self._worker.async_call(self._touch, session_id, last_seen, expires_at)

    @_translated
    def _touch(self, session_id: str, last_seen: float, expires_at: float) -> None:
        self._connection().execute(_TOUCH, (last_seen, expires_at, session_id, last_seen))

    async def delete(self, session_id: str) -> bool:
        return await self._worker.async_call(self._delete, session_id)

    @_translated
    def _delete(self, session_id: str) -> bool:
        cursor = self._connection().execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        return cursor.rowcount > 0

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        return await self._worker.async_call(self._delete_user, user_id, keep)

    @_translated
    def _delete_user(self, user_id: str, keep: str | None) -> list[str]:
        return [r[0] for r in self._connection().execute(_DELETE_USER, (user_id, keep))]

    async def delete_all(self, *, keep: str | None = None) -> int:
        """One statement, so it is all or nothing."""
        return await self._worker.async_call(self._delete_all, keep)

    @_translated
    def _delete_all(self, keep: str | None) -> int:
        cursor = self._connection().execute(_DELETE_ALL, (keep or "",))
        return cursor.rowcount

    async def purge_expired(self, now: float) -> int:
        """Walks the primary key in chunks, each its own short write, so readers and other
        writers are never held up for long. There is no index on ``expires_at``: it would
        cost a page write on every issue and every touch, to speed up a background job."""
        total = 0
        after = ""
        while True:
            deleted, after = await self._worker.async_call(self._purge_chunk, after, now)
            if not after:
                return total
            total += deleted

    @_translated
    def _purge_chunk(self, after: str, now: float) -> tuple[int, str]:
        """Deletes the expired records among the next chunk of ids; returns how many and the
        chunk's last id ("" at the end)."""
        conn = self._connection()
        ids = [r[0] for r in conn.execute(_CHUNK, (after, _PURGE_BATCH))]
        if not ids:
            return 0, ""
        placeholders = ", ".join("?" * len(ids))
        cursor = conn.execute(
            f"DELETE FROM sessions WHERE expires_at <= ? AND id IN ({placeholders})",  # noqa: S608
            (now, *ids),
        )
        return cursor.rowcount, ids[-1]

    async def close(self) -> None:
        """Close every connection this process opened (after the writes already handed to
        the worker). Idempotent; the store is unusable afterwards."""
        await self._worker.async_call(self._close)
        self._worker.close()

    def _close(self) -> None:
        self._db.close()
