"""The service's own small store: API keys, admin and demo accounts, the setup code, secrets,
the last TOTP step accepted per account and key, and (with a SQLite session store) the
rate-limit windows of ``sessionward.service.throttle``.

It lives in a SQLite file: by default the same file as the sessions when the session store is
SQLite (its own tables, prefixed ``service_``, with their own schema-version table), otherwise
a file of its own (``--state``). Open the session store first: the session store refuses a
database whose only tables are somebody else's.

Only hashes are stored: sha256 of each API key and of the setup code, argon2id of passwords.
All methods are short synchronous statements; callers on an event loop call them directly
(a primary-key lookup costs microseconds). Errors are translated to ``StoreUnavailable`` /
``StoreCorrupt`` at this boundary.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
from typing import Any, NamedTuple

from sessionward.errors import AlreadyExists, StoreCorrupt, StoreError, StoreUnavailable
from sessionward.stores._sqlite_db import SQLiteDB

__all__ = ["ApiKeyRow", "ServiceState", "UserRow"]

SCHEMA_VERSION = 3
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE service_api_keys (
            id TEXT PRIMARY KEY NOT NULL,
            digest BLOB NOT NULL,
            scope TEXT NOT NULL,
            name TEXT NOT NULL,
            created_at REAL NOT NULL,
            revoked_at REAL
        ) STRICT""",
        """CREATE TABLE service_accounts (
            realm TEXT NOT NULL,
            name TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            totp_secret TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (realm, name)
        ) STRICT""",
        """CREATE TABLE service_setup (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            digest BLOB NOT NULL,
            created_at REAL NOT NULL
        ) STRICT""",
        """CREATE TABLE service_secrets (
            name TEXT PRIMARY KEY NOT NULL,
            value BLOB NOT NULL
        ) STRICT""",
    ),
    2: (
        # Rate-limit windows (sessionward.service.throttle): the times of the latest hits,
        # newest first, and a plain counter; a row is dead once expires_at has passed.
        """CREATE TABLE service_throttle (
            key TEXT PRIMARY KEY NOT NULL,
            hits TEXT NOT NULL,
            count INTEGER NOT NULL,
            expires_at REAL NOT NULL
        ) STRICT""",
        "CREATE INDEX service_throttle_expiry ON service_throttle (expires_at)",
        # The last TOTP time step accepted per account and key (a hash of the key): a code
        # is good once (RFC 6238 5.2).
        """CREATE TABLE service_totp_used (
            realm TEXT NOT NULL,
            name TEXT NOT NULL,
            key BLOB NOT NULL,
            step INTEGER NOT NULL,
            PRIMARY KEY (realm, name, key)
        ) STRICT""",
    ),
    3: (
        # The application (namespace) each API key belongs to: sessionward.service.tenancy.
        "ALTER TABLE service_api_keys ADD COLUMN application TEXT NOT NULL DEFAULT 'default'",
        # When a service last opened this file: lets the key commands say that a state file
        # nobody serves from is probably not the one meant.
        """CREATE TABLE service_served (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            at REAL NOT NULL
        ) STRICT""",
    ),
}


class ApiKeyRow(NamedTuple):
    id: str
    digest: bytes
    scope: str
    name: str
    created_at: float
    revoked_at: float | None
    application: str = "default"


class UserRow(NamedTuple):
    realm: str
    name: str
    password_hash: str
    totp_secret: str | None
    created_at: float


_SELECT_KEYS = (
    "SELECT id, digest, scope, name, created_at, revoked_at, application FROM service_api_keys"
)
_HITS = "SELECT hits FROM service_throttle WHERE key = ?"


class ServiceState:
    """The service tables in one SQLite file (created and migrated on open)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self.path = os.fspath(path)
        self._db = SQLiteDB(self.path, busy_timeout=busy_timeout, translate=_translate)
        self._migrate()

    def _migrate(self) -> None:
        with self._db.write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS sessionward_service_schema"
                " (version INTEGER NOT NULL) STRICT"
            )
            row = conn.execute("SELECT version FROM sessionward_service_schema").fetchone()
            if row is None:
                conn.execute("INSERT INTO sessionward_service_schema VALUES (0)")
                version = 0
            else:
                version = row[0]
            if not isinstance(version, int) or version > SCHEMA_VERSION:
                raise StoreCorrupt(f"service schema {version!r} is not one this version knows")
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
                conn.execute("UPDATE sessionward_service_schema SET version = ?", (step,))

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """The first row of one statement, or ``None``."""
        rows = self._db.query(sql, params)
        return rows[0] if rows else None

    def close(self) -> None:
        self._db.close()

    # -- API keys ----------------------------------------------------------------------------

    def add_key(self, row: ApiKeyRow) -> None:
        self._db.execute(
            "INSERT INTO service_api_keys"
            " (id, digest, scope, name, created_at, revoked_at, application)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            tuple(row),
        )

    def get_key(self, key_id: str) -> ApiKeyRow | None:
        row = self._one(_SELECT_KEYS + " WHERE id = ?", (key_id,))
        return None if row is None else ApiKeyRow._make(row)

    def list_keys(self) -> list[ApiKeyRow]:
        rows = self._db.query(_SELECT_KEYS + " ORDER BY created_at, id")
        return [ApiKeyRow._make(r) for r in rows]

    def revoke_key(self, key_id: str, now: float) -> bool:
        changed = self._db.execute(
            "UPDATE service_api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (now, key_id),
        )
        return changed > 0

    # -- accounts (realm "admin" or "demo") --------------------------------------------------

    def add_user(self, row: UserRow) -> None:
        """Create-only; ``AlreadyExists`` when the name is taken in that realm."""
        self._db.execute("INSERT INTO service_accounts VALUES (?, ?, ?, ?, ?)", tuple(row))

    def get_user(self, realm: str, name: str) -> UserRow | None:
        row = self._one(
            "SELECT * FROM service_accounts WHERE realm = ? AND name = ?", (realm, name)
        )
        return None if row is None else UserRow._make(row)

    def count_users(self, realm: str) -> int:
        row = self._one("SELECT count(*) FROM service_accounts WHERE realm = ?", (realm,))
        return int(row[0])

    def set_password_hash(self, realm: str, name: str, password_hash: str) -> None:
        self._db.execute(
            "UPDATE service_accounts SET password_hash = ? WHERE realm = ? AND name = ?",
            (password_hash, realm, name),
        )

    def set_totp(self, realm: str, name: str, secret: str | None) -> None:
        """Set (or with ``None`` remove) the account's TOTP key; the steps claimed with any
        other key are forgotten with it."""
        with self._db.write() as conn:
            conn.execute(
                "UPDATE service_accounts SET totp_secret = ? WHERE realm = ? AND name = ?",
                (secret, realm, name),
            )
            conn.execute(
                "DELETE FROM service_totp_used WHERE realm = ? AND name = ? AND key IS NOT ?",
                (realm, name, None if secret is None else _key_of(secret)),
            )

    # -- the one-time admin setup code -------------------------------------------------------

    def replace_setup_code(self, digest: bytes, now: float) -> None:
        self._db.execute("INSERT OR REPLACE INTO service_setup VALUES (1, ?, ?)", (digest, now))

    def consume_setup_code(self, check: Any) -> bool:
        """Delete the setup code if ``check(stored_digest)`` is true; atomic across processes,
        so a code is consumed at most once."""
        with self._db.write() as conn:
            row = conn.execute("SELECT digest FROM service_setup WHERE id = 1").fetchone()
            if row is None or not check(row[0]):
                return False
            conn.execute("DELETE FROM service_setup WHERE id = 1")
            return True

    def has_setup_code(self) -> bool:
        return self._one("SELECT 1 FROM service_setup WHERE id = 1") is not None

    def claim_totp_step(self, realm: str, name: str, secret: str, step: int) -> bool:
        """Record ``step`` as the last TOTP step accepted for the account with the key
        ``secret``, if it is later than the one recorded; ``False`` (nothing changed) for that
        step or an earlier one again. One statement, so two processes cannot both claim the
        same code. Per key, so the code of a new key being set up and the current key's code
        of the same step are each good once."""
        changed = self._db.execute(
            "INSERT INTO service_totp_used VALUES (?, ?, ?, ?) ON CONFLICT (realm, name, key)"
            " DO UPDATE SET step = excluded.step WHERE excluded.step > service_totp_used.step",
            (realm, name, _key_of(secret), step),
        )
        return changed > 0

    # -- rate-limit windows (the SQLite backend of sessionward.service.throttle) -------------

    def window_acquire(self, key: str, limit: int, expiry: float, amount: int, now: float) -> bool:
        """Add ``amount`` hits at ``now`` unless that makes more than ``limit`` within the
        last ``expiry`` seconds; atomic across processes (one write transaction)."""
        with self._db.write() as conn:
            hits = _live_hits(conn.execute(_HITS, (key,)).fetchall(), now - expiry)
            if len(hits) + amount > limit:
                return False
            hits = ([now] * amount + hits)[:limit]
            conn.execute(
                "INSERT OR REPLACE INTO service_throttle VALUES (?, ?, 0, ?)",
                (key, json.dumps(hits), now + expiry),
            )
            return True

    def window(self, key: str, expiry: float, now: float) -> tuple[float, int]:
        """``(oldest hit in the window, number of hits)``, or ``(now, 0)``."""
        hits = _live_hits(self._db.query(_HITS, (key,)), now - expiry)
        return (hits[-1], len(hits)) if hits else (now, 0)

    def counter_add(self, key: str, expiry: float, amount: int, now: float) -> int:
        """Add to a counter that starts at 0 and lives ``expiry`` seconds from its first add."""
        row = self._one(
            "INSERT INTO service_throttle VALUES (?, '[]', ?, ?) ON CONFLICT (key) DO UPDATE SET"
            " count = CASE WHEN expires_at > ? THEN count + excluded.count"
            " ELSE excluded.count END,"
            " expires_at = CASE WHEN expires_at > ? THEN expires_at"
            " ELSE excluded.expires_at END RETURNING count",
            (key, amount, now + expiry, now, now),
        )
        return int(row[0])

    def counter(self, key: str, now: float) -> tuple[int, float]:
        """``(count, expires_at)`` of a live counter, or ``(0, now)``."""
        row = self._one(
            "SELECT count, expires_at FROM service_throttle WHERE key = ? AND expires_at > ?",
            (key, now),
        )
        return (0, now) if row is None else (int(row[0]), float(row[1]))

    def forget_window(self, key: str) -> None:
        self._db.execute("DELETE FROM service_throttle WHERE key = ?", (key,))

    def purge_windows(self, now: float) -> int:
        return self._db.execute("DELETE FROM service_throttle WHERE expires_at <= ?", (now,))

    # -- server secrets ----------------------------------------------------------------------

    def secret(self, name: str, size: int = 32) -> bytes:
        """A named random secret, created on first use and shared by every process."""
        self._db.execute(
            "INSERT OR IGNORE INTO service_secrets VALUES (?, ?)", (name, secrets.token_bytes(size))
        )
        row = self._one("SELECT value FROM service_secrets WHERE name = ?", (name,))
        return bytes(row[0])

    # -- who uses this file ------------------------------------------------------------------

    def mark_served(self, now: float) -> None:
        """Record that a service opened this file (``sessionward serve``)."""
        self._db.execute("INSERT OR REPLACE INTO service_served VALUES (1, ?)", (now,))

    def served_at(self) -> float | None:
        """When a service last opened this file, or ``None`` if none ever did."""
        row = self._one("SELECT at FROM service_served WHERE id = 1")
        return None if row is None else float(row[0])

    def ping(self) -> None:
        self._db.query("SELECT 1")


def _key_of(secret: str) -> bytes:
    """What identifies a TOTP key in ``service_totp_used``: never the key itself."""
    return hashlib.sha256(secret.encode("ascii", "replace")).digest()[:16]


def _live_hits(rows: list[Any], since: float) -> list[float]:
    """The hits of a ``service_throttle`` row (``rows`` of ``_HITS``) later than ``since``."""
    return [t for t in json.loads(rows[0][0]) if t > since] if rows else []


def _translate(exc: sqlite3.Error) -> StoreError:
    if isinstance(exc, sqlite3.IntegrityError):
        return AlreadyExists(str(exc))
    if isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailable(f"service state: {exc}")
    return StoreCorrupt(f"service state: {exc}")
