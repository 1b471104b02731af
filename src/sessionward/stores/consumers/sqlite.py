"""Consumers in SQLite: two tables beside the sessions and the event log in the same file.

The lease is a pair of columns (``lease_owner``, ``lease_until``) written under
``BEGIN IMMEDIATE``, so two processes on one file never claim the same consumer.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from sessionward.errors import AlreadyExists, NotFound, StoreUnavailable
from sessionward.stores._sqlite_db import SQLiteDB
from sessionward.stores.consumers.base import (
    COLUMNS,
    DELIVERY_COLUMNS,
    Consumer,
    Delivery,
    Outcome,
    State,
    consumer_from_row,
    consumer_row,
    delivery_from_row,
    delivery_row,
    state_change,
)

__all__ = ["SQLiteConsumerStore"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sessionward_consumers (
        id TEXT PRIMARY KEY NOT NULL,
        kind TEXT NOT NULL,
        application TEXT NOT NULL,
        url TEXT NOT NULL,
        created_at REAL NOT NULL,
        config TEXT NOT NULL,
        credentials TEXT NOT NULL,
        kinds TEXT,
        cursor TEXT,
        state TEXT NOT NULL,
        failures INTEGER NOT NULL,
        first_failure REAL,
        next_attempt REAL NOT NULL,
        disabled_reason TEXT,
        lease_owner TEXT,
        lease_until REAL NOT NULL DEFAULT 0
    ) STRICT""",
    """CREATE TABLE IF NOT EXISTS sessionward_deliveries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        consumer_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        at REAL NOT NULL,
        attempt INTEGER NOT NULL,
        status INTEGER,
        latency_ms REAL NOT NULL,
        error TEXT
    ) STRICT""",
    """CREATE INDEX IF NOT EXISTS sessionward_deliveries_consumer
        ON sessionward_deliveries (consumer_id, seq)""",
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM sessionward_consumers"  # noqa: S608
_DUE = " WHERE state = 'active' AND next_attempt <= ? AND lease_until <= ?"
_ANY_DUE = "SELECT 1 FROM sessionward_consumers" + _DUE + " LIMIT 1"  # noqa: S608
_INSERT = (
    f"INSERT INTO sessionward_consumers ({', '.join(COLUMNS)})"  # noqa: S608
    f" VALUES ({', '.join('?' for _ in COLUMNS)})"
)
_RECORD = (
    f"INSERT INTO sessionward_deliveries ({', '.join(DELIVERY_COLUMNS)})"  # noqa: S608
    f" VALUES ({', '.join('?' for _ in DELIVERY_COLUMNS)})"
)


def _unavailable(exc: sqlite3.Error) -> StoreUnavailable:
    return StoreUnavailable(f"sqlite: {exc}")


class SQLiteConsumerStore:
    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self.path = os.fspath(path)
        self._db = SQLiteDB(self.path, busy_timeout=busy_timeout, translate=_unavailable)
        with self._db.write() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    def add(self, consumer: Consumer) -> None:
        with self._db.write() as conn:
            try:
                conn.execute(_INSERT, consumer_row(consumer))
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"consumer {consumer.id} exists") from None

    def get(self, consumer_id: str) -> Consumer | None:
        rows = self._db.query(_SELECT + " WHERE id = ?", (consumer_id,))
        return consumer_from_row(rows[0]) if rows else None

    def consumers(self, application: str | None = None, kind: str | None = None) -> list[Consumer]:
        rows = self._db.query(
            _SELECT + " WHERE (?1 IS NULL OR application = ?1) AND (?2 IS NULL OR kind = ?2)"
            " ORDER BY created_at, id",
            (application, kind),
        )
        return [consumer_from_row(row) for row in rows]

    def remove(self, consumer_id: str) -> bool:
        with self._db.write() as conn:
            conn.execute("DELETE FROM sessionward_deliveries WHERE consumer_id = ?", (consumer_id,))
            done = conn.execute("DELETE FROM sessionward_consumers WHERE id = ?", (consumer_id,))
            return done.rowcount > 0

    def _update(self, consumer_id: str, changes: dict[str, Any]) -> None:
        # The names are this module's and state_change's literals, never user input.
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with self._db.write() as conn:
            done = conn.execute(
                f"UPDATE sessionward_consumers SET {assignments} WHERE id = ?",  # noqa: S608
                (*changes.values(), consumer_id),
            )
            if done.rowcount == 0:
                raise NotFound(f"no consumer {consumer_id}")

    def set_credentials(self, consumer_id: str, credentials: dict[str, Any]) -> None:
        self._update(consumer_id, {"credentials": json.dumps(credentials)})

    def set_config(self, consumer_id: str, config: dict[str, Any]) -> None:
        self._update(consumer_id, {"config": json.dumps(config)})

    def set_state(self, consumer_id: str, state: State, reason: str | None, now: float) -> None:
        self._update(consumer_id, state_change(state, reason, now))

    def set_cursor(self, consumer_id: str, cursor: str | None) -> None:
        self._update(consumer_id, {"cursor": cursor})

    def claim(self, owner: str, now: float, lease: float, limit: int) -> list[Consumer]:
        # An idle deliverer asks every second: a read first, so that asking when nothing is
        # due takes no write lock on a file other processes (and other workers) write to.
        if not self._db.query(_ANY_DUE, (now, now)):
            return []
        with self._db.write() as conn:
            rows = conn.execute(
                _SELECT + _DUE + " ORDER BY next_attempt, id LIMIT ?",
                (now, now, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE sessionward_consumers SET lease_owner = ?, lease_until = ? WHERE id = ?",
                [(owner, now + lease, row[0]) for row in rows],
            )
        return [consumer_from_row(row) for row in rows]

    def finish(
        self,
        consumer_id: str,
        owner: str,
        outcome: Outcome,
        attempts: Sequence[Delivery],
        keep: int,
    ) -> bool:
        with self._db.write() as conn:
            done = conn.execute(
                "UPDATE sessionward_consumers SET cursor = ?, failures = ?, first_failure = ?,"
                " next_attempt = ?, state = ?, disabled_reason = ?, lease_owner = NULL,"
                " lease_until = 0 WHERE id = ? AND lease_owner = ?",
                (
                    outcome.cursor, outcome.failures, outcome.first_failure,
                    outcome.next_attempt, outcome.state, outcome.disabled_reason,
                    consumer_id, owner,
                ),
            )  # fmt: skip
            if done.rowcount == 0:
                return False
            conn.executemany(_RECORD, [delivery_row(a) for a in attempts])
            conn.execute(
                "DELETE FROM sessionward_deliveries WHERE consumer_id = ?1 AND seq <="
                " (SELECT seq FROM sessionward_deliveries WHERE consumer_id = ?1"
                " ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
                (consumer_id, keep),
            )
            return True

    def deliveries(self, consumer_id: str, limit: int = 50) -> list[Delivery]:
        rows = self._db.query(
            f"SELECT {', '.join(DELIVERY_COLUMNS)} FROM sessionward_deliveries"  # noqa: S608
            " WHERE consumer_id = ? ORDER BY seq DESC LIMIT ?",
            (consumer_id, limit),
        )
        return [delivery_from_row(row) for row in rows]

    def close(self) -> None:
        self._db.close()
