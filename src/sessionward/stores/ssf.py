"""Storage of Shared Signals streams: their configurations, how far each has read the event
log, and the SETs waiting for the receiver's acknowledgement.

A stream is a JSON document (the transmitter's business; this layer does not read it) under
an id and an application. Each stream has a ``cursor`` (the last event-log id turned into
SETs for it) and a queue of pending SETs, oldest first, removed by :meth:`ack`. Filling the
queue and moving the cursor happen in one transaction, and only if the cursor is still the
one the caller read (:meth:`enqueue` returns ``False`` otherwise), so two processes filling
the same stream never send an event twice. SET texts are signed JSON holding public ids,
never a token.

:class:`SQLiteStreamStore` keeps it in a SQLite file (the service uses its state file);
:class:`MemoryStreamStore` in process memory (tests, one process). Errors become
``StoreUnavailable`` at this boundary.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sessionward.errors import StoreUnavailable
from sessionward.stores._sqlite_db import SQLiteDB

__all__ = ["MemoryStreamStore", "PendingSet", "SQLiteStreamStore", "StreamStore"]


@dataclass(frozen=True, slots=True)
class PendingSet:
    jti: str
    token: str
    created_at: float


@runtime_checkable
class StreamStore(Protocol):
    def save(self, stream_id: str, application: str, document: dict[str, Any]) -> None:
        """Create the stream or replace its document (the cursor and queue stay)."""

    def get(self, stream_id: str) -> dict[str, Any] | None: ...

    def update(
        self, stream_id: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Replace the stream's document with ``change(document)`` in one transaction (no
        other writer in between, in any process); ``change`` returning ``None`` leaves it.
        Returns the document now stored, or ``None`` if there is no such stream."""

    def by_application(self, application: str) -> list[dict[str, Any]]:
        """The application's streams, oldest first."""

    def all(self) -> list[dict[str, Any]]:
        """Every stream of every application (for the delivery loop)."""

    def delete(self, stream_id: str) -> bool:
        """Remove the stream and its queue; ``False`` if there was none."""

    def cursor(self, stream_id: str) -> str | None: ...

    def enqueue(
        self, stream_id: str, expected: str | None, cursor: str | None, sets: Sequence[PendingSet]
    ) -> bool:
        """Queue ``sets`` and move the cursor to ``cursor``, if the cursor is still
        ``expected`` and the stream exists; a ``jti`` already queued is not queued again."""

    def pending(self, stream_id: str, limit: int, prefix: str = "") -> list[PendingSet]:
        """Up to ``limit`` queued SETs, oldest first (``limit=0``: none); with ``prefix``,
        only those whose ``jti`` starts with it."""

    def count(self, stream_id: str) -> int: ...

    def ack(self, stream_id: str, jtis: Sequence[str]) -> int:
        """Remove these SETs from the queue; returns how many were there."""

    def close(self) -> None: ...


@dataclass
class _Entry:
    application: str
    document: dict[str, Any]
    cursor: str | None = None
    queue: dict[str, PendingSet] = field(default_factory=dict)


class MemoryStreamStore:
    def __init__(self) -> None:
        self._streams: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def save(self, stream_id: str, application: str, document: dict[str, Any]) -> None:
        with self._lock:
            entry = self._streams.get(stream_id)
            if entry is None:
                self._streams[stream_id] = _Entry(application, dict(document))
            else:
                entry.document = dict(document)

    def get(self, stream_id: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._streams.get(stream_id)
            return None if entry is None else dict(entry.document)

    def update(
        self, stream_id: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        with self._lock:
            entry = self._streams.get(stream_id)
            if entry is None:
                return None
            changed = change(dict(entry.document))
            if changed is not None:
                entry.document = dict(changed)
            return dict(entry.document)

    def by_application(self, application: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(e.document) for e in self._streams.values() if e.application == application
            ]

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e.document) for e in self._streams.values()]

    def delete(self, stream_id: str) -> bool:
        with self._lock:
            return self._streams.pop(stream_id, None) is not None

    def cursor(self, stream_id: str) -> str | None:
        with self._lock:
            entry = self._streams.get(stream_id)
            return None if entry is None else entry.cursor

    def enqueue(
        self, stream_id: str, expected: str | None, cursor: str | None, sets: Sequence[PendingSet]
    ) -> bool:
        with self._lock:
            entry = self._streams.get(stream_id)
            if entry is None or entry.cursor != expected:
                return False
            for item in sets:
                entry.queue.setdefault(item.jti, item)
            entry.cursor = cursor
            return True

    def pending(self, stream_id: str, limit: int, prefix: str = "") -> list[PendingSet]:
        with self._lock:
            entry = self._streams.get(stream_id)
            queue = [] if entry is None else entry.queue.values()
            return [p for p in queue if p.jti.startswith(prefix)][: max(limit, 0)]

    def count(self, stream_id: str) -> int:
        with self._lock:
            entry = self._streams.get(stream_id)
            return 0 if entry is None else len(entry.queue)

    def ack(self, stream_id: str, jtis: Sequence[str]) -> int:
        with self._lock:
            entry = self._streams.get(stream_id)
            if entry is None:
                return 0
            return sum(entry.queue.pop(jti, None) is not None for jti in set(jtis))

    def close(self) -> None:
        pass


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS ssf_streams (
        id TEXT PRIMARY KEY NOT NULL,
        application TEXT NOT NULL,
        document TEXT NOT NULL,
        cursor TEXT,
        created INTEGER NOT NULL
    ) STRICT""",
    """CREATE TABLE IF NOT EXISTS ssf_pending (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        stream_id TEXT NOT NULL,
        jti TEXT NOT NULL,
        token TEXT NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (stream_id, jti)
    ) STRICT""",
)


def _unavailable(exc: sqlite3.Error) -> StoreUnavailable:
    return StoreUnavailable(f"stream store: {type(exc).__name__}")


class SQLiteStreamStore:
    """Tables ``ssf_streams`` and ``ssf_pending`` in the SQLite file at ``path`` (it may be
    shared with other tables: the service's state file)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self._db = SQLiteDB(
            os.fspath(path),
            busy_timeout=busy_timeout,
            translate=_unavailable,
            synchronous=None,  # SQLite's default (FULL): each commit is synced to disk
            chain=False,  # errors name the sqlite3 error type only, and carry no cause
        )
        with self._db.write() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    def save(self, stream_id: str, application: str, document: dict[str, Any]) -> None:
        text = json.dumps(document, separators=(",", ":"))
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO ssf_streams (id, application, document, created) VALUES"
                " (?, ?, ?, (SELECT COALESCE(MAX(created), 0) + 1 FROM ssf_streams))"
                " ON CONFLICT (id) DO UPDATE SET document = excluded.document",
                (stream_id, application, text),
            )

    def get(self, stream_id: str) -> dict[str, Any] | None:
        rows = self._db.query("SELECT document FROM ssf_streams WHERE id = ?", (stream_id,))
        return json.loads(rows[0][0]) if rows else None

    def update(
        self, stream_id: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        with self._db.write() as conn:
            rows = conn.execute(
                "SELECT document FROM ssf_streams WHERE id = ?", (stream_id,)
            ).fetchall()
            if not rows:
                return None
            document: dict[str, Any] = json.loads(rows[0][0])
            changed = change(document)
            if changed is None:
                return document
            conn.execute(
                "UPDATE ssf_streams SET document = ? WHERE id = ?",
                (json.dumps(changed, separators=(",", ":")), stream_id),
            )
            return changed

    def by_application(self, application: str) -> list[dict[str, Any]]:
        rows = self._db.query(
            "SELECT document FROM ssf_streams WHERE application = ? ORDER BY created",
            (application,),
        )
        return [json.loads(r[0]) for r in rows]

    def all(self) -> list[dict[str, Any]]:
        rows = self._db.query("SELECT document FROM ssf_streams ORDER BY created")
        return [json.loads(r[0]) for r in rows]

    def delete(self, stream_id: str) -> bool:
        with self._db.write() as conn:
            conn.execute("DELETE FROM ssf_pending WHERE stream_id = ?", (stream_id,))
            gone = conn.execute("DELETE FROM ssf_streams WHERE id = ?", (stream_id,)).rowcount
        return bool(gone)

    def cursor(self, stream_id: str) -> str | None:
        rows = self._db.query("SELECT cursor FROM ssf_streams WHERE id = ?", (stream_id,))
        return rows[0][0] if rows else None

    def enqueue(
        self, stream_id: str, expected: str | None, cursor: str | None, sets: Sequence[PendingSet]
    ) -> bool:
        with self._db.write() as conn:
            moved = conn.execute(
                "UPDATE ssf_streams SET cursor = ? WHERE id = ? AND cursor IS ?",
                (cursor, stream_id, expected),
            ).rowcount
            if not moved:
                return False
            conn.executemany(
                "INSERT OR IGNORE INTO ssf_pending (stream_id, jti, token, created_at)"
                " VALUES (?, ?, ?, ?)",
                [(stream_id, s.jti, s.token, s.created_at) for s in sets],
            )
        return True

    def pending(self, stream_id: str, limit: int, prefix: str = "") -> list[PendingSet]:
        rows = self._db.query(
            "SELECT jti, token, created_at FROM ssf_pending WHERE stream_id = ?"
            " AND substr(jti, 1, ?) = ? ORDER BY seq LIMIT ?",
            (stream_id, len(prefix), prefix, max(limit, 0)),
        )
        return [PendingSet(r[0], r[1], r[2]) for r in rows]

    def count(self, stream_id: str) -> int:
        rows = self._db.query("SELECT COUNT(*) FROM ssf_pending WHERE stream_id = ?", (stream_id,))
        return int(rows[0][0])

    def ack(self, stream_id: str, jtis: Sequence[str]) -> int:
        unique = sorted(set(jtis))
        if not unique:
            return 0
        with self._db.write() as conn:
            return sum(
                conn.execute(
                    "DELETE FROM ssf_pending WHERE stream_id = ? AND jti = ?", (stream_id, jti)
                ).rowcount
                for jti in unique
            )

    def close(self) -> None:
        self._db.close()
