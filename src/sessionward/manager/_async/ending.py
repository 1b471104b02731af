"""Ending and looking up sessions: the manager's administrative half (logout, logout
everywhere, purge, listing a user's devices). This file is the source of truth; the ``_sync``
twin is generated from it. ``AsyncSessionManager`` inherits it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessionward.clock import Clock
from sessionward.core.events import (
    AllSessionsRevoked,
    EventBus,
    RevokeReason,
    SessionRevoked,
    TheftSuspected,
)
from sessionward.core.events import SessionExpired as ExpiredEvent
from sessionward.core.record import Session, SessionRecord, check_user_id, session_id_of
from sessionward.errors import ConfigError, SessionExpired
from sessionward.stores._async.base import AsyncDeleteAll, AsyncStore, AsyncUserIndex

__all__ = ["AsyncEnding"]


class AsyncEnding:
    """Revoking, purging and reading sessions; the state is the manager's."""

    store: AsyncStore
    clock: Clock
    events: EventBus
    _index: AsyncUserIndex | None

    if TYPE_CHECKING:

        async def _forget_user_history(self, user_id: str) -> None: ...

    # -- ending -----------------------------------------------------------------------------

    async def revoke(self, session: Session | str, *, reason: str = RevokeReason.LOGOUT) -> bool:
        """End one session (logout). ``True`` if it existed. Idempotent."""
        session_id = session_id_of(session)
        user_id = session.user_id if isinstance(session, Session) else None
        if not await self.store.delete(session_id):
            return False
        self._emit_revoked(session_id, user_id, self.clock.now(), reason)
        return True

    async def revoke_user(
        self,
        user_id: str,
        *,
        keep: Session | str | None = None,
        reason: str = RevokeReason.LOGOUT_EVERYWHERE,
    ) -> int:
        """End every session of ``user_id`` (logout everywhere, account disabled, password
        change), optionally keeping the current one. Returns how many ended. Without
        ``keep``, the user's risk history goes too: the next sign-in starts afresh, so that
        nothing a thief's allowed requests taught it survives."""
        check_user_id(user_id)
        keep_id = None if keep is None else session_id_of(keep)
        deleted = await self._user_index().delete_user(user_id, keep=keep_id)
        if keep_id is None:
            await self._forget_user_history(user_id)
        now = self.clock.now()
        for session_id in deleted:
            self._emit_revoked(session_id, user_id, now, reason)
        return len(deleted)

    def _emit_revoked(self, session_id: str, user_id: str | None, now: float, reason: str) -> None:
        self.events.emit(SessionRevoked(session_id, user_id, now, reason=str(reason)))

    async def _theft(self, record: SessionRecord, now: float) -> None:
        """A rotated-out secret presented after its grace window: revoke the session."""
        self.events.emit(
            TheftSuspected(record.id, record.user_id, now, generation=record.generation)
        )
        if await self.store.delete(record.id):
            self._emit_revoked(record.id, record.user_id, now, RevokeReason.THEFT)

    async def _expire(self, record: SessionRecord, now: float, deadline: str) -> None:
        """Delete a session whose ``deadline`` passed and raise ``SessionExpired``."""
        if await self.store.delete(record.id):
            self.events.emit(ExpiredEvent(record.id, record.user_id, now, deadline=deadline))
        raise SessionExpired(f"expired-{deadline}", record.id)

    async def revoke_all(
        self, *, keep: Session | str | None = None, reason: str = RevokeReason.ADMIN
    ) -> int:
        """End every session of every user, anonymous ones included, optionally keeping one
        (the administrator's own). Returns how many ended. One ``AllSessionsRevoked`` event
        stands for them all (a per-session event would flood the event sinks). Raises
        ``ConfigError`` when the store cannot delete everything at once."""
        store = self.store
        if not isinstance(store, AsyncDeleteAll):
            raise ConfigError(f"{type(store).__name__} cannot end every session at once")
        keep_id = None if keep is None else session_id_of(keep)
        count = await store.delete_all(keep=keep_id)
        now = self.clock.now()
        self.events.emit(
            AllSessionsRevoked(None, None, now, count=count, reason=str(reason), kept=keep_id)
        )
        return count

    async def purge_expired(self) -> int:
        """Delete every expired session from the store; returns how many."""
        return await self.store.purge_expired(self.clock.now())

    # -- reading and changing ---------------------------------------------------------------

    async def list_user(self, user_id: str) -> list[Session]:
        """The user's live sessions, oldest first (for a "your devices" page)."""
        check_user_id(user_id)
        now = self.clock.now()
        records = await self._user_index().list_user(user_id)
        return [Session(r) for r in records if r.expires_at > now]

    def _user_index(self) -> AsyncUserIndex:
        if self._index is None:
            raise ConfigError(f"{type(self.store).__name__} keeps no per-user index")
        return self._index

    async def get(self, session_id: str) -> Session | None:
        """A live session by public id (for admin tools), or ``None``. Not an authentication:
        never use it with an id a client supplied. An internal record is no session: ``None``."""
        record = await self.store.get(session_id_of(session_id))
        if record is None or record.is_internal or self.clock.now() >= record.expires_at:
            return None
        return Session(record)
