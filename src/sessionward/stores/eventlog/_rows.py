"""What the SQL and Redis event logs share: numbered cursors and entries split into columns.

A cursor is a string of digits in every backend: the SQL logs write the row's integer id with
20 digits, so the string order of ids is their append order (as :class:`MemoryEventLog`'s
are). Any string of 1 to 32 digits is accepted as a cursor by every backend (a number past the
last id simply selects nothing newer), so one pattern describes them all.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sessionward.errors import InvalidArgument
from sessionward.stores.eventlog.base import EventQuery, LoggedEvent

__all__ = [
    "MAX_LIMIT",
    "check_limit",
    "columns",
    "cursor",
    "digits",
    "dumps",
    "number",
    "row_event",
    "where",
]

MAX_LIMIT = 1000
_FIXED = frozenset({"id", "at", "kind", "session_id", "user_id", "application"})


def cursor(number: int) -> str:
    return f"{number:020d}"


_LARGEST = 2**63 - 1  # SQLite's and PostgreSQL's largest integer


def digits(value: str) -> int:
    """The number a cursor spells; ``InvalidArgument`` for anything but 1 to 32 digits."""
    if not isinstance(value, str) or not 1 <= len(value) <= 32 or not value.isascii():
        raise InvalidArgument("not an event cursor")
    if not value.isdigit():
        raise InvalidArgument("not an event cursor")
    return int(value)


def number(value: str) -> int:
    """The row id a cursor names (capped at the largest a SQL integer holds)."""
    return min(digits(value), _LARGEST)


def check_limit(limit: int) -> int:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


# One encoder for every call (``json.dumps`` with options builds a new one each time).
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)
_quote = json.encoder.encode_basestring_ascii
_INFINITE = (math.inf, -math.inf)


def _flat(items: Any, skip: frozenset[str] = frozenset()) -> str | None:
    """JSON for ``items`` (a dict's ``items()``) without the keys in ``skip``, written directly
    when every key is a string and every value a string, number, boolean or null (most events:
    a few such fields); ``None`` otherwise."""
    parts = []
    for key, item in items:
        if key in skip:
            continue
        if not isinstance(key, str):
            return None
        if isinstance(item, str):
            text = _quote(item)
        elif item is None:
            text = "null"
        elif item is True or item is False:
            text = "true" if item else "false"
        elif type(item) is int:
            text = int.__repr__(item)
        elif type(item) is float and item == item and item not in _INFINITE:
            text = float.__repr__(item)
        else:
            return None
        parts.append(f"{_quote(key)}:{text}")
    return "{" + ",".join(parts) + "}"


def dumps(value: Any) -> str:
    """Compact JSON; non-ASCII escaped, so any store takes it as it is."""
    if type(value) is dict:
        text = _flat(value.items())
        if text is not None:
            return text
    return _ENCODER.encode(value)


def columns(entry: dict[str, Any]) -> tuple[float, str, str | None, str | None, str | None, str]:
    """``(at, kind, session_id, user_id, application, fields JSON)`` of an entry; the fields'
    JSON is written straight from the entry (no dict of the other keys, for most events)."""
    fields = _flat(entry.items(), _FIXED)
    if fields is None:
        fields = _ENCODER.encode({k: v for k, v in entry.items() if k not in _FIXED})
    return (
        float(entry["at"]),
        str(entry["kind"]),
        entry.get("session_id"),
        entry.get("user_id"),
        entry.get("application"),
        fields,
    )


def row_event(row: tuple[Any, ...]) -> LoggedEvent:
    """A ``(id, at, kind, session_id, user_id, application, fields)`` row as an event."""
    event_id, at, kind, session_id, user_id, application, fields = row
    loaded = json.loads(fields) if isinstance(fields, str) else dict(fields)
    return LoggedEvent(cursor(int(event_id)), at, kind, session_id, user_id, application, loaded)


def where(query: EventQuery, mark: str) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (``mark``: the driver's placeholder) and its parameters for every
    filter and the cursor of ``query``; values are always parameters, never SQL text."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("user_id", query.user_id),
        ("session_id", query.session_id),
        ("application", query.application),
    ):
        if value is not None:
            clauses.append(f"{column} = {mark}")
            params.append(value)
    if query.kinds is not None:
        kinds = sorted(query.kinds)
        if not kinds:
            clauses.append("1 = 0")
        else:
            clauses.append(f"kind IN ({', '.join([mark] * len(kinds))})")
            params.extend(kinds)
    if query.since is not None:
        clauses.append(f"at >= {mark}")
        params.append(float(query.since))
    if query.until is not None:
        clauses.append(f"at < {mark}")
        params.append(float(query.until))
    if query.before is not None:
        clauses.append(f"id < {mark}")
        params.append(number(query.before))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params
