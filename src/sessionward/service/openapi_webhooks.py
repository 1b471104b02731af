"""The OpenAPI description of ``/v1/webhooks`` (``sessionward.service.api_webhooks``)."""

from __future__ import annotations

from typing import Any

from sessionward.service.api_webhooks import MAX_DELIVERIES
from sessionward.service.openapi_schemas import TIME, obj, ref
from sessionward.signals.webhook_endpoints import MAX_URL, URL_PATTERN, event_kinds

__all__ = ["WEBHOOK_SCHEMAS", "webhook_paths"]

_NULL_STR = {"type": ["string", "null"]}
_NULL_INT = {"type": ["integer", "null"]}
_URL = URL_PATTERN

WEBHOOK_SCHEMAS: dict[str, Any] = {
    "Webhook": {
        "type": "object",
        "description": "A webhook endpoint (never its secret).",
        "required": [
            "id",
            "url",
            "events",
            "description",
            "state",
            "disabled_reason",
            "failures",
            "next_attempt",
            "created_at",
        ],
        "properties": {
            "id": {"type": "string"},
            "url": {"type": "string"},
            "events": {
                "type": ["array", "null"],
                "items": {"type": "string"},
                "description": "The event kinds it receives; null: every kind.",
            },
            "description": {"type": "string"},
            "state": {"type": "string", "enum": ["active", "disabled"]},
            "disabled_reason": _NULL_STR,
            "failures": {"type": "integer", "description": "Consecutive failed attempts."},
            "next_attempt": TIME,
            "created_at": TIME,
        },
    },
    "WebhookDelivery": {
        "type": "object",
        "description": "One attempt to deliver one event.",
        "required": [
            "event_id",
            "message_id",
            "at",
            "attempt",
            "status",
            "latency_ms",
            "error",
            "ok",
        ],
        "properties": {
            "event_id": {"type": "string"},
            "message_id": {"type": "string", "description": "The webhook-id header sent."},
            "at": TIME,
            "attempt": {"type": "integer", "minimum": 1},
            "status": _NULL_INT,
            "latency_ms": {"type": "number"},
            "error": {
                **_NULL_STR,
                "description": "timeout, connect, http, status, render or undeliverable",
            },
            "ok": {"type": "boolean"},
        },
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": "invalid_request",
    "401": "unauthenticated",
    "403": "forbidden (scope)",
    "404": "not_found: no such webhook of this application, or the event log is off",
    "409": "limit_reached: the application has the most endpoints it may have",
    "413": "request_too_large",
    "415": "unsupported_media",
    "503": "store_unavailable",
}


def _op(
    summary: str,
    ok: dict[str, Any],
    codes: tuple[str, ...],
    *,
    status: str = "200",
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": "Needs an API key of scope `admin`. A key sees its own application's"
        " webhooks only.",
        "security": [{"apiKey": []}],
        "responses": {status: ok, **{code: _error(_ERRORS[code]) for code in codes}},
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


def webhook_paths() -> dict[str, Any]:
    hook_id = {
        "name": "webhook_id",
        "in": "path",
        "required": True,
        "description": "The webhook's id (wh_...).",
        "schema": {"type": "string", "minLength": 1, "maxLength": 64},
    }
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "How many attempts (default 50).",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DELIVERIES},
    }
    one = obj({"webhook": ref("Webhook")}, ("webhook",))
    secret = {"type": "string", "pattern": "^whsec_", "description": "Shown in this answer only."}
    create = obj(
        {
            "url": {
                "type": "string",
                "maxLength": MAX_URL,
                "pattern": _URL,
                "description": "https:// (or http://), a host, no user, password or fragment.",
            },
            "events": {
                "type": "array",
                "maxItems": 64,
                "items": {"type": "string", "enum": sorted(event_kinds())},
                "description": "Event kinds to receive; omitted or empty: every kind.",
            },
            "description": {"type": "string", "maxLength": 200},
        },
        ("url",),
    )
    path_errors = ("401", "403", "404", "503")
    return {
        "/v1/webhooks": {
            "post": _op(
                "Register a webhook endpoint; the answer holds its signing secret, once",
                _ok(
                    obj({"webhook": ref("Webhook"), "secret": secret}, ("webhook", "secret")),
                    "Created",
                ),
                ("400", "401", "403", "404", "409", "413", "415", "503"),
                status="201",
                body=create,
            ),
            "get": _op(
                "The application's webhook endpoints",
                _ok(obj({"webhooks": {"type": "array", "items": ref("Webhook")}}, ("webhooks",))),
                ("401", "403", "404", "503"),
            ),
        },
        "/v1/webhooks/{webhook_id}": {
            "get": _op("One webhook endpoint", _ok(one), path_errors, params=[hook_id]),
            "delete": _op(
                "Remove an endpoint and its delivery history",
                _ok(obj({"deleted": {"type": "boolean"}}, ("deleted",))),
                path_errors,
                params=[hook_id],
            ),
        },
        "/v1/webhooks/{webhook_id}/deliveries": {
            "get": _op(
                "The endpoint's latest delivery attempts, newest first",
                _ok(
                    obj(
                        {"deliveries": {"type": "array", "items": ref("WebhookDelivery")}},
                        ("deliveries",),
                    )
                ),
                ("400", *path_errors),
                params=[hook_id, limit],
            )
        },
        "/v1/webhooks/{webhook_id}/rotate-secret": {
            "post": _op(
                "A new signing secret; the current one keeps signing beside it for 24 hours",
                _ok(obj({"secret": secret}, ("secret",))),
                path_errors,
                params=[hook_id],
            )
        },
        "/v1/webhooks/{webhook_id}/enable": {
            "post": _op(
                "Re-enable a disabled endpoint: it receives what it missed, if still logged",
                _ok(one),
                path_errors,
                params=[hook_id],
            )
        },
    }
