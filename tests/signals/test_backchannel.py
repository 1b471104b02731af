"""OpenID Connect Back-Channel Logout 1.0: a logout token signed by a test identity provider
(PyJWT, keys served over HTTP) ends exactly the sessions of its ``sid`` (or every session of
its ``sub``); every malformed, foreign, stale or replayed token is refused and changes
nothing."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from sessionward.core.events import RevokeReason, SessionRevoked
from sessionward.errors import StoreUnavailable
from sessionward.signals.claims import BACKCHANNEL_LOGOUT
from sessionward.stores import MemoryStore

from .conftest import Node, make_node
from .idp import CLIENT_ID, TestIdp

FORM = "application/x-www-form-urlencoded"


def post(node: Node, token: str, content_type: str = FORM) -> tuple[int, dict[str, str], Any]:
    reply = node.logout.handle(urlencode({"logout_token": token}).encode(), content_type)
    body = json.loads(reply.body) if reply.body else None
    return reply.status, dict(reply.headers), body


def test_a_logout_token_ends_exactly_the_sessions_of_its_sid(node: Node, idp: TestIdp) -> None:
    laptop = node.login("alice", idp, "sid-A")
    phone = node.login("alice", idp, "sid-A")
    other = node.login("alice", idp, "sid-B")
    bob = node.login("bob", idp, "sid-C")
    status, headers, body = post(node, idp.logout_token(node.clock.now(), sid="sid-A"))
    assert (status, body) == (200, None)
    assert headers["cache-control"] == "no-store"
    assert not node.alive(laptop)
    assert not node.alive(phone)
    assert node.alive(other)
    assert node.alive(bob)
    revoked = [e for e in node.events.events if isinstance(e, SessionRevoked)]
    assert {(e.session_id, e.reason) for e in revoked} == {
        (laptop.id, RevokeReason.IDP_LOGOUT),
        (phone.id, RevokeReason.IDP_LOGOUT),
    }


def test_a_sub_without_sid_ends_every_session_of_the_user(node: Node, idp: TestIdp) -> None:
    first = node.login("alice", idp, "sid-A")
    second = node.login("alice", idp, "sid-B")
    bob = node.login("bob", idp, "sid-C")
    status, _, _ = post(node, idp.logout_token(node.clock.now(), sub="sub-alice"))
    assert status == 200
    assert not node.alive(first)
    assert not node.alive(second)
    assert node.alive(bob)


def test_an_unknown_sid_is_answered_200_and_changes_nothing(node: Node, idp: TestIdp) -> None:
    kept = node.login("alice", idp, "sid-A")
    status, _, _ = post(node, idp.logout_token(node.clock.now(), sid="sid-unknown"))
    assert status == 200
    assert node.alive(kept)


def _unsigned(idp: TestIdp, claims: dict[str, Any]) -> str:
    def seg(value: dict[str, Any]) -> str:
        raw = json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{seg({'alg': 'none', 'kid': idp.kid})}.{seg(claims)}."


def _claims(idp: TestIdp, now: float, **extra: Any) -> dict[str, Any]:
    return {
        "iss": idp.issuer, "aud": CLIENT_ID, "iat": int(now), "jti": "j-1",
        "events": {BACKCHANNEL_LOGOUT: {}}, "sid": "sid-A", **extra,
    }  # fmt: skip


def _foreign_key(idp: TestIdp, now: float) -> str:
    thief = rsa.generate_private_key(65537, 2048)
    return pyjwt.encode(
        _claims(idp, now), thief, algorithm="RS256", headers={"kid": idp.kid, "typ": "logout+jwt"}
    )


def _hmac_with_public_key(idp: TestIdp, now: float) -> str:
    header = {"alg": "HS256", "kid": idp.kid, "typ": "logout+jwt"}
    seg = [
        base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=").decode()
        for p in (header, _claims(idp, now))
    ]
    return ".".join([*seg, "c2lnbmF0dXJl"])


REFUSED: dict[str, Callable[[TestIdp, float], str]] = {
    "nonce": lambda idp, now: idp.logout_token(now, sid="sid-A", nonce="n-1"),
    "no-events": lambda idp, now: idp.logout_token(now, sid="sid-A", drop=("events",)),
    "events-not-object": lambda idp, now: idp.logout_token(
        now, sid="sid-A", events={BACKCHANNEL_LOGOUT: "yes"}
    ),
    "other-event": lambda idp, now: idp.logout_token(
        now, sid="sid-A", events={"http://schemas.openid.net/event/other": {}}
    ),
    "wrong-aud": lambda idp, now: idp.logout_token(now, sid="sid-A", aud="another-client"),
    "wrong-iss": lambda idp, now: idp.logout_token(now, sid="sid-A", iss="https://evil.example"),
    "too-old": lambda idp, now: idp.logout_token(now - 3600, sid="sid-A", exp=int(now) + 60),
    "expired": lambda idp, now: idp.logout_token(now - 100, sid="sid-A", exp=int(now) - 90),
    "future": lambda idp, now: idp.logout_token(now + 3600, sid="sid-A"),
    "no-jti": lambda idp, now: idp.logout_token(now, sid="sid-A", drop=("jti",)),
    "no-subject": lambda idp, now: idp.logout_token(now),
    "bad-signature": _foreign_key,
    "alg-none": lambda idp, now: _unsigned(idp, _claims(idp, now)),
    "hs256-public-key": _hmac_with_public_key,
    "id-token-typ": lambda idp, now: idp.sign(_claims(idp, now), typ="at+jwt"),
    "garbage": lambda idp, now: "not.a.jwt",
}


REASONS = {
    "nonce": "nonce-present", "no-events": "wrong-events", "events-not-object": "wrong-events",
    "other-event": "wrong-events", "wrong-aud": "wrong-audience", "wrong-iss": "wrong-issuer",
    "too-old": "too-old", "expired": "expired", "future": "issued-in-future", "no-jti": "no-jti",
    "no-subject": "no-subject", "bad-signature": "bad-signature",
    "alg-none": "malformed",  # its empty signature fails the parse, before any key lookup
    "hs256-public-key": "alg-not-allowed", "id-token-typ": "wrong-typ", "garbage": "malformed",
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_tokens_change_nothing(
    node: Node, idp: TestIdp, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    session = node.login("alice", idp, "sid-A", "sub-alice")
    token = REFUSED[case](idp, node.clock.now())
    with caplog.at_level(logging.WARNING, logger="sessionward.signals"):
        status, headers, body = post(node, token)
    assert status == 400
    assert body == {"error": "invalid_request", "error_description": REASONS[case]}
    assert headers["cache-control"] == "no-store"
    assert node.alive(session)
    assert not [e for e in node.events.events if isinstance(e, SessionRevoked)]
    assert "back-channel logout refused" in caplog.text
    assert token not in caplog.text


def test_a_replayed_jti_is_refused(node: Node, idp: TestIdp) -> None:
    first = node.login("alice", idp, "sid-A")
    token = idp.logout_token(node.clock.now(), sid="sid-A")
    assert post(node, token)[0] == 200
    assert not node.alive(first)
    second = node.login("alice", idp, "sid-A")  # the same provider session, signed in again
    status, _, body = post(node, token)
    assert (status, body["error_description"]) == (400, "replayed")
    assert node.alive(second)


def test_the_request_must_be_a_form(node: Node, idp: TestIdp) -> None:
    session = node.login("alice", idp, "sid-A")
    token = idp.logout_token(node.clock.now(), sid="sid-A")
    assert post(node, token, "application/json")[0] == 400
    assert node.logout.handle(b"logout_token=a&logout_token=b", FORM).status == 400
    assert node.alive(session)


@pytest.mark.parametrize("alg", ["ES256", "PS256", "EdDSA"])
def test_every_allowed_algorithm_verifies(node: Node, idp: TestIdp, alg: str) -> None:
    idp.rotate(alg)
    node.clock.advance(120)  # past the refetch interval: the new kid may be fetched
    session = node.login("alice", idp, "sid-A")
    assert post(node, idp.logout_token(node.clock.now(), sid="sid-A"))[0] == 200
    assert not node.alive(session)


class _Flaky:
    """A memory store whose ``list_user`` fails once when armed (a store outage mid-request)."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.armed = False

    def list_user(self, user_id: str) -> Any:
        if self.armed:
            self.armed = False
            raise StoreUnavailable("down")
        return self.inner.list_user(user_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_store_failure_after_the_jti_is_spent_lets_the_retry_through(idp: TestIdp) -> None:
    store = _Flaky()
    node = make_node(store, idp)
    session = node.login("alice", idp, "sid-A")
    token = idp.logout_token(node.clock.now(), sid="sid-A")
    store.armed = True
    status, _, body = post(node, token)
    assert (status, body) == (503, {"error": "temporarily_unavailable"})
    assert node.alive(session)
    assert post(node, token)[0] == 200  # the provider's retry
    assert not node.alive(session)


def test_a_token_signed_by_joserfc_verifies_too(node: Node, idp: TestIdp) -> None:
    from joserfc import jwt as josejwt
    from joserfc.jwk import ECKey

    idp.rotate("ES256")
    node.clock.advance(120)  # past the refetch interval: the new kid may be fetched
    session = node.login("alice", idp, "sid-A")
    key = ECKey.import_key(idp.private)
    header = {"alg": "ES256", "kid": idp.kid, "typ": "logout+jwt"}
    claims = _claims(idp, node.clock.now(), jti="joserfc-1")
    token = josejwt.encode(header, claims, key)
    assert post(node, token)[0] == 200
    assert not node.alive(session)
