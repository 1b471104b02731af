"""Password hashing (argon2id, argon2-cffi's defaults: RFC 9106's second recommended
profile) and TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps) for the admin page and the demo.

Hashing takes tens of milliseconds by design: call it off the event loop
(:func:`hash_password_async`, :func:`verify_password_async`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from starlette.concurrency import run_in_threadpool

__all__ = [
    "DUMMY_HASH",
    "hash_password_async",
    "new_totp_secret",
    "totp_now",
    "totp_step",
    "totp_uri",
    "verify_password_async",
    "verify_totp",
]

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
    return _code(secret, int(now // 30))


def verify_totp(secret: str, code: str, now: float, *, window: int = 1) -> bool:
    """Accept the current step and ``window`` steps either side (clock drift)."""
    return totp_step(secret, code, now, window=window) is not None


def totp_step(secret: str, code: str, now: float, *, window: int = 1) -> int | None:
    """The time step whose code ``code`` is, among the current one and ``window`` either
    side, or ``None``. The caller keeps the last step it accepted per account and refuses that
    step or an earlier one again, so a code works once (RFC 6238 section 5.2)."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    step = int(now // 30)
    found = None
    for delta in range(-window, window + 1):  # no early exit
        if hmac.compare_digest(_code(secret, step + delta), code):
            found = step + delta
    return found
