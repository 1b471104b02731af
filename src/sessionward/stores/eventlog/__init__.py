"""Durable logs of session events, one per backend (memory, SQLite, PostgreSQL, Redis).

The contract is :class:`~sessionward.stores.eventlog.base.EventLog`; see that module.
"""

from sessionward.stores.eventlog.base import (
    EventLog,
    EventPage,
    EventQuery,
    LoggedEvent,
)
from sessionward.stores.eventlog.memory import MemoryEventLog

__all__ = ["EventLog", "EventPage", "EventQuery", "LoggedEvent", "MemoryEventLog"]
