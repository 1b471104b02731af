"""The OpenAPI document's part on DPoP: the ``dpop`` field of the calls that act on a session
bound to a key, and server nonces (``dpop_nonces``, RFC 9449 §8): which calls may ask for the
current nonce, and the ``DPoP-Nonce`` header of their answers."""

from __future__ import annotations

import copy
from typing import Any, Final

from sessionward.service.openapi_schemas import ref

__all__ = ["with_nonces"]

#: The calls that take a ``dpop`` field; ``True`` for validate, which answers as a resource
#: server does (401, ``WWW-Authenticate: DPoP``), the others as a token endpoint (400).
_CALLS: Final = {
    "/v1/sessions": False,
    "/v1/sessions/validate": True,
    "/v1/sessions/revoke": False,
    "/v1/sessions/rotate": False,
    "/v1/sessions/elevate": False,
    "/v1/sessions/data": False,
    "/v1/sessions/confirm": False,
    "/v1/tokens": False,
    "/v1/tokens/refresh": False,
}
#: The calls that act on a session by its token and take its proof only when it is bound.
_BOUND: Final = (
    "/v1/sessions/rotate",
    "/v1/sessions/elevate",
    "/v1/sessions/data",
    "/v1/sessions/confirm",
)
_BOUND_NOTE: Final = (
    " A session bound to a DPoP key needs `dpop`, a proof of that key made for its token"
    " (401 `invalid_token` otherwise, the session unchanged); an unbound one needs none."
)
_NONCE: Final = {
    "description": "The current DPoP nonce (RFC 9449 §8), when `dpop_nonces` is on: hand it"
    " to the client, which puts it in its next proofs.",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{32}$"},
}
_OFFERED: Final = {
    "description": "With `dpop_nonces` on, in every answer to a call that passed a `dpop`"
    " proof: the current DPoP nonce (RFC 9449 §8).",
    "schema": _NONCE["schema"],
}
_CHALLENGE: Final = {
    "description": '`DPoP error="use_dpop_nonce", algs="ES256 RS256"`: the backend answers its'
    " client with this header.",
    "schema": {"type": "string"},
}


def _asking(status: str, responses: dict[str, Any], resource: bool) -> dict[str, Any]:
    answer = copy.deepcopy(responses.get(status) or {"content": {"application/json": {}}})
    answer["description"] = (
        f"{answer.get('description', '')}; or use_dpop_nonce (with `dpop_nonces` on, the"
        " passed proof lacks the current nonce: sign it again with the nonce in DPoP-Nonce)"
    ).lstrip("; ")
    answer["content"] = {"application/json": {"schema": ref("Error")}}
    headers: dict[str, Any] = {"DPoP-Nonce": _NONCE}
    if resource:
        headers["WWW-Authenticate"] = _CHALLENGE
    answer["headers"] = {**answer.get("headers", {}), **headers}
    return answer


def with_nonces(paths: dict[str, Any]) -> dict[str, Any]:
    """``paths`` with the ``dpop`` field of the calls on a bound session, and the nonce
    answers of the calls that take a ``dpop`` proof."""
    for path, resource in _CALLS.items():
        operation = paths.get(path, {}).get("post")
        if operation is None:
            continue
        if path in _BOUND:
            operation = paths[path]["post"] = _with_proof(operation)
        responses = operation["responses"]
        for status, answer in list(responses.items()):
            if status.startswith("2"):
                answer = responses[status] = copy.deepcopy(answer)
                answer["headers"] = {**answer.get("headers", {}), "DPoP-Nonce": _OFFERED}
        asked = "401" if resource else "400"
        responses[asked] = _asking(asked, responses, resource)
    return paths


def _with_proof(operation: dict[str, Any]) -> dict[str, Any]:
    """``operation`` taking an optional ``dpop`` proof, with a note on when it needs one."""
    operation = copy.deepcopy(operation)
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    schema["properties"]["dpop"] = ref("DpopProof")
    operation["description"] = operation.get("description", "") + _BOUND_NOTE
    return operation
