"""What every PostgreSQL-backed store of sessionward does the same way.

* :func:`schema_name`: a schema name is a lower-case SQL identifier of at most 55 bytes (so
  that ``<schema>_changes`` fits PostgreSQL's 63), checked before it is spelled into SQL.
* :func:`lock_key`: a 64-bit advisory-lock key from SHA-256 of the parts joined by NUL: the
  same in every process and every Python (``hash()`` is not), so two processes creating one
  schema take the same lock.
* :func:`translate`: a driver error as the store's error. Text PostgreSQL cannot hold is
  ``InvalidArgument``, a schema the store did not make ``StoreCorrupt``, and anything else (no
  server, a dropped connection, an exhausted pool) ``StoreUnavailable``: fail closed. Only the
  primary message is kept: a DETAIL line may quote a row's values.
* :class:`ProcessPool`: the connection pool of the process that uses it. A child of ``fork()``
  makes its own on first use and leaves the parent's alone (closing it would end the
  parent's sessions on the shared sockets); once closed, every use is ``StoreUnavailable``.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable
from typing import Final, Generic, TypeVar

import psycopg

from sessionward.errors import (
    ConfigError,
    InvalidArgument,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
)

__all__ = ["DRIVER_ERRORS", "LOCK", "ProcessPool", "lock_key", "schema_name", "translate"]

P = TypeVar("P")
DRIVER_ERRORS: Final = (psycopg.Error, UnicodeEncodeError)
LOCK: Final = "SELECT pg_advisory_xact_lock(%s)"
_SCHEMA_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,54}")  # "<schema>_changes" fits in 63 bytes


def schema_name(
    schema: str,
    refused: str = "schema must be a lower-case SQL identifier of at most 55 bytes",
) -> str:
    """``schema`` when it is a plain lower-case identifier, else ``ConfigError(refused)``."""
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ConfigError(refused)
    return schema


def lock_key(*parts: str) -> int:
    """The signed 64-bit advisory-lock key of ``parts`` (say the schema, then a user id)."""
    text = "\0".join(parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(text).digest()[:8], signed=True)


def translate(exc: Exception, *, expected: str) -> StoreError | InvalidArgument:
    """``exc`` (one of :data:`DRIVER_ERRORS`) as the store's error; ``expected`` names what
    a schema error says the store did not find (``"the schema sessionward expects"``)."""
    if isinstance(exc, UnicodeEncodeError):
        return InvalidArgument("postgres cannot store text that is not valid Unicode")
    name = type(exc).__name__
    message = getattr(getattr(exc, "diag", None), "message_primary", None) or str(exc)
    if isinstance(exc, psycopg.DataError):
        return InvalidArgument(f"postgres cannot store this value ({name}: {message})")
    if isinstance(exc, psycopg.ProgrammingError | psycopg.IntegrityError):
        return StoreCorrupt(f"postgres: not {expected} ({name}: {message})")
    return StoreUnavailable(f"postgres: {name}: {message}")


class ProcessPool(Generic[P]):
    """The pool of the calling process: ``make()`` builds it (under a lock, so once per
    process) on the first :meth:`get` in each process. ``closed`` is the message of the
    ``StoreUnavailable`` raised by :meth:`get` after :meth:`close`."""

    def __init__(self, make: Callable[[], P], *, closed: str) -> None:
        self._make = make
        self._closed_message = closed
        self._lock = threading.Lock()
        self._pool: P | None = None
        self._pid = 0  # the process that made _pool
        self._closed = False

    @property
    def pool(self) -> P | None:
        """The pool made last, whichever process made it (None before the first use)."""
        return self._pool

    def get(self) -> P:
        """This process's pool, made now if it has none."""
        with self._lock:
            if self._closed:
                raise StoreUnavailable(self._closed_message)
            pid = os.getpid()
            if self._pool is None or self._pid != pid:
                # An inherited pool is dropped, never closed.
                self._pool, self._pid = self._make(), pid
            return self._pool

    def close(self) -> P | None:
        """Refuse every later use; the pool for the caller to close when this process made
        it (None otherwise). Idempotent."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        return pool if pool is not None and self._pid == os.getpid() else None
