"""Compact JWS signed by a client (DBSC registration and refresh JWTs, DPoP proofs), parsed
strictly before any signature check.

Three base64url segments in their canonical spelling, a header and a payload that are each
exactly one JSON object (the header without duplicate members), sizes bounded (an RS256 header
carries the whole RSA modulus in its ``jwk``, so the header bound is generous but finite). A
header naming ``crit`` extensions is refused: none is understood here. Nothing is trusted
until the caller has verified ``signature`` over ``signing_input`` with a key it chose.
"""

from __future__ import annotations

import functools
from typing import Any, Final, NamedTuple

from sessionward.core.jose import b64decode, loads_object
from sessionward.core.jwk import ClientKey, client_key
from sessionward.errors import InvalidProof

__all__ = ["MAX_HEADER", "MAX_SIZE", "SignedJwt", "header_key", "parse_compact"]

MAX_SIZE: Final = 16 * 1024
MAX_HEADER: Final = 4 * 1024  # base64url characters: an 8192-bit RSA jwk fits


class SignedJwt(NamedTuple):
    """A parsed, not yet verified, compact JWS."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes
    header_segment: str

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
        header = _header(parts[0])
        # Duplicate claim names keep the last (RFC 7519 §4): only this parser reads them, and
        # the client that signed them gains nothing from an ambiguity it made itself.
        claims = loads_object(b64decode(parts[1]), unique=False)
        signature = b64decode(parts[2])
    except ValueError:
        raise InvalidProof("malformed") from None
    if "crit" in header or not signature:
        raise InvalidProof("malformed")
    signing_input = text[: len(parts[0]) + 1 + len(parts[1])].encode("ascii")
    return SignedJwt(header, claims, signing_input, signature, parts[0])


# A client signs every proof with the same header (the same key), so its parse is kept; the
# dict is shared between calls and never changed.
@functools.lru_cache(maxsize=512)
def _header(segment: str) -> dict[str, Any]:
    return loads_object(b64decode(segment))


@functools.lru_cache(maxsize=512)
def header_key(segment: str, alg: str) -> ClientKey:
    """The key in the ``jwk`` of the header ``segment`` for ``alg`` (see
    :func:`~sessionward.core.jwk.client_key`), kept for the client's next proof."""
    return client_key(_header(segment).get("jwk"), alg)
