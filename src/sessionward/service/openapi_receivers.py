"""The OpenAPI description of the receivers (``sessionward.service.receivers``): OpenID
Connect back-channel logout and Shared Signals push delivery. Neither takes an API key."""

from __future__ import annotations

from typing import Any

from sessionward.service.bounds import MAX_BODY_BYTES
from sessionward.service.openapi_schemas import ref
from sessionward.signals._async.receiver import MAX_FORM_FIELDS, MAX_FORM_NAME, MAX_FORM_VALUE
from sessionward.signals.keys import MAX_TOKEN

__all__ = ["receiver_paths"]


def _oauth_error(description: str) -> dict[str, Any]:
    schema = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    }
    return {"description": description, "content": {"application/json": {"schema": schema}}}


#: The service's own body limit, answered before the receiver reads the body.
_TOO_LARGE = {
    "description": f"request_too_large: the body exceeds {MAX_BODY_BYTES // 1024} KiB",
    "content": {"application/json": {"schema": ref("Error")}},
}


def _set_error(description: str) -> dict[str, Any]:
    codes = [
        "invalid_request",
        "invalid_key",
        "authentication_failed",
        "invalid_issuer",
        "invalid_audience",
        "temporarily_unavailable",
    ]
    schema = {
        "type": "object",
        "required": ["err"],
        "properties": {"err": {"type": "string", "enum": codes}, "description": {"type": "string"}},
    }
    return {"description": description, "content": {"application/json": {"schema": schema}}}


#: A compact JWS (three base64url parts), at most ``MAX_TOKEN`` characters.
_JWS = {
    "type": "string",
    "maxLength": MAX_TOKEN,
    "pattern": "^[A-Za-z0-9_-]+[.][A-Za-z0-9_-]+[.][A-Za-z0-9_-]+$",
}


def receiver_paths() -> dict[str, Any]:
    logout_form = {
        "type": "object",
        "description": f"Other values (at most {MAX_FORM_FIELDS} in all) are ignored.",
        "required": ["logout_token"],
        "properties": {"logout_token": {**_JWS, "description": "A signed JWT."}},
        "maxProperties": MAX_FORM_FIELDS,
        "propertyNames": {"maxLength": MAX_FORM_NAME},
        "additionalProperties": {"type": "string", "maxLength": MAX_FORM_VALUE},
    }
    return {
        "/v1/oidc/backchannel-logout": {
            "post": {
                "summary": "OpenID Connect Back-Channel Logout 1.0: end the linked sessions",
                "description": "Called by the configured OpenID provider (`oidc_issuer`). The "
                "logout token's signature (the provider's JWK set), `iss`, `aud` "
                "(`oidc_client_id`), `iat`, `jti` (once only, on every node), `events` and "
                "`sid`/`sub` are checked and a `nonce` refused; then the sessions issued with "
                "that `idp` link end (reason `idp-logout`).",
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {"application/x-www-form-urlencoded": {"schema": logout_form}},
                },
                "responses": {
                    "200": {"description": "Done (also when no session was linked)."},
                    "400": _oauth_error("invalid_request: the logout token was refused"),
                    "413": _TOO_LARGE,
                    "501": _oauth_error("not_configured: oidc_issuer is not set"),
                    "503": _oauth_error("temporarily_unavailable: keys or store unreachable"),
                },
            }
        },
        "/v1/ssf/events": {
            "post": {
                "summary": "Shared Signals push delivery (RFC 8935): act on a Security Event Token",
                "description": "Called by the configured transmitter (`ssf_issuer`). CAEP "
                "`session-revoked` ends the named sessions, RISC `account-disabled` every "
                "session of the user, RISC `credential-compromise` revokes them or lowers them "
                "to level 0 (`ssf_credential_compromise`). Other events are accepted and "
                "ignored.",
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {"application/secevent+jwt": {"schema": _JWS}},
                },
                "responses": {
                    "202": {"description": "Accepted."},
                    "400": _set_error("The SET was refused; nothing changed."),
                    "401": _set_error("authentication_failed: the Authorization header"),
                    "413": _TOO_LARGE,
                    "501": _oauth_error("not_configured: ssf_issuer is not set"),
                    "503": _set_error("temporarily_unavailable: keys or store unreachable"),
                },
            }
        },
    }
