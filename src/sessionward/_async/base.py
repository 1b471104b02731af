"""The store interface: a handful of operations, each with its edge cases stated.

Every store keeps :class:`~sessionward.core.record.SessionRecord` values by their public id and
must pass ``tests/contract`` unmodified. Stores never see a raw token, never read a clock
(callers pass ``now``), and translate their driver's exceptions into
:mod:`sessionward.errors` (``StoreUnavailable``, ``StoreCorrupt``) at this boundary.

Two optional attributes, looked up by the manager: ``verifier_size`` (16 or 32, default 32),
how many bytes of ``sha256(secret)`` the records it writes for this store carry (the Redis
store asks for 16, see docs/design.md); and ``new_session_id(user_id)``, which mints ids that
lead to the user's place in the store (Redis Cluster slots, SQLite key ranges).
"""

from __future__ import annotations

from typing import Protocol

from sessionward.core.cap import UserCap
from sessionward.core.record import SessionRecord

__all__ = ["AsyncStore", "UserCap"]


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

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """Every stored record of a user, oldest ``created_at`` first (expired ones included
        until purged)."""

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        """Delete every record of a user except ``keep``; returns the deleted ids."""

    async def purge_expired(self, now: float) -> int:
        """Delete records with ``expires_at <= now`` without blocking readers for long;
        returns how many were deleted."""

    async def close(self) -> None:
        """Release connections. Idempotent."""
