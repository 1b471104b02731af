"""Standard Webhooks signatures (https://www.standardwebhooks.com/, spec version 1).

A sender signs ``"<webhook-id>.<webhook-timestamp>.<body>"`` with HMAC-SHA256 under the
endpoint's secret and sends three headers::

    webhook-id: evt_00000000000000000042
    webhook-timestamp: 1614265330
    webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=

A secret is written ``whsec_<base64 of 24 to 64 random bytes>``. During a rotation an endpoint
holds several secrets; the message then carries one ``v1,`` signature per secret, separated
by spaces, and a receiver accepts the message when any of them verifies under a secret it
holds. Receivers also refuse a timestamp more than ``tolerance`` seconds away from their clock
(a replay window), and remember ``webhook-id`` to drop the duplicates that at-least-once
delivery sends.

Every signature comparison is constant-time (:func:`hmac.compare_digest`); :class:`Secret`
never prints its key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from typing import Final

from sessionward.errors import InvalidArgument, SessionwardError

__all__ = [
    "SECRET_PREFIX",
    "TOLERANCE",
    "Secret",
    "WebhookVerificationError",
    "sign",
    "signature_header",
    "signed_headers",
    "verify",
]

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the format's prefix, not a secret
#: Seconds a receiver accepts between the signature's timestamp and its own clock (both ways).
TOLERANCE: Final = 300
_MIN_KEY: Final = 24
_MAX_KEY: Final = 64
_NEW_KEY: Final = 32
_MAX_SIGNATURES: Final = 8


class WebhookVerificationError(SessionwardError):
    """The message is not one signed by a secret we hold (one opaque error: which check
    failed is in ``reason``, for the receiver's logs, never for the sender)."""

    def __init__(self, reason: str) -> None:
        super().__init__("webhook signature verification failed")
        self.reason = reason


class Secret:
    """An endpoint's HMAC key. ``str(secret)`` and ``repr`` are masked; :meth:`reveal` gives
    the ``whsec_`` text, shown to the endpoint's owner once."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not _MIN_KEY <= len(key) <= _MAX_KEY:
            raise InvalidArgument(f"a webhook secret holds {_MIN_KEY} to {_MAX_KEY} bytes")
        self._key = key

    @classmethod
    def generate(cls) -> Secret:
        return cls(secrets.token_bytes(_NEW_KEY))

    @classmethod
    def parse(cls, text: str) -> Secret:
        """A secret from its ``whsec_`` text (the prefix is optional, as in the reference
        libraries)."""
        encoded = text.strip().removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument("a webhook secret is whsec_ followed by base64") from None
        return cls(key)

    def reveal(self) -> str:
        return SECRET_PREFIX + base64.b64encode(self._key).decode("ascii")

    def digest(self, message: bytes) -> bytes:
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "Secret('whsec_**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._key).digest())


def _content(message_id: str, timestamp: int, body: bytes) -> bytes:
    if "." in message_id or not message_id:
        raise InvalidArgument("a webhook id is non-empty and holds no '.'")
    return f"{message_id}.{timestamp}.".encode() + body


def sign(secret: Secret, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature."""
    digest = secret.digest(_content(message_id, timestamp, body))
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(
    secrets_: Iterable[Secret], message_id: str, timestamp: int, body: bytes
) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated."""
    parts = [sign(secret, message_id, timestamp, body) for secret in secrets_]
    if not parts:
        raise InvalidArgument("a webhook is signed with at least one secret")
    return " ".join(parts)


def signed_headers(
    secrets_: Iterable[Secret], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_, message_id, timestamp, body),
    }


def verify(
    secrets_: Iterable[Secret],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: float = TOLERANCE,
) -> str:
    """Check a received message; returns its ``webhook-id``. ``headers`` keys are matched
    case-insensitively. Raises :class:`WebhookVerificationError`."""
    lower = {k.lower(): v for k, v in headers.items()}
    message_id = lower.get("webhook-id", "")
    stamp = lower.get("webhook-timestamp", "")
    header = lower.get("webhook-signature", "")
    if not message_id or "." in message_id or not header:
        raise WebhookVerificationError("missing_headers")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise WebhookVerificationError("bad_timestamp")
    timestamp = int(stamp)
    if abs(now - timestamp) > tolerance:
        raise WebhookVerificationError("timestamp_outside_tolerance")
    offered = _offered(header)
    content = _content(message_id, timestamp, body)
    found = False
    for secret in secrets_:
        expected = secret.digest(content)
        for candidate in offered:
            found |= hmac.compare_digest(expected, candidate)
    if not found:
        raise WebhookVerificationError("no_matching_signature")
    return message_id


def _offered(header: str) -> list[bytes]:
    """The ``v1`` signatures of a header (other versions, such as ``v1a``, are skipped)."""
    offered = []
    for part in header.split(" ")[:_MAX_SIGNATURES]:
        version, _, encoded = part.partition(",")
        if version != "v1":
            continue
        try:
            offered.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return offered
