"""Compact JWS signed by a client (DBSC registration and refresh JWTs, DPoP proofs), parsed
strictly before any signature check.

Three base64url segments in their canonical spelling, a header and a payload that are each
exactly one JSON object without duplicate members, sizes bounded (an RS256 header carries the
whole RSA modulus in its ``jwk``, so the header bound is generous but finite). A header naming
``crit`` extensions is refused: none is understood here. Nothing is trusted until the caller
has verified ``signature`` over ``signing_input`` with a key it chose.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from sessionward.core.jose import b64decode, loads_object
from sessionward.errors import InvalidProof

__all__ = ["MAX_HEADER", "MAX_SIZE", "SignedJwt", "parse_compact"]

MAX_SIZE: Final = 16 * 1024
MAX_HEADER: Final = 4 * 1024  # base64url characters: an 8192-bit RSA jwk fits


class SignedJwt(NamedTuple):
    """A parsed, not yet verified, compact JWS."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes

    def __repr__(self) -> str:
        return f"SignedJwt(alg={self.header.get('alg')!r}, typ={self.header.get('typ')!r})"


def parse_compact(text: object, *, max_size: int = MAX_SIZE) -> SignedJwt:
    """Split and decode ``text``; raises ``InvalidProof("malformed")`` on any deviation."""
    if not isinstance(text, str) or not text.isascii() or len(text) > max_size:
        raise InvalidProof("malformed")
    parts = text.split(".")
    if len(parts) != 3 or len(parts[0]) > MAX_HEADER:
        raise InvalidProof("malformed")
    try:
        header = loads_object(b64decode(parts[0]))
        claims = loads_object(b64decode(parts[1]))
        signature = b64decode(parts[2])
    except ValueError:
        raise InvalidProof("malformed") from None
    if "crit" in header or not signature:
        raise InvalidProof("malformed")
    signing_input = text[: len(parts[0]) + 1 + len(parts[1])].encode("ascii")
    return SignedJwt(header, claims, signing_input, signature)
