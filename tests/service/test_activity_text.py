"""Every way a session can end has its own plain sentence for the user it belonged to."""

from __future__ import annotations

import pytest

from sessionward import Policy
from sessionward.core.events import RevokeReason, SessionExpired, SessionRevoked
from sessionward.service.activity_text import (
    duration_text,
    ended_sentence,
    notice_sentence,
)

POLICY = Policy(idle_timeout=30 * 60, absolute_timeout=8 * 3600)
EXPECTED = {
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


def test_every_revoke_reason_has_a_sentence_of_its_own() -> None:
    assert set(EXPECTED) == set(RevokeReason)
    sentences = {r: ended_sentence("revoked", reason=r, policy=POLICY) for r in RevokeReason}
    assert sentences == EXPECTED
    assert len(set(sentences.values())) == len(RevokeReason)


@pytest.mark.parametrize(
    ("deadline", "policy", "sentence"),
    [
        ("idle", POLICY, "Ended after 30 minutes without activity"),
        ("absolute", POLICY, "Ended after 8 hours"),
        ("absolute", Policy(idle_timeout=3600, absolute_timeout=86_400), "Ended after 1 day"),
        (
            "idle",
            Policy(idle_timeout=90, absolute_timeout=3600),
            "Ended after 2 minutes without activity",
        ),
        ("other", POLICY, "Ended because it expired"),
    ],
)
def test_every_expiry_deadline_says_how_long_the_session_lasted(
    deadline: str, policy: Policy, sentence: str
) -> None:
    assert ended_sentence("expired", deadline=deadline, policy=policy) == sentence


def test_events_as_stored_read_the_same() -> None:
    revoked = SessionRevoked("S" * 16, "ann", 1.0, reason=RevokeReason.RISK).to_dict()
    expired = SessionExpired("S" * 16, "ann", 1.0, deadline="absolute").to_dict()
    assert notice_sentence(revoked, POLICY) == "Ended because it was used from an unusual place"
    assert notice_sentence(expired, POLICY) == "Ended after 8 hours"
    assert notice_sentence({"kind": "all-revoked"}, POLICY) == (
        "Signed out when every session was ended"
    )
    assert notice_sentence({"kind": "revoked", "reason": "from-the-future"}, POLICY) == "Ended"
    assert notice_sentence({"kind": "created"}, POLICY) is None
    assert notice_sentence({"kind": "authentication", "succeeded": True}, POLICY) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1, "1 second"), (45, "45 seconds"), (60, "1 minute"), (7200, "2 hours"), (172_800, "2 days")],
)
def test_durations(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text
