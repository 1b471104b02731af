"""The store contract's fixtures: a registry of backends, each tested in both flavours.

Every test in this directory is a plain sync function taking ``store`` (and ``clock`` where
time matters). ``store`` is parametrized over ``BACKENDS`` x ``{sync, async}``: the sync
flavour is the backend's sync class itself, the async flavour its ``Async`` twin behind
:class:`RunnerFacade`, which runs each coroutine on one event loop per test. So the suite is
written once and proves both generated halves.

A new backend is one more entry in ``BACKENDS``: a generator decorated with ``@backend(name)``
that yields ``(sync_store, async_store)`` on fresh, empty storage and cleans up afterwards
(``pytest.skip`` with a clear reason when its server is missing). The test files never change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from sessionward.core.record import SessionRecord
from sessionward.stores import (
    AsyncCachedStore,
    AsyncDeleteAll,
    AsyncMemoryStore,
    AsyncSQLiteStore,
    AsyncStore,
    AsyncUserIndex,
    CachedStore,
    MemoryStore,
    SQLiteStore,
    Store,
    UserCap,
    UserIndex,
)
from sessionward.testing import FakeClock

T = TypeVar("T")


class IndexedStore(Store, UserIndex, Protocol):
    """What the contract suite tests: the store interface and the per-user index."""


class AsyncIndexedStore(AsyncStore, AsyncUserIndex, Protocol):
    """The async twin of :class:`IndexedStore`."""


Pair = tuple[IndexedStore, AsyncIndexedStore]
Backend = Callable[[pytest.FixtureRequest], AbstractContextManager[Pair]]

BACKENDS: dict[str, Backend] = {}
FLAVOURS = ("sync", "async")


def backend(name: str) -> Callable[[Callable[[pytest.FixtureRequest], Iterator[Pair]]], Backend]:
    """Register a backend factory under ``name`` (a generator yielding the two stores)."""

    def register(factory: Callable[[pytest.FixtureRequest], Iterator[Pair]]) -> Backend:
        wrapped = contextmanager(factory)
        BACKENDS[name] = wrapped
        return wrapped

    return register


def _tmp_path(request: pytest.FixtureRequest) -> Path:
    path = request.getfixturevalue("tmp_path")
    assert isinstance(path, Path)
    return path


@backend("memory")
def _memory(request: pytest.FixtureRequest) -> Iterator[Pair]:
    yield MemoryStore(), AsyncMemoryStore()


@backend("cached-memory")
def _cached_memory(request: pytest.FixtureRequest) -> Iterator[Pair]:
    sync_store = CachedStore(MemoryStore())
    async_store = AsyncCachedStore(AsyncMemoryStore())
    assert isinstance(sync_store, UserIndex)
    assert isinstance(async_store, AsyncUserIndex)
    yield sync_store, async_store


@backend("sqlite")
def _sqlite(request: pytest.FixtureRequest) -> Iterator[Pair]:
    directory = _tmp_path(request)
    sync_store = SQLiteStore(directory / "sync.db")
    async_store = AsyncSQLiteStore(directory / "async.db")
    try:
        yield sync_store, async_store
    finally:
        sync_store.close()
        asyncio.run(async_store.close())


@backend("sqlite-memory")
def _sqlite_memory(request: pytest.FixtureRequest) -> Iterator[Pair]:
    sync_store = SQLiteStore(":memory:")
    async_store = AsyncSQLiteStore(":memory:")
    try:
        yield sync_store, async_store
    finally:
        sync_store.close()
        asyncio.run(async_store.close())


# Server-backed stores: tests/servers.py starts private servers (skip, or fail in CI, without them).
from servers import (  # noqa: E402
    postgres_pair,
    postgres_server,  # noqa: F401 - a fixture the pairs request
    redis_cluster,  # noqa: F401
    redis_cluster_pair,
    redis_pair,
    redis_server,  # noqa: F401
)

backend("redis")(redis_pair)
backend("redis-cluster")(redis_cluster_pair)
backend("postgres")(postgres_pair)


class RunnerFacade:
    """The sync store interface over an async store: each call runs to completion on
    ``runner``'s event loop. Test-only; the library's sync path never hops loops or threads."""

    def __init__(self, store: AsyncIndexedStore, runner: asyncio.Runner) -> None:
        self._store = store
        self._runner = runner

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    def get(self, session_id: str) -> SessionRecord | None:
        return self._run(self._store.get(session_id))

    def add(self, record: SessionRecord, *, cap: UserCap | None = None) -> list[str]:
        return self._run(self._store.add(record, cap=cap))

    def replace(self, record: SessionRecord, *, expected_version: int) -> None:
        self._run(self._store.replace(record, expected_version=expected_version))

    def touch(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        self._run(self._store.touch(session_id, last_seen=last_seen, expires_at=expires_at))

    def delete(self, session_id: str) -> bool:
        return self._run(self._store.delete(session_id))

    def list_user(self, user_id: str) -> list[SessionRecord]:
        return self._run(self._store.list_user(user_id))

    def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        return self._run(self._store.delete_user(user_id, keep=keep))

    def purge_expired(self, now: float) -> int:
        return self._run(self._store.purge_expired(now))

    def delete_all(self, *, keep: str | None = None) -> int:
        """Only for stores with the capability (``test_delete_all`` checks ``wrapped``)."""
        deleter: AsyncDeleteAll = self._store  # type: ignore[assignment]
        return self._run(deleter.delete_all(keep=keep))

    @property
    def wrapped(self) -> AsyncIndexedStore:
        return self._store

    def close(self) -> None:
        self._run(self._store.close())

    def capable(self, capability: type) -> Any:
        """The async store itself when it has ``capability`` (for tests of capabilities)."""
        return self._store if isinstance(self._store, capability) else None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._run(coroutine)


@pytest.fixture(
    params=[(name, flavour) for name in BACKENDS for flavour in FLAVOURS],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def store(request: pytest.FixtureRequest) -> Iterator[IndexedStore]:
    name, flavour = request.param
    with BACKENDS[name](request) as (sync_store, async_store):
        if flavour == "sync":
            yield sync_store
            sync_store.close()
            return
        with asyncio.Runner() as runner:
            facade = RunnerFacade(async_store, runner)
            yield facade
            facade.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
