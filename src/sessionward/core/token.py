"""The opaque session token: format, minting, parsing and hashing.

Format (version 1), always 68 characters::

    sw1_<base64url(session_id 12 B || secret 32 B || crc32 4 B)>

* ``sw1_`` is a recognisable, versioned prefix: secret scanners can find leaked tokens and a
  future format can be introduced without logging everyone out.
* ``session_id`` is public: the store's lookup key, shown in logs, events and admin pages as
  16 base64url characters. 96 random bits make collisions negligible; the store's create-only
  ``add`` catches the rest.
* ``secret`` is 256 bits from :mod:`secrets`. Only its *verifier*, the first 16 bytes of
  ``sha256(secret)``, is ever stored (see :func:`verifier`), and the comparison is
  constant-time.
* ``crc32`` (little-endian) over the prefix and the first 44 bytes rejects typos and garbage
  before any store round trip. It is not a security check (the secret is); it is why a
  malformed token is cheap.

48 bytes encode to exactly 64 base64url characters without padding, so every valid token has
one spelling only (no malleable trailing bits) and uses cookie- and header-safe characters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import zlib
from typing import Final, NamedTuple

from sessionward.errors import InvalidToken

__all__ = [
    "PREFIX",
    "TOKEN_LENGTH",
    "VERIFIER_BYTES",
    "ParsedToken",
    "mint",
    "new_session_id",
    "parse",
    "secret_matches",
    "verifier",
]

PREFIX: Final = "sw1_"
ID_BYTES: Final = 12
SECRET_BYTES: Final = 32
_CRC_BYTES: Final = 4
_PAYLOAD_BYTES: Final = ID_BYTES + SECRET_BYTES + _CRC_BYTES
TOKEN_LENGTH: Final = len(PREFIX) + _PAYLOAD_BYTES * 4 // 3
SESSION_ID_LENGTH: Final = ID_BYTES * 4 // 3
VERIFIER_BYTES: Final = 16

_SESSION_ID = re.compile(f"[A-Za-z0-9_-]{{{SESSION_ID_LENGTH}}}")
_PREFIX_BYTES: Final = PREFIX.encode("ascii")
_PREFIX_LEN: Final = len(PREFIX)
_PREFIX_CRC: Final = zlib.crc32(_PREFIX_BYTES)
_CRC_AT: Final = ID_BYTES + SECRET_BYTES
_ID_END: Final = _PREFIX_LEN + SESSION_ID_LENGTH
_TO_STANDARD: Final = bytes.maketrans(b"-_+/=", b"+/!!!")
_CRC_RESIDUE: Final = 0x2144DF1C
_new_parsed = tuple.__new__
_sha256 = hashlib.sha256


class ParsedToken(NamedTuple):
    """A syntactically valid token split into its parts. ``secret`` must never be logged."""

    session_id: str
    secret: bytes


def _encode_id(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _crc(body: bytes) -> bytes:
    return zlib.crc32(body, _PREFIX_CRC).to_bytes(_CRC_BYTES, "little")


def new_session_id(locality: bytes = b"") -> str:
    """A fresh public session id (16 base64url characters): ``locality`` first (a store's
    placement hint, at most a few bytes), random bytes for the rest of the 12."""
    return _encode_id(locality + secrets.token_bytes(ID_BYTES - len(locality)))


def mint(session_id: str | None = None, *, locality: bytes = b"") -> tuple[str, ParsedToken]:
    """Create a new token. Returns ``(token, parsed)``.

    Passing ``session_id`` keeps the public id across a secret rotation; otherwise a new id is
    drawn, starting with ``locality`` (see :func:`new_session_id`).
    """
    if session_id is None:
        # One read of the OS CSPRNG for the random part of the id and the secret.
        fresh = secrets.token_bytes(ID_BYTES - len(locality) + SECRET_BYTES)
        raw_id, secret = locality + fresh[:-SECRET_BYTES], fresh[-SECRET_BYTES:]
    else:
        raw_id, secret = _decode_id(session_id), secrets.token_bytes(SECRET_BYTES)
    token = _assemble(raw_id, secret)
    return token, _new_parsed(ParsedToken, (token[_PREFIX_LEN:_ID_END], secret))


def _assemble(raw_id: bytes, secret: bytes) -> str:
    body = raw_id + secret
    return PREFIX + base64.urlsafe_b64encode(body + _crc(body)).decode("ascii")


def _decode_id(session_id: str) -> bytes:
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
        raise InvalidToken("malformed-id")
    return base64.urlsafe_b64decode(session_id)


def is_session_id(value: object) -> bool:
    """True when ``value`` has the shape of a public session id."""
    return isinstance(value, str) and _SESSION_ID.fullmatch(value) is not None


def parse(token: object) -> ParsedToken:
    """Split a presented token, rejecting anything malformed without touching a store.

    Raises :class:`~sessionward.errors.InvalidToken` (reason ``malformed`` or ``checksum``)
    for any input that is not a well-formed version-1 token, including non-strings.
    This is the hot path of every request, hence the hand-rolled checks: the alphabet is
    enforced by ``a2b_base64(strict_mode=True)`` after one byte translation that maps ``-_``
    to ``+/`` and ``+/=`` to ``!`` (which the strict decoder refuses), several times cheaper
    than a regular expression plus ``urlsafe_b64decode``.
    """
    if type(token) is not str or len(token) != TOKEN_LENGTH or not token.startswith(PREFIX):
        raise InvalidToken("malformed")
    try:
        body = token.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidToken("malformed") from None
    try:
        raw = binascii.a2b_base64(body[_PREFIX_LEN:].translate(_TO_STANDARD), strict_mode=True)
    except binascii.Error:
        raise InvalidToken("malformed") from None
    # The CRC-32 of a message followed by its own little-endian CRC-32 is a fixed residue.
    if zlib.crc32(raw, _PREFIX_CRC) != _CRC_RESIDUE:
        raise InvalidToken("checksum")
    # 12 id bytes are exactly 16 base64 characters, so the id is a slice of the token.
    return _new_parsed(ParsedToken, (token[_PREFIX_LEN:_ID_END], raw[ID_BYTES:_CRC_AT]))


def verifier(secret: bytes) -> bytes:
    """What a store keeps instead of the secret: the first :data:`VERIFIER_BYTES` (16) bytes
    of ``sha256(secret)``, for every store.

    A 256-bit random secret cannot be brute-forced from its hash, so a slow or keyed hash would
    add cost without adding safety (see docs/design.md). Matching 16 bytes still takes 2**128
    guesses, online or from a stolen copy of the store; one size everywhere keeps records
    portable between stores.
    """
    return _sha256(secret).digest()[:VERIFIER_BYTES]


def secret_matches(secret: bytes, stored: bytes | None) -> bool:
    """Constant-time check of a presented secret against a stored verifier. A stored value of
    any other length (empty, cut, a full 32-byte digest) never matches."""
    return (
        stored is not None
        and len(stored) == VERIFIER_BYTES
        and hmac.compare_digest(_sha256(secret).digest()[:VERIFIER_BYTES], stored)
    )


def token_from_parts(session_id: str, secret: bytes) -> str:
    """Rebuild a token from its parts (used by the known-answer tests and tooling)."""
    if len(secret) != SECRET_BYTES:
        raise InvalidToken("malformed-secret")
    return _assemble(_decode_id(session_id), secret)
