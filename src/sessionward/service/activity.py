"""What the admin page and the metrics show: recent events, per-minute counts, live listeners.

An :class:`Activity` is an event-bus subscriber kept in process memory: a bounded ring of
recent events (the admin feed and a session's detail), per-minute counts of events and of the
API's validate decisions (the chart), cumulative counters (Prometheus), and the queues of the
admin pages listening over server-sent events. Each service process has its own; behind a
load balancer every process shows what it saw (the sessions themselves are shared).

Events carry public session ids and reason codes only, never a token.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from sessionward.core.events import Event, EventBus
from sessionward.service.tenancy import application_of_user

__all__ = ["Activity", "application_of", "tagged"]

Clock = Callable[[], float]


_EMITTING_FOR: ContextVar[str | None] = ContextVar("sessionward_application", default=None)


def tagged(bus: EventBus, application: str) -> EventBus:
    """A bus that hands every event to ``bus``'s subscribers, the ``Activity`` among them
    knowing it is ``application``'s (an anonymous session's user id cannot say)."""

    def forward(event: Event) -> None:
        reset = _EMITTING_FOR.set(application)
        try:
            bus.emit(event)
        finally:
            _EMITTING_FOR.reset(reset)

    return EventBus([forward])


def application_of(event: Event) -> str | None:
    """The application ``event`` belongs to: the one its emitting manager serves (see
    :func:`tagged`), else the one its stored user id names."""
    return _EMITTING_FOR.get() or application_of_user(event.user_id)


class Activity:
    """Subscribe it to the manager's ``EventBus``; ``decision()`` records validate answers."""

    def __init__(self, clock: Clock, *, keep: int = 2000, minutes: int = 60) -> None:
        self.clock = clock
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self.events_total: Counter[str] = Counter()
        self.decisions_total: Counter[str] = Counter()
        self.revocations_total: Counter[str] = Counter()
        self.rejections_total: Counter[str] = Counter()
        #: ``(application, "event:<kind>" or "decision:<decision>")`` counts, for metrics.
        self.by_application: Counter[tuple[str, str]] = Counter()
        self._minutes = minutes
        self._buckets: dict[int, Counter[str]] = {}
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self._sequence = 0

    # -- recording ---------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        self.record(event, application_of(event))

    def record(self, event: Event, application: str | None) -> None:
        entry = event.to_dict()
        entry["application"] = application
        if application is not None:
            self.by_application[(application, "event:" + event.kind)] += 1
        self._sequence += 1
        entry["seq"] = self._sequence
        self.recent.append(entry)
        self.events_total[event.kind] += 1
        reason = entry.get("reason")
        if event.kind == "revoked":
            self.revocations_total[str(reason)] += 1
        elif event.kind == "rejected":
            self.rejections_total[str(reason)] += 1
        self._bucket(event.at)["event:" + event.kind] += 1
        for queue in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):  # a slow page misses events, no more
                queue.put_nowait(entry)

    def decision(self, decision: str, application: str | None = None) -> None:
        """One answer of the validate endpoint (``allow``, ``rotate``, ``step-up``, ``deny``)."""
        self.decisions_total[decision] += 1
        if application is not None:
            self.by_application[(application, "decision:" + decision)] += 1
        self._bucket(self.clock())["decision:" + decision] += 1

    def _bucket(self, at: float) -> Counter[str]:
        minute = int(at // 60)
        bucket = self._buckets.get(minute)
        if bucket is None:
            bucket = self._buckets[minute] = Counter()
            for old in [m for m in self._buckets if m <= minute - self._minutes]:
                del self._buckets[old]
        return bucket

    # -- reading -----------------------------------------------------------------------------

    def series(self, names: list[str], minutes: int = 30) -> list[tuple[int, dict[str, int]]]:
        """``(minute start, {name: count})`` for the last ``minutes`` minutes, oldest first."""
        now = int(self.clock() // 60)
        out = []
        for minute in range(now - minutes + 1, now + 1):
            bucket = self._buckets.get(minute, Counter())
            out.append((minute * 60, {name: bucket[name] for name in names}))
        return out

    def for_session(self, session_id: str) -> list[dict[str, Any]]:
        return [e for e in self.recent if e.get("session_id") == session_id]

    def latest(self, count: int = 50) -> list[dict[str, Any]]:
        return list(self.recent)[-count:][::-1]

    # -- live listeners (server-sent events) -------------------------------------------------

    def listen(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=200)
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._listeners.discard(queue)
