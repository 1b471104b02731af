"""Shared fixtures: one manager harness run over both flavours (sync, async) and both
embedded stores (memory, SQLite file), always on a fake clock.

The async manager is driven through a small facade that runs each coroutine on an
``asyncio.Runner``, so one test body exercises both twins. Stores are wrapped in a counting
proxy so tests can prove what the manager did (or did not) ask of the store.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, settings

from sessionward import AsyncSessionManager, EventBus, Policy, SessionManager
from sessionward.core.record import SessionRecord
from sessionward.errors import VersionConflict
from sessionward.stores import AsyncMemoryStore, AsyncSQLiteStore, MemoryStore, SQLiteStore
from sessionward.testing import EventRecorder, FakeClock

# CI runs the suite on a loaded 2-core machine: slow example generation and slow examples say
# nothing about the code under test there, so no property test fails on time.
settings.register_profile(
    "sessionward", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("sessionward")

WRITES = ("add", "replace", "touch", "delete", "delete_user", "purge_expired")


class CountingStore:
    """Proxy around a sync or async store: counts every call by method name.

    ``conflicts`` makes ``replace`` raise ``VersionConflict`` without touching the store:
    ``n > 0`` for the next n calls, ``-1`` for every call. It is the only way to make a
    lost race happen on demand; the real store still holds the real data.
    """

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.conflicts = 0

    def writes(self) -> int:
        return sum(self.calls[name] for name in WRITES)

    def reset(self) -> None:
        self.calls.clear()

    def _before(self, name: str) -> None:
        self.calls[name] += 1
        if name == "replace" and self.conflicts:
            if self.conflicts > 0:
                self.conflicts -= 1
            raise VersionConflict("forced by the test")

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not callable(target) or name.startswith("_"):
            return target
        if inspect.iscoroutinefunction(target):

            async def async_call(*args: Any, **kwargs: Any) -> Any:
                self._before(name)
                return await target(*args, **kwargs)

            return async_call

        def call(*args: Any, **kwargs: Any) -> Any:
            self._before(name)
            return target(*args, **kwargs)

        return call


class SyncFacade:
    """Presents an ``AsyncSessionManager`` with the blocking API of ``SessionManager``."""

    def __init__(self, manager: AsyncSessionManager, runner: asyncio.Runner) -> None:
        self._manager = manager
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._manager, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            result = target(*args, **kwargs)
            if inspect.iscoroutine(result):
                return self._runner.run(result)
            return result

        return call


@dataclass
class Harness:
    """A manager (sync, or async behind the facade), its fake clock, events and store."""

    m: SessionManager
    clock: FakeClock
    events: EventRecorder
    store: CountingStore
    flavor: str
    backend: str
    run: Callable[[Any], Any]
    policy: Policy = field(default_factory=Policy)

    def stored(self, session_id: str) -> SessionRecord | None:
        """The record as the store holds it (bypassing the manager and the call counts)."""
        return cast(SessionRecord | None, self.run(self.store.inner.get(session_id)))  # type: ignore[attr-defined]

    def kinds(self) -> list[str]:
        return self.events.kinds()


MakeHarness = Callable[..., Harness]


@pytest.fixture(params=["sync", "async"])
def flavor(request: pytest.FixtureRequest) -> str:
    return cast(str, request.param)


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return cast(str, request.param)


@pytest.fixture
def make_harness(flavor: str, backend: str, tmp_path: Path) -> Iterator[MakeHarness]:
    """Factory: ``make_harness(policy=..., events=...)`` builds a manager on a fresh store."""
    runner = asyncio.Runner()
    closers: list[Callable[[], object]] = []
    counter = iter(range(1_000_000))

    def run(value: Any) -> Any:
        return runner.run(value) if inspect.iscoroutine(value) else value

    def make(
        policy: Policy | None = None,
        *,
        events: EventBus | None = None,
        clock: FakeClock | None = None,
    ) -> Harness:
        clock = clock or FakeClock()
        recorder = EventRecorder()
        if events is None:
            bus = EventBus([recorder])
        else:
            bus = events
            bus.subscribe(recorder)
        policy = policy or Policy()
        path = tmp_path / f"sessions-{next(counter)}.db"
        manager: SessionManager
        if flavor == "sync":
            inner: object = MemoryStore() if backend == "memory" else SQLiteStore(path)
            store = CountingStore(inner)
            manager = SessionManager(cast(Any, store), policy=policy, clock=clock, events=bus)
            closers.append(manager.close)
        else:
            inner = AsyncMemoryStore() if backend == "memory" else AsyncSQLiteStore(path)
            store = CountingStore(inner)
            async_manager = AsyncSessionManager(
                cast(Any, store), policy=policy, clock=clock, events=bus
            )
            manager = cast(SessionManager, SyncFacade(async_manager, runner))
            closers.append(manager.close)
        return Harness(manager, clock, recorder, store, flavor, backend, run, policy)

    yield make
    for close in closers:
        close()
    runner.close()


@pytest.fixture
def h(make_harness: MakeHarness) -> Harness:
    """A harness with the default policy."""
    return make_harness()
