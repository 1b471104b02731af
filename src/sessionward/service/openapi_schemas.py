"""The OpenAPI document's reusable schemas (``components.schemas``) and the helpers that
build them."""

from __future__ import annotations

from typing import Any

__all__ = ["BOUND_COOKIE", "SCHEMAS", "STR", "TIME", "TOKEN", "obj", "ref"]

STR = {"type": "string", "maxLength": 512}
TOKEN = {"type": "string", "maxLength": 256, "description": "A session token (sw1_...)."}
TIME = {"type": "number", "description": "Seconds since the Unix epoch."}
BOUND_COOKIE = {
    "type": "string",
    "maxLength": 256,
    "description": "The value of the DBSC bound cookie (`__Host-<name>-bound`) the request"
    " carried: a session bound by DBSC is refused without a live one.",
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    return out


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {
                        "type": "string",
                        "enum": [
                            "invalid_request",
                            "unauthenticated",
                            "invalid_token",
                            "use_dpop_nonce",
                            "forbidden",
                            "step_up_required",
                            "not_found",
                            "method_not_allowed",
                            "session_limit",
                            "conflict",
                            "request_too_large",
                            "data_too_large",
                            "unsupported_media",
                            "store_unavailable",
                            "too_many_requests",
                            "internal",
                        ],
                    },
                    "message": {"type": "string"},
                },
            }
        },
    },
    "Context": obj(
        {
            "ip": {"type": "string", "maxLength": 64},
            "user_agent": STR,
            "accept_language": STR,
            "client_hints": {
                "type": "object",
                "maxProperties": 16,
                "propertyNames": {"maxLength": 64},
                "additionalProperties": STR,
                "description": "The user's Sec-CH-UA-* request headers by lower-case name.",
            },
            "device_signal": {
                "type": "string",
                "maxLength": 128,
                "description": "The optional device signal (docs/risk.md): the value of the"
                " user's __Host-sw-dev cookie, written by sessionward's device.js. The service"
                " keys it with a secret of the application before it is scored or stored.",
            },
        },
    )
    | {
        "description": "The request of the application's user, as the application received"
        " it: the user's address (not the application's), user agent, Accept-Language,"
        " client hints and device signal. Scored when the service runs with `risk`."
    },
    "IdpLink": {
        **obj(
            {
                "iss": {"type": "string", "minLength": 1, "maxLength": 512},
                "sid": {"type": "string", "minLength": 1, "maxLength": 512},
                "sub": {"type": "string", "minLength": 1, "maxLength": 512},
            },
            ("iss",),
        ),
        "anyOf": [{"required": ["sid"]}, {"required": ["sub"]}],
        "description": "The OpenID provider's `iss`, `sid` and/or `sub` of this login (from the "
        "ID token): back-channel logout and Shared Signals events naming them end this session. "
        "Needs a `user_id`.",
    },
    "Session": {
        "type": "object",
        "required": [
            "id",
            "user_id",
            "anonymous",
            "auth_level",
            "auth_time",
            "scopes",
            "data",
            "created_at",
            "last_seen",
            "expires_at",
            "absolute_expires_at",
            "generation",
            "binding",
        ],
        "properties": {
            "id": {"type": "string", "description": "Public session id (16 characters)."},
            "user_id": {"type": ["string", "null"]},
            "anonymous": {"type": "boolean"},
            "auth_level": {"type": "integer", "minimum": 0},
            "auth_time": {"type": ["number", "null"]},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "data": {"type": "object"},
            "created_at": TIME,
            "last_seen": TIME,
            "expires_at": TIME,
            "absolute_expires_at": TIME,
            "generation": {"type": "integer", "minimum": 0},
            "binding": ref("Binding"),
            "context_history": {"type": "array", "items": {"type": "object"}},
            "device": {
                "type": "string",
                "description": 'As people name it ("Firefox 133 on Windows"); "" if unknown.'
                " In listings and a session's detail.",
            },
            "network": obj(
                {
                    "description": {"type": "string", "description": "Owner (country)."},
                    "owner": {"type": "string", "description": "The network's AS name."},
                    "country": {"type": "string", "description": "ISO 3166 code."},
                    "kind": {"type": "string", "enum": ["", "hosting", "vpn", "tor"]},
                }
            ),
            "risk_decisions": {
                "type": "array",
                "description": "Recent risk decisions other than allow, newest first.",
                "items": ref("RiskDecision"),
            },
        },
    },
    "RiskReason": obj(
        {
            "code": {"type": "string", "description": "Stable: network.new_country, ..."},
            "weight": {"type": "number"},
            "sentence": {
                "type": "string",
                "description": "Names the owner's networks and browser: for the owner's eyes.",
            },
        },
        ("code", "weight", "sentence"),
    ),
    "RiskDecision": {
        "type": "object",
        "required": ["decision", "score", "reasons"],
        "properties": {
            "t": {"type": ["number", "null"], "description": "When (listings only)."},
            "decision": {
                "type": "string",
                "enum": ["allow", "log", "step_up", "revoke", "confirmed"],
                "description": "`confirmed` (listings only): the owner signed in again after"
                " a step-up and confirmed it was them.",
            },
            "score": {"type": ["number", "null"]},
            "reasons": {"type": "array", "items": ref("RiskReason")},
        },
    },
    "Binding": {
        "type": "object",
        "description": "Whether the session is bound to a key its client keeps and never "
        "sends (DBSC, its WebCrypto fallback, or DPoP): a copied token alone is then refused.",
        "required": ["state", "method", "jkt", "bound_at", "last_proof_at"],
        "properties": {
            "state": {
                "type": "string",
                "enum": ["unbound", "offered", "bound"],
                "description": "`offered`: the login asked the browser to register a key and "
                "it has not (yet); such a session works as an unbound one.",
            },
            "method": {"type": ["string", "null"], "enum": ["dbsc", "webcrypto", "dpop", None]},
            "jkt": {
                "type": ["string", "null"],
                "description": "RFC 7638 thumbprint of the public key (`cnf.jkt`).",
            },
            "bound_at": {"type": ["number", "null"]},
            "last_proof_at": {
                "type": ["number", "null"],
                "description": "The latest proof of the key the record tells of: the "
                "registration or bound-cookie refresh; for `dpop`, the session's last "
                "activity (every accepted request carried a proof).",
            },
        },
    },
    "TokenPair": {
        "type": "object",
        "required": [
            "access_token",
            "token_type",
            "expires_in",
            "refresh_token",
            "session_id",
            "refresh_expires_at",
        ],
        "properties": {
            "access_token": {"type": "string", "description": "A signed JWT (verify: JWKS)."},
            "token_type": {
                "type": "string",
                "enum": ["Bearer", "DPoP"],
                "description": "`DPoP` for a family bound to the client's key (`cnf.jkt`).",
            },
            "expires_in": {"type": "integer", "minimum": 0},
            "refresh_token": {"type": "string", "description": "Opaque; works once."},
            "session_id": {"type": "string", "description": "The tokens' `sid`."},
            "refresh_expires_at": TIME,
        },
    },
    "DpopProof": obj(
        {
            "proof": {"type": "string", "maxLength": 8192, "description": "The `DPoP` header."},
            "method": {"type": "string", "maxLength": 16, "description": "Its request's method."},
            "url": {
                "type": "string",
                "maxLength": 2048,
                "description": "Its request's absolute URL, as the client named it in `htu`.",
            },
        },
        ("proof", "method", "url"),
    )
    | {
        "description": "A client's DPoP proof (RFC 9449), passed on by the backend that "
        "received it. At issue (or a JWT-mode login) it binds the session (the refresh "
        "family) to the proof's key; a bound session then validates only with a proof of that "
        "key made for its token (`deny` otherwise), and is rotated, elevated, confirmed, has its "
        "data changed or ends by `/v1/sessions/revoke` only with one; a bound family "
        "refreshes only with one (401 otherwise). With `dpop_nonces` "
        "on, the proof must carry the current server nonce (`use_dpop_nonce` otherwise)."
    },
    "SessionAndToken": {
        "type": "object",
        "required": ["session", "token"],
        "properties": {
            "session": ref("Session"),
            "token": {"type": ["string", "null"], "description": "The new token, if minted."},
            "dbsc": obj(
                {
                    "registration": {
                        "type": ["string", "null"],
                        "description": "Send it to the browser as `Secure-Session-Registration`"
                        " (`null` for an anonymous session).",
                    }
                },
                ("registration",),
            )
            | {"description": "Only from an issue that asked for `dbsc`."},
        },
    },
    "DbscOptions": obj(
        {
            "path": {
                "type": "string",
                "maxLength": 256,
                "pattern": "^(/[A-Za-z0-9._~-]+)+$",
                "description": "Where the backend serves `<path>/register` and `<path>/refresh`"
                " (default `/sessionward/dbsc`).",
            },
            "cookie_name": {
                "type": "string",
                "maxLength": 58,
                "pattern": "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$",
                "not": {"pattern": "^__([Hh][Oo][Ss][Tt]|[Ss][Ee][Cc][Uu][Rr][Ee])-"},
                "description": "The session cookie's base name (default `id`); the bound"
                " cookie is `__Host-<name>-bound`. No `__Host-` prefix.",
            },
        }
    )
    | {
        "description": "Device Bound Session Credentials relayed by the backend (see"
        " docs/binding.md): give the same options in every call of a session."
    },
    "BoundCookie": obj(
        {
            "name": {"type": "string"},
            "value": {"type": "string", "description": "Empty when the cookie is deleted."},
            "max_age": {"type": "integer", "minimum": 0, "description": "0 deletes it."},
            "path": {"type": "string"},
            "secure": {"type": "boolean"},
            "http_only": {"type": "boolean"},
            "same_site": {"type": "string", "enum": ["Lax", "Strict"]},
        },
        ("name", "value", "max_age", "path", "secure", "http_only", "same_site"),
    ),
    "DbscRelay": {
        "type": "object",
        "required": ["status", "headers", "body", "cookie", "set_cookie"],
        "description": "What the backend answers its browser's DBSC request with: `status`,"
        " `headers`, `body` (JSON; `null`: none) and the bound cookie, either set from"
        " `cookie`'s fields or sent as `set_cookie` (a `Set-Cookie` value); both `null` when"
        " none is set.",
        "properties": {
            "status": {"type": "integer", "enum": [200, 400, 401, 403, 503]},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "body": {"type": ["object", "null"]},
            "cookie": {"oneOf": [ref("BoundCookie"), {"type": "null"}]},
            "set_cookie": {"type": ["string", "null"]},
            "token": {"type": "string", "description": "The session's new token, if renewed."},
        },
    },
}
