"""API keys: ``swk_<id>_<secret>``, stored as sha256, with one of three nested scopes.

* ``validate``: validate tokens only (and read metrics).
* ``issue``: everything a backend needs for its users' sessions (issue, validate, rotate,
  elevate, update data, revoke by token, list and revoke a user's sessions).
* ``admin``: also read and revoke any session by its public id.

Each key belongs to one application (``sessionward.service.tenancy``): it sees and touches
only that application's sessions and users.

The id (16 base64url characters) is public: it names the key in ``api-keys list`` and logs. The
secret (256 bits) is shown once by ``api-keys create`` and never stored; the stored digest is
sha256 of the whole key, compared in constant time. A lookup result is cached per process for
``cache_seconds`` (default 5) of the ring's clock, so a revoked key stops working everywhere
within that time; an entry the clock shows as written in the future (the clock was set back)
counts as expired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Final

from sessionward.clock import Clock, SystemClock
from sessionward.errors import InvalidArgument
from sessionward.service.state import ApiKeyRow, ServiceState
from sessionward.service.tenancy import DEFAULT_APP, check_application

__all__ = [
    "KEY_PREFIX",
    "SCOPES",
    "ApiKey",
    "KeyRing",
    "create_key",
    "mint_key",
    "register_key",
    "scope_allows",
]

KEY_PREFIX: Final = "swk_"
SCOPES: Final = ("validate", "issue", "admin")
_ID_CHARS: Final = 16
_SHAPE = re.compile(KEY_PREFIX + f"[A-Za-z0-9_-]{{{_ID_CHARS}}}_[A-Za-z0-9_-]{{43}}")
_KEY_LENGTH: Final = len(KEY_PREFIX) + _ID_CHARS + 1 + 43


def scope_allows(held: str, needed: str) -> bool:
    """Scopes nest: ``admin`` includes ``issue``, which includes ``validate``."""
    return SCOPES.index(held) >= SCOPES.index(needed)


class ApiKey:
    """An authenticated caller: the key's public id, name, scope and application (never its
    secret)."""

    __slots__ = ("application", "id", "name", "scope")

    def __init__(self, key_id: str, name: str, scope: str, application: str = DEFAULT_APP) -> None:
        self.id, self.name, self.scope = key_id, name, scope
        self.application = application

    def allows(self, needed: str) -> bool:
        return scope_allows(self.scope, needed)

    def __repr__(self) -> str:
        return f"ApiKey(id={self.id!r}, scope={self.scope!r}, application={self.application!r})"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("ascii")).digest()


def _split(key: object) -> str | None:
    """The key id if ``key`` is shaped like an API key, else ``None``."""
    if not isinstance(key, str) or _SHAPE.fullmatch(key) is None:
        return None
    return key[len(KEY_PREFIX) : len(KEY_PREFIX) + _ID_CHARS]


def mint_key() -> str:
    """A new random key (not stored yet)."""
    key_id = base64.urlsafe_b64encode(secrets.token_bytes(12)).decode("ascii")
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
    return f"{KEY_PREFIX}{key_id}_{secret}"


def register_key(
    state: ServiceState,
    raw: str,
    scope: str,
    name: str,
    now: float,
    application: str = DEFAULT_APP,
) -> ApiKeyRow:
    """Store the digest of a minted key with its scope and application."""
    key_id = _split(raw)
    if key_id is None:
        raise InvalidArgument("not an API key")
    if scope not in SCOPES:
        raise InvalidArgument(f"scope must be one of {', '.join(SCOPES)}")
    if not name.isprintable() or len(name) > 100:
        raise InvalidArgument("key name must be printable and at most 100 characters")
    row = ApiKeyRow(key_id, _digest(raw), scope, name, now, None, check_application(application))
    state.add_key(row)
    return row


def create_key(
    state: ServiceState, scope: str, name: str, now: float, application: str = DEFAULT_APP
) -> tuple[str, ApiKeyRow]:
    """Mint and store a key; returns the raw key (show it once) and its stored row."""
    raw = mint_key()
    return raw, register_key(state, raw, scope, name, now, application)


class KeyRing:
    """Authenticates presented keys against the state, with a short per-process cache whose
    age ``clock`` measures (default: the system clock)."""

    def __init__(
        self, state: ServiceState, *, cache_seconds: float = 5.0, clock: Clock | None = None
    ) -> None:
        self.state = state
        self.cache_seconds = cache_seconds
        self.clock: Clock = clock or SystemClock()
        self._cache: dict[bytes, tuple[float, ApiKey]] = {}

    def authenticate(self, presented: object) -> ApiKey | None:
        """The key's identity, or ``None`` for anything that is not a live key.

        The cache is looked up first, by the sha256 of the presented text: only keys that
        passed every check below are cached, so a hit is one of them (the shape check is
        needed only on a miss)."""
        if not isinstance(presented, str) or len(presented) != _KEY_LENGTH:
            return None
        try:
            digest = _digest(presented)
        except UnicodeEncodeError:
            return None
        now = self.clock.now()
        hit = self._fresh(digest, now)
        if hit is not None:
            return hit
        return self._look_up(presented, digest, now)

    def cached(self, presented: str) -> ApiKey | None:
        """The key if it is in this process's cache (so known valid), else ``None``: no
        state lookup. The API checks the throttle only for keys not found here."""
        if len(presented) != _KEY_LENGTH or not presented.isascii():
            return None
        return self._fresh(_digest(presented), self.clock.now())

    def _fresh(self, digest: bytes, now: float) -> ApiKey | None:
        hit = self._cache.get(digest)
        if hit is not None and 0.0 <= now - hit[0] < self.cache_seconds:
            return hit[1]
        return None

    @staticmethod
    def key_id_of(presented: str) -> str | None:
        """The public id of a presented key (its throttle account), if it has a key's shape."""
        return _split(presented)

    def _look_up(self, presented: str, digest: bytes, now: float) -> ApiKey | None:
        key_id = _split(presented)
        if key_id is None:
            return None
        row = self.state.get_key(key_id)
        if row is None or row.revoked_at is not None or row.scope not in SCOPES:
            self._cache.pop(digest, None)
            return None
        if not hmac.compare_digest(digest, row.digest):
            return None
        key = ApiKey(row.id, row.name, row.scope, row.application)
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[digest] = (now, key)
        return key
