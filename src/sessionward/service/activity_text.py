"""Events told to the user they concern, in plain words ("Signed out on another device").

:func:`ended_sentence` is the one mapping from why a session ended (an event's kind and its
reason code or expiry deadline) to a sentence; :func:`notice_sentence` covers the other events
an account page shows (changed factors, failed sign-ins). Neither names an address or a device:
the page adds what it knows.
"""

from __future__ import annotations

from typing import Any, Final

from sessionward.core.events import RevokeReason
from sessionward.core.policy import Policy

__all__ = ["NOTICE_KINDS", "duration_text", "ended_sentence", "notice_sentence"]

#: The kinds of event an account's "Recent security activity" lists.
NOTICE_KINDS: Final = frozenset({"revoked", "expired", "all-revoked", "factor-changed",
                                 "authentication"})  # fmt: skip

_ENDED: Final[dict[str, str]] = {
    RevokeReason.LOGOUT: "Signed out",
    RevokeReason.LOGOUT_EVERYWHERE: "Signed out on another device",
    RevokeReason.LOGIN_UPGRADE: "Replaced by your sign-in on the same browser",
    RevokeReason.NEW_LOGIN: "Ended by a new sign-in elsewhere",
    RevokeReason.ADMIN: "Ended by an administrator",
    RevokeReason.THEFT: "Ended because it looked stolen: an old copy of it was used",
    RevokeReason.SESSION_LIMIT: "Ended because you were signed in on too many devices",
    RevokeReason.PASSWORD_CHANGE: "Signed out when your password changed",
    RevokeReason.ACCOUNT_DISABLED: "Ended because your account was disabled",
    RevokeReason.EXPIRED: "Ended because it expired",
    RevokeReason.RISK: "Ended because it was used from an unusual place",
    RevokeReason.IDP_LOGOUT: "Signed out when you signed out of your sign-in provider",
    RevokeReason.SHARED_SIGNAL: "Ended at the request of a connected security service",
    RevokeReason.CREDENTIAL_COMPROMISE: "Ended because your sign-in details may be exposed",
}


def duration_text(seconds: float) -> str:
    """``28800`` -> ``"8 hours"``; the largest whole unit, rounded."""
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = round(seconds / size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    count = max(round(seconds), 0)
    return f"{count} second{'' if count == 1 else 's'}"


def ended_sentence(
    kind: str, *, reason: str | None = None, deadline: str | None = None, policy: Policy
) -> str:
    """Why a session ended, for its user: ``kind`` is ``revoked``, ``all-revoked`` or
    ``expired``; ``policy`` gives the lifetimes an expiry names."""
    if kind == "expired":
        if deadline == "absolute":
            return f"Ended after {duration_text(policy.absolute_timeout)}"
        if deadline == "idle":
            return f"Ended after {duration_text(policy.idle_timeout)} without activity"
        return "Ended because it expired"
    if kind == "all-revoked":
        return "Signed out when every session was ended"
    return _ENDED.get(reason or "", "Ended")


def notice_sentence(entry: dict[str, Any], policy: Policy) -> str | None:
    """The sentence for one event of :data:`NOTICE_KINDS` (``None``: nothing to tell)."""
    kind = entry.get("kind")
    if kind in ("revoked", "expired", "all-revoked"):
        return ended_sentence(
            str(kind), reason=entry.get("reason"), deadline=entry.get("deadline"), policy=policy
        )
    if kind == "factor-changed":
        factor = "Two-step verification" if entry.get("factor") == "totp" else "Your password"
        change = {"enrolled": "turned on", "removed": "turned off"}.get(
            str(entry.get("change")), "changed"
        )
        return f"{factor} {change}"
    if kind == "authentication" and not entry.get("succeeded"):
        return f"Failed sign-in attempt ({entry.get('factor')})"
    return None
