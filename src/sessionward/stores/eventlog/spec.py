"""``open_event_log``: the event log for the store spec the sessions use.

A SQLite path opens the log in that same file; a ``redis://`` (``rediss://``, ``unix://``,
``redis+sentinel://``, ``redis+cluster://``) URL opens the stream beside the sessions, and a
``postgresql://`` URL the table beside theirs. Only the module the spec needs is imported.
"""

from __future__ import annotations

import importlib
from typing import Any, cast

from sessionward.errors import ConfigError
from sessionward.stores.eventlog.base import EventLog
from sessionward.stores.eventlog.sqlite import SQLiteEventLog

__all__ = ["open_event_log"]

_URL_LOGS = {
    "redis": ("redis", "RedisEventLog"),
    "rediss": ("redis", "RedisEventLog"),
    "redis+cluster": ("redis", "RedisEventLog"),
    "rediss+cluster": ("redis", "RedisEventLog"),
    "redis+sentinel": ("redis", "RedisEventLog"),
    "rediss+sentinel": ("redis", "RedisEventLog"),
    "unix": ("redis", "RedisEventLog"),
    "postgres": ("postgres", "PostgresEventLog"),
    "postgresql": ("postgres", "PostgresEventLog"),
}


def open_event_log(spec: str, *, create: bool = True, **options: Any) -> EventLog:
    """The event log for ``spec`` (a SQLite path or a store URL). ``create=False`` refuses a
    missing SQLite file; ``options`` go to the backend's class."""
    if "://" not in spec:
        return SQLiteEventLog(spec, create=create, **options)
    scheme = spec.split("://", 1)[0].lower()
    if scheme not in _URL_LOGS:
        raise ConfigError(
            f"unknown store URL scheme {scheme!r}: use a SQLite path, redis:// or postgresql://"
        )
    extra, class_name = _URL_LOGS[scheme]
    try:
        module = importlib.import_module(f"sessionward.stores.eventlog.{extra}")
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"the {extra} event log is not available ({exc.name} is missing):"
            f" pip install 'sessionward[{extra}]'"
        ) from None
    return cast(EventLog, getattr(module, class_name)(spec, **options))
