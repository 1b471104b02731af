"""The store interface: a handful of operations, each with its edge cases stated.

Every store keeps :class:`~sessionward.core.record.SessionRecord` values by their public id and
must pass ``tests/contract`` unmodified. Stores never see a raw token, never read a clock
(callers pass ``now``), never mint ids or decide what a record holds, and translate their
driver's exceptions into :mod:`sessionward.errors` (``StoreUnavailable``, ``StoreCorrupt``) at
this boundary.

:class:`AsyncStore` is what every store does. What only some stores can do is a capability,
a protocol of its own that the manager checks for with ``isinstance`` once, when it is built:

* :class:`AsyncUserIndex`: list and delete a user's sessions (a "your devices" page, logout
  everywhere).
* :class:`AsyncDeleteAll`: delete every session at once (an administrator ending all
  sessions of all users).
* :class:`AsyncBroadcast`: tell other processes which records changed, so a local read cache
  (:class:`~sessionward.stores.AsyncCachedStore`) can drop them.
* :class:`~sessionward.stores.locality.Locality`: a store that places records by id (Redis
  Cluster slots) asks the manager to start a user's session ids with a few bytes of its
  choosing.
* :class:`AsyncScan`: walk every record in pages, for admin tools (``sessionward sessions
  list``); never on a request's path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from sessionward.core.cap import UserCap
from sessionward.core.record import SessionRecord

__all__ = [
    "AsyncBroadcast",
    "AsyncDeleteAll",
    "AsyncScan",
    "AsyncStore",
    "AsyncSubscription",
    "AsyncUserIndex",
    "UserCap",
]


class AsyncStore(Protocol):
    """Storage for session records. All methods are safe to call concurrently."""

    async def get(self, session_id: str) -> SessionRecord | None:
        """The record with this id, or ``None``. May return a record past ``expires_at``
        (stores with native TTLs drop those themselves); the manager checks deadlines."""

    async def add(self, record: SessionRecord, *, cap: UserCap | None = None) -> list[str]:
        """Create-only insert. Raises ``AlreadyExists`` when the id is taken (the caller draws
        a new id). With ``cap``, enforces it atomically and returns the ids it evicted."""

    async def replace(self, record: SessionRecord, *, expected_version: int) -> None:
        """Update-only write of a whole record, if the stored version is ``expected_version``.
        Raises ``NotFound`` when the record is gone, ``VersionConflict`` when another writer
        got there first. The caller sets ``record.version`` (normally expected + 1)."""

    async def touch(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        """Record activity without changing the version: sets ``last_seen`` and ``expires_at``
        if the stored ``last_seen`` is older. A missing record is ignored."""

    async def delete(self, session_id: str) -> bool:
        """Idempotent delete; ``True`` if a record was removed."""

    async def purge_expired(self, now: float) -> int:
        """Delete records with ``expires_at <= now`` without blocking readers for long;
        returns how many were deleted."""

    async def close(self) -> None:
        """Release connections. Idempotent."""


@runtime_checkable
class AsyncUserIndex(Protocol):
    """A store that can find every session of a user."""

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """Every stored record of a user, oldest ``created_at`` first (expired ones included
        until purged)."""

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        """Delete every record of a user except ``keep``; returns the deleted ids."""


@runtime_checkable
class AsyncBroadcast(Protocol):
    """A store that tells every process which records changed, through the store itself
    (Redis pub/sub, PostgreSQL LISTEN/NOTIFY). Every write that changes or removes a record
    (``replace``, ``touch``, ``delete``, ``delete_user``, ``purge_expired``, and ``add`` for
    the records its cap evicts) announces its id."""

    async def subscribe(self) -> AsyncSubscription:
        """Start listening. Changes made after this returns are all delivered (or the
        subscription reports a loss)."""


class AsyncSubscription(Protocol):
    """One process' view of the change announcements."""

    async def changed(self) -> Sequence[str] | None:
        """The ids announced since the last call, read from what has already arrived (no
        waiting on the network). ``None`` means announcements may have been lost (the
        connection dropped, a buffer overflowed): the caller must forget everything it
        holds, and keep calling; the subscription reconnects on its own."""

    async def close(self) -> None:
        """Stop listening. Idempotent."""


@runtime_checkable
class AsyncDeleteAll(Protocol):
    """A store that can delete every session at once."""

    async def delete_all(self, *, keep: str | None = None) -> int:
        """Delete every session except ``keep`` (anonymous ones and expired ones too) and
        return how many went. Internal records (``SessionRecord.is_internal``: spent proof
        ids, the identity-provider index) stay until their own deadline. Sessions added while
        it runs may survive; none that existed before it started does. A store with
        :class:`AsyncBroadcast` announces the change (every id, or a loss, so local caches
        forget everything)."""


@runtime_checkable
class AsyncScan(Protocol):
    """A store that can walk all its records, a page at a time."""

    async def scan(self, *, after: str = "", limit: int = 500) -> list[SessionRecord]:
        """Up to ``limit`` records whose id sorts after ``after``, in id order (expired ones
        included until purged). Pass the last id of a page to get the next; an empty list is
        the end. Records written or deleted during a walk may or may not be seen."""
