"""The Shared Signals receiver: SETs pushed by a test transmitter (PyJWT, keys over HTTP) end
or step up exactly the sessions they name; refused SETs change nothing and are logged."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from sessionward.core.events import RevokeReason, SessionRevoked
from sessionward.errors import StepUpRequired
from sessionward.signals.claims import (
    ACCOUNT_DISABLED,
    CREDENTIAL_COMPROMISE,
    SESSION_REVOKED,
)
from sessionward.stores import MemoryStore
from sessionward.testing import FakeClock

from .conftest import AUDIENCE, Node, make_node
from .idp import TestIdp

SET_TYPE = "application/secevent+jwt"


def push(node: Node, token: str, **options: Any) -> tuple[int, Any]:
    reply = node.ssf.handle(token.encode(), options.pop("content_type", SET_TYPE), **options)
    return reply.status, json.loads(reply.body) if reply.body else None


def _revoked(node: Node) -> set[tuple[str | None, str]]:
    return {(e.session_id, e.reason) for e in node.events.events if isinstance(e, SessionRevoked)}


def _event(now: float) -> dict[str, Any]:
    return {"event_timestamp": int(now), "initiating_entity": "policy"}


def test_session_revoked_with_a_complex_subject_ends_that_session(node: Node, idp: TestIdp) -> None:
    target = node.login("alice", idp, "sid-A")
    other = node.login("alice", idp, "sid-B")
    now = node.clock.now()
    subject = {
        "format": "complex",
        "session": {"format": "opaque", "id": "sid-A"},
        "user": {"format": "iss_sub", "iss": idp.issuer, "sub": "sub-alice"},
    }
    token = idp.set_token(now, {SESSION_REVOKED: _event(now)}, audience=AUDIENCE, sub_id=subject)
    assert push(node, token) == (202, None)
    assert not node.alive(target)
    assert node.alive(other)
    assert _revoked(node) == {(target.id, RevokeReason.SHARED_SIGNAL)}


def test_session_revoked_with_an_opaque_session_id(node: Node, idp: TestIdp) -> None:
    target = node.login("alice", idp, "sid-A")
    other = node.login("bob", idp, "sid-B")
    now = node.clock.now()
    subject = {"format": "opaque", "id": "sid-A"}
    token = idp.set_token(now, {SESSION_REVOKED: _event(now)}, audience=AUDIENCE, sub_id=subject)
    assert push(node, token)[0] == 202
    assert not node.alive(target)
    assert node.alive(other)


def test_session_revoked_for_a_user_ends_all_of_theirs(node: Node, idp: TestIdp) -> None:
    first, second = node.login("alice", idp, "sid-A"), node.login("alice", idp, "sid-B")
    bob = node.login("bob", idp, "sid-C")
    now = node.clock.now()
    subject = {"format": "iss_sub", "iss": idp.issuer, "sub": "sub-alice"}
    event = {**_event(now), "subject": subject}  # the event's own subject (earlier CAEP drafts)
    token = idp.set_token(now, {SESSION_REVOKED: event}, audience=AUDIENCE)
    assert push(node, token)[0] == 202
    assert not node.alive(first)
    assert not node.alive(second)
    assert node.alive(bob)


def test_account_disabled_ends_every_session_of_the_user(node: Node, idp: TestIdp) -> None:
    first, second = node.login("alice", idp, "sid-A"), node.login("alice", idp, "sid-B")
    bob = node.login("bob", idp, "sid-C")
    now = node.clock.now()
    subject = {"format": "iss_sub", "iss": idp.issuer, "sub": "sub-alice"}
    event = {ACCOUNT_DISABLED: {"reason": "hijacking"}}
    assert push(node, idp.set_token(now, event, audience=AUDIENCE, sub_id=subject))[0] == 202
    assert not node.alive(first)
    assert not node.alive(second)
    assert node.alive(bob)
    assert _revoked(node) == {
        (first.id, RevokeReason.ACCOUNT_DISABLED),
        (second.id, RevokeReason.ACCOUNT_DISABLED),
    }


def _compromise(idp: TestIdp, now: float) -> str:
    subject = {"format": "iss_sub", "iss": idp.issuer, "sub": "sub-alice"}
    event = {CREDENTIAL_COMPROMISE: {"credential_type": "password"}}
    return idp.set_token(now, event, audience=AUDIENCE, sub_id=subject)


def test_credential_compromise_revokes_by_default(node: Node, idp: TestIdp) -> None:
    session = node.login("alice", idp, "sid-A")
    assert push(node, _compromise(idp, node.clock.now()))[0] == 202
    assert not node.alive(session)
    assert _revoked(node) == {(session.id, RevokeReason.CREDENTIAL_COMPROMISE)}


def test_credential_compromise_can_force_a_step_up_instead(idp: TestIdp) -> None:
    node = make_node(MemoryStore(), idp, on_compromise="step-up")
    try:
        session = node.login("alice", idp, "sid-A")
        bob = node.login("bob", idp, "sid-B")
        node.manager.require_recent_auth(session, min_level=1)
        assert push(node, _compromise(idp, node.clock.now()))[0] == 202
        current = node.manager.validate(session.token)  # still signed in...
        with pytest.raises(StepUpRequired):  # ...but must sign in again for anything sensitive
            node.manager.require_recent_auth(current, min_level=1)
        node.manager.require_recent_auth(node.manager.validate(bob.token), min_level=1)
        assert not _revoked(node)
    finally:
        node.keys.close()


def test_unknown_events_and_subjects_are_accepted_and_ignored(node: Node, idp: TestIdp) -> None:
    session = node.login("alice", idp, "sid-A")
    now = node.clock.now()
    other: dict[str, Any] = {
        "https://schemas.openid.net/secevent/caep/event-type/token-claims-change": {}
    }
    email = {"format": "email", "email": "alice@example.com"}
    for events, subject in (
        (other, {"format": "opaque", "id": "sid-A"}),
        ({ACCOUNT_DISABLED: {}}, email),
    ):
        assert push(node, idp.set_token(now, events, audience=AUDIENCE, sub_id=subject))[0] == 202
    assert node.alive(session)


def _subject() -> dict[str, str]:
    return {"format": "opaque", "id": "sid-A"}


def _revocation(idp: TestIdp, now: float, **claims: Any) -> str:
    events = {SESSION_REVOKED: _event(now)}
    return idp.set_token(
        now, events, audience=claims.pop("aud", AUDIENCE), sub_id=_subject(), **claims
    )


def _foreign(idp: TestIdp, now: float) -> str:
    thief = rsa.generate_private_key(65537, 2048)
    claims = {"iss": idp.issuer, "aud": AUDIENCE, "iat": int(now), "jti": "x",
              "sub_id": _subject(), "events": {SESSION_REVOKED: {}}}  # fmt: skip
    return pyjwt.encode(claims, thief, algorithm="RS256", headers={"kid": idp.kid})


def _unknown_kid(idp: TestIdp, now: float) -> str:
    return idp.sign({"iss": idp.issuer}, kid="nope", typ="secevent+jwt")


REFUSED = {
    "bad-signature": (_foreign, "authentication_failed"),
    "wrong-aud": (
        lambda idp, now: _revocation(idp, now, aud="https://other.example"),
        "invalid_audience",
    ),
    "wrong-iss": (
        lambda idp, now: _revocation(idp, now, iss="https://evil.example"),
        "invalid_issuer",
    ),
    "unknown-kid": (_unknown_kid, "invalid_key"),
    "too-old": (lambda idp, now: _revocation(idp, now - 3600), "invalid_request"),
    "garbage": (lambda idp, now: "garbage", "invalid_request"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_sets_change_nothing_and_are_logged(
    node: Node, idp: TestIdp, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    session = node.login("alice", idp, "sid-A")
    make, code = REFUSED[case]
    token = make(idp, node.clock.now())
    with caplog.at_level(logging.WARNING, logger="sessionward.signals"):
        status, body = push(node, token)
    assert (status, body["err"]) == (400, code)
    assert node.alive(session)
    assert not _revoked(node)
    assert "security event refused" in caplog.text
    assert token not in caplog.text


def test_a_replayed_jti_changes_nothing(
    node: Node, idp: TestIdp, caplog: pytest.LogCaptureFixture
) -> None:
    first = node.login("alice", idp, "sid-A")
    token = _revocation(idp, node.clock.now())
    assert push(node, token)[0] == 202
    assert not node.alive(first)
    second = node.login("alice", idp, "sid-A")
    with caplog.at_level(logging.WARNING, logger="sessionward.signals"):
        assert push(node, token) == (400, {"err": "invalid_request", "description": "replayed"})
    assert node.alive(second)
    assert "replayed" in caplog.text


def test_the_push_must_be_a_set(node: Node, idp: TestIdp) -> None:
    session = node.login("alice", idp, "sid-A")
    token = _revocation(idp, node.clock.now())
    assert push(node, token, content_type="application/jwt")[0] == 400
    assert node.alive(session)


def test_a_configured_authorization_header_is_required(idp: TestIdp) -> None:
    node = make_node(
        MemoryStore(), idp, FakeClock(time.time()), authorization="Bearer s3cret-value"
    )
    try:
        session = node.login("alice", idp, "sid-A")
        token = _revocation(idp, node.clock.now())
        assert push(node, token, authorization="Bearer wrong")[0] == 401
        assert push(node, token)[0] == 401
        assert node.alive(session)
        assert push(node, token, authorization="Bearer s3cret-value")[0] == 202
        assert not node.alive(session)
    finally:
        node.keys.close()
