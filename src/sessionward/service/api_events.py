"""``GET /v1/events``: the audit log of the key's application, newest first, a page at a time.

Query parameters (all optional): ``limit`` (1 to 200, default 50), ``before`` (the ``next``
cursor of the previous page), ``user`` (a user id as the application gave it), ``session`` (a
public session id), ``kind`` (event kinds, comma-separated: any of them), ``since`` and
``until`` (seconds since the epoch: ``since <= at < until``). The answer is
``{"events": [...], "next": cursor or null}``; an event is the dict of its
``sessionward.core.events`` class plus ``id`` (its cursor) and ``application``.

Needs a key of scope ``admin``: the log names every user and session of the application.
A key sees its own application's events only; user ids are given back as the application
knows them (without the service's ``<application>/`` prefix).
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sessionward.core import token as tokens
from sessionward.service import history
from sessionward.service.api_errors import ApiError
from sessionward.service.keys import ApiKey
from sessionward.service.runtime import Runtime
from sessionward.service.tenancy import MAX_USER_ID, public_user, stored_user
from sessionward.stores.eventlog import EventQuery, LoggedEvent

__all__ = ["MAX_EVENTS_LIMIT", "PARAMETERS", "EventsApi", "public_event"]

MAX_EVENTS_LIMIT: Final = 200
PARAMETERS: Final = ("limit", "before", "user", "session", "kind", "since", "until")
_MAX_KINDS: Final = 32
_KINDS: Final = re.compile(r"[a-z-]{1,64}(?:,[a-z-]{1,64}){0,31}")  # at most _MAX_KINDS


def public_event(event: LoggedEvent) -> dict[str, Any]:
    """An event as an application's key sees it: its user id without the service's prefix."""
    out = event.to_dict()
    if event.application is not None and event.user_id is not None:
        out["user_id"] = public_user(event.user_id)
    return out


def _bad(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


def _time(params: Any, name: str) -> float | None:
    text = params.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise _bad(f"{name} must be a number of seconds since the epoch") from None
    if not math.isfinite(value):
        raise _bad(f"{name} must be a finite number")
    return value


def _limit(params: Any) -> int:
    text = params.get("limit")
    if text is None:
        return 50
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_EVENTS_LIMIT:
        raise _bad(f"limit must be an integer from 1 to {MAX_EVENTS_LIMIT}")
    return int(text)


def _kinds(params: Any) -> frozenset[str] | None:
    text = params.get("kind")
    if text is None:
        return None
    if _KINDS.fullmatch(text) is None:
        raise _bad(f"kind must name 1 to {_MAX_KINDS} event kinds (a-z, '-'), comma-separated")
    return frozenset(text.split(","))


def events_query(request: Request, key: ApiKey) -> EventQuery:
    """The log query a request asks for, within the key's application."""
    params = request.query_params
    unknown = sorted(set(params.keys()) - set(PARAMETERS))
    if unknown:
        raise _bad("unknown query parameter: " + ", ".join(p[:32] for p in unknown[:3]))
    if any(len(params.getlist(name)) > 1 for name in PARAMETERS):
        raise _bad("each query parameter may be given once")
    user = params.get("user")
    if user is not None and not 1 <= len(user) <= MAX_USER_ID:
        raise _bad(f"user must be 1 to {MAX_USER_ID} characters")
    session = params.get("session")
    if session is not None and not tokens.is_session_id(session):
        raise _bad("session is not a session id")
    before = params.get("before")
    if before is not None and not (before.isascii() and before.isdigit() and len(before) <= 32):
        raise _bad("before is not an event cursor")
    return EventQuery(
        user_id=None if user is None else stored_user(key.application, user),
        session_id=session,
        application=key.application,
        kinds=_kinds(params),
        since=_time(params, "since"),
        until=_time(params, "until"),
        before=before,
        limit=_limit(params),
    )


class EventsApi:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    async def list_events(self, request: Request, key: ApiKey) -> Response:
        if self.rt.event_log is None:
            raise ApiError(404, "not_found", "the event log is turned off (event_log = false)")
        page = await history.query(self.rt, events_query(request, key))
        body = {"events": [public_event(e) for e in page.events], "next": page.next}
        return JSONResponse(body, headers={"cache-control": "no-store"})
