"""A key set with a rotation lifecycle, its JWKS document and its on-disk form.

Every key is in one state:

``next``
    Published (in the JWKS, accepted by verifiers) but not yet signing. A key must stay here
    for ``publish_lead`` seconds — longer than any verifier caches the JWKS — before it may
    sign, so no verifier ever sees a token from a key it has not heard of.
``active``
    The one key that signs. Also verifies.
``retired``
    Verifies only, until ``verify_until``: the moment the last token it can have signed has
    expired (retirement + ``max_token_lifetime`` + ``skew`` + ``retire_margin``). Then
    :meth:`KeySet.prune` drops it. ``verify_until = None`` keeps a verification-only key
    until the configuration removes it (keys of another issuer, loaded from its JWKS).

:meth:`KeySet.revoke` is the emergency path for a compromised key: the key leaves the set at
once and its ``kid`` goes on a revoked list, so every token it signed fails verification from
that moment (the verified-token cache is invalidated through :attr:`KeySet.epoch`).

Pure: no I/O, no clock; callers pass ``now``. Mutations swap whole dictionaries under a lock,
so verifiers on other threads always read a consistent state without locking.
"""

from __future__ import annotations

import enum
import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from sessionward.errors import ConfigError
from sessionward.jwt.keys import Key, generate_key, key_from_jwk

__all__ = ["KeyEntry", "KeySet", "KeyState"]

DOCUMENT_KIND: Final = "sessionward-keyset"
DOCUMENT_VERSION: Final = 1
MAX_TOKEN_LIFETIME: Final = 15 * 60
MAX_SKEW: Final = 60.0


class KeyState(enum.StrEnum):
    NEXT = "next"
    ACTIVE = "active"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One key and where it is in its lifecycle (times in seconds since the epoch)."""

    key: Key
    state: KeyState
    published_at: float
    since: float
    verify_until: float | None = None

    def to_json(self) -> dict[str, Any]:
        jwk = self.key.private_jwk() if self.key.can_sign else self.key.public_jwk()
        return {
            "state": str(self.state),
            "published_at": self.published_at,
            "since": self.since,
            "verify_until": self.verify_until,
            "jwk": jwk,
        }


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"keyset document: {name} must be a finite number")
    return float(value)


class KeySet:
    """Signing and verification keys of one issuer, with rotation and emergency revocation.

    ``max_token_lifetime`` (at most 900 s) and ``skew`` (at most 60 s) must match the issuer
    and verifier settings: they decide how long a retired key keeps verifying.
    ``publish_lead`` is the minimum time a ``next`` key is published before it signs; set it
    above the ``Cache-Control: max-age`` of the JWKS endpoint. ``retire_margin`` adds time for
    processes that reload the key file late and keep signing with the old key meanwhile.
    """

    def __init__(
        self,
        entries: Iterable[KeyEntry] = (),
        *,
        revoked: Mapping[str, float] | None = None,
        max_token_lifetime: float = MAX_TOKEN_LIFETIME,
        skew: float = MAX_SKEW,
        publish_lead: float = 600.0,
        retire_margin: float = 0.0,
    ) -> None:
        if not 0 < max_token_lifetime <= MAX_TOKEN_LIFETIME:
            raise ConfigError("max_token_lifetime must be in (0, 900] seconds")
        if not 0 <= skew <= MAX_SKEW:
            raise ConfigError("skew must be in [0, 60] seconds")
        if publish_lead < 0 or retire_margin < 0:
            raise ConfigError("publish_lead and retire_margin must not be negative")
        self.max_token_lifetime = float(max_token_lifetime)
        self.skew = float(skew)
        self.publish_lead = float(publish_lead)
        self.retire_margin = float(retire_margin)
        #: Bumped on every change; verifiers rebuild their tables and drop cached tokens.
        self.epoch = 0
        #: When the next retired key expires (``inf`` if none); verifiers prune lazily.
        self.prune_due = math.inf
        self._lock = threading.Lock()
        self._revoked: dict[str, float] = dict(revoked or {})
        self._entries: tuple[KeyEntry, ...] = ()
        self._verify: dict[str, Key] = {}
        self._install(tuple(entries))

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def generate(cls, alg: str = "ES256", *, now: float, **options: Any) -> KeySet:
        """A new key set with one fresh active key."""
        return cls([KeyEntry(generate_key(alg), KeyState.ACTIVE, now, now)], **options)

    @classmethod
    def of(cls, signing: Key, *verify_only: Key, now: float = 0.0, **options: Any) -> KeySet:
        """``signing`` is active; ``verify_only`` keys verify until the configuration drops
        them (for keys loaded from files or the environment, where the file is the state)."""
        entries = [KeyEntry(signing, KeyState.ACTIVE, now, now)]
        entries += [KeyEntry(k, KeyState.RETIRED, now, now) for k in verify_only]
        return cls(entries, **options)

    @classmethod
    def for_verification(cls, keys: Iterable[Key], **options: Any) -> KeySet:
        """A key set that only verifies (for example another issuer's JWKS)."""
        return cls([KeyEntry(k.public_key(), KeyState.RETIRED, 0.0, 0.0) for k in keys], **options)

    @classmethod
    def from_jwks(cls, document: object, **options: Any) -> KeySet:
        """A verification-only key set from a JWKS document (public keys only)."""
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ConfigError("a JWKS is an object with a 'keys' list")
        keys = [key_from_jwk(jwk) for jwk in document["keys"]]
        if any(k.can_sign for k in keys):
            raise ConfigError("a JWKS must not contain private keys")
        return cls.for_verification(keys, **options)

    def _install(self, entries: tuple[KeyEntry, ...]) -> None:
        kids = [e.key.kid for e in entries]
        if len(set(kids)) != len(kids):
            raise ConfigError("two keys share a kid")
        if sum(e.state is KeyState.ACTIVE for e in entries) > 1:
            raise ConfigError("a key set has at most one active key")
        if sum(e.state is KeyState.NEXT for e in entries) > 1:
            raise ConfigError("a key set has at most one next key")
        if len({e.key.symmetric for e in entries}) > 1:
            raise ConfigError("do not mix symmetric (HS256) and asymmetric keys in one key set")
        for entry in entries:
            if entry.key.kid in self._revoked:
                raise ConfigError(f"key {entry.key.kid!r} was revoked and cannot come back")
            if entry.state is KeyState.ACTIVE and not entry.key.can_sign:
                raise ConfigError("the active key must be a private key")
        self._entries = entries
        self._verify = {e.key.kid: e.key for e in entries}
        deadlines = [e.verify_until for e in entries if e.verify_until is not None]
        self.prune_due = min(deadlines, default=math.inf)
        self.epoch += 1

    # -- reading (hot path: no lock) ---------------------------------------------------------

    def get(self, kid: str) -> Key | None:
        """The verification key named ``kid``, or ``None``. ``kid`` is only a dictionary key."""
        return self._verify.get(kid)

    def is_revoked(self, kid: str) -> bool:
        return kid in self._revoked

    @property
    def entries(self) -> tuple[KeyEntry, ...]:
        return self._entries

    @property
    def revoked(self) -> dict[str, float]:
        return dict(self._revoked)

    def _find(self, state: KeyState) -> KeyEntry | None:
        return next((e for e in self._entries if e.state is state), None)

    @property
    def active(self) -> KeyEntry | None:
        return self._find(KeyState.ACTIVE)

    @property
    def next(self) -> KeyEntry | None:
        return self._find(KeyState.NEXT)

    @property
    def signing_key(self) -> Key:
        """The active key; ``ConfigError`` if there is none."""
        entry = self.active
        if entry is None:
            raise ConfigError("the key set has no active signing key")
        return entry.key

    def verification_keys(self) -> dict[str, Key]:
        return dict(self._verify)

    @property
    def retention(self) -> float:
        """How long a retired key keeps verifying."""
        return self.max_token_lifetime + self.skew + self.retire_margin

    # -- lifecycle --------------------------------------------------------------------------

    def add_next(self, key: Key, *, now: float) -> None:
        """Publish ``key`` as the next signing key (it verifies from now on)."""
        with self._lock:
            if self.next is not None:
                raise ConfigError("the key set already has a next key")
            self._install((*self._entries, KeyEntry(key, KeyState.NEXT, now, now)))

    def ready_at(self) -> float | None:
        """When the next key may start signing (``None`` without a next key)."""
        entry = self.next
        return None if entry is None else entry.published_at + self.publish_lead

    def rotate(self, *, now: float, next_key: Key | None = None, force: bool = False) -> Key:
        """Make the next key active and retire the active one; optionally publish
        ``next_key`` as the new next key. Returns the new active key.

        Refuses (``ConfigError``) while the next key has been published for less than
        ``publish_lead`` seconds, unless ``force`` (verifiers with a cached JWKS will then
        reject tokens from the new key until they refetch).
        """
        with self._lock:
            upcoming = self.next
            if upcoming is None:
                raise ConfigError("no next key to rotate to; publish one with add_next first")
            if not upcoming.key.can_sign:
                raise ConfigError("the next key is a public key and cannot sign")
            ready = upcoming.published_at + self.publish_lead
            if now < ready and not force:
                raise ConfigError(
                    f"the next key is published for {now - upcoming.published_at:.0f} s; "
                    f"it may sign after {self.publish_lead:.0f} s"
                )
            entries = [
                self._retired(e, now) if e.state is KeyState.ACTIVE else e
                for e in self._entries
                if e is not upcoming
            ]
            entries.insert(0, replace(upcoming, state=KeyState.ACTIVE, since=now))
            if next_key is not None:
                entries.append(KeyEntry(next_key, KeyState.NEXT, now, now))
            self._install(tuple(entries))
            return upcoming.key

    def _retired(self, entry: KeyEntry, now: float) -> KeyEntry:
        return replace(entry, state=KeyState.RETIRED, since=now, verify_until=now + self.retention)

    def retire(self, kid: str, *, now: float) -> None:
        """Stop signing or accepting ``kid`` gracefully: it verifies for ``retention`` more
        seconds. Retiring the active key leaves the set unable to sign until a rotation."""
        with self._lock:
            self._install(
                tuple(self._retired(e, now) if e.key.kid == kid else e for e in self._entries)
            )

    def revoke(self, kid: str, *, now: float, replacement: Key | None = None) -> None:
        """Emergency: ``kid`` is compromised. Everything it signed stops verifying now.

        If it was the active key, the next key (or ``replacement``) becomes active at once,
        without waiting for ``publish_lead``; with neither, the set can no longer sign.
        """
        with self._lock:
            if kid not in self._verify and kid not in self._revoked:
                raise ConfigError(f"no key {kid!r} in the key set")
            was_active = any(e.key.kid == kid and e.state is KeyState.ACTIVE for e in self._entries)
            entries = [e for e in self._entries if e.key.kid != kid]
            if was_active and replacement is not None:
                entries = [e for e in entries if e.key.kid != replacement.kid]
                entries.insert(0, KeyEntry(replacement, KeyState.ACTIVE, now, now))
            elif was_active:
                entries = [
                    replace(e, state=KeyState.ACTIVE, since=now) if e.state is KeyState.NEXT else e
                    for e in entries
                ]
            self._revoked[kid] = now
            self._install(tuple(entries))

    def prune(self, now: float) -> list[str]:
        """Drop retired keys whose ``verify_until`` has passed; returns their kids."""
        if now < self.prune_due:
            return []
        with self._lock:
            gone = [
                e for e in self._entries if e.verify_until is not None and now >= e.verify_until
            ]
            if gone:
                self._install(tuple(e for e in self._entries if e not in gone))
            return [e.key.kid for e in gone]

    # -- documents --------------------------------------------------------------------------

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public JWKS: active, next and still-verifying retired keys (never a
        symmetric key, never private members)."""
        order = {KeyState.ACTIVE: 0, KeyState.NEXT: 1, KeyState.RETIRED: 2}
        entries = sorted(self._entries, key=lambda e: order[e.state])
        return {"keys": [e.key.public_jwk() for e in entries if not e.key.symmetric]}

    def to_document(self) -> dict[str, Any]:
        """The full state including private keys, for a key file (keep it secret)."""
        return {
            "kind": DOCUMENT_KIND,
            "version": DOCUMENT_VERSION,
            "keys": [e.to_json() for e in self._entries],
            "revoked": dict(sorted(self._revoked.items())),
        }

    @classmethod
    def from_document(cls, document: object, **options: Any) -> KeySet:
        """Rebuild a key set from :meth:`to_document` output."""
        if not isinstance(document, dict) or document.get("kind") != DOCUMENT_KIND:
            raise ConfigError("not a sessionward keyset document")
        if document.get("version") != DOCUMENT_VERSION:
            raise ConfigError("unsupported keyset document version")
        raw_keys, raw_revoked = document.get("keys"), document.get("revoked", {})
        if not isinstance(raw_keys, list) or not isinstance(raw_revoked, dict):
            raise ConfigError("keyset document: 'keys' must be a list, 'revoked' an object")
        entries = [_entry(item) for item in raw_keys]
        revoked = {str(k): _number(v, "revoked time") for k, v in raw_revoked.items()}
        return cls(entries, revoked=revoked, **options)

    def __repr__(self) -> str:
        states = ", ".join(f"{e.key.kid}:{e.state}" for e in self._entries)
        return f"KeySet({states})"


def _entry(item: object) -> KeyEntry:
    if not isinstance(item, dict):
        raise ConfigError("keyset document: each key is an object")
    try:
        state = KeyState(str(item.get("state")))
    except ValueError:
        raise ConfigError("keyset document: unknown key state") from None
    until = item.get("verify_until")
    return KeyEntry(
        key=key_from_jwk(item.get("jwk")),
        state=state,
        published_at=_number(item.get("published_at"), "published_at"),
        since=_number(item.get("since"), "since"),
        verify_until=None if until is None else _number(until, "verify_until"),
    )
