"""Reading past events for the pages and the API: from the durable audit log when there is one
(so history survives restarts and is the same on every node), else from this process's
:class:`~sessionward.service.activity.Activity` ring.

A read first waits (briefly) for this process's recorder to append what it has queued, so a
page shows the events of the request that led to it. The log's calls block, so they run on a
worker thread, off the event loop. If the log cannot be read, the pages fall back to what this
process saw (with a warning in the service log); the API answers ``store_unavailable``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sessionward.errors import StoreError
from sessionward.service.runtime import Runtime
from sessionward.stores.eventlog import EventPage, EventQuery

__all__ = ["for_session", "latest", "query", "user_events"]

_log = logging.getLogger("sessionward.service")
_FLUSH_WAIT = 0.5


async def query(rt: Runtime, wanted: EventQuery) -> EventPage:
    """One page of the durable log (``StoreUnavailable`` if it cannot be read; an empty page
    when the service runs without one)."""
    log, recorder = rt.event_log, rt.recorder
    if log is None:
        return EventPage([], None)

    def run() -> EventPage:
        if recorder is not None:
            recorder.flush(_FLUSH_WAIT)
        return log.query(wanted)

    return await asyncio.to_thread(run)


async def _entries(rt: Runtime, wanted: EventQuery) -> list[dict[str, Any]] | None:
    """Entries of the log as dicts, newest first; ``None`` when it cannot be read."""
    if rt.event_log is None:
        return None
    try:
        page = await query(rt, wanted)
    except StoreError as exc:
        _log.warning("event log unreadable, showing this process's events only: %s", exc)
        return None
    return [event.to_dict() for event in page.events]


async def latest(rt: Runtime, count: int = 50) -> list[dict[str, Any]]:
    """The newest ``count`` events, newest first."""
    found = await _entries(rt, EventQuery(limit=count))
    return rt.activity.latest(count) if found is None else found


async def for_session(rt: Runtime, session_id: str, count: int = 200) -> list[dict[str, Any]]:
    """A session's events, oldest first."""
    found = await _entries(rt, EventQuery(session_id=session_id, limit=count))
    if found is None:
        return rt.activity.for_session(session_id)
    return found[::-1]


async def user_events(
    rt: Runtime, user_id: str, kinds: frozenset[str], count: int = 50
) -> list[dict[str, Any]]:
    """A user's events of ``kinds``, newest first."""
    found = await _entries(rt, EventQuery(user_id=user_id, kinds=kinds, limit=count))
    if found is not None:
        return found
    recent = (e for e in rt.activity.latest(2000) if e.get("user_id") == user_id)
    return [e for e in recent if e["kind"] in kinds][:count]
