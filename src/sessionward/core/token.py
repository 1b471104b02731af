"""The opaque session token: format, minting, parsing and hashing.

Format (version 1), always 68 characters::

    sw1_<base64url(session_id 12 B || secret 32 B || crc32 4 B)>

* ``sw1_`` is a recognisable, versioned prefix: secret scanners can find leaked tokens and a
  future format can be introduced without logging everyone out.
* ``session_id`` is public: the store's lookup key, shown in logs, events and admin pages as
  16 base64url characters. 96 random bits make collisions negligible; the store's create-only
  ``add`` catches the rest.
* ``secret`` is 256 bits from :mod:`secrets`. Only ``sha256(secret)`` is ever stored (or its
  first 16 bytes, where a store asks for the short verifier: see ``hash_secret``), and the
  comparison is constant-time.
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
    "VERIFIER_SIZES",
    "ParsedToken",
    "digest_matches",
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
SHORT_VERIFIER: Final = 16
VERIFIER_SIZES: Final = (SHORT_VERIFIER, 32)

_SESSION_ID = re.compile(f"[A-Za-z0-9_-]{{{SESSION_ID_LENGTH}}}")
_PREFIX_BYTES: Final = PREFIX.encode("ascii")
_PREFIX_LEN: Final = len(PREFIX)
_PREFIX_CRC: Final = zlib.crc32(_PREFIX_BYTES)
_CRC_AT: Final = ID_BYTES + SECRET_BYTES
_ID_END: Final = _PREFIX_LEN + SESSION_ID_LENGTH
_TO_STANDARD: Final = bytes.maketrans(b"-_+/=", b"+/!!!")
_CRC_RESIDUE: Final = 0x2144DF1C
_new_parsed = tuple.__new__


class ParsedToken(NamedTuple):
    """A syntactically valid token split into its parts. ``secret`` must never be logged."""

    session_id: str
    secret: bytes


def _encode_id(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _crc(body: bytes) -> bytes:
    return zlib.crc32(body, _PREFIX_CRC).to_bytes(_CRC_BYTES, "little")


def new_session_id() -> str:
    """A fresh random public session id (16 base64url characters)."""
    return _encode_id(secrets.token_bytes(ID_BYTES))


def mint(session_id: str | None = None) -> tuple[str, ParsedToken]:
    """Create a new token. Returns ``(token, parsed)``; a new id is drawn unless one is given.

    Passing ``session_id`` keeps the public id across a secret rotation.
    """
    if session_id is None:
        fresh = secrets.token_bytes(ID_BYTES + SECRET_BYTES)  # one read of the OS CSPRNG
        raw_id, secret = fresh[:ID_BYTES], fresh[ID_BYTES:]
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


def hash_secret(secret: bytes, size: int = 32) -> bytes:
    """What the store keeps instead of the secret: ``sha256(secret)``, or its first ``size``
    bytes.

    A 256-bit random secret cannot be brute-forced from its hash, so a slow or keyed hash would
    add cost without adding safety (see docs/design.md). ``size`` is 32 or 16: a store that
    keeps millions of records in memory (Redis) asks for the 16-byte verifier, which still
    takes 2**128 guesses to match, online or from a stolen copy of the store.
    """
    if type(size) is not int or size not in VERIFIER_SIZES:
        raise ValueError("a verifier is 16 or 32 bytes")
    digest = hashlib.sha256(secret).digest()
    return digest if size == 32 else digest[:size]


def digest_matches(digest: bytes, stored_hash: bytes | None) -> bool:
    """Constant-time check of ``sha256(secret)`` against a stored verifier of either size. A
    stored value of any other length (empty, say) never matches."""
    if stored_hash is None:
        return False
    if len(stored_hash) == SHORT_VERIFIER:
        digest = digest[:SHORT_VERIFIER]
    return hmac.compare_digest(digest, stored_hash)


def secret_matches(secret: bytes, stored_hash: bytes | None) -> bool:
    """Constant-time check of a presented secret against a stored hash."""
    return digest_matches(hashlib.sha256(secret).digest(), stored_hash)


def token_from_parts(session_id: str, secret: bytes) -> str:
    """Rebuild a token from its parts (used by the known-answer tests and tooling)."""
    if len(secret) != SECRET_BYTES:
        raise InvalidToken("malformed-secret")
    return _assemble(_decode_id(session_id), secret)
