"""An in-process event log: for tests and one process (it is lost on exit)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from sessionward.stores.eventlog.base import EventPage, EventQuery, LoggedEvent

__all__ = ["MemoryEventLog", "matches", "to_logged"]

_FIXED = ("at", "kind", "session_id", "user_id", "application", "id")


def to_logged(event_id: str, entry: dict[str, Any]) -> LoggedEvent:
    """A stored entry as a :class:`LoggedEvent` (shared by the backends)."""
    return LoggedEvent(
        id=event_id,
        at=float(entry["at"]),
        kind=str(entry["kind"]),
        session_id=entry.get("session_id"),
        user_id=entry.get("user_id"),
        application=entry.get("application"),
        fields={k: v for k, v in entry.items() if k not in _FIXED},
    )


def matches(event: LoggedEvent, query: EventQuery) -> bool:
    """Whether ``event`` passes every filter of ``query`` but the cursor and the limit."""
    return (
        (query.user_id is None or event.user_id == query.user_id)
        and (query.session_id is None or event.session_id == query.session_id)
        and (query.application is None or event.application == query.application)
        and (query.kinds is None or event.kind in query.kinds)
        and (query.since is None or event.at >= query.since)
        and (query.until is None or event.at < query.until)
    )


class MemoryEventLog:
    """Ids are zero-padded sequence numbers, so their string order is their append order."""

    def __init__(self) -> None:
        self._events: list[LoggedEvent] = []
        self._next = 1
        self._lock = threading.Lock()

    def append(self, entries: Sequence[dict[str, Any]]) -> list[str]:
        with self._lock:
            ids = []
            for entry in entries:
                event_id = f"{self._next:020d}"
                self._next += 1
                self._events.append(to_logged(event_id, entry))
                ids.append(event_id)
            return ids

    def read(self, after: str | None, limit: int) -> list[LoggedEvent]:
        with self._lock:
            kept = [e for e in self._events if after is None or e.id > after]
            return kept[:limit]

    def query(self, query: EventQuery) -> EventPage:
        with self._lock:
            found: list[LoggedEvent] = []
            for event in reversed(self._events):
                if query.before is not None and event.id >= query.before:
                    continue
                if matches(event, query):
                    found.append(event)
                    if len(found) > query.limit:
                        break
        more = len(found) > query.limit
        page = found[: query.limit]
        return EventPage(page, page[-1].id if more and page else None)

    def prune(self, before: float) -> int:
        with self._lock:
            kept = [e for e in self._events if e.at >= before]
            dropped = len(self._events) - len(kept)
            self._events = kept
            return dropped

    def close(self) -> None:
        pass
