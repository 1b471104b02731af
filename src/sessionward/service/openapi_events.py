"""The OpenAPI description of ``GET /v1/events`` (``sessionward.service.api_events``)."""

from __future__ import annotations

from typing import Any

from sessionward.service.api_events import MAX_EVENTS_LIMIT
from sessionward.service.openapi_schemas import TIME, ref
from sessionward.service.tenancy import MAX_USER_ID

__all__ = ["EVENT_SCHEMAS", "events_paths"]

_NULLABLE_STR = {"type": ["string", "null"]}

EVENT_SCHEMAS: dict[str, Any] = {
    "Event": {
        "type": "object",
        "description": "One audit-log entry: the fields of its kind (docs/events.md) and these.",
        "required": ["id", "at", "kind", "session_id", "user_id", "application"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9]{1,32}$", "description": "The cursor."},
            "at": TIME,
            "kind": {"type": "string", "examples": ["created", "revoked", "expired"]},
            "session_id": _NULLABLE_STR,
            "user_id": _NULLABLE_STR,
            "application": _NULLABLE_STR,
            "reason": {"type": "string", "description": "revoked, rejected: the reason code"},
            "deadline": {"type": "string", "enum": ["idle", "absolute"]},
        },
    },
    "EventPage": {
        "type": "object",
        "required": ["events", "next"],
        "properties": {
            "events": {"type": "array", "items": ref("Event")},
            "next": {
                "type": ["string", "null"],
                "description": "Pass as `before` for the next (older) page; null at the end.",
            },
        },
    },
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}  # fmt: skip


def events_paths() -> dict[str, Any]:
    errors = {"400": "invalid_request", "401": "unauthenticated", "403": "forbidden (scope)"}
    responses: dict[str, Any] = {
        "200": {
            "description": "Newest first.",
            "content": {"application/json": {"schema": ref("EventPage")}},
        },
        **{
            code: {
                "description": text,
                "content": {"application/json": {"schema": ref("Error")}},
            }
            for code, text in {
                **errors,
                "404": "not_found: the event log is turned off",
                "503": "store_unavailable: the event log cannot be read",
            }.items()
        },
    }
    params = [
        _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_EVENTS_LIMIT},
               "Page size (default 50)."),
        _query("before", {"type": "string", "pattern": "^[0-9]{1,32}$"},
               "The `next` cursor of the previous page."),
        _query("user", {"type": "string", "minLength": 1, "maxLength": MAX_USER_ID},
               "Only this user's events."),
        _query("session", {"type": "string", "pattern": "^[A-Za-z0-9_-]{16}$"},
               "Only this session's events."),
        _query("kind", {"type": "string", "pattern": "^[a-z-]{1,64}(,[a-z-]{1,64}){0,31}$"},
               "Event kinds, comma-separated (any of them)."),
        _query("since", TIME, "Events at or after this time."),
        _query("until", TIME, "Events before this time."),
    ]  # fmt: skip
    return {
        "/v1/events": {
            "get": {
                "summary": "The audit log of the key's application, newest first",
                "description": "Needs an API key of scope `admin` (or wider). Cursor-paginated:"
                " pass `next` as `before`. A key sees its own application's events only.",
                "security": [{"apiKey": []}],
                "parameters": params,
                "responses": responses,
            }
        }
    }
