"""The binder against real stores (memory, SQLite file; sync and async): registration,
refresh, theft without a browser, and the DPoP replay cache."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
from conftest import Harness
from proofs import Device

from sessionward.core import binding as states
from sessionward.core.binding import BindingPolicy, binding_of
from sessionward.core.dpop import DpopPolicy
from sessionward.core.record import Session
from sessionward.errors import InvalidProof
from sessionward.manager._async.binding import AsyncBinder
from sessionward.manager._sync.binding import Binder

REGISTER = "https://shop.example/sessionward/dbsc/register"
POLICY = BindingPolicy(cookie_lifetime=300)


class Facade:
    """A binder with blocking calls, whichever flavour the harness runs."""

    def __init__(self, inner: Any, run: Callable[[Any], Any]) -> None:
        self.inner = inner
        self.run = run

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        return lambda *a, **kw: self.run(target(*a, **kw))


def _binder(h: Harness) -> Any:
    if h.flavor == "sync":
        return Facade(Binder(h.m, POLICY), h.run)
    return Facade(AsyncBinder(h.m._manager, POLICY), h.run)  # type: ignore[attr-defined]


def _offered(h: Harness) -> tuple[Session, str, str]:
    state, challenge, authorization = states.offer(h.clock.now())
    session = h.m.issue("alice", data={states.BINDING_KEY: states.encode(state)})
    return session, challenge, authorization


def _current(h: Harness, session: Session) -> Session:
    record = h.stored(session.id)
    assert record is not None
    return Session(record)


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_register_then_refresh_with_challenge(h: Harness, alg: str) -> None:
    binder, device = _binder(h), Device(alg)
    session, challenge, authorization = _offered(h)
    registered = binder.register(session, device.registration(challenge, authorization))
    stored = _current(h, session)
    at = h.clock.now()
    assert tuple(binding_of(stored.data)) == ("bound", "dbsc", device.thumbprint, at, at)
    assert binder.cookie_ok(stored, registered.cookie) is True
    assert "bound" in h.kinds()
    # the first refresh carries no proof: 403 + a challenge, stored for this session
    h.clock.advance(10)
    asked = binder.refresh(stored, registered.sid, None)
    assert asked.outcome == "challenge"
    assert asked.challenge is not None
    assert binding_of(_current(h, session).data).proven_at == at  # a challenge proves nothing
    answered = binder.refresh(_current(h, session), registered.sid, device.refresh(asked.challenge))
    assert answered.outcome == "refreshed"
    assert answered.cookie is not None
    assert answered.challenge is not None  # the next one, cached by the browser
    stored = _current(h, session)
    assert binder.cookie_ok(stored, answered.cookie) is True
    assert binding_of(stored.data).proven_at == at + 10  # when the key was last proven
    # the cached challenge works at once, without a 403 round trip
    again = binder.refresh(stored, registered.sid, device.refresh(answered.challenge))
    assert again.outcome == "refreshed"


def test_bound_cookie_replayed_after_its_lifetime_is_refused(h: Harness) -> None:
    binder, device = _binder(h), Device()
    session, challenge, authorization = _offered(h)
    registered = binder.register(session, device.registration(challenge, authorization))
    h.clock.advance(299)
    assert binder.cookie_ok(_current(h, session), registered.cookie) is True
    h.clock.advance(1)
    assert binder.cookie_ok(_current(h, session), registered.cookie) is False
    assert binder.cookie_ok(_current(h, session), None) is False
    plain = h.m.issue("bob")
    assert binder.cookie_ok(plain, None) is None  # unbound: no bound cookie needed


def test_refresh_signed_by_another_key_is_refused_and_sets_no_cookie(h: Harness) -> None:
    binder, device, thief = _binder(h), Device(), Device()
    session, challenge, authorization = _offered(h)
    registered = binder.register(session, device.registration(challenge, authorization))
    asked = binder.refresh(_current(h, session), registered.sid, None)
    forged = binder.refresh(_current(h, session), registered.sid, thief.refresh(asked.challenge))
    assert forged.outcome == "challenge"
    assert forged.cookie is None
    assert "theft-suspected" in h.kinds()
    # the challenge the thief tried is still good for the real device
    real = binder.refresh(_current(h, session), registered.sid, device.refresh(asked.challenge))
    assert real.outcome == "refreshed"


def test_replayed_proof_and_proof_for_another_session_are_refused(h: Harness) -> None:
    binder, device = _binder(h), Device()
    first, c1, a1 = _offered(h)
    second, c2, a2 = _offered(h)
    r1 = binder.register(first, device.registration(c1, a1))
    r2 = binder.register(second, device.registration(c2, a2))
    asked = binder.refresh(_current(h, first), r1.sid, None)
    proof = device.refresh(asked.challenge)
    assert binder.refresh(_current(h, first), r1.sid, proof).outcome == "refreshed"
    replayed = binder.refresh(_current(h, first), r1.sid, proof)
    assert replayed.outcome == "challenge"
    assert replayed.cookie is None
    # a proof over a challenge of the first session, sent for the second one
    asked = binder.refresh(_current(h, first), r1.sid, None)
    other = binder.refresh(_current(h, second), r2.sid, device.refresh(asked.challenge))
    assert other.outcome == "challenge"
    assert other.cookie is None
    # the second session's identifier with the first session's cookie: end, no cookie
    assert binder.refresh(_current(h, first), r2.sid, None).outcome == "end"


def test_stale_challenge_is_refused(h: Harness) -> None:
    binder, device = _binder(h), Device()
    session, challenge, authorization = _offered(h)
    registered = binder.register(session, device.registration(challenge, authorization))
    asked = binder.refresh(_current(h, session), registered.sid, None)
    h.clock.advance(POLICY.challenge_lifetime)
    late = binder.refresh(_current(h, session), registered.sid, device.refresh(asked.challenge))
    assert late.outcome == "challenge"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d, c, a: d.registration(c, a, typ="jwt"), "typ"),
        (lambda d, c, a: d.registration(c, a, alg="none"), "alg"),
        (lambda d, c, a: d.registration(c, a, alg="HS256"), "alg"),
        (lambda d, c, a: d.registration("not-ours", a), "challenge"),
        (lambda d, c, a: d.registration(c, "wrong"), "authorization"),
        (lambda d, c, a: d.registration(c, a, aud="https://evil.example/"), "aud"),
    ],
)
def test_bad_registrations_are_refused(
    h: Harness, make: Callable[[Device, str, str], str], reason: str
) -> None:
    binder = _binder(h)
    session, challenge, authorization = _offered(h)
    with pytest.raises(InvalidProof) as caught:
        binder.register(session, make(Device(), challenge, authorization), audience=REGISTER)
    assert caught.value.reason == reason
    assert binding_of(_current(h, session).data).state == "offered"


def test_registration_needs_an_offer_and_is_single_use(h: Harness) -> None:
    binder, device = _binder(h), Device()
    plain = h.m.issue("alice")
    with pytest.raises(InvalidProof):
        binder.register(plain, device.registration("c"))
    session, challenge, authorization = _offered(h)
    jwt = device.registration(challenge, authorization)
    binder.register(session, jwt)
    with pytest.raises(InvalidProof):  # bound now: a second registration cannot rebind
        binder.register(_current(h, session), Device().registration(challenge, authorization))


def test_reoffer_for_the_fallback_script(h: Harness) -> None:
    binder, device = _binder(h), Device()
    plain = h.m.issue("alice")
    offered = binder.reoffer(plain)
    assert offered is not None
    challenge, authorization = offered
    registered = binder.register(
        _current(h, plain), device.registration(challenge, authorization), method="webcrypto"
    )
    assert binding_of(registered.session.data).method == "webcrypto"
    assert binder.reoffer(_current(h, plain)) is None  # bound: nothing more to offer
    assert binder.reoffer(h.m.issue()) is None  # anonymous sessions are not bound


def test_refresh_of_a_session_that_ended(h: Harness) -> None:
    binder, device = _binder(h), Device()
    session, challenge, authorization = _offered(h)
    registered = binder.register(session, device.registration(challenge, authorization))
    current = _current(h, session)
    h.m.revoke(session)
    assert binder.refresh(current, registered.sid, None).outcome == "end"


def test_lost_race_is_retried_on_fresh_state(h: Harness) -> None:
    binder, device = _binder(h), Device()
    session, challenge, authorization = _offered(h)
    registered = binder.register(session, device.registration(challenge, authorization))
    stale = _current(h, session)
    asked = binder.refresh(stale, registered.sid, None)  # the record moved on under ``stale``
    result = binder.refresh(stale, registered.sid, device.refresh(asked.challenge))
    assert result.outcome == "refreshed"


def test_dpop_jti_replay_is_refused_through_the_store(h: Harness) -> None:
    binder, device = _binder(h), Device()
    url = "https://api.example/orders"
    proof = device.dpop("GET", url, iat=h.clock.now())
    policy = DpopPolicy()
    checked = binder.check_dpop(policy, proof, method="GET", url=url)
    assert checked.jkt == device.thumbprint
    with pytest.raises(InvalidProof) as caught:
        binder.check_dpop(policy, proof, method="GET", url=url)
    assert caught.value.reason == "replayed"
    # another binder on the same store (another node) sees the spent jti too
    other = cast(Any, _binder(h))
    with pytest.raises(InvalidProof):
        other.check_dpop(policy, proof, method="GET", url=url)
    assert h.m.purge_expired() == 0
    h.clock.advance(66)
    assert h.m.purge_expired() == 1
