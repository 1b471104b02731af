"""The user's risk history in the store: one internal record per user (see
``sessionward.manager.risk``), read at sign-in and before a challenge, written at sign-in, at a
confirmation and with a session's periodic write when this process has learned something
since. This file is the source; ``sessionward.manager._sync.remembering`` is generated from
it. ``AsyncSessionManager`` inherits it.
"""

from __future__ import annotations

from sessionward.core.record import SessionRecord
from sessionward.errors import AlreadyExists, NotFound, StoreUnavailable, VersionConflict
from sessionward.manager.risk import Assessment, RiskAssessor, user_record_id
from sessionward.stores._async.base import AsyncStore

__all__ = ["AsyncRemembering"]


class AsyncRemembering:
    """Reading and writing the user's record; the state is the manager's."""

    store: AsyncStore
    _risk: RiskAssessor | None

    async def _user_history(self, user_id: str | None) -> SessionRecord | None:
        """The user's record, if scoring is on and there is one."""
        if self._risk is None or user_id is None:
            return None
        return await self.store.get(user_record_id(user_id))

    async def _reconsidered(
        self, risk: RiskAssessor, record: SessionRecord, scored: Assessment, now: float
    ) -> Assessment:
        """A challenge, scored again if the user's record knows more than this process."""
        stored = await self._user_history(record.user_id)
        return risk.reconsider(record, scored, stored, now)

    async def _save_user_history(
        self, user_id: str | None, now: float, *, after_commit: bool = False
    ) -> None:
        """Write the user's record if this process's copy learned something since it last
        wrote it. ``after_commit``: the request's own write is done and its answer must
        reach the client, so a store outage here leaves the record to a later write."""
        risk = self._risk
        if risk is None or user_id is None or not risk.unsaved(user_id):
            return
        try:
            stored = await self.store.get(user_record_id(user_id))
            await self._write_user_history(risk, user_id, now, stored)
        except StoreUnavailable:
            if not after_commit:
                raise

    async def _write_user_history(
        self, risk: RiskAssessor, user_id: str, now: float, stored: SessionRecord | None
    ) -> None:
        """Write the user's record over ``stored`` (as just read), if there is something to
        write. A write lost to another writer is left to a later write."""
        record = risk.user_record(user_id, stored, now)
        if record is None:
            return
        try:
            if stored is None:
                await self.store.add(record)
            else:
                await self.store.replace(record, expected_version=stored.version)
        except (AlreadyExists, NotFound, VersionConflict):
            return
        risk.user_saved(user_id, record)

    async def _forget_user_history(self, user_id: str) -> None:
        if self._risk is not None:
            self._risk.forget_user(user_id)
            await self.store.delete(user_record_id(user_id))
