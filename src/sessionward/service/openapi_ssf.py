"""The OpenAPI description of the Shared Signals transmitter (``sessionward.service.ssf``)."""

from __future__ import annotations

from typing import Any

from sessionward.service.openapi_schemas import obj, ref
from sessionward.service.ssf import (
    ADD_SUBJECT,
    JTI_PATTERN,
    MAX_ACK,
    MAX_ERR_DESCRIPTION,
    MAX_POLL_ASKED,
    MAX_SET_ERRS,
    OPERATOR_STATUS,
    REMOVE_SUBJECT,
)
from sessionward.service.tenancy import APPLICATION_PATTERN
from sessionward.signals.caep import EVENTS_SUPPORTED
from sessionward.signals.streams import (
    EVENT_TYPE_PATTERN,
    MAX_AUTHORIZATION,
    MAX_DESCRIPTION,
    MAX_EVENTS_REQUESTED,
    MAX_URL,
    POLL,
    PUSH,
)
from sessionward.signals.subjects import MAX_SUBJECTS, MAX_TEXT, MEMBERS

__all__ = ["SSF_SCHEMAS", "ssf_paths"]

_URI_LIST = {"type": "array", "items": {"type": "string"}}
_STATUS = {"type": "string", "enum": ["enabled", "paused", "disabled"]}
_ID = {"type": "string", "minLength": 1, "maxLength": 64}
_JTI = {"type": "string", "pattern": f"^{JTI_PATTERN}$"}
_URL = {"type": "string", "maxLength": MAX_URL, "pattern": "^[!-~]*$"}
_AUTHORIZATION = {"type": "string", "maxLength": MAX_AUTHORIZATION, "pattern": "^[ -~]*$"}
_TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": "^[ -~]+$"}
_SIMPLE_SUBJECTS = [
    obj({"format": {"const": "opaque"}, "id": _TEXT}, ("format", "id")),
    obj(
        {
            "format": {"const": "email"},
            "email": {**_TEXT, "pattern": "^[ -~]+@[ -~]+$"},
        },
        ("format", "email"),
    ),
    obj({"format": {"const": "iss_sub"}, "iss": _TEXT, "sub": _TEXT}, ("format", "iss", "sub")),
]

SSF_SCHEMAS: dict[str, Any] = {
    "SsfDelivery": {
        "description": f"`{PUSH}`: push to the receiver's `endpoint_url` (RFC 8935), https"
        " (http only to a loopback host when the service itself runs on http), with its"
        f" `authorization_header` (never shown). `{POLL}` or no method: poll the"
        " `endpoint_url` the transmitter gives (RFC 8936; one given is ignored).",
        "oneOf": [
            {
                **obj(
                    {
                        "method": {"const": PUSH},
                        "endpoint_url": {
                            "type": "string",
                            "maxLength": MAX_URL,
                            "pattern": "^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$",
                        },
                        "authorization_header": _AUTHORIZATION,
                    },
                    ("method", "endpoint_url"),
                ),
            },
            obj(
                {
                    "method": {"const": POLL},
                    "endpoint_url": _URL,
                    "authorization_header": _AUTHORIZATION,
                }
            ),
        ],
    },
    "SsfStream": {
        "type": "object",
        "description": "A stream configuration (SSF 1.0 §8.1.1).",
        "required": [
            "stream_id",
            "iss",
            "aud",
            "delivery",
            "events_supported",
            "events_delivered",
        ],
        "properties": {
            "stream_id": {"type": "string"},
            "iss": {"type": "string"},
            "aud": {"type": "string", "description": "The application of the stream's key."},
            "delivery": obj(
                {
                    "method": {"type": "string", "enum": [PUSH, POLL]},
                    "endpoint_url": {"type": "string"},
                },
                ("method", "endpoint_url"),
            ),
            "events_supported": {**_URI_LIST, "description": ", ".join(EVENTS_SUPPORTED)},
            "events_requested": _URI_LIST,
            "events_delivered": _URI_LIST,
            "min_verification_interval": {"type": "integer"},
            "description": {"type": "string"},
        },
    },
    "SsfSimpleSubject": {
        "description": "An RFC 9493 Subject Identifier of format `opaque`, `email` or `iss_sub`.",
        "oneOf": _SIMPLE_SUBJECTS,
    },
    "SsfSubject": {
        "description": "A simple subject, or a `complex` one with at least one of the members"
        f" {', '.join(MEMBERS)} (each a simple subject). An `email` subject stands for the"
        " user whose id is that address (case-insensitive); every event also carries the"
        ' `tenant` `{"format": "opaque", "id": <application>}`.',
        "oneOf": [
            *_SIMPLE_SUBJECTS,
            {
                **obj(
                    {
                        "format": {"const": "complex"},
                        **{m: ref("SsfSimpleSubject") for m in MEMBERS},
                    },
                    ("format",),
                ),
                "minProperties": 2,
            },
        ],
    },
    "SsfStatus": obj(
        {"stream_id": {"type": "string"}, "status": _STATUS, "reason": {"type": "string"}},
        ("stream_id", "status"),
    ),
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


def _ok(schema: dict[str, Any] | None, description: str = "OK") -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": "invalid_request",
    "401": "unauthenticated",
    "403": "forbidden (scope)",
    "404": "not_found: no such stream of this application, or Shared Signals are off",
    "409": "conflict: the application has 20 streams already",
    "413": "request_too_large",
    "415": "unsupported_media",
    "429": "too_many_requests: a verification within min_verification_interval",
    "503": "store_unavailable",
}
_BODY_CODES = ("400", "401", "403", "404", "413", "415", "503")
_QUERY_CODES = ("400", "401", "403", "404", "503")


def _op(
    summary: str,
    ok: dict[str, Any],
    codes: tuple[str, ...],
    *,
    status: str = "200",
    body: dict[str, Any] | None = None,
    body_required: bool = True,
    params: list[dict[str, Any]] | None = None,
    scope: str = "issue",
    note: str = "",
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": f"Needs an API key of scope `{scope}`"
        + (" (or wider)" if scope != "admin" else "")
        + ". A key sees its own application's streams only."
        + (f" {note}" if note else ""),
        "security": [{"apiKey": []}],
        "responses": {status: ok, **{code: _error(_ERRORS[code]) for code in codes}},
    }
    if body is not None:
        op["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": body}},
        }
    if params:
        op["parameters"] = params
    return op


def _stream_id(required: bool) -> dict[str, Any]:
    return {
        "name": "stream_id",
        "in": "query",
        "required": required,
        "schema": _ID,
    }


def ssf_paths() -> dict[str, Any]:
    event_type = {"type": "string", "pattern": f"^{EVENT_TYPE_PATTERN}$"}
    requested = {"type": "array", "items": event_type, "maxItems": MAX_EVENTS_REQUESTED}
    receiver = {
        "events_requested": requested,
        "delivery": {"anyOf": [ref("SsfDelivery"), {"type": "null"}]},
        "description": {"type": "string", "maxLength": MAX_DESCRIPTION},
    }
    # The transmitter's fields may come back, unchanged (another value is refused).
    transmitter = {
        "iss": {"type": "string", "maxLength": MAX_URL, "pattern": "^[!-~]+$"},
        "aud": {"type": "string", "pattern": f"^{APPLICATION_PATTERN}$"},
        "events_supported": {"const": list(EVENTS_SUPPORTED)},
        "events_delivered": {
            "type": "array",
            "items": {"enum": list(EVENTS_SUPPORTED)},
            "maxItems": len(EVENTS_SUPPORTED),
            "uniqueItems": True,
        },
        "min_verification_interval": {"type": "integer", "minimum": 0, "maximum": 86_400},
    }
    change = obj({"stream_id": _ID, **receiver, **transmitter}, ("stream_id",))
    stream = ref("SsfStream")
    many = {"type": "array", "items": stream}
    poll_body = obj(
        {
            "maxEvents": {"type": "integer", "minimum": 0, "maximum": MAX_POLL_ASKED},
            "returnImmediately": {"type": "boolean"},
            "ack": {"type": "array", "items": _JTI, "maxItems": MAX_ACK},
            "setErrs": {
                "type": "object",
                "maxProperties": MAX_SET_ERRS,
                "propertyNames": _JTI,
                "additionalProperties": obj(
                    {
                        "err": _JTI,
                        "description": {"type": "string", "maxLength": MAX_ERR_DESCRIPTION},
                    }
                ),
            },
        }
    )
    poll_answer = obj(
        {
            "sets": {"type": "object", "additionalProperties": {"type": "string"}},
            "moreAvailable": {"type": "boolean"},
        },
        ("sets", "moreAvailable"),
    )
    status_body = obj(
        {"stream_id": _ID, "status": _STATUS, "reason": {"type": "string", "maxLength": 256}},
        ("stream_id", "status"),
    )
    return {
        "/.well-known/ssf-configuration": {
            "get": {
                "summary": "Shared Signals: the transmitter configuration (SSF 1.0 §7)",
                "security": [],
                "responses": {
                    "200": _ok({"type": "object", "required": ["issuer", "jwks_uri"]}),
                    "404": _error("not_found: Shared Signals are off (the message says why)"),
                },
            }
        },
        "/ssf/stream": {
            "get": _op(
                "Shared Signals: one stream (stream_id) or every stream of the application",
                _ok({"oneOf": [stream, many]}),
                _QUERY_CODES,
                params=[_stream_id(False)],
            ),
            "post": _op(
                "Shared Signals: create a stream (no delivery: poll)",
                _ok(stream, "Created."),
                (*_BODY_CODES, "409"),
                status="201",
                body=obj(receiver),
                body_required=False,
            ),
            "patch": _op(
                "Shared Signals: change the fields given", _ok(stream), _BODY_CODES, body=change
            ),
            "put": _op(
                "Shared Signals: replace the receiver's fields",
                _ok(stream),
                _BODY_CODES,
                body=change,
            ),
            "delete": _op(
                "Shared Signals: delete a stream and what it holds",
                _ok(None, "Deleted."),
                _QUERY_CODES,
                status="204",
                params=[_stream_id(True)],
            ),
        },
        "/ssf/status": {
            "get": _op(
                "Shared Signals: a stream's status",
                _ok(ref("SsfStatus")),
                _QUERY_CODES,
                params=[_stream_id(True)],
            ),
            "post": _op(
                "Shared Signals: enable, pause (hold events) or disable (drop events)",
                _ok(ref("SsfStatus")),
                _BODY_CODES,
                body=status_body,
            ),
        },
        ADD_SUBJECT: {
            "post": _op(
                "Shared Signals: send the events about a subject on a stream (SSF 1.0 §8.1.3.2)",
                _ok(None, "Added (an empty answer)."),
                _BODY_CODES,
                body=obj(
                    {
                        "stream_id": _ID,
                        "subject": ref("SsfSubject"),
                        "verified": {"type": "boolean"},
                    },
                    ("stream_id", "subject"),
                ),
                note="With `default_subjects` `NONE` the subject joins the stream's list (at"
                f" most {MAX_SUBJECTS}); with `ALL` an earlier removal of the same subject is"
                " undone.",
            ),
        },
        REMOVE_SUBJECT: {
            "post": _op(
                "Shared Signals: stop the events about a subject on a stream (SSF 1.0 §8.1.3.3)",
                _ok(None, "Removed."),
                _BODY_CODES,
                status="204",
                body=obj(
                    {"stream_id": _ID, "subject": ref("SsfSubject")}, ("stream_id", "subject")
                ),
                note="With `default_subjects` `ALL` the subject joins the stream's list of"
                f" removed subjects (at most {MAX_SUBJECTS}); with `NONE` the same subject,"
                " added earlier, leaves the list.",
            ),
        },
        OPERATOR_STATUS: {
            "post": _op(
                "Shared Signals: the transmitter's own status change, told to the receiver",
                _ok(ref("SsfStatus")),
                _BODY_CODES,
                body=status_body,
                scope="admin",
                note="The receiver gets a stream-updated SET (SSF 1.0 §8.1.5) with the new"
                " `status` and `reason`: before the stream stops, or once it is enabled again"
                " (on a poll stream it is answered whatever the status). The same status"
                " again only changes the reason.",
            ),
        },
        "/ssf/verify": {
            "post": _op(
                "Shared Signals: send a verification event on a stream",
                _ok(None, "Queued (poll) or being sent (push)."),
                (*_BODY_CODES, "429"),
                status="204",
                body=obj(
                    {"stream_id": _ID, "state": {"type": "string", "maxLength": 1024}},
                    ("stream_id",),
                ),
            ),
        },
        "/ssf/poll/{stream_id}": {
            "post": _op(
                "Shared Signals: poll for SETs and acknowledge them (RFC 8936)",
                _ok(poll_answer),
                _BODY_CODES,
                body=poll_body,
                body_required=False,
                params=[
                    {
                        "name": "stream_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 64},
                    }
                ],
            ),
        },
    }
