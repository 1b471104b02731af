"""One SQLite file opened the way every SQLite-backed store of sessionward opens it.

* A missing file is created with mode 0600 (owner only); SQLite gives its ``-wal`` and
  ``-shm`` files the same mode. An existing file keeps the mode it has.
* Autocommit (``isolation_level=None``): a lone statement is its own transaction, and
  :meth:`SQLiteDB.write` opens one with ``BEGIN IMMEDIATE``, so the write lock is taken before
  the first read and two writers never both hold it.
* ``busy_timeout``: how long a statement waits for another connection's write lock before it
  fails; it then surfaces, like every ``sqlite3`` error, as the store's own error through the
  store's ``translate`` (a locked or unreachable file is ``StoreUnavailable``: fail closed).
* WAL journal (not for ``":memory:"``), ``synchronous=NORMAL`` unless the store asks for
  SQLite's default (``synchronous=None``), and ``wal_autocheckpoint`` where the store sets it.

Connections are held one of two ways:

* shared (the default): one connection for every thread, behind a reentrant lock that each
  read and write takes;
* ``per_thread=True``: each thread has a connection of its own, opened on first use in the
  process that uses it (after ``fork()`` the child opens its own and leaves the parent's
  alone). Reads take no lock and run side by side; writes are serialised by SQLite's write
  lock, and by the caller where it has a worker. ``":memory:"`` is one connection, shared.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from typing import Any, NoReturn, TypeVar

from sessionward.errors import InvalidArgument, SessionwardError, StoreCorrupt, StoreUnavailable

__all__ = ["SQLiteDB", "Translate", "schema_error", "translated"]

T = TypeVar("T")
Translate = Callable[[sqlite3.Error], Exception]
"""A store's mapping of a ``sqlite3`` error to the error it raises."""


def schema_error(exc: sqlite3.Error, *, missing: str, refused: str) -> SessionwardError:
    """The mapping of a store that owns a schema: a missing table or column is
    ``StoreCorrupt("<missing> (...)")``, a row the table refuses ``InvalidArgument("<refused>:
    ...")``, an unreadable file ``StoreCorrupt``, and anything else (a locked or busy file, a
    disk error, a closed connection) ``StoreUnavailable``: fail closed."""
    message = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        return InvalidArgument(f"{refused}: {message}")
    if isinstance(exc, sqlite3.OperationalError):
        if "no such table" in message or "no such column" in message:
            return StoreCorrupt(f"{missing} ({message})")
        return StoreUnavailable(f"sqlite: {message}")
    if isinstance(exc, sqlite3.DatabaseError):
        return StoreCorrupt(f"database file is unreadable: {message}")
    return StoreUnavailable(f"sqlite: {message}")


def translated(translate: Translate) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """A decorator: ``sqlite3`` errors raised by the method leave it as ``translate(exc)``."""

    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def call(*args: Any) -> T:
            try:
                return method(*args)
            except sqlite3.Error as exc:
                raise translate(exc) from exc

        return call

    return decorate


def create_private(path: str) -> None:
    """Create ``path`` as an empty 0600 file if nothing is there. Anything else (the file
    exists, the folder does not, ``":memory:"``) is left for ``sqlite3.connect`` to open or
    refuse with its own error."""
    if path == ":memory:" or not path:
        return
    with suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


class SQLiteDB:
    """The connections to one SQLite file, for one store.

    ``translate`` maps a ``sqlite3`` error to the store's error; ``chain=False`` raises it
    without the ``sqlite3`` error as its cause. ``closed`` is the message of the
    ``StoreUnavailable`` raised by a per-thread database used after :meth:`close`.

    ``connection()`` is the calling thread's connection (per-thread) or the shared one; a
    statement run on it directly is not translated (use :meth:`write`, :meth:`query`,
    :meth:`execute`, or a :func:`translated` method).
    """

    def __init__(
        self,
        path: str,
        *,
        busy_timeout: float,
        translate: Translate,
        per_thread: bool = False,
        synchronous: str | None = "NORMAL",
        checkpoint_pages: int | None = None,
        closed: str = "store is closed",
        chain: bool = True,
    ) -> None:
        self.path = path
        self.memory = path == ":memory:"
        self._busy_timeout = busy_timeout
        self._translate = translate
        self._pragmas = [] if synchronous is None else [f"PRAGMA synchronous={synchronous}"]
        if not self.memory:
            self._pragmas.append("PRAGMA journal_mode=WAL")
            if checkpoint_pages is not None:
                self._pragmas.append(f"PRAGMA wal_autocheckpoint={checkpoint_pages}")
        self._closed_message = closed
        self._chain = chain
        self._lock = threading.RLock()
        # What every statement holds: the lock of the shared connection; nothing per thread.
        self._guard: AbstractContextManager[object] = nullcontext() if per_thread else self._lock
        self._local = threading.local()
        self._opened: list[tuple[int, sqlite3.Connection]] = []
        self._closed = False
        self.connection: Callable[[], sqlite3.Connection] = self._own_connection
        if not per_thread:
            try:
                shared = self._open()
            except sqlite3.Error as exc:
                self.close()
                self._fail(exc)
            self.connection = lambda: shared

    # -- connections ---------------------------------------------------------------------------

    def _own_connection(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():
            conn = self._thread_connection()
        return conn

    def _thread_connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreUnavailable(self._closed_message)
        pid = os.getpid()
        same = [c for p, c in self._opened if p == pid] if self.memory else []
        # The one in-memory database is shared; the caller serialises its use.
        conn = same[0] if same else self._open()
        self._local.conn, self._local.pid = conn, pid
        return conn

    def _open(self) -> sqlite3.Connection:
        create_private(self.path)
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout,
            isolation_level=None,
            check_same_thread=False,  # close() closes every thread's connection
        )
        with self._lock:
            self._opened.append((os.getpid(), conn))  # before the pragmas: a bad file fails them
        for pragma in self._pragmas:
            conn.execute(pragma)
        return conn

    # -- statements ----------------------------------------------------------------------------

    def _fail(self, exc: sqlite3.Error) -> NoReturn:
        raise self._translate(exc) from (exc if self._chain else None)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: ``BEGIN IMMEDIATE`` (waiting up to ``busy_timeout`` for the
        write lock), ``COMMIT`` when the block ends, ``ROLLBACK`` when it raises. Errors of
        ``sqlite3``, the block's included, leave as the store's errors; others pass as they
        are (after the rollback)."""
        with self._guard:
            try:
                conn = self.connection()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    with suppress(sqlite3.Error):  # the error that got here is the one to report
                        if conn.in_transaction:  # SQLite may have rolled back already
                            conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._fail(exc)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of one statement (its own transaction)."""
        with self._guard:
            try:
                return self.connection().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                self._fail(exc)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement as its own transaction; the number of rows it changed."""
        with self._guard:
            try:
                return self.connection().execute(sql, params).rowcount
            except sqlite3.Error as exc:
                self._fail(exc)

    def close(self) -> None:
        """Close every connection this process opened. Idempotent; a per-thread database is
        unusable afterwards, a shared one fails as ``sqlite3`` does on a closed connection."""
        pid = os.getpid()
        with self._lock:  # a shared connection is closed between two statements
            self._closed = True
            opened, self._opened = self._opened, []
            for owner, conn in opened:
                if owner == pid:  # another process's connections are its own to close
                    with suppress(sqlite3.Error):
                        conn.close()
            self._local = threading.local()
