"""The OpenAPI 3.1 document of the API, written by hand next to the routes it describes.

``tests/service/test_openapi.py`` checks that every route is documented (and nothing else),
and schemathesis checks the service against it.
"""

from __future__ import annotations

from typing import Any

from sessionward._version import __version__
from sessionward.core.events import RevokeReason
from sessionward.service.openapi_dpop import with_nonces
from sessionward.service.openapi_events import EVENT_SCHEMAS, events_paths
from sessionward.service.openapi_receivers import receiver_paths
from sessionward.service.openapi_schemas import BOUND_COOKIE, SCHEMAS, TOKEN, obj, ref
from sessionward.service.openapi_ssf import SSF_SCHEMAS, ssf_paths
from sessionward.service.openapi_webhooks import WEBHOOK_SCHEMAS, webhook_paths
from sessionward.service.tenancy import MAX_USER_ID

__all__ = ["openapi_document"]

_ERRORS = {
    "400": "invalid_request",
    "401": "unauthenticated (API key) or invalid_token (session token)",
    "403": "forbidden (scope) or step_up_required",
    "413": "request_too_large or data_too_large",
    "415": "unsupported_media",
    "503": "store_unavailable",
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": ref("Error")}},
    }


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(
    summary: str,
    scope: str,
    ok: dict[str, Any],
    *,
    body: dict[str, Any] | None = None,
    body_required: bool = True,
    errors: tuple[str, ...] = ("400", "401", "403", "413", "415", "503"),
    status: str = "200",
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": f"Needs an API key of scope `{scope}` (or wider).",
        "security": [{"apiKey": []}],
        "responses": {status: ok, **{code: _error(_ERRORS[code]) for code in errors}},
    }
    if body is not None:
        op["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": body}},
        }
    if params:
        op["parameters"] = params
    return op


def _param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_USER_ID},
    }


_SESSION = {"type": "object", "required": ["session"], "properties": {"session": ref("Session")}}
_REVOKED_BOOL = {
    "type": "object",
    "required": ["revoked"],
    "properties": {"revoked": {"type": "boolean"}},
}
_NO_BODY_ERRORS = ("401", "403", "503")
_SCOPES = {
    "type": "array",
    "maxItems": 64,
    "items": {"type": "string", "pattern": "^[!-~]{1,128}$", "description": "Printable ASCII."},
}
_STATUS = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}


def _paths() -> dict[str, Any]:
    user = _param("user_id", "The user id (URL-encoded).")
    session_id = _param("session_id", "The public session id (16 characters).")
    return {
        "/v1/sessions": {
            "post": _op(
                "Issue a session (login, or anonymous without user_id)",
                "issue",
                _json(ref("SessionAndToken"), "Created; send the token to the client."),
                status="201",
                body_required=False,
                errors=("400", "401", "403", "413", "415", "503"),
                body=obj(
                    {
                        "user_id": {"type": "string", "minLength": 1, "maxLength": MAX_USER_ID},
                        "auth_level": {"type": "integer", "minimum": 0, "maximum": 100},
                        "scopes": _SCOPES,
                        "data": {"type": "object"},
                        "context": ref("Context"),
                        "previous_token": {
                            **TOKEN,
                            "description": "The pre-login token: its data is carried over "
                            "and it is killed.",
                        },
                        "idp": ref("IdpLink"),
                        "dpop": ref("DpopProof"),
                        "dbsc": ref("DbscOptions"),
                    }
                )
                | {"dependentRequired": {"idp": ["user_id"]}},
            )
            | {
                "responses": _with_409(
                    _json(ref("SessionAndToken"), "Created; send the token to the client."), "201"
                )
            },
        },
        "/v1/sessions/validate": {
            "post": _op(
                "Validate a token and decide",
                "validate",
                _json(
                    {
                        "type": "object",
                        "required": ["decision"],
                        "properties": {
                            "decision": {
                                "type": "string",
                                "enum": ["allow", "rotate", "step-up", "deny"],
                            },
                            "session": ref("Session"),
                            "token": {"type": "string", "description": "Present on rotate."},
                            "reason": {
                                "type": "string",
                                "enum": ["invalid", "risk"],
                                "description": "On `deny`: `invalid`, or `risk` when the risk"
                                " engine ended the session. On a `step-up` the risk engine"
                                " asked for: `risk` (sign in again, then"
                                " /v1/sessions/confirm).",
                            },
                            "message": {"type": "string", "description": "For the user."},
                            "session_id": {"type": "string"},
                            "user_id": {"type": ["string", "null"]},
                            "risk": ref("RiskDecision"),
                        },
                    },
                    "The decision. `deny` says only `invalid` (or `risk`). With `risk`"
                    " configured and a `context` given, `risk` holds the risk engine's"
                    " decision and reasons.",
                ),
                body=obj(
                    {
                        "token": TOKEN,
                        "context": ref("Context"),
                        "max_auth_age": {"type": "number", "minimum": 0, "maximum": 1e10},
                        "min_level": {"type": "integer", "minimum": 0, "maximum": 100},
                        "dpop": ref("DpopProof"),
                        "bound_cookie": BOUND_COOKIE,
                    },
                    ("token",),
                ),
            )
        },
        **_dbsc_paths(),
        "/v1/sessions/rotate": {
            "post": _op(
                "Give the session a new secret (the old one has a short grace window)",
                "issue",
                _json(ref("SessionAndToken")),
                body=obj(
                    {"token": TOKEN, "context": ref("Context"), "bound_cookie": BOUND_COOKIE},
                    ("token",),
                ),
            )
        },
        "/v1/sessions/confirm": {
            "post": _op(
                '"This was me": after a risk step-up and a new sign-in, the request\'s context'
                " becomes the owner's and the token is rotated (anyone else holding it is cut"
                " off)",
                "issue",
                _json(ref("SessionAndToken")),
                body=obj(
                    {"token": TOKEN, "context": ref("Context"), "bound_cookie": BOUND_COOKIE},
                    ("token", "context"),
                ),
            )
            | {
                "responses": _with_409(_json(ref("SessionAndToken")), "200")
                | {"404": _error("not_found: hijack scoring is not configured (risk)")}
            },
        },
        "/v1/sessions/elevate": {
            "post": _op(
                "Record a fresh (re-)authentication; the old token dies at once",
                "issue",
                _json(ref("SessionAndToken")),
                body=obj(
                    {
                        "token": TOKEN,
                        "auth_level": {"type": "integer", "minimum": 0, "maximum": 100},
                        "scopes": _SCOPES,
                        "bound_cookie": BOUND_COOKIE,
                    },
                    ("token",),
                ),
            )
        },
        "/v1/sessions/data": {
            "post": _op(
                "Change session data (set keys, then remove keys)",
                "issue",
                _json(
                    _SESSION
                    | {"properties": {"session": ref("Session"), "token": {"type": "string"}}}
                ),
                body=obj(
                    {
                        "token": TOKEN,
                        "set": {"type": "object"},
                        "unset": {
                            "type": "array",
                            "maxItems": 64,
                            "items": {"type": "string", "minLength": 1, "maxLength": 128},
                        },
                        "bound_cookie": BOUND_COOKIE,
                    },
                    ("token",),
                ),
            )
            | {
                "responses": _with_409(
                    _json(
                        _SESSION
                        | {"properties": {"session": ref("Session"), "token": {"type": "string"}}}
                    ),
                    "200",
                )
            },
        },
        "/v1/sessions/revoke": {
            "post": _op(
                "End the session of this token (logout); idempotent",
                "issue",
                _json(
                    _REVOKED_BOOL,
                    "`revoked` is false for an unknown token, and for a"
                    " session bound to a DPoP key without a proof of that key for the token"
                    " or by DBSC without a live bound cookie.",
                ),
                body=obj(
                    {"token": TOKEN, "dpop": ref("DpopProof"), "bound_cookie": BOUND_COOKIE},
                    ("token",),
                ),
            )
        },
        "/v1/users/{user_id}/sessions": {
            "get": _op(
                "List a user's live sessions, oldest first",
                "issue",
                _json(
                    {
                        "type": "object",
                        "required": ["sessions"],
                        "properties": {"sessions": {"type": "array", "items": ref("Session")}},
                    }
                ),
                errors=("400", "401", "403", "503"),
                params=[user],
            )
        },
        "/v1/users/{user_id}/revoke": {
            "post": _op(
                "End every session of a user (logout everywhere), optionally keeping one",
                "issue",
                _json(
                    {
                        "type": "object",
                        "required": ["revoked"],
                        "properties": {"revoked": {"type": "integer", "minimum": 0}},
                    }
                ),
                body_required=False,
                body=obj(
                    {
                        "keep_session_id": {
                            "type": "string",
                            "pattern": "^[A-Za-z0-9_-]{16}$",
                        },
                        "reason": {
                            "type": "string",
                            "enum": [reason.value for reason in RevokeReason],
                        },
                    }
                ),
                params=[user],
            )
        },
        "/v1/sessions/revoke-all": {
            "post": _op(
                "Refused (403) to every key: an application's key acts within its application,"
                " and ending every session reaches all of them (the admin console and"
                " `sessionward sessions revoke-all` do it)",
                "admin",
                _json(
                    {
                        "type": "object",
                        "required": ["revoked"],
                        "properties": {"revoked": {"type": "integer", "minimum": 0}},
                    }
                ),
                body=obj(
                    {
                        "confirm": {"type": "string", "enum": ["revoke-all"]},
                        "keep_session_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16}$"},
                    },
                    ("confirm",),
                ),
            )
        },
        "/v1/sessions/{session_id}": {
            "get": _op(
                "A session's detail: context history and recent events",
                "admin",
                _json(
                    {
                        "type": "object",
                        "required": ["session", "events"],
                        "properties": {
                            "session": ref("Session"),
                            "events": {"type": "array", "items": {"type": "object"}},
                        },
                    }
                ),
                errors=("401", "403", "503"),
                params=[session_id],
            )
            | {"responses": _with_404("get")},
            "delete": _op(
                "End a session by its public id",
                "admin",
                _json(_REVOKED_BOOL),
                errors=("401", "403", "503"),
                params=[session_id],
            )
            | {"responses": _with_404("delete")},
        },
        "/v1/tokens": {
            "post": _op(
                "JWT mode: start a refresh family (login); an access and a refresh token",
                "issue",
                _json(ref("TokenPair"), "Created; send both tokens to the client."),
                status="201",
                body=obj(
                    {
                        "user_id": {"type": "string", "minLength": 1, "maxLength": MAX_USER_ID},
                        "auth_level": {"type": "integer", "minimum": 0, "maximum": 100},
                        "scopes": _SCOPES,
                        "context": ref("Context"),
                        "end_other_sessions": {
                            "type": "boolean",
                            "description": "End the user's other refresh families.",
                        },
                        "dpop": ref("DpopProof"),
                    },
                    ("user_id",),
                ),
            )
            | {"responses": _jwt_responses(_json(ref("TokenPair"), "Created."), "201")},
        },
        "/v1/tokens/refresh": {
            "post": _op(
                "JWT mode: trade a refresh token for a new pair (the old one is rotated out)",
                "issue",
                _json(ref("TokenPair")),
                body=obj(
                    {
                        "refresh_token": {**TOKEN, "description": "The refresh token."},
                        "context": ref("Context"),
                        "dpop": ref("DpopProof"),
                    },
                    ("refresh_token",),
                ),
            )
            | {"responses": _jwt_responses(_json(ref("TokenPair")), "200")},
        },
        "/.well-known/jwks.json": {
            "get": {
                "summary": "JWT mode: the public keys verifying access tokens (JWK set)",
                "security": [],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["keys"],
                            "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
                        },
                        "The JWK set (public members only).",
                    ),
                    "404": _error("not_found: the JWT mode is not configured"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text exposition format 0.0.4)",
                "description": "Needs an API key of any scope.",
                "security": [{"apiKey": []}],
                "responses": {
                    "200": {
                        "description": "Metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _error("unauthenticated"),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness: the process answers",
                "security": [],
                "responses": {"200": _json(_STATUS)},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the session store and the service state answer",
                "security": [],
                "responses": {"200": _json(_STATUS), "503": _error("store_unavailable")},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": _json({"type": "object"})},
            }
        },
    }


def _dbsc_paths() -> dict[str, Any]:
    """The two calls a backend relays its browser's DBSC requests through."""
    relay = _json(ref("DbscRelay"), "What to answer the browser (always 200 here).")
    options: dict[str, Any] = ref("DbscOptions")
    jwt = {"type": "string", "maxLength": 3072}
    register: dict[str, Any] = {"token": TOKEN, "response": jwt}
    register |= {"url": {"type": "string", "maxLength": 1024}, "dbsc": options}
    refresh: dict[str, Any] = {
        "token": TOKEN,
        "session_identifier": {"type": "string", "maxLength": 512},
    }
    refresh |= {"response": jwt, "dbsc": options}
    return {
        "/v1/sessions/dbsc/register": {
            "post": _op(
                "DBSC registration: pass on the browser's `Secure-Session-Response` (`response`)"
                " and session token; `url`, the registration URL, checks a JWT's `aud`",
                "issue",
                relay,
                body=obj(register, ("token", "response")),
            )
        },
        "/v1/sessions/dbsc/refresh": {
            "post": _op(
                "DBSC refresh: pass on `Sec-Secure-Session-Id` (`session_identifier`), the"
                " `Secure-Session-Response` if any and the session token (none: end)",
                "issue",
                relay,
                body=obj(refresh, ("session_identifier",)),
            )
        },
    }


def _with_409(ok: dict[str, Any], status: str) -> dict[str, Any]:
    return {
        status: ok,
        **{code: _error(_ERRORS[code]) for code in ("400", "401", "403", "413", "415", "503")},
        "409": _error("session_limit or conflict"),
    }


def _jwt_responses(ok: dict[str, Any], status: str) -> dict[str, Any]:
    return {
        status: ok,
        **{code: _error(_ERRORS[code]) for code in ("400", "401", "403", "413", "415", "503")},
        "404": _error("not_found: the JWT mode is not configured"),
        "409": _error("session_limit or conflict"),
    }


def _with_404(method: str) -> dict[str, Any]:
    ok = (
        _json(
            {
                "type": "object",
                "required": ["session", "events"],
                "properties": {
                    "session": ref("Session"),
                    "events": {"type": "array", "items": {"type": "object"}},
                },
            }
        )
        if method == "get"
        else _json(_REVOKED_BOOL)
    )
    return {
        "200": ok,
        **{code: _error(_ERRORS[code]) for code in ("401", "403", "503")},
        "404": _error("not_found"),
    }


def _with_throttling(paths: dict[str, Any]) -> dict[str, Any]:
    """Every operation that takes an API key may answer 429 (sessionward.service.throttle)."""
    seconds = {"type": "integer", "minimum": 1}
    too_many = {
        **_error("too_many_attempts (failed API keys); retry after Retry-After"),
        "headers": {"Retry-After": {"description": "Seconds to wait first.", "schema": seconds}},
    }
    for operations in paths.values():
        for operation in operations.values():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            if "401" in responses:
                responses["429"] = too_many
    return paths


def openapi_document(server_url: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "sessionward service",
            "version": __version__,
            "description": "Session tokens for backends in any language. Tokens travel in "
            "JSON bodies only; errors are JSON with stable codes. Every API key belongs to one "
            "application: it sees and touches only that application's sessions and users, and "
            "another application's token, session id or user answers as an unknown one. Data "
            "keys starting `_sessionward` are the service's own and refused.",
        },
        "paths": {
            **_with_throttling(
                {**with_nonces(_paths()), **events_paths(), **webhook_paths(), **ssf_paths()}
            ),
            **receiver_paths(),
        },
        "components": {
            "schemas": {**SCHEMAS, **EVENT_SCHEMAS, **WEBHOOK_SCHEMAS, **SSF_SCHEMAS},
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key (swk_...) from `sessionward api-keys create`.",
                }
            },
        },
        "security": [{"apiKey": []}],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
