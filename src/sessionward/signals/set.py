"""Security Event Tokens (RFC 8417) as the Shared Signals Framework 1.0 profiles them.

:func:`sign_set` writes a compact JWS with ``typ: secevent+jwt`` signed by a key set's active
key; :func:`verify_set` checks one from a transmitter whose keys the caller chose (its JWKS)
and returns a :class:`SecurityEvent`. Both sides keep the SSF rules (SSF 1.0 §4.1): explicit
typing, no ``sub`` and no ``exp`` claim, one event in ``events``, the subject in ``sub_id``.

A refused SET raises :class:`SetRejected`, whose ``reason`` (``malformed``, ``typ``, ``kid``,
``signature``, ``issuer``, ``audience``, ``claims``) is for logs; its message is always the
same. Nothing here reads a clock or the network: ``now`` comes from the caller, keys too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sessionward.core.jose import b64encode, dumps
from sessionward.core.jws import parse_compact
from sessionward.errors import ConfigError, InvalidProof, InvalidToken
from sessionward.jwt.keys import Key
from sessionward.jwt.keyset import KeySet

__all__ = [
    "CAEP",
    "MAX_SET_SIZE",
    "SET_MEDIA_TYPE",
    "SET_TYP",
    "STREAM_UPDATED",
    "VERIFICATION",
    "SecurityEvent",
    "SetRejected",
    "set_claims",
    "sign_set",
    "verify_set",
]

SET_TYP: Final = "secevent+jwt"
SET_MEDIA_TYPE: Final = "application/secevent+jwt"
MAX_SET_SIZE: Final = 16 * 1024
CAEP: Final = "https://schemas.openid.net/secevent/caep/event-type/"
VERIFICATION: Final = "https://schemas.openid.net/secevent/ssf/event-type/verification"
STREAM_UPDATED: Final = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
_TYPS: Final = frozenset({SET_TYP, SET_MEDIA_TYPE})


class SetRejected(InvalidToken):
    """A SET that does not verify; ``reason`` says why (for logs only)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.args = ("security event token rejected",)


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """A verified SET: its claims and its one event."""

    claims: dict[str, Any]
    event_type: str
    event: dict[str, Any]

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])

    @property
    def issuer(self) -> str:
        return str(self.claims["iss"])

    @property
    def sub_id(self) -> dict[str, Any] | None:
        value = self.claims.get("sub_id")
        return value if isinstance(value, dict) else None

    @property
    def txn(self) -> str | None:
        value = self.claims.get("txn")
        return value if isinstance(value, str) else None


def set_claims(
    *,
    issuer: str,
    audience: str | Sequence[str],
    jti: str,
    iat: int,
    event_type: str,
    event: Mapping[str, Any],
    sub_id: Mapping[str, Any],
    txn: str | None = None,
) -> dict[str, Any]:
    """The claims of one SSF SET, in the order the specifications' examples list them."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "jti": jti,
        "iat": iat,
        "aud": audience if isinstance(audience, str) else list(audience),
    }
    if txn is not None:
        claims["txn"] = txn
    claims["sub_id"] = dict(sub_id)
    claims["events"] = {event_type: dict(event)}
    return claims


def sign_set(claims: Mapping[str, Any], keys: KeySet | Key) -> str:
    """The compact JWS of ``claims`` signed with the active key (``ConfigError`` for an
    HS256 key: a receiver verifies SETs with the public keys of the JWKS)."""
    key = keys.signing_key if isinstance(keys, KeySet) else keys
    if key.symmetric:
        raise ConfigError("Security Event Tokens need an asymmetric key (ES256 or EdDSA)")
    if "sub" in claims or "exp" in claims:
        raise ConfigError("an SSF SET carries neither 'sub' nor 'exp'")
    header = b64encode(dumps({"typ": SET_TYP, "alg": key.alg, "kid": key.kid}))
    signing_input = f"{header}.{b64encode(dumps(dict(claims)))}"
    signature = key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64encode(signature)}"


def verify_set(
    token: object,
    keys: KeySet | Mapping[str, Key],
    *,
    issuer: str,
    audience: str,
    now: float | None = None,
    max_age: float | None = None,
) -> SecurityEvent:
    """Check ``token`` and return its event; :class:`SetRejected` otherwise.

    The key is looked up by the header's ``kid`` in ``keys`` and its own algorithm is used
    (the header's ``alg`` must name it). ``iss`` must equal ``issuer``; ``aud`` (a string or
    a list) must hold ``audience``. With ``now`` and ``max_age``, an ``iat`` older than
    ``max_age`` seconds (or more than a minute ahead) is refused too. Replay (a ``jti`` seen
    before) is the receiver's to check: it alone knows what it has processed.
    """
    try:
        parsed = parse_compact(token, max_size=MAX_SET_SIZE)
    except InvalidProof:
        raise SetRejected("malformed") from None
    header, claims = parsed.header, parsed.claims
    if header.get("typ") not in _TYPS:
        raise SetRejected("typ")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None or key.symmetric:
        raise SetRejected("kid")
    if header.get("alg") != key.alg or not key.verify(parsed.signing_input, parsed.signature):
        raise SetRejected("signature")
    if claims.get("iss") != issuer:
        raise SetRejected("issuer")
    aud = claims.get("aud")
    if not (aud == audience or (isinstance(aud, list) and audience in aud)):
        raise SetRejected("audience")
    event_type, event = _one_event(claims)
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat):
        raise SetRejected("claims")
    if now is not None and max_age is not None and not (now - max_age <= iat <= now + 60):
        raise SetRejected("claims")
    return SecurityEvent(claims, event_type, event)


def _one_event(claims: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    jti, events = claims.get("jti"), claims.get("events")
    if not isinstance(jti, str) or not 0 < len(jti) <= 256:
        raise SetRejected("claims")
    if "sub" in claims or "exp" in claims or not isinstance(claims.get("sub_id"), dict):
        raise SetRejected("claims")
    if not isinstance(events, dict) or len(events) != 1:
        raise SetRejected("claims")
    ((event_type, event),) = events.items()
    if not isinstance(event, dict):
        raise SetRejected("claims")
    return event_type, event
