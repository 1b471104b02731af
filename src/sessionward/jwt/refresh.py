"""Refresh-token families, the pure part: what a refresh session record carries and how a
rotation result is handed to concurrent requests.

A refresh token is an ordinary sessionward token (``sw1_…``) of a *backing session* created
by :class:`~sessionward.jwt.TokenService`. Its record's data holds, under :data:`FAMILY_KEY`:

``used``
    ``[digest, grace_end]`` for the last :data:`USED_LIMIT` secrets rotated out of the family
    (``digest`` = the first 16 bytes of ``sha256(secret)``, base64url — the same kind of value
    the store already keeps as ``secret_hash``; never a raw token). A presentation of one of
    them after ``grace_end`` is reuse of a rotated refresh token: theft.
``handoff``
    ``{"g": generation, "box": …}``: the pair issued by the latest rotation, AES-256-GCM
    encrypted under a key derived from the *previous* secret, with the session id and the
    generation as associated data. A request that presents that previous secret inside the
    grace window (another tab, a retry after a lost response) can decrypt it and gets the very
    same pair; nobody without the old secret can, and the store never sees a usable token.

Everything here is pure (no I/O, times passed in); the service does the store round trips.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sessionward.core import token as tokens
from sessionward.core.jose import b64decode, b64encode
from sessionward.core.record import SessionRecord

__all__ = ["FAMILY_KEY", "USED_LIMIT", "TokenPair"]

FAMILY_KEY: Final = "_sessionward_refresh"
USED_LIMIT: Final = 32
_HANDOFF_INFO: Final = b"sessionward refresh handoff v1\x00"


class TokenPair(NamedTuple):
    """What a login or refresh returns. ``repr`` never shows the tokens.

    ``access_expires_at`` is the access token's ``exp``; ``refresh_expires_at`` is when the
    refresh token dies unless used again (the session's idle deadline, capped by its absolute
    one). ``session_id`` is the public id of the backing session (the tokens' ``sid``).
    """

    access_token: str
    refresh_token: str
    access_expires_at: int
    refresh_expires_at: float
    session_id: str

    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 scheme name, not a secret

    def response(self, now: float) -> dict[str, Any]:
        """An OAuth-style token response body (RFC 6749 §5.1) for ``now``."""
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": max(0, int(self.access_expires_at - now)),
            "refresh_token": self.refresh_token,
        }

    def __repr__(self) -> str:
        return (
            f"TokenPair(<access>, <refresh>, access_expires_at={self.access_expires_at}, "
            f"session_id={self.session_id!r})"
        )


def digest_of(secret: bytes) -> str:
    """The ``used``-list entry for a secret: 128 bits of its SHA-256, base64url."""
    return b64encode(hashlib.sha256(secret).digest()[:16])


def new_family() -> dict[str, Any]:
    return {"used": [], "handoff": None}


def family_of(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The family state in a session's data, or ``None`` when it is not a refresh session."""
    family = data.get(FAMILY_KEY)
    if not isinstance(family, dict) or not isinstance(family.get("used"), list):
        return None
    return family


def rotated_out(family: Mapping[str, Any], secret: bytes, now: float) -> str | None:
    """Whether ``secret`` is one this family already rotated out: ``"theft"`` when its grace
    window has passed, ``"stale"`` while it is still inside it, ``None`` if never seen."""
    digest = digest_of(secret)
    for entry in family.get("used", ()):
        if (
            isinstance(entry, list)
            and len(entry) == 2
            and isinstance(entry[0], str)
            and hmac.compare_digest(entry[0], digest)
        ):
            grace_end = entry[1]
            return "stale" if isinstance(grace_end, int | float) and now < grace_end else "theft"
    return None


def _aead(old_secret: bytes) -> AESGCM:
    return AESGCM(hashlib.sha256(_HANDOFF_INFO + old_secret).digest())


def _aad(session_id: str, generation: int) -> bytes:
    return f"{session_id}:{generation}".encode("ascii")


def seal(old_secret: bytes, session_id: str, generation: int, pair: TokenPair) -> str:
    """Encrypt ``pair`` so that only a holder of ``old_secret`` can read it back."""
    nonce = secrets.token_bytes(12)
    plain = json.dumps(
        [pair.access_token, pair.refresh_token, pair.access_expires_at, pair.refresh_expires_at],
        separators=(",", ":"),
    ).encode("ascii")
    return b64encode(nonce + _aead(old_secret).encrypt(nonce, plain, _aad(session_id, generation)))


def open_handoff(record: SessionRecord, old_secret: bytes, now: float) -> TokenPair | None:
    """The pair of the record's latest rotation, if ``old_secret`` is the secret that rotation
    replaced and the grace window is still open; ``None`` otherwise."""
    previous = record.prev_secret_hash
    if previous is None or now >= record.grace_until:
        return None
    if not tokens.secret_matches(old_secret, previous):
        return None
    family = family_of(json.loads(record.data))
    handoff = None if family is None else family.get("handoff")
    if not isinstance(handoff, dict) or handoff.get("g") != record.generation:
        return None
    box = handoff.get("box")
    try:
        raw = b64decode(box) if isinstance(box, str) else b""
        plain = _aead(old_secret).decrypt(raw[:12], raw[12:], _aad(record.id, record.generation))
        access, refresh, access_exp, refresh_exp = json.loads(plain)
    except (ValueError, InvalidTag, TypeError):
        return None
    return TokenPair(access, refresh, access_exp, refresh_exp, record.id)


def family_after_rotation(
    family: Mapping[str, Any],
    old_secret: bytes,
    *,
    generation: int,
    grace_end: float,
    pair: TokenPair,
    session_id: str,
) -> dict[str, Any]:
    """The family state to store with a rotation away from ``old_secret``."""
    used = [e for e in family.get("used", ()) if isinstance(e, list)]
    used.append([digest_of(old_secret), grace_end])
    return {
        "used": used[-USED_LIMIT:],
        "handoff": {"g": generation, "box": seal(old_secret, session_id, generation, pair)},
    }
