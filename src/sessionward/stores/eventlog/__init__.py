"""Durable logs of session events, one per backend (memory, SQLite, PostgreSQL, Redis).

The contract is :class:`~sessionward.stores.eventlog.base.EventLog`; see that module.
:func:`open_event_log` opens the log for a session store's spec (SQLite path or URL).
"""

from sessionward.stores.eventlog.base import (
    EventLog,
    EventPage,
    EventQuery,
    LoggedEvent,
)
from sessionward.stores.eventlog.memory import MemoryEventLog
from sessionward.stores.eventlog.spec import open_event_log

__all__ = ["EventLog", "EventPage", "EventQuery", "LoggedEvent", "MemoryEventLog", "open_event_log"]
