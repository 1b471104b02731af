"""A local read cache over any store that broadcasts its changes.

    store = AsyncCachedStore(AsyncRedisStore(url), size=10_000, ttl=5.0)
    manager = AsyncSessionManager(store)

``get`` answers from process memory when it can, so a repeat validation costs no round trip.
Every other operation goes to the inner store. What the cache promises:

* Before every read it applies the changes the inner store has announced
  (:meth:`AsyncSubscription.changed`): once the subscription has reported a record's change, no
  later ``get`` answers with the older copy.
* While announcements may have been lost (``changed()`` returned ``None``, or failed), the cache
  forgets everything and reads go to the inner store, uncached; it fills again once the
  subscription reports changes normally.
* A read that overlaps a change of the same record (announced here, or written through this
  cache) is not kept, so an older value never outlives the change.
* ``ttl`` seconds bound how long an entry is served, whatever happens to announcements.
* Writes made through the cache drop its own copies of the records they touch. A missing record
  is never cached (creating a session is not announced).

What it cannot promise: another process's change is seen here once its announcement has
arrived, which takes as long as the store's delivery (Redis pub/sub, PostgreSQL NOTIFY); ``ttl``
is the bound when delivery fails silently.

The cache has the capabilities of the store it wraps: it is an ``AsyncUserIndex``, a
``Locality``, an ``AsyncDeleteAll`` or an ``AsyncScan``, and has ``count``, exactly when the
inner store does (those calls go straight through; ``delete_all`` then forgets every copy).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from typing import Protocol, cast, runtime_checkable

from sessionward.clock import Clock
from sessionward.core.record import SessionRecord
from sessionward.errors import ConfigError, StoreError
from sessionward.stores._async.base import (
    AsyncBroadcast,
    AsyncDeleteAll,
    AsyncScan,
    AsyncStore,
    AsyncSubscription,
    AsyncUserIndex,
    UserCap,
)
from sessionward.stores._gate import AsyncGate
from sessionward.stores.locality import Locality

__all__ = ["AsyncBroadcastingStore", "AsyncCachedStore"]


class AsyncBroadcastingStore(AsyncStore, AsyncBroadcast, Protocol):
    """What the cache wraps: a store that announces its changes."""


class _Monotonic:
    """The default clock for ``ttl``: unaffected by changes of the wall clock."""

    def now(self) -> float:
        return time.monotonic()


class AsyncCachedStore:
    """``get`` from memory, invalidated by the inner store's announcements (module docstring).

    ``size`` is the most records kept (the oldest entry goes first); ``ttl`` the most seconds
    an entry is served; ``clock`` measures ``ttl`` (default: a monotonic clock). Closing the
    cache closes the inner store.
    """

    inner: AsyncBroadcastingStore

    def __new__(
        cls,
        inner: AsyncBroadcastingStore,
        *,
        size: int = 10_000,
        ttl: float = 5.0,
        clock: Clock | None = None,
    ) -> AsyncCachedStore:
        if cls is AsyncCachedStore:  # the subclass with the inner store's capabilities
            cls = _capable(tuple(isinstance(inner, has) for has, _ in _CAPABILITIES))
        return super().__new__(cls)

    def __init__(
        self,
        inner: AsyncBroadcastingStore,
        *,
        size: int = 10_000,
        ttl: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(inner, AsyncBroadcast):
            raise ConfigError("a read cache needs a store that announces its changes (Broadcast)")
        if type(size) is not int or size < 1:
            raise ConfigError("size must be a positive integer")
        if not ttl > 0:
            raise ConfigError("ttl must be positive")
        self.inner = inner
        self._size = size
        self._ttl = float(ttl)
        self._clock: Clock = clock or _Monotonic()
        self._entries: dict[str, tuple[float, SessionRecord]] = {}  # id -> (deadline, record)
        self._reading: dict[str, object] = {}  # id -> ticket of the read that may keep it
        self._subscription: AsyncSubscription | None = None
        self._gate = AsyncGate()

    # -- reads --------------------------------------------------------------------------------

    async def get(self, session_id: str) -> SessionRecord | None:
        ticket: object | None = None
        deadline = 0.0
        async with self._gate:
            if await self._caught_up():
                hit = self._entries.get(session_id)
                now = self._clock.now()
                if hit is not None and hit[0] > now:
                    return hit[1]
                ticket = self._reading[session_id] = object()
                deadline = now + self._ttl
        record = None
        try:
            record = await self.inner.get(session_id)
        finally:
            if ticket is not None:
                async with self._gate:
                    if self._reading.get(session_id) is ticket:
                        del self._reading[session_id]
                        if record is not None:
                            self._keep(session_id, deadline, record)
        return record

    async def _caught_up(self) -> bool:
        """Applies the announced changes. ``False`` when memory must not be served (nor
        filled) now: announcements may have been lost."""
        try:
            if self._subscription is None:
                self._subscription = await self.inner.subscribe()
            changed = await self._subscription.changed()
        except StoreError:
            changed = None
        if changed is None:
            self._forget(None)
            return False
        self._forget(changed)
        return True

    def _keep(self, session_id: str, deadline: float, record: SessionRecord) -> None:
        entries = self._entries
        if session_id not in entries and len(entries) >= self._size:
            del entries[next(iter(entries))]  # the oldest entry
        entries[session_id] = (deadline, record)

    def _forget(self, ids: Iterable[str] | None) -> None:
        """Drops ``ids`` (``None``: everything), with any read of them in flight."""
        if ids is None:
            self._entries.clear()
            self._reading.clear()
            return
        for session_id in ids:
            self._entries.pop(session_id, None)
            self._reading.pop(session_id, None)

    async def _drop(self, ids: Iterable[str] | None) -> None:
        async with self._gate:
            self._forget(ids)

    # -- writes: straight through, then drop the copies ---------------------------------------

    async def add(self, record: SessionRecord, *, cap: UserCap | None = None) -> list[str]:
        evicted = await self.inner.add(record, cap=cap)
        await self._drop([record.id, *evicted])
        return evicted

    async def replace(self, record: SessionRecord, *, expected_version: int) -> None:
        try:
            await self.inner.replace(record, expected_version=expected_version)
        finally:
            await self._drop((record.id,))

    async def touch(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        try:
            await self.inner.touch(session_id, last_seen=last_seen, expires_at=expires_at)
        finally:
            await self._drop((session_id,))

    async def delete(self, session_id: str) -> bool:
        try:
            return await self.inner.delete(session_id)
        finally:
            await self._drop((session_id,))

    async def purge_expired(self, now: float) -> int:
        try:
            return await self.inner.purge_expired(now)
        finally:
            await self._drop(None)

    async def close(self) -> None:
        subscription, self._subscription = self._subscription, None
        await self._drop(None)
        try:
            if subscription is not None:
                await subscription.close()
        finally:
            await self.inner.close()


class _WithUserIndex(AsyncCachedStore):
    """The cache over a store with a per-user index."""

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        return await cast(AsyncUserIndex, self.inner).list_user(user_id)

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        try:
            deleted = await cast(AsyncUserIndex, self.inner).delete_user(user_id, keep=keep)
        except BaseException:
            await self._drop(None)  # which records went is unknown
            raise
        await self._drop(deleted)
        return deleted


class _WithLocality(AsyncCachedStore):
    """The cache over a store that places records by id."""

    def user_locality(self, user_id: str) -> bytes:
        return cast(Locality, self.inner).user_locality(user_id)


class _WithDeleteAll(AsyncCachedStore):
    """The cache over a store that deletes every record at once."""

    async def delete_all(self, *, keep: str | None = None) -> int:
        try:
            return await cast(AsyncDeleteAll, self.inner).delete_all(keep=keep)
        finally:
            await self._drop(None)  # every copy but ``keep``'s is stale: forget them all


class _WithScan(AsyncCachedStore):
    """The cache over a store that walks its records (admin tools: never cached)."""

    async def scan(self, *, after: str = "", limit: int = 500) -> list[SessionRecord]:
        return await cast(AsyncScan, self.inner).scan(after=after, limit=limit)


class _WithCount(AsyncCachedStore):
    """The cache over a store that counts its sessions (``count``, read by the service's
    dashboard and metrics)."""

    async def count(self) -> int:
        return await cast(_Counting, self.inner).count()


@runtime_checkable
class _Counting(Protocol):
    async def count(self) -> int: ...


# Each capability the inner store may have, and the cache's class that passes it through.
_CAPABILITIES: tuple[tuple[type, type[AsyncCachedStore]], ...] = (
    (AsyncUserIndex, _WithUserIndex),
    (Locality, _WithLocality),
    (AsyncDeleteAll, _WithDeleteAll),
    (AsyncScan, _WithScan),
    (_Counting, _WithCount),
)


@functools.cache
def _capable(has: tuple[bool, ...]) -> type[AsyncCachedStore]:
    """The cache's class with exactly the capabilities ``has`` marks (in ``_CAPABILITIES``
    order): one class per combination, made once."""
    bases = tuple(cached for (_, cached), wanted in zip(_CAPABILITIES, has, strict=True) if wanted)
    if not bases:
        return AsyncCachedStore
    if len(bases) == 1:
        return bases[0]
    return type(AsyncCachedStore.__name__, bases, {"__doc__": AsyncCachedStore.__doc__})
