"""sessionward: session tokens done right.

from sessionward import SessionManager, SQLiteStore

manager = SessionManager(SQLiteStore("sessions.db"))
session = manager.issue("alice")          # session.token goes to the client
same = manager.validate(session.token)    # raises InvalidToken when it must
"""

from sessionward._version import __version__
from sessionward.clock import Clock, SystemClock
from sessionward.core.context import RequestContext
from sessionward.core.events import Event, EventBus, RevokeReason
from sessionward.core.policy import Policy
from sessionward.core.record import Session
from sessionward.errors import (
    ConfigError,
    DataTooLarge,
    InvalidArgument,
    InvalidToken,
    SessionExpired,
    SessionLimitReached,
    SessionwardError,
    StepUpRequired,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
    UpdateConflict,
)
from sessionward.manager import AsyncSessionManager, SessionManager
from sessionward.stores import (
    AsyncMemoryStore,
    AsyncSQLiteStore,
    AsyncStore,
    MemoryStore,
    SQLiteStore,
    Store,
)

__all__ = [
    "AsyncMemoryStore",
    "AsyncSQLiteStore",
    "AsyncSessionManager",
    "AsyncStore",
    "Clock",
    "ConfigError",
    "DataTooLarge",
    "Event",
    "EventBus",
    "InvalidArgument",
    "InvalidToken",
    "MemoryStore",
    "Policy",
    "RequestContext",
    "RevokeReason",
    "SQLiteStore",
    "Session",
    "SessionExpired",
    "SessionLimitReached",
    "SessionManager",
    "SessionwardError",
    "StepUpRequired",
    "Store",
    "StoreCorrupt",
    "StoreError",
    "StoreUnavailable",
    "SystemClock",
    "UpdateConflict",
    "__version__",
]
