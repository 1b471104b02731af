"""Session events as CAEP 1.0 events: which sessionward event becomes which Shared Signal.

=========================================  ================================================
sessionward event                          CAEP event (``sub_id``)
=========================================  ================================================
``revoked`` (any reason)                   ``session-revoked`` (session + user)
``all-revoked``                            ``session-revoked`` (tenant: the application)
``factor-changed`` (password, totp)        ``credential-change`` (user)
``elevated``                               ``token-claims-change`` ``{"auth_level": n}``
                                           (session + user)
``bound``                                  ``device-compliance-change`` not-compliant →
                                           compliant (session + user + device)
``theft-suspected`` from a binding proof   ``device-compliance-change`` compliant →
                                           not-compliant (session + user + device)
=========================================  ================================================

Sessions without a user (anonymous ones) produce no signal: a receiver cannot match them to
anything it knows. Other events (created, rotated, expired, rejected, risk, authentication)
stay inside: ``revoked`` already says how a session ended, ``expired`` is known to both sides
from the session's lifetime, and the rest is operational detail.

Subjects use RFC 9493 formats: the user is ``iss_sub`` (the transmitter's issuer and the
application's own user id), a session ``opaque`` (its public id, never a token), a device
``iss_sub`` (the RFC 7638 thumbprint of the key the session is bound to, in the issuer's
namespace), a tenant ``opaque``
(the application's name). ``txn`` is the same for every SET of one cause (a theft and the
revocation it caused share it). The input is an event's ``to_dict()`` with ``application``,
as the event log stores it; nothing here reads a clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sessionward.signals.set import CAEP

__all__ = [
    "CREDENTIAL_CHANGE",
    "DEVICE_COMPLIANCE_CHANGE",
    "EVENTS_SUPPORTED",
    "SESSION_REVOKED",
    "TOKEN_CLAIMS_CHANGE",
    "Signal",
    "complex_subject",
    "signals_of",
]

SESSION_REVOKED: Final = CAEP + "session-revoked"
CREDENTIAL_CHANGE: Final = CAEP + "credential-change"
TOKEN_CLAIMS_CHANGE: Final = CAEP + "token-claims-change"
DEVICE_COMPLIANCE_CHANGE: Final = CAEP + "device-compliance-change"
EVENTS_SUPPORTED: Final = (
    SESSION_REVOKED,
    CREDENTIAL_CHANGE,
    TOKEN_CLAIMS_CHANGE,
    DEVICE_COMPLIANCE_CHANGE,
)

#: reason code -> (initiating_entity, reason_admin, reason_user)
_REVOKED: Final[dict[str, tuple[str, str, str]]] = {
    "logout": ("user", "logout: the user signed out", "You signed out."),
    "logout-everywhere": (
        "user",
        "logout-everywhere: the user signed out on every device",
        "You signed out on another device.",
    ),
    "login-upgrade": (
        "system",
        "login-upgrade: replaced by the session of a new sign-in",
        "You signed in again.",
    ),
    "new-login": (
        "policy",
        "new-login: a new sign-in ends the user's other sessions",
        "You signed in on another device.",
    ),
    "admin": ("admin", "admin: ended by an administrator", "An administrator signed you out."),
    "theft": (
        "policy",
        "theft: a rotated session secret was used again",
        "Your session was ended because it may have been copied.",
    ),
    "session-limit": (
        "policy",
        "session-limit: the user's session cap was full",
        "You signed in on too many devices; the oldest session ended.",
    ),
    "password-change": (
        "user",
        "password-change: the password changed",
        "Your password changed.",
    ),
    "account-disabled": (
        "admin",
        "account-disabled: the account was disabled",
        "Your account was disabled.",
    ),
    "expired": ("system", "expired: the session reached its deadline", "Your session ended."),
    "risk": (
        "policy",
        "risk: the risk engine found the request's context unusual",
        "Your session ended because it was used from an unusual place.",
    ),
}
_CREDENTIAL_TYPES: Final = {"password": "password", "totp": "app"}
_CHANGE_TYPES: Final = {
    "enrolled": "create",
    "set": "create",
    "created": "create",
    "replaced": "update",
    "reset": "update",
    "removed": "delete",
    "revoked": "revoke",
}


@dataclass(frozen=True, slots=True)
class Signal:
    """One CAEP event to send: its type URI, its body, its subject and its cause."""

    event_type: str
    event: dict[str, Any]
    sub_id: dict[str, Any]
    txn: str


def complex_subject(**members: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"format": "complex", ...}`` with the members given (``None`` ones left out)."""
    out: dict[str, Any] = {"format": "complex"}
    out.update({name: dict(value) for name, value in members.items() if value is not None})
    return out


def _opaque(value: str) -> dict[str, str]:
    return {"format": "opaque", "id": value}


def _txn(entry: Mapping[str, Any]) -> str:
    """One value per cause: the same session, user and instant (a theft and the revocation
    it causes carry the same ``at``)."""
    cause = "\x1f".join(
        str(entry.get(name) or "") for name in ("application", "session_id", "user_id", "at")
    )
    return hashlib.sha256(cause.encode("utf-8")).hexdigest()[:32]


def signals_of(
    entry: Mapping[str, Any],
    *,
    issuer: str,
    public_user: Callable[[str], str | None] = lambda user: user,
) -> list[Signal]:
    """The CAEP events an event-log entry stands for (none for most).

    ``public_user`` turns a stored user id into the one the receiver knows (the service
    removes its ``<application>/`` prefix); ``None`` from it means "no signal".
    """
    kind = entry.get("kind")
    if kind == "all-revoked":
        return _all_revoked(entry)
    stored_user = entry.get("user_id")
    user = public_user(stored_user) if isinstance(stored_user, str) else None
    if not user:
        return []
    user_subject = {"format": "iss_sub", "iss": issuer, "sub": user}
    session_id = entry.get("session_id")
    session = _opaque(session_id) if isinstance(session_id, str) else None
    at = int(entry.get("at", 0))
    txn = _txn(entry)
    if kind == "revoked":
        entity, admin, person = _REVOKED.get(
            str(entry.get("reason")), ("system", f"{entry.get('reason')}", "Your session ended.")
        )
        body = {
            "initiating_entity": entity,
            "reason_admin": {"en": admin},
            "reason_user": {"en": person},
            "event_timestamp": at,
        }
        subject = complex_subject(session=session, user=user_subject)
        return [Signal(SESSION_REVOKED, body, subject, txn)]
    if kind == "factor-changed":
        return _credential(entry, user_subject, at, txn)
    if kind == "elevated" and session is not None:
        body = {"event_timestamp": at, "claims": {"auth_level": int(entry.get("auth_level", 0))}}
        subject = complex_subject(session=session, user=user_subject)
        return [Signal(TOKEN_CLAIMS_CHANGE, body, subject, txn)]
    if kind == "bound" and session is not None:
        return [_compliance(entry, session, user_subject, at, txn, now_compliant=True)]
    detail = str(entry.get("detail", ""))
    if kind == "theft-suspected" and session is not None and detail.startswith("binding-proof"):
        return [_compliance(entry, session, user_subject, at, txn, now_compliant=False)]
    return []


def _all_revoked(entry: Mapping[str, Any]) -> list[Signal]:
    application = entry.get("application")
    if not isinstance(application, str):
        return []
    entity, admin, person = _REVOKED.get(
        str(entry.get("reason")), ("admin", "admin: every session ended", "Your session ended.")
    )
    body = {
        "initiating_entity": entity,
        "reason_admin": {"en": f"{admin} (every session of the application)"},
        "reason_user": {"en": person},
        "event_timestamp": int(entry.get("at", 0)),
    }
    subject = complex_subject(tenant=_opaque(application))
    return [Signal(SESSION_REVOKED, body, subject, _txn(entry))]


def _credential(
    entry: Mapping[str, Any], user_subject: dict[str, Any], at: int, txn: str
) -> list[Signal]:
    factor = str(entry.get("factor", ""))
    credential_type = _CREDENTIAL_TYPES.get(factor)
    change_type = _CHANGE_TYPES.get(str(entry.get("change", "")))
    if credential_type is None or change_type is None:
        return []
    body = {
        "credential_type": credential_type,
        "change_type": change_type,
        "initiating_entity": "user",
        "reason_admin": {"en": f"{factor} {entry.get('change')} by the user"},
        "event_timestamp": at,
    }
    return [Signal(CREDENTIAL_CHANGE, body, dict(user_subject), txn)]


def _compliance(
    entry: Mapping[str, Any],
    session: dict[str, str],
    user_subject: dict[str, Any],
    at: int,
    txn: str,
    *,
    now_compliant: bool,
) -> Signal:
    jkt = entry.get("jkt")
    issuer = user_subject["iss"]
    device = (
        {"format": "iss_sub", "iss": issuer, "sub": jkt} if isinstance(jkt, str) and jkt else None
    )
    if now_compliant:
        statuses = ("not-compliant", "compliant")
        admin = f"bound: the session is bound to a {entry.get('method', 'device')} key"
        entity = "system"
    else:
        statuses = ("compliant", "not-compliant")
        admin = f"theft-suspected: {entry.get('detail')}"
        entity = "policy"
    body = {
        "current_status": statuses[1],
        "previous_status": statuses[0],
        "initiating_entity": entity,
        "reason_admin": {"en": admin},
        "event_timestamp": at,
    }
    subject = complex_subject(session=session, user=user_subject, device=device)
    return Signal(DEVICE_COMPLIANCE_CHANGE, body, subject, txn)
