"""Build arbitrary compact JWS strings for the pitfall tests: any header, any payload, any
signature, signed (or not) with a key of ours or an attacker's."""

from __future__ import annotations

import base64
import json
from typing import Any

from sessionward.core.token import new_session_id
from sessionward.jwt.keys import Key

ISS = "https://auth.example.test"
AUD = "https://api.example.test"
TYP = "at+jwt"
DROP: Any = object()  # a value meaning "leave this member out"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def claims(now: int, **changes: Any) -> dict[str, Any]:
    """A valid claims set at ``now``; ``name=DROP`` removes a claim."""
    base: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": "alice",
        "sid": new_session_id(),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "jti-" + new_session_id(),
        "scope": "read",
        "lvl": 1,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not DROP}


def header(key: Key, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"alg": key.alg, "kid": key.kid, "typ": TYP}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not DROP}


def token(
    head: dict[str, Any] | bytes,
    body: dict[str, Any] | bytes,
    key: Key | None,
    *,
    signature: bytes | None = None,
) -> str:
    """``head.body.signature``; dicts are compact JSON, bytes are used as they are. The
    signature is ``key``'s over the signing input unless ``signature`` is given."""
    h = b64(head if isinstance(head, bytes) else compact_json(head))
    p = b64(body if isinstance(body, bytes) else compact_json(body))
    signing_input = f"{h}.{p}".encode("ascii")
    if signature is None:
        signature = key.sign(signing_input) if key is not None else b""
    return f"{h}.{p}.{b64(signature)}"


def resign(jws: str, key: Key) -> str:
    """Replace the signature of ``jws`` by ``key``'s."""
    h, p, _ = jws.split(".")
    return f"{h}.{p}.{b64(key.sign(f'{h}.{p}'.encode('ascii')))}"
