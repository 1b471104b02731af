"""The trace format ``sessionward risk eval`` reads, one JSON object per line:

    {"session": "id", "user": "id", "events": [{"t": seconds, "actor": "user"|"attacker",
     "ip": "...", "ua": "...", "accept_language": "...", "ch_ua_platform": "...",
     "device_signal": "..."}]}

Events are in time order and the first is the login; ``t`` counts seconds from one epoch
shared by the whole file. A session or user id may also be an integer; a session's id is
written back with its decisions as the file gave it. Optional: ``"attack"`` on a session names
its attack class (for the report), ``"secret": "previous"`` on an event says the request
presented a secret that a rotation replaced. ``actor`` and ``attack`` are for scoring only:
the engine never sees them.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

from sessionward.core.context import RequestContext
from sessionward.errors import InvalidArgument

__all__ = ["Event", "Trace", "TraceError", "read_traces"]

_MAX_TEXT = 4096


class TraceError(InvalidArgument):
    """A trace file that does not follow the format (the message names the line)."""


@dataclass(frozen=True, slots=True)
class Event:
    t: float
    attacker: bool
    context: RequestContext
    previous_secret: bool


@dataclass(frozen=True, slots=True)
class Trace:
    #: As the file gives it (a string, or an integer), and so written back with its decisions.
    session: str | int
    user: str | None
    attack: str | None
    events: tuple[Event, ...]

    @property
    def attacked(self) -> bool:
        return any(e.attacker for e in self.events)


def _text(value: object, what: str, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise TraceError(f"{where}: {what} must be a string of at most {_MAX_TEXT} characters")
    return value


def _event(raw: object, where: str) -> Event:
    if not isinstance(raw, dict):
        raise TraceError(f"{where}: an event must be an object")
    t = raw.get("t")
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        raise TraceError(f"{where}: 't' must be a number of seconds")
    actor = raw.get("actor", "user")
    if actor not in ("user", "attacker"):
        raise TraceError(f"{where}: 'actor' must be 'user' or 'attacker'")
    secret = raw.get("secret", "current")
    if secret not in ("current", "previous"):
        raise TraceError(f"{where}: 'secret' must be 'current' or 'previous'")
    platform = _text(raw.get("ch_ua_platform"), "'ch_ua_platform'", where)
    context = RequestContext(
        ip=_text(raw.get("ip"), "'ip'", where),
        user_agent=_text(raw.get("ua"), "'ua'", where),
        accept_language=_text(raw.get("accept_language"), "'accept_language'", where),
        client_hints={"sec-ch-ua-platform": platform} if platform else {},
        device_key=_text(raw.get("device_signal"), "'device_signal'", where),
    )
    return Event(float(t), actor == "attacker", context, secret == "previous")  # noqa: S105


def _trace(line: str, number: int) -> Trace:
    where = f"line {number}"
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TraceError(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(raw, dict):
        raise TraceError(f"{where}: a session must be an object")
    session = raw.get("session")
    if not isinstance(session, int) or isinstance(session, bool):
        session = _text(session, "'session'", where)
        if not session:
            raise TraceError(f"{where}: 'session' is missing")
    user = raw.get("user")
    user = None if user in (None, "") else _text(str(user), "'user'", where)
    attack = _text(raw.get("attack"), "'attack'", where)
    events = raw.get("events")
    if not isinstance(events, list) or not events:
        raise TraceError(f"{where}: 'events' must be a non-empty list")
    parsed = tuple(_event(e, f"{where}, event {i}") for i, e in enumerate(events))
    if any(b.t < a.t for a, b in itertools.pairwise(parsed)):
        raise TraceError(f"{where}: events are not in time order")
    return Trace(session, user, attack, parsed)


def read_traces(lines: Iterable[str]) -> list[Trace]:
    """Parse a trace file; blank lines are skipped. Raises :class:`TraceError`."""
    traces: list[Trace] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if line.strip():
            trace = _trace(line, number)
            key = str(trace.session)  # 7 and "7" are one session to a scorer reading ids as text
            if key in seen:
                raise TraceError(f"line {number}: session {trace.session!r} appears twice")
            seen.add(key)
            traces.append(trace)
    return traces
