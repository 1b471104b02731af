"""Password hashing (argon2id, argon2-cffi's defaults: RFC 9106's second recommended
profile) and TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps, a code accepted for its own step
and the first 5 s of the next) for the admin page and the demo.

Hashing takes tens of milliseconds by design: call it off the event loop
(:func:`hash_password_async`, :func:`verify_password_async`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
from typing import TypeGuard
from urllib.parse import quote

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from starlette.concurrency import run_in_threadpool

__all__ = [
    "DUMMY_HASH",
    "STEP",
    "TOTP_DRIFT",
    "hash_password_async",
    "is_totp_secret",
    "new_totp_secret",
    "totp_now",
    "totp_step",
    "totp_uri",
    "verify_password_async",
    "verify_totp",
]

#: RFC 6238's time step, in seconds.
STEP = 30
#: How long into the next step a code is still accepted (see :func:`verify_totp`).
TOTP_DRIFT = 5.0

_TOTP_SECRET = re.compile(r"[A-Z2-7]{32}")  # 160 bits in base32
_hasher = PasswordHasher()  # argon2id
#: Verified against when the account does not exist, so a login costs the same either way.
DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


async def hash_password_async(password: str) -> str:
    return await run_in_threadpool(_hasher.hash, password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password_async(stored: str | None, password: str) -> bool:
    """Constant work whether or not the account exists (``stored=None``)."""
    ok = await run_in_threadpool(_verify, stored or DUMMY_HASH, password)
    return ok and stored is not None


def new_totp_secret() -> str:
    """160 random bits, base32 (what authenticator apps expect)."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def is_totp_secret(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a key :func:`new_totp_secret` makes (one read back from session
    data, which an API client may have written, is checked before use)."""
    return isinstance(value, str) and _TOTP_SECRET.fullmatch(value) is not None


def totp_uri(secret: str, account: str, issuer: str = "sessionward demo") -> str:
    label = quote(f"{issuer}:{account}")
    return f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer)}"


def _code(secret: str, counter: int) -> str:
    key = base64.b32decode(secret)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def totp_now(secret: str, now: float) -> str:
    return _code(secret, int(now // STEP))


def verify_totp(secret: str, code: str, now: float, *, drift: float = TOTP_DRIFT) -> bool:
    """Accept the code of the 30-second step ``now`` falls in, and, for the first ``drift``
    seconds of a step, the code of the previous one (a code typed as the app rolled over, or
    a phone clock a few seconds behind). So a code works for at most 30 + ``drift`` seconds
    and at most two codes are ever valid at once. ``now`` is the server's clock, never a
    time the client sent."""
    return totp_step(secret, code, now, drift=drift) is not None


def totp_step(secret: str, code: str, now: float, *, drift: float = TOTP_DRIFT) -> int | None:
    """The time step whose code ``code`` is (the steps :func:`verify_totp` accepts), or
    ``None``. The caller keeps the last step it accepted per account and refuses that step or
    an earlier one again, so a code works once (RFC 6238 section 5.2)."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    found = None
    for step in sorted({int(now // STEP), int((now - drift) // STEP)}):  # no early exit
        if hmac.compare_digest(_code(secret, step), code):
            found = step
    return found
