"""The claims of a verified logout token or Security Event Token, checked and reduced to what
the receiver acts on. Pure: the caller verified the signature and passes ``now``.

* :func:`logout_request` follows OpenID Connect Back-Channel Logout 1.0 §2.6: ``iss``,
  ``aud``, ``iat`` within a window (and ``exp`` when present), a ``jti``, the ``events``
  member with the back-channel-logout URI mapped to a JSON object, ``sid`` and/or ``sub``,
  and no ``nonce`` (so an ID token can never pass as a logout token).
* :func:`set_signals` follows RFC 8417 and the Shared Signals Framework 1.0: the same
  ``iss``/``aud``/``iat``/``jti`` checks, then the events this receiver understands, each with
  its subject (``sub_id``, or the event's own ``subject``): CAEP ``session-revoked``, RISC
  ``account-disabled`` and ``credential-compromise``. Other events are accepted and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from sessionward.core.jws import SignedJwt
from sessionward.signals.keys import SignalRejected

__all__ = [
    "ACCOUNT_DISABLED",
    "BACKCHANNEL_LOGOUT",
    "CREDENTIAL_COMPROMISE",
    "SESSION_REVOKED",
    "LogoutRequest",
    "Signal",
    "TimeWindow",
    "logout_request",
    "set_signals",
]

BACKCHANNEL_LOGOUT: Final = "http://schemas.openid.net/event/backchannel-logout"
SESSION_REVOKED: Final = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
ACCOUNT_DISABLED: Final = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
CREDENTIAL_COMPROMISE: Final = (
    "https://schemas.openid.net/secevent/risc/event-type/credential-compromise"
)
SignalKind = Literal["session-revoked", "account-disabled", "credential-compromise"]
_KINDS: Final[dict[str, SignalKind]] = {
    SESSION_REVOKED: "session-revoked",
    ACCOUNT_DISABLED: "account-disabled",
    CREDENTIAL_COMPROMISE: "credential-compromise",
}
_MAX_TEXT: Final = 512
_LOGOUT_TYPES: Final = (None, "logout+jwt", "JWT")
_SET_TYPES: Final = (None, "secevent+jwt")


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """How old (``max_age`` seconds) a token's ``iat`` may be, and the clock ``skew``
    tolerated in either direction. A ``jti`` is remembered for ``max_age + 2 * skew``: a
    replay after that is refused as too old."""

    max_age: float = 300.0
    skew: float = 60.0

    @property
    def replay_window(self) -> float:
        return self.max_age + 2 * self.skew


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    """What a valid logout token asks: end the sessions of ``sid`` at ``iss`` (or, without
    ``sid``, every session of ``sub``)."""

    iss: str
    sid: str | None
    sub: str | None
    jti: str


@dataclass(frozen=True, slots=True)
class Signal:
    """One event of a SET that the receiver acts on, with its subject: an identity
    provider's session (``sid``) and/or user (``sub``), both at ``iss``."""

    kind: SignalKind
    iss: str
    sid: str | None
    sub: str | None


def _text(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= _MAX_TEXT:
        return value
    return None


def check_common(
    claims: dict[str, Any], *, issuer: str, audience: str, now: float, window: TimeWindow
) -> str:
    """The ``jti`` once ``iss``, ``aud``, ``iat`` (and ``exp``, when present) pass."""
    if claims.get("iss") != issuer:
        raise SignalRejected("wrong-issuer", "invalid_issuer")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience not in audiences:
        raise SignalRejected("wrong-audience", "invalid_audience")
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise SignalRejected("no-iat")
    if iat > now + window.skew:
        raise SignalRejected("issued-in-future")
    if iat < now - window.max_age - window.skew:
        raise SignalRejected("too-old")
    exp = claims.get("exp")
    if exp is not None and (
        isinstance(exp, bool) or not isinstance(exp, int | float) or exp <= now - window.skew
    ):
        raise SignalRejected("expired")
    jti = _text(claims.get("jti"))
    if jti is None:
        raise SignalRejected("no-jti")
    return jti


def logout_request(
    jwt: SignedJwt, *, issuer: str, audience: str, now: float, window: TimeWindow
) -> LogoutRequest:
    """The request of a verified logout token, or ``SignalRejected`` (``invalid_request``)."""
    if jwt.header.get("typ") not in _LOGOUT_TYPES:
        raise SignalRejected("wrong-typ")
    claims = jwt.claims
    jti = check_common(claims, issuer=issuer, audience=audience, now=now, window=window)
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT), dict):
        raise SignalRejected("wrong-events")
    if "nonce" in claims:
        raise SignalRejected("nonce-present")
    sid, sub = _text(claims.get("sid")), _text(claims.get("sub"))
    if ("sid" in claims and sid is None) or ("sub" in claims and sub is None):
        raise SignalRejected("bad-subject")
    if sid is None and sub is None:
        raise SignalRejected("no-subject")
    return LogoutRequest(issuer, sid, sub, jti)


def set_signals(
    jwt: SignedJwt, *, issuer: str, audience: str, now: float, window: TimeWindow
) -> tuple[str, list[Signal]]:
    """The ``jti`` and the understood events of a verified SET, or ``SignalRejected``."""
    if jwt.header.get("typ") not in _SET_TYPES:
        raise SignalRejected("wrong-typ")
    claims = jwt.claims
    jti = check_common(claims, issuer=issuer, audience=audience, now=now, window=window)
    events = claims.get("events")
    if not isinstance(events, dict) or not events:
        raise SignalRejected("wrong-events")
    out: list[Signal] = []
    for uri, payload in events.items():
        if not isinstance(payload, dict):
            raise SignalRejected("wrong-events")
        kind = _KINDS.get(uri)
        if kind is None:
            continue
        subject = payload.get("subject", claims.get("sub_id"))
        signal = _signal(kind, subject, issuer)
        if signal is not None:
            out.append(signal)
    return jti, out


def _signal(kind: SignalKind, subject: object, issuer: str) -> Signal | None:
    """The subject an event names, as (iss, sid, sub): ``iss_sub`` (a user), ``opaque`` (a
    session, for ``session-revoked`` only) or ``complex`` with ``session`` and/or ``user``.
    Other formats (``email``, ``phone_number``, ...) name nothing this receiver indexes."""
    if not isinstance(subject, dict):
        return None
    form = subject.get("format")
    if form == "iss_sub":
        iss, sub = _text(subject.get("iss")), _text(subject.get("sub"))
        return Signal(kind, iss, None, sub) if iss and sub else None
    if form == "opaque" and kind == "session-revoked":
        sid = _text(subject.get("id"))
        return Signal(kind, issuer, sid, None) if sid else None
    if form != "complex":
        return None
    user, session = subject.get("user"), subject.get("session")
    iss, sub = issuer, None
    if isinstance(user, dict) and user.get("format") == "iss_sub":
        iss, sub = _text(user.get("iss")) or issuer, _text(user.get("sub"))
    sid = None
    if kind == "session-revoked" and isinstance(session, dict):
        if session.get("format") == "opaque":
            sid = _text(session.get("id"))
        elif session.get("format") == "iss_sub":  # a session named within its issuer
            iss, sid = _text(session.get("iss")) or iss, _text(session.get("sub"))
    if sid is None and sub is None:
        return None
    return Signal(kind, iss, sid, sub)
