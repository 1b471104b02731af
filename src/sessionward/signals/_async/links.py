"""Finding and ending the sessions an identity provider names, and the shared ``jti`` replay
cache of the receivers. This file is the source of truth; the ``_sync`` twin is generated.

Every write is one store operation that every store has (create-only ``add``, conditional
``replace``), so two nodes linking, revoking or spending the same ``jti`` at once stay
consistent. A lookup is one ``get`` of the index record plus ``list_user`` per user it lists.
"""

from __future__ import annotations

import contextlib
import logging

from sessionward.core import binding as states
from sessionward.core.events import RevokeReason
from sessionward.core.record import Session
from sessionward.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    StoreError,
    UpdateConflict,
    VersionConflict,
)
from sessionward.manager._async.manager import AsyncSessionManager
from sessionward.signals.links import (
    IdpLink,
    IndexKind,
    index_id,
    index_record,
    index_users,
    link_of,
)

__all__ = ["AsyncIdpLinks"]

_log = logging.getLogger("sessionward.signals")
_ATTEMPTS = 8


class AsyncIdpLinks:
    """The identity-provider links of ``manager``'s sessions (see
    :mod:`sessionward.signals.links`)."""

    def __init__(self, manager: AsyncSessionManager) -> None:
        self.manager = manager

    async def remember(self, session: Session) -> IdpLink:
        """Index the link ``session`` carries in its data (give it at ``issue`` with
        ``IdpLink(...).data()``), so a logout token or a signal finds it. Call it once after
        the login; raises ``InvalidArgument`` for an anonymous session or one without a link."""
        link = link_of(session.data)
        user_id = session.user_id
        if link is None or user_id is None:
            raise InvalidArgument("the session carries no idp link, or no user")
        for kind, value in link.names():
            await self._index(kind, link.iss, value, user_id, session.absolute_expires_at)
        return link

    async def _index(
        self, kind: IndexKind, iss: str, value: str, user_id: str, until: float
    ) -> None:
        store = self.manager.store
        record_id = index_id(kind, iss, value)
        try:  # the common case: the first session under this name, one create-only write
            await store.add(index_record(record_id, [user_id], until, self.manager.clock.now()))
            return
        except AlreadyExists:
            pass
        for _ in range(_ATTEMPTS):
            now = self.manager.clock.now()
            existing = await store.get(record_id)
            if existing is None:
                try:
                    await store.add(index_record(record_id, [user_id], until, now))
                except AlreadyExists:
                    continue
                return
            users = index_users(existing, now)
            if user_id in users and existing.expires_at >= until:
                return
            merged = [u for u in users if u != user_id] + [user_id]
            end = max(until, existing.expires_at) if users else until
            updated = index_record(record_id, merged, end, now, existing.version + 1)
            try:
                await store.replace(updated, expected_version=existing.version)
            except (VersionConflict, NotFound):
                continue
            return
        raise UpdateConflict("could not update the idp index")

    async def users_of(self, kind: IndexKind, iss: str, value: str) -> list[str]:
        """The user ids holding a session linked to ``(iss, sid)`` or ``(iss, sub)``."""
        record = await self.manager.store.get(index_id(kind, iss, value))
        return index_users(record, self.manager.clock.now())

    async def sessions_of(self, iss: str, sid: str) -> list[Session]:
        """The live sessions linked to the provider's session ``(iss, sid)``."""
        out: list[Session] = []
        for user_id in await self.users_of("sid", iss, sid):
            for session in await self.manager.list_user(user_id):
                link = link_of(session.data)
                if link is not None and link.iss == iss and link.sid == sid:
                    out.append(session)
        return out

    async def end_sid(self, iss: str, sid: str, *, reason: str = RevokeReason.IDP_LOGOUT) -> int:
        """Revoke the sessions of ``(iss, sid)``; returns how many ended."""
        ended = 0
        for session in await self.sessions_of(iss, sid):
            ended += await self.manager.revoke(session, reason=reason)
        return ended

    async def end_sub(self, iss: str, sub: str, *, reason: str = RevokeReason.IDP_LOGOUT) -> int:
        """Revoke every session of the users linked to ``(iss, sub)``."""
        ended = 0
        for user_id in await self.users_of("sub", iss, sub):
            ended += await self.manager.revoke_user(user_id, reason=reason)
        return ended

    async def step_up_sub(self, iss: str, sub: str) -> int:
        """Lower every session of the users linked to ``(iss, sub)`` to authentication level
        0 with no authentication time, so the next ``require_recent_auth`` (any level of 1
        or more, any ``max_age``) asks for a new sign-in; returns how many changed."""
        changed = 0
        for user_id in await self.users_of("sub", iss, sub):
            for session in await self.manager.list_user(user_id):
                changed += await self._lower(session.id)
        return changed

    async def _lower(self, session_id: str) -> int:
        store = self.manager.store
        for _ in range(_ATTEMPTS):
            record = await store.get(session_id)
            if record is None or (record.auth_level == 0 and record.auth_time is None):
                return 0
            lowered = record._replace(auth_level=0, auth_time=None, version=record.version + 1)
            try:
                await store.replace(lowered, expected_version=record.version)
            except VersionConflict:
                continue
            except NotFound:
                return 0
            _log.info("session %s lowered to level 0 (credential compromise)", session_id)
            return 1
        raise UpdateConflict("could not lower the session's authentication level")

    async def first_use(self, kind: str, jti: str, until: float) -> bool:
        """Remember ``jti`` until ``until`` on every node; ``False`` when it was seen before."""
        record = states.replay_record(kind, jti, until, self.manager.clock.now())
        try:
            await self.manager.store.add(record)
        except AlreadyExists:
            return False
        return True

    async def forget_use(self, kind: str, jti: str) -> None:
        """Release a ``jti`` spent by :meth:`first_use` whose request could not be applied (a
        store failure), so the sender's retry is not refused as a replay. Best effort."""
        record_id = states.replay_record(kind, jti, 0.0, 0.0).id
        with contextlib.suppress(StoreError):
            await self.manager.store.delete(record_id)
