"""The event-log contract: an append-only, durable, queryable log of session events.

Every backend keeps the same entries and answers the same questions:

* ``append`` writes a batch in one transaction (or one pipeline) and gives each entry an
  ``id``: an opaque cursor string, unique in the log, whose order is the order of appends.
* ``read(after, limit)`` walks the log forward from a cursor: for deliverers (webhooks,
  Shared Signals streams) and ``tail``. ``after=None`` starts at the oldest entry kept.
* ``query`` lists entries newest first with filters and a ``before`` cursor: for the admin
  page, ``GET /v1/events`` and ``sessionward events list``.
* ``prune(before)`` drops entries older than a time (retention); Redis also bounds its
  stream by length.

Entries are the dicts of :meth:`sessionward.core.events.Event.to_dict` plus the application
that emitted them: public session ids, user ids and reason codes, never a token. Backends
never read a clock: the event's own ``at`` is stored.

The methods are synchronous: a log is written from a background thread in batches (the
request that caused an event never waits for the log) and read by admin tools.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["EventLog", "EventPage", "EventQuery", "LoggedEvent"]


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One stored event. ``fields`` holds every other key of the event's ``to_dict()``
    (``reason``, ``decision``, ``reasons``, ...), JSON-compatible."""

    id: str
    at: float
    kind: str
    session_id: str | None
    user_id: str | None
    application: str | None
    fields: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.fields,
            "id": self.id,
            "at": self.at,
            "kind": self.kind,
            "session_id": self.session_id,
            "user_id": self.user_id,
            "application": self.application,
        }


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters for :meth:`EventLog.query`; every one given must match (``kinds``: any of)."""

    user_id: str | None = None
    session_id: str | None = None
    application: str | None = None
    kinds: frozenset[str] | None = None
    since: float | None = None  # at >= since
    until: float | None = None  # at < until
    before: str | None = None  # a cursor: entries older than this one
    limit: int = 50


@dataclass(frozen=True, slots=True)
class EventPage:
    """Newest first; ``next`` is the cursor for the following (older) page, or ``None``."""

    events: list[LoggedEvent]
    next: str | None


@runtime_checkable
class EventLog(Protocol):
    def append(self, entries: Sequence[dict[str, Any]]) -> list[str]:
        """Store each entry (an event's ``to_dict()`` with ``application`` added) and return
        their ids, in order, in one transaction: all are kept or none is. Raises
        ``StoreUnavailable`` when the backend cannot be reached."""

    def read(self, after: str | None, limit: int) -> list[LoggedEvent]:
        """Up to ``limit`` entries appended after cursor ``after``, oldest first. A cursor
        that was pruned away starts at the oldest entry kept."""

    def query(self, query: EventQuery) -> EventPage:
        """Entries matching ``query``, newest first, at most ``query.limit``."""

    def prune(self, before: float) -> int:
        """Drop entries with ``at < before``; returns how many were dropped."""

    def close(self) -> None: ...
