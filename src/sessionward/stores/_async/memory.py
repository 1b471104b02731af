"""An in-process store: a dict of immutable records behind one lock.

For tests, single-process apps and as the reference implementation of the contract. Records
are immutable tuples, so handing them out needs no copy. Nothing survives the process.

It announces its changes to subscribers in the same process (the ``Broadcast`` capability), so a
read cache over it behaves as over a shared store. Each subscription buffers at most
:data:`ANNOUNCE_BUFFER` ids between two ``changed()`` calls; beyond that it reports a loss.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Final

from sessionward.core.record import SessionRecord
from sessionward.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    SessionLimitReached,
    VersionConflict,
)
from sessionward.stores._async.base import UserCap

__all__ = ["ANNOUNCE_BUFFER", "AsyncMemoryStore"]

ANNOUNCE_BUFFER: Final = 10_000


class AsyncMemoryStore:
    """Sessions in a dict. Thread-safe; the lock is never held across an ``await``."""

    def __init__(self) -> None:
        self._records: dict[str, SessionRecord] = {}
        self._by_user: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._subscriptions: list[_Subscription] = []

    async def get(self, session_id: str) -> SessionRecord | None:
        return self._records.get(session_id)

    async def add(self, record: SessionRecord, *, cap: UserCap | None = None) -> list[str]:
        with self._lock:
            if record.id in self._records:
                raise AlreadyExists(record.id)
            evicted = self._make_room(record.user_id, cap) if cap is not None else []
            self._announce(evicted)
            self._records[record.id] = record
            if record.user_id is not None:
                self._by_user.setdefault(record.user_id, set()).add(record.id)
            return evicted

    def _make_room(self, user_id: str | None, cap: UserCap) -> list[str]:
        if user_id is None:
            return []
        live = sorted(
            (r for r in self._user_records(user_id) if r.expires_at > cap.now),
            key=lambda r: (r.created_at, r.id),
        )
        excess = len(live) - cap.limit + 1
        if excess <= 0:
            return []
        if not cap.evict_oldest:
            raise SessionLimitReached(f"user already has {len(live)} sessions")
        evicted = [r.id for r in live[:excess]]
        for session_id in evicted:
            self._remove(session_id)
        return evicted

    def _user_records(self, user_id: str) -> list[SessionRecord]:
        return [self._records[i] for i in self._by_user.get(user_id, ())]

    def _remove(self, session_id: str) -> bool:
        record = self._records.pop(session_id, None)
        if record is None:
            return False
        if record.user_id is not None:
            ids = self._by_user.get(record.user_id)
            if ids is not None:
                ids.discard(session_id)
                if not ids:
                    del self._by_user[record.user_id]
        return True

    async def replace(self, record: SessionRecord, *, expected_version: int) -> None:
        with self._lock:
            current = self._records.get(record.id)
            if current is None:
                raise NotFound(record.id)
            if current.version != expected_version:
                raise VersionConflict(record.id)
            if current.user_id != record.user_id:
                self._remove(record.id)
                if record.user_id is not None:
                    self._by_user.setdefault(record.user_id, set()).add(record.id)
            self._records[record.id] = record
            self._announce((record.id,))

    async def touch(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        with self._lock:
            current = self._records.get(session_id)
            if current is not None and current.last_seen < last_seen:
                self._records[session_id] = current._replace(
                    last_seen=last_seen, expires_at=expires_at
                )
                self._announce((session_id,))

    async def delete(self, session_id: str) -> bool:
        with self._lock:
            removed = self._remove(session_id)
            if removed:
                self._announce((session_id,))
            return removed

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        with self._lock:
            return sorted(self._user_records(user_id), key=lambda r: (r.created_at, r.id))

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        with self._lock:
            doomed = [i for i in self._by_user.get(user_id, ()) if i != keep]
            for session_id in doomed:
                self._remove(session_id)
            self._announce(doomed)
            return doomed

    async def delete_all(self, *, keep: str | None = None) -> int:
        with self._lock:
            doomed = [i for i, r in self._records.items() if i != keep and not r.is_internal]
            for session_id in doomed:
                self._remove(session_id)
            self._announce(doomed)
            return len(doomed)

    async def purge_expired(self, now: float) -> int:
        with self._lock:
            doomed = [r.id for r in self._records.values() if r.expires_at <= now]
            for session_id in doomed:
                self._remove(session_id)
            self._announce(doomed)
            return len(doomed)

    async def scan(self, *, after: str = "", limit: int = 500) -> list[SessionRecord]:
        if limit < 1:
            raise InvalidArgument("limit must be at least 1")
        with self._lock:
            ids = sorted(i for i in self._records if i > after)[:limit]
            return [self._records[i] for i in ids]

    async def subscribe(self) -> _Subscription:
        subscription = _Subscription(self)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def _announce(self, ids: Sequence[str]) -> None:
        """Called with the lock held, so announcements reach every subscriber in write order."""
        for subscription in self._subscriptions:
            subscription.push(ids)

    async def close(self) -> None:
        return None

    def __len__(self) -> int:
        return len(self._records)


class _Subscription:
    """The ids a memory store changed since the last ``changed()`` call."""

    def __init__(self, store: AsyncMemoryStore) -> None:
        self._store = store
        self._ids: list[str] = []
        self._lost = False

    def push(self, ids: Sequence[str]) -> None:
        self._ids.extend(ids)
        if len(self._ids) > ANNOUNCE_BUFFER:
            self._ids.clear()
            self._lost = True

    async def changed(self) -> Sequence[str] | None:
        with self._store._lock:
            if self._lost:
                self._lost = False
                return None
            ids, self._ids = self._ids, []
            return ids

    async def close(self) -> None:
        with self._store._lock:
            if self in self._store._subscriptions:
                self._store._subscriptions.remove(self)
