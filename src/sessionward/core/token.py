"""The opaque session token: format, minting, parsing and hashing.

Format (version 1), always 68 characters::

    sw1_<base64url(session_id 12 B || secret 32 B || crc32 4 B)>

* ``sw1_`` is a recognisable, versioned prefix: secret scanners can find leaked tokens and a
  future format can be introduced without logging everyone out.
* ``session_id`` is public: the store's lookup key, shown in logs, events and admin pages as
  16 base64url characters. 96 random bits make collisions negligible; the store's create-only
  ``add`` catches the rest.
* ``secret`` is 256 bits from :mod:`secrets`. Only ``sha256(secret)`` is ever stored, and the
  comparison is constant-time.
* ``crc32`` over the prefix and the first 44 bytes rejects typos and garbage before any store
  round trip. It is not a security check (the secret is); it is why a malformed token is cheap.

48 bytes encode to exactly 64 base64url characters without padding, so every valid token has
one spelling only (no malleable trailing bits) and uses cookie- and header-safe characters.
"""

from __future__ import annotations

import base64
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
    "ParsedToken",
    "hash_secret",
    "mint",
    "new_session_id",
    "parse",
    "secret_matches",
]

PREFIX: Final = "sw1_"
ID_BYTES: Final = 12
SECRET_BYTES: Final = 32
_CRC_BYTES: Final = 4
_PAYLOAD_BYTES: Final = ID_BYTES + SECRET_BYTES + _CRC_BYTES
TOKEN_LENGTH: Final = len(PREFIX) + _PAYLOAD_BYTES * 4 // 3
SESSION_ID_LENGTH: Final = ID_BYTES * 4 // 3

_BODY = re.compile(f"[A-Za-z0-9_-]{{{TOKEN_LENGTH - len(PREFIX)}}}")
_SESSION_ID = re.compile(f"[A-Za-z0-9_-]{{{SESSION_ID_LENGTH}}}")
_PREFIX_BYTES: Final = PREFIX.encode("ascii")


class ParsedToken(NamedTuple):
    """A syntactically valid token split into its parts. ``secret`` must never be logged."""

    session_id: str
    secret: bytes


def _encode_id(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _crc(body: bytes) -> bytes:
    return zlib.crc32(_PREFIX_BYTES + body).to_bytes(_CRC_BYTES, "big")


def new_session_id() -> str:
    """A fresh random public session id (16 base64url characters)."""
    return _encode_id(secrets.token_bytes(ID_BYTES))


def mint(session_id: str | None = None) -> tuple[str, ParsedToken]:
    """Create a new token. Returns ``(token, parsed)``; a new id is drawn unless one is given.

    Passing ``session_id`` keeps the public id across a secret rotation.
    """
    raw_id = secrets.token_bytes(ID_BYTES) if session_id is None else _decode_id(session_id)
    secret = secrets.token_bytes(SECRET_BYTES)
    return _assemble(raw_id, secret), ParsedToken(_encode_id(raw_id), secret)


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
    """
    if (
        not isinstance(token, str)
        or len(token) != TOKEN_LENGTH
        or not token.startswith(PREFIX)
        or not _BODY.fullmatch(token, len(PREFIX))
    ):
        raise InvalidToken("malformed")
    raw = base64.urlsafe_b64decode(token[len(PREFIX) :])
    body = raw[: ID_BYTES + SECRET_BYTES]
    if not hmac.compare_digest(raw[ID_BYTES + SECRET_BYTES :], _crc(body)):
        raise InvalidToken("checksum")
    return ParsedToken(_encode_id(body[:ID_BYTES]), body[ID_BYTES:])


def hash_secret(secret: bytes) -> bytes:
    """What the store keeps instead of the secret: ``sha256(secret)``.

    A 256-bit random secret cannot be brute-forced from its hash, so a slow or keyed hash would
    add cost without adding safety (see docs/design.md).
    """
    return hashlib.sha256(secret).digest()


def secret_matches(secret: bytes, stored_hash: bytes | None) -> bool:
    """Constant-time check of a presented secret against a stored hash."""
    if stored_hash is None:
        return False
    return hmac.compare_digest(hashlib.sha256(secret).digest(), stored_hash)


def token_from_parts(session_id: str, secret: bytes) -> str:
    """Rebuild a token from its parts (used by the known-answer tests and tooling)."""
    if len(secret) != SECRET_BYTES:
        raise InvalidToken("malformed-secret")
    return _assemble(_decode_id(session_id), secret)
