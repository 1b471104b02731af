"""The read cache over every store that broadcasts its changes, in both flavours.

Each test takes ``world``: a cache (``CachedStore``, or ``AsyncCachedStore`` driven through a
blocking facade) over ``world.inner``, a watched view of a broadcasting store, and
``world.writer``, another store object over the same records. ``world.inner`` counts the reads
that reach the store and records what the subscription reported; ``world.inner.held`` holds
reports back, as a slow network would.

A new broadcasting backend is one more entry in ``BROADCASTERS``: a context manager that, for a
flavour and an ``asyncio.Runner``, yields a :class:`Shared` on fresh, empty storage.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import CountingStore
from contract.records import make_record
from servers import WAIT

from sessionward import AsyncSessionManager, EventBus, InvalidToken, SessionManager
from sessionward.core.record import SessionRecord
from sessionward.errors import ConfigError
from sessionward.stores import (
    AsyncCachedStore,
    AsyncDeleteAll,
    AsyncMemoryStore,
    AsyncScan,
    AsyncUserIndex,
    Broadcast,
    CachedStore,
    DeleteAll,
    Locality,
    MemoryStore,
    Scan,
    SQLiteStore,
    UserIndex,
)
from sessionward.stores._async.memory import ANNOUNCE_BUFFER
from sessionward.testing import FakeClock

TTL = 5.0


class Blocking:
    """An async object's coroutine methods, run to completion on one runner (test-only)."""

    def __init__(self, target: Any, runner: asyncio.Runner) -> None:
        self.target = target
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.target, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        return lambda *args, **kwargs: self._runner.run(attr(*args, **kwargs))


@dataclass
class Shared:
    """Two store objects over one set of records: the cache wraps ``reader`` (of the
    flavour under test); ``writer`` has the sync interface. ``lose()`` makes announcements
    to ``reader``'s subscriptions go missing (and the subscriptions notice)."""

    reader: Any
    writer: Any
    lose: Callable[[], None]


Broadcaster = Callable[[str, asyncio.Runner], AbstractContextManager[Shared]]
BROADCASTERS: dict[str, Broadcaster] = {}


def broadcaster(name: str) -> Callable[[Callable[..., Iterator[Shared]]], Broadcaster]:
    def register(factory: Callable[..., Iterator[Shared]]) -> Broadcaster:
        BROADCASTERS[name] = contextmanager(factory)
        return BROADCASTERS[name]

    return register


@broadcaster("memory")
def _memory(flavour: str, runner: asyncio.Runner) -> Iterator[Shared]:
    # One in-process store: "another store object" is the same one, used without the cache.
    # A subscription that falls more than ANNOUNCE_BUFFER ids behind reports a loss.
    if flavour == "sync":
        store = MemoryStore()
        yield Shared(store, store, lambda: _flood(store))
        return
    async_store = AsyncMemoryStore()

    async def flood() -> None:
        record = make_record(1.0, user_id="flood")
        await async_store.add(record)
        for i in range(ANNOUNCE_BUFFER + 1):
            await async_store.touch(record.id, last_seen=2.0 + i, expires_at=1e10)
        await async_store.delete(record.id)

    yield Shared(async_store, Blocking(async_store, runner), lambda: runner.run(flood()))


def _flood(store: MemoryStore) -> None:
    record = make_record(1.0, user_id="flood")
    store.add(record)
    for i in range(ANNOUNCE_BUFFER + 1):
        store.touch(record.id, last_seen=2.0 + i, expires_at=1e10)
    store.delete(record.id)


class Watched(CountingStore):
    """A store seen through a counting proxy whose subscriptions record what they report
    (``reported``) and, while ``held`` is true, hold reports back for later."""

    def __init__(self, inner: object) -> None:
        super().__init__(inner)
        self.reported: list[str] = []
        self.held = False

    def __getattr__(self, name: str) -> Any:
        target = super().__getattr__(name)
        if name != "subscribe":
            return target
        if inspect.iscoroutinefunction(target):

            async def subscribe() -> Reports:
                return Reports(self, await target())

            return subscribe
        return lambda: Reports(self, target())


class Reports:
    """A subscription of a :class:`Watched` store."""

    def __init__(self, watched: Watched, inner: Any) -> None:
        self._watched = watched
        self._inner = inner
        self._pending: list[str] = []

    def changed(self) -> Any:
        got = self._inner.changed()
        if inspect.isawaitable(got):

            async def later() -> Sequence[str] | None:
                return self._report(await got)

            return later()
        return self._report(got)

    def _report(self, ids: Sequence[str] | None) -> Sequence[str] | None:
        if ids is None:
            self._pending.clear()
            return None
        self._pending.extend(ids)
        if self._watched.held:
            return []
        out, self._pending = self._pending, []
        self._watched.reported.extend(out)
        return out

    def close(self) -> Any:
        return self._inner.close()


@dataclass
class World:
    cache: Any
    inner: Watched
    writer: Any
    clock: FakeClock
    lose: Callable[[], None]

    def reads(self) -> int:
        """Reads that reached the store (not answered from memory)."""
        return self.inner.calls["get"]


@pytest.fixture(
    params=[(name, flavour) for name in BROADCASTERS for flavour in ("sync", "async")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    name, flavour = request.param
    clock = FakeClock()
    with asyncio.Runner() as runner, BROADCASTERS[name](flavour, runner) as shared:
        inner = Watched(shared.reader)
        if flavour == "sync":
            cache: Any = CachedStore(inner, ttl=TTL, size=100, clock=clock)
        else:
            cache = Blocking(AsyncCachedStore(inner, ttl=TTL, size=100, clock=clock), runner)
        yield World(cache, inner, shared.writer, clock, shared.lose)
        cache.close()


def _live(world: World, **fields: Any) -> SessionRecord:
    record = make_record(world.clock.now(), **fields)
    world.writer.add(record)
    return record


# -- serving from memory -----------------------------------------------------------------------


def test_repeat_reads_are_served_from_memory(world: World) -> None:
    record = _live(world)
    assert world.cache.get(record.id) == record
    assert world.cache.get(record.id) == record
    assert world.reads() == 1


def test_a_missing_record_is_never_cached(world: World) -> None:
    record = make_record(world.clock.now())
    assert world.cache.get(record.id) is None
    world.writer.add(record)  # creating is not announced
    assert world.cache.get(record.id) == record


def test_size_bounds_the_entries(world: World) -> None:
    records = [_live(world) for _ in range(101)]
    for record in records:
        world.cache.get(record.id)
    world.cache.get(records[-1].id)
    assert world.reads() == 101  # the newest is in memory
    world.cache.get(records[0].id)
    assert world.reads() == 102  # the oldest went to make room


# -- delivery guarantees -----------------------------------------------------------------------


def test_a_revoke_elsewhere_is_never_served_once_reported(world: World) -> None:
    record = _live(world)
    assert world.cache.get(record.id) == record
    world.writer.delete(record.id)
    deadline = time.monotonic() + WAIT  # a store over the network reports a moment later
    while True:
        got = world.cache.get(record.id)
        if record.id in world.inner.reported:
            assert got is None  # the get that applied the report already answers without it
            break
        assert time.monotonic() < deadline, "the revoke was never reported"
    assert [world.cache.get(record.id) for _ in range(5)] == [None] * 5


def test_an_update_elsewhere_is_served_once_reported(world: World) -> None:
    record = _live(world)
    world.cache.get(record.id)
    updated = record._replace(data='{"n":1}', version=2)
    world.writer.replace(updated, expected_version=1)
    deadline = time.monotonic() + WAIT
    while True:
        got = world.cache.get(record.id)
        if record.id in world.inner.reported:
            assert got == updated
            break
        assert time.monotonic() < deadline, "the update was never reported"


def test_a_lost_subscription_serves_nothing_from_memory(world: World) -> None:
    record = _live(world)
    assert world.cache.get(record.id) == record
    world.writer.delete(record.id)
    world.lose()  # the delete's announcement is among those lost
    assert world.cache.get(record.id) is None


def test_a_read_made_while_announcements_were_lost_is_not_kept(world: World) -> None:
    record = _live(world)
    world.cache.get(record.id)
    world.lose()
    world.cache.get(record.id)  # read through, not kept: the loss may hide later changes
    world.cache.get(record.id)  # the subscription reports normally again: kept
    world.cache.get(record.id)
    assert world.reads() == 3


def test_ttl_bounds_staleness_when_reports_are_late(world: World) -> None:
    record = _live(world)
    world.cache.get(record.id)
    world.inner.held = True  # the announcement of the delete is slow to arrive
    world.writer.delete(record.id)
    world.clock.advance(TTL - 0.01)
    assert world.cache.get(record.id) == record  # stale, within ttl
    world.clock.advance(0.02)
    assert world.cache.get(record.id) is None


def test_ttl_expiry_rereads(world: World) -> None:
    record = _live(world)
    world.cache.get(record.id)
    world.clock.advance(TTL - 0.01)
    world.cache.get(record.id)
    assert world.reads() == 1
    world.clock.advance(0.02)
    world.cache.get(record.id)
    assert world.reads() == 2


def test_writes_through_the_cache_drop_its_copy_before_any_report(world: World) -> None:
    record = _live(world)
    world.cache.get(record.id)
    world.inner.held = True
    updated = record._replace(data='{"n":1}', version=2)
    world.cache.replace(updated, expected_version=1)
    assert world.cache.get(record.id) == updated
    world.cache.touch(record.id, last_seen=record.last_seen + 60, expires_at=record.expires_at + 60)
    assert world.cache.get(record.id) == updated._replace(
        last_seen=record.last_seen + 60, expires_at=record.expires_at + 60
    )
    world.cache.delete(record.id)
    assert world.cache.get(record.id) is None
    other = _live(world, user_id="bob")
    world.cache.get(other.id)
    assert world.cache.delete_user("bob") == [other.id]
    assert world.cache.get(other.id) is None


def test_delete_all_through_the_cache_drops_every_copy_before_any_report(world: World) -> None:
    kept, gone = _live(world, user_id="alice"), _live(world)
    assert world.cache.get(gone.id) == gone
    assert world.cache.get(kept.id) == kept
    world.inner.held = True
    assert world.cache.delete_all(keep=kept.id) == 1
    assert world.cache.get(gone.id) is None
    assert world.cache.get(kept.id) == kept


def test_scan_goes_through_the_cache(world: World) -> None:
    records = sorted((_live(world, user_id=f"u{i}") for i in range(5)), key=lambda r: r.id)
    assert world.cache.scan(limit=3) == records[:3]
    assert world.cache.scan(after=records[2].id) == records[3:]


def test_a_cap_eviction_through_the_cache_drops_the_evicted(world: World) -> None:
    from sessionward.stores import UserCap

    first = _live(world, user_id="carol")
    world.cache.get(first.id)
    world.inner.held = True
    second = make_record(world.clock.now() + 1, user_id="carol")
    assert world.cache.add(second, cap=UserCap(1, True, world.clock.now())) == [first.id]
    assert world.cache.get(first.id) is None


# -- a read racing a change --------------------------------------------------------------------


class _RacingStore(MemoryStore):
    """A memory store whose next ``get`` of ``target`` lets ``during`` run after reading."""

    target = ""
    during: Callable[[], None] = staticmethod(lambda: None)

    def get(self, session_id: str) -> SessionRecord | None:
        record = super().get(session_id)
        if session_id == self.target:
            self.target = ""
            self.during()
        return record


def test_a_read_overlapping_a_reported_change_is_not_kept() -> None:
    store = _RacingStore()
    cache = CachedStore(store, ttl=TTL)
    clock = FakeClock()
    record, bystander = make_record(clock.now()), make_record(clock.now())
    store.add(record)
    store.add(bystander)
    updated = record._replace(data='{"n":1}', version=2)

    def change_and_report() -> None:
        store.replace(updated, expected_version=1)  # lands after the read saw the old row
        cache.get(bystander.id)  # another reader applies the announcement meanwhile

    store.target, store.during = record.id, change_and_report
    assert cache.get(record.id) == record  # read before the change: fine to return
    assert cache.get(record.id) == updated  # ... but not kept


class _AsyncRacingStore(AsyncMemoryStore):
    target = ""
    cache: AsyncCachedStore | None = None
    updated: SessionRecord | None = None
    bystander = ""

    async def get(self, session_id: str) -> SessionRecord | None:
        record = await super().get(session_id)
        if session_id == self.target and self.updated is not None and self.cache is not None:
            self.target = ""
            await self.replace(self.updated, expected_version=1)
            await self.cache.get(self.bystander)
        return record


def test_async_read_overlapping_a_reported_change_is_not_kept() -> None:
    async def scenario() -> list[SessionRecord | None]:
        store = _AsyncRacingStore()
        cache = AsyncCachedStore(store, ttl=TTL)
        clock = FakeClock()
        record, bystander = make_record(clock.now()), make_record(clock.now())
        await store.add(record)
        await store.add(bystander)
        store.cache, store.bystander = cache, bystander.id
        store.updated = record._replace(data='{"n":1}', version=2)
        store.target = record.id
        return [await cache.get(record.id), await cache.get(record.id)]

    first, second = asyncio.run(scenario())
    assert first is not None
    assert second is not None
    assert (first.version, second.version) == (1, 2)


# -- capabilities and construction -------------------------------------------------------------


class _Placed(MemoryStore):
    def user_locality(self, user_id: str) -> bytes:
        return b"\x01\x02"


class _Unindexed:
    """The store interface and Broadcast of a memory store, without its per-user index."""

    def __init__(self) -> None:
        self._store = MemoryStore()
        for name in ("get", "add", "replace", "touch", "delete", "purge_expired", "close"):
            setattr(self, name, getattr(self._store, name))
        self.subscribe = self._store.subscribe


class _UnindexedPlaced(_Unindexed):
    def user_locality(self, user_id: str) -> bytes:
        return b"\x03"


@pytest.mark.parametrize(
    ("inner", "indexed", "placed"),
    [
        (MemoryStore, True, False),
        (_Placed, True, True),
        (_Unindexed, False, False),
        (_UnindexedPlaced, False, True),
    ],
)
def test_the_cache_has_exactly_the_inner_stores_capabilities(
    inner: Callable[[], Any], indexed: bool, placed: bool
) -> None:
    cache = CachedStore(inner())
    assert isinstance(cache, CachedStore)
    assert isinstance(cache, UserIndex) is indexed
    assert isinstance(cache, Locality) is placed
    # the memory store deletes all and scans; the stand-ins without an index do neither
    assert isinstance(cache, DeleteAll) is indexed
    assert isinstance(cache, Scan) is indexed
    assert not hasattr(cache, "count")  # the memory store does not count
    assert not isinstance(cache, Broadcast)
    if placed:
        assert isinstance(cache, Locality)
        assert cache.user_locality("alice") in (b"\x01\x02", b"\x03")


def test_async_cache_has_the_inner_stores_index() -> None:
    cache = AsyncCachedStore(AsyncMemoryStore())
    assert isinstance(cache, AsyncUserIndex)
    assert isinstance(cache, AsyncDeleteAll)
    assert isinstance(cache, AsyncScan)
    assert not isinstance(cache, Locality)
    assert type(cache) is type(AsyncCachedStore(AsyncMemoryStore()))  # one class per set


def test_a_store_without_broadcast_is_refused(tmp_path: Any) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    try:
        with pytest.raises(ConfigError, match="announces its changes"):
            CachedStore(store)  # type: ignore[arg-type]
    finally:
        store.close()


@pytest.mark.parametrize(("size", "ttl"), [(0, 1.0), (10, 0.0), (10, -1.0)])
def test_bad_settings_are_refused(size: int, ttl: float) -> None:
    with pytest.raises(ConfigError):
        CachedStore(MemoryStore(), size=size, ttl=ttl)


# -- with the manager --------------------------------------------------------------------------


def test_logout_on_another_node_ends_the_session_here() -> None:
    shared = MemoryStore()
    quiet = EventBus([])
    here = SessionManager(CachedStore(shared), events=quiet)
    there = SessionManager(shared, events=quiet)
    session = here.issue("alice")
    assert here.validate(session.token).id == session.id
    assert here.validate(session.token).id == session.id
    there.revoke_user("alice")
    with pytest.raises(InvalidToken):
        here.validate(session.token)


def test_revoke_all_through_the_cache_ends_every_session_here() -> None:
    shared = MemoryStore()
    quiet = EventBus([])
    here = SessionManager(CachedStore(shared), events=quiet)
    mine, *others = [here.issue(user) for user in ("admin", "alice", None)]
    for session in (mine, *others):
        assert here.validate(session.token).id == session.id  # now cached
    assert here.revoke_all(keep=mine) == 2
    assert here.validate(mine.token).id == mine.id
    for session in others:
        with pytest.raises(InvalidToken):
            here.validate(session.token)


def test_async_logout_on_another_node_ends_the_session_here() -> None:
    async def scenario() -> None:
        shared = AsyncMemoryStore()
        quiet = EventBus([])
        here = AsyncSessionManager(AsyncCachedStore(shared), events=quiet)
        there = AsyncSessionManager(shared, events=quiet)
        session = await here.issue("alice")
        await here.validate(session.token)
        await there.revoke(session.id)
        with pytest.raises(InvalidToken):
            await here.validate(session.token)

    asyncio.run(scenario())
