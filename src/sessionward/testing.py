"""Helpers for applications' own tests: a controllable clock and ready-made managers."""

from __future__ import annotations

from sessionward.core.events import Event, EventBus
from sessionward.core.policy import Policy
from sessionward.manager._async.manager import AsyncSessionManager
from sessionward.manager._sync.manager import SessionManager
from sessionward.stores._async.memory import AsyncMemoryStore
from sessionward.stores._sync.memory import MemoryStore

__all__ = ["EventRecorder", "FakeClock", "async_memory_manager", "memory_manager"]


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        self._now += seconds
        return self._now

    def set(self, when: float) -> None:
        self._now = float(when)


class EventRecorder:
    """An event subscriber that keeps every event, for assertions."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def memory_manager(
    policy: Policy | None = None, clock: FakeClock | None = None
) -> tuple[SessionManager, FakeClock, EventRecorder]:
    """A manager on a fresh in-memory store with a fake clock and an event recorder."""
    clock = clock or FakeClock()
    recorder = EventRecorder()
    manager = SessionManager(MemoryStore(), policy=policy, clock=clock, events=EventBus([recorder]))
    return manager, clock, recorder


def async_memory_manager(
    policy: Policy | None = None, clock: FakeClock | None = None
) -> tuple[AsyncSessionManager, FakeClock, EventRecorder]:
    """The async twin of :func:`memory_manager`."""
    clock = clock or FakeClock()
    recorder = EventRecorder()
    manager = AsyncSessionManager(
        AsyncMemoryStore(), policy=policy, clock=clock, events=EventBus([recorder])
    )
    return manager, clock, recorder
