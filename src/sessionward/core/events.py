"""Lifecycle events as typed data, and the bus that delivers them.

Events carry the public session id, never a token or secret. Subscribers are plain callables;
one that raises is logged and skipped, so an events sink can never break authentication.
The default subscriber writes one structured log line per event to the
``sessionward.events`` logger (theft, failed authentication, changed factors and the end of
every session at WARNING, rejections at DEBUG, the rest at INFO).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

__all__ = [
    "AllSessionsRevoked",
    "AuthenticationAttempt",
    "Event",
    "EventBus",
    "FactorChanged",
    "RevokeReason",
    "RiskAssessed",
    "SessionBound",
    "SessionCreated",
    "SessionElevated",
    "SessionExpired",
    "SessionRevoked",
    "SessionRotated",
    "SessionValidatedWithRotation",
    "TheftSuspected",
    "TokenRejected",
    "log_event",
]

_log = logging.getLogger("sessionward.events")


class RevokeReason(enum.StrEnum):
    """Why a session ended (stable codes for logs, metrics and the admin page)."""

    LOGOUT = "logout"
    LOGOUT_EVERYWHERE = "logout-everywhere"
    LOGIN_UPGRADE = "login-upgrade"
    NEW_LOGIN = "new-login"  # a login that ends the user's other sessions
    ADMIN = "admin"
    THEFT = "theft"
    SESSION_LIMIT = "session-limit"
    PASSWORD_CHANGE = "password-change"  # noqa: S105 - a reason code, not a password
    ACCOUNT_DISABLED = "account-disabled"
    EXPIRED = "expired"
    RISK = "risk"
    IDP_LOGOUT = "idp-logout"  # the identity provider ended its session (back-channel logout)
    SHARED_SIGNAL = "shared-signal"  # a Shared Signals transmitter revoked the session (CAEP)
    CREDENTIAL_COMPROMISE = "credential-compromise"  # a RISC credential-compromise event


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event: what happened to which session, when."""

    kind: ClassVar[str] = "event"
    session_id: str | None
    user_id: str | None
    at: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = self.kind
        return out


@dataclass(frozen=True, slots=True)
class SessionCreated(Event):
    kind: ClassVar[str] = "created"
    anonymous: bool = False
    upgraded_from: str | None = None


@dataclass(frozen=True, slots=True)
class SessionValidatedWithRotation(Event):
    kind: ClassVar[str] = "validated-with-rotation"
    generation: int = 0


@dataclass(frozen=True, slots=True)
class SessionRotated(Event):
    kind: ClassVar[str] = "rotated"
    generation: int = 0
    cause: str = "explicit"


@dataclass(frozen=True, slots=True)
class SessionElevated(Event):
    kind: ClassVar[str] = "elevated"
    auth_level: int = 0


@dataclass(frozen=True, slots=True)
class SessionRevoked(Event):
    kind: ClassVar[str] = "revoked"
    reason: str = RevokeReason.LOGOUT


@dataclass(frozen=True, slots=True)
class AllSessionsRevoked(Event):
    """Every session of every user ended at once (``kept``: the one spared, if any). One
    event for the lot: ``count`` says how many."""

    kind: ClassVar[str] = "all-revoked"
    count: int = 0
    reason: str = RevokeReason.ADMIN
    kept: str | None = None


@dataclass(frozen=True, slots=True)
class SessionExpired(Event):
    kind: ClassVar[str] = "expired"
    deadline: str = "idle"


@dataclass(frozen=True, slots=True)
class TheftSuspected(Event):
    kind: ClassVar[str] = "theft-suspected"
    generation: int = 0
    detail: str = "rotated-secret-reused"


@dataclass(frozen=True, slots=True)
class SessionBound(Event):
    """The session was bound to a key its client keeps (``method``: ``dbsc``, ``webcrypto``
    or ``dpop``; ``jkt``: the key's RFC 7638 thumbprint)."""

    kind: ClassVar[str] = "bound"
    method: str = "dbsc"
    jkt: str = ""


@dataclass(frozen=True, slots=True)
class TokenRejected(Event):
    kind: ClassVar[str] = "rejected"
    reason: str = "invalid"


@dataclass(frozen=True, slots=True)
class RiskAssessed(Event):
    """The risk engine found a request's context unusual: ``decision`` is ``log``,
    ``step_up`` or ``revoke``; ``reasons`` are ``(code, weight, sentence)``, heaviest first.
    The sentences name networks and browsers, never an address or a user-agent string."""

    kind: ClassVar[str] = "risk"
    decision: str = "log"
    score: float = 0.0
    reasons: tuple[tuple[str, float, str], ...] = ()


@dataclass(frozen=True, slots=True)
class AuthenticationAttempt(Event):
    """An application checked a factor (a password, a one-time code, a setup code). For a
    failure ``user_id`` is the account named in the attempt, ``session_id`` the session it
    came in (its context history holds the client's address and user agent)."""

    kind: ClassVar[str] = "authentication"
    realm: str = ""
    factor: str = "password"
    succeeded: bool = False
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class FactorChanged(Event):
    """An authentication factor of ``user_id`` was set, replaced or removed: tell the user."""

    kind: ClassVar[str] = "factor-changed"
    realm: str = ""
    factor: str = "password"
    change: str = "replaced"
    ip: str | None = None


Subscriber = Callable[[Event], object]


def log_event(event: Event) -> None:
    """The default subscriber: one structured line on the ``sessionward.events`` logger."""
    if isinstance(event, TheftSuspected | AllSessionsRevoked | FactorChanged):
        level = logging.WARNING
    elif isinstance(event, RiskAssessed):
        level = logging.INFO if event.decision == "log" else logging.WARNING
    elif isinstance(event, AuthenticationAttempt):
        level = logging.INFO if event.succeeded else logging.WARNING
    elif isinstance(event, TokenRejected):
        level = logging.DEBUG
    else:
        level = logging.INFO
    if _log.isEnabledFor(level):
        fields = event.to_dict()
        text = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        _log.log(level, "session %s", text, extra={"sessionward_event": fields})


class EventBus:
    """Delivers each event to every subscriber, in subscription order."""

    __slots__ = ("_subscribers",)

    def __init__(self, subscribers: list[Subscriber] | None = None) -> None:
        self._subscribers: list[Subscriber] = (
            [log_event] if subscribers is None else list(subscribers)
        )

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it again."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def emit(self, event: Event) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                _log.exception("event subscriber %r failed on %s", subscriber, event.kind)
