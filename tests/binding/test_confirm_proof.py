""" "This was me" on a key-bound session needs the key's proof, as validate does: the
confirmation rotates the secret and teaches the session and its user the request's context,
so a copy of the token alone must change nothing. Without a proof check, with no proof, another
key's proof, a spent proof or a pending bound cookie, ``confirm`` raises ``InvalidProof`` and the
record stays byte for byte; with the owner's proof it confirms."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from _shared import dpop_check, dpop_session, scored_manager
from agents import SAFARI
from proofs import Device

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from sessionward import AsyncMemoryStore, AsyncSessionManager, SessionManager
from sessionward.core import binding as states
from sessionward.core.binding import BindingPolicy
from sessionward.core.context import RequestContext
from sessionward.core.dpop import DpopPolicy
from sessionward.core.jwk import client_key
from sessionward.errors import InvalidProof, RiskChallenge
from sessionward.manager._async.binding import AsyncBinder, AsyncDpopCheck
from sessionward.manager._sync.binding import Binder, CookieCheck
from sessionward.manager._sync.proof import ProofCheck
from sessionward.manager.risk import RiskAssessor
from sessionward.testing import EventRecorder, FakeClock

URL = "https://api.example/account/confirm"
HOME = RequestContext(ip="81.2.69.160", user_agent=SAFARI, accept_language="en-GB")
ABROAD = RequestContext(ip="73.1.2.3", user_agent=SAFARI, accept_language="en-GB")


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[SessionManager]:
    with scored_manager(tmp_path) as m:
        yield m


_check = partial(dpop_check, method="POST", url=URL)


def _challenged(manager: SessionManager, token: str, proof: ProofCheck) -> None:
    with pytest.raises(RiskChallenge):
        manager.validate(token, context=ABROAD, proof=proof)


def test_a_dpop_bound_session_is_confirmed_only_with_its_keys_proof(
    manager: SessionManager,
) -> None:
    owner, thief = Device(), Device()
    session = dpop_session(manager, owner, HOME)
    token = session.token
    assert token is not None
    now = manager.clock.now()
    spent = owner.dpop("POST", URL, iat=now, token=token)
    _challenged(manager, token, _check(manager, token, spent))  # the owner, abroad
    before = manager.store.get(session.id)
    events = EventRecorder()
    manager.events.subscribe(events)
    attempts: dict[str, ProofCheck | None] = {
        "no proof check": None,
        "no proof": _check(manager, token, None),
        "another key's proof": _check(
            manager, token, thief.dpop("POST", URL, iat=now, token=token)
        ),
        "a spent proof": _check(manager, token, spent),
        "a proof for another token": _check(manager, token, owner.dpop("POST", URL, iat=now)),
        "a bound-cookie check": CookieCheck(Binder(manager), None),
    }
    for name, proof in attempts.items():
        with pytest.raises(InvalidProof):
            manager.confirm(token, context=ABROAD, proof=proof)
        assert manager.store.get(session.id) == before, name  # byte for byte: nothing learned
    assert {type(e).__name__ for e in events.events} <= {"TokenRejected", "TheftSuspected"}
    assert len(events.events) == len(attempts)  # every refusal is an event of the session
    proven = _check(manager, token, owner.dpop("POST", URL, iat=now, token=token))
    confirmed = manager.confirm(token, context=ABROAD, proof=proven)
    assert confirmed.token is not None
    assert confirmed.token != token
    assert confirmed.auth_time == now
    after = manager.store.get(session.id)
    assert after is not None
    assert before is not None
    assert after.context != before.context  # the context was taught
    # taught: the owner's next proven request from abroad is served, not challenged
    again = _check(
        manager, confirmed.token, owner.dpop("POST", URL, iat=now, token=confirmed.token)
    )
    assert manager.validate(confirmed.token, context=ABROAD, proof=again).id == session.id


def test_a_dbsc_session_is_confirmed_only_with_a_live_bound_cookie(
    manager: SessionManager,
) -> None:
    now = manager.clock.now()
    bound = states.bound_state(client_key(Device().jwk, "ES256"), "dbsc", now)
    bound, cookie = states.new_cookie(bound, now, BindingPolicy(cookie_lifetime=300))
    session = manager.issue("alice", data={states.BINDING_KEY: states.encode(bound)}, context=HOME)
    token = session.token
    assert token is not None
    binder = Binder(manager)
    _challenged(manager, token, CookieCheck(binder, cookie))
    before = manager.store.get(session.id)
    for presented in (None, "forged"):  # pending: the key not proven
        with pytest.raises(InvalidProof):
            manager.confirm(token, context=ABROAD, proof=CookieCheck(binder, presented))
        assert manager.store.get(session.id) == before
    confirmed = manager.confirm(token, context=ABROAD, proof=CookieCheck(binder, cookie))
    assert confirmed.token not in (None, token)


def test_an_unbound_session_needs_no_proof(manager: SessionManager) -> None:
    session = manager.issue("alice", context=HOME)
    assert session.token is not None
    check = _check(manager, session.token, None)
    confirmed = manager.confirm(session.token, context=ABROAD, proof=check)
    assert confirmed.token not in (None, session.token)


def test_the_async_manager_refuses_the_same_way() -> None:
    async def run() -> None:
        clock, owner, thief = FakeClock(), Device(), Device()
        manager = AsyncSessionManager(AsyncMemoryStore(), clock=clock, risk=RiskAssessor())
        state = states.dpop_state(owner.thumbprint, clock.now())
        data = {states.BINDING_KEY: states.encode(state)}
        session = await manager.issue("alice", data=data, context=HOME)
        token = session.token
        assert token is not None

        def check(proof: str | None) -> AsyncDpopCheck:
            binder = AsyncBinder(manager)
            return AsyncDpopCheck(
                binder, DpopPolicy(), proof, method="POST", url=URL, access_token=token
            )

        before = await manager.store.get(session.id)
        for proof in (
            None,
            check(None),
            check(thief.dpop("POST", URL, iat=clock.now(), token=token)),
        ):
            with pytest.raises(InvalidProof):
                await manager.confirm(token, context=ABROAD, proof=proof)
        assert await manager.store.get(session.id) == before
        good = check(owner.dpop("POST", URL, iat=clock.now(), token=token))
        confirmed = await manager.confirm(token, context=ABROAD, proof=good)
        assert confirmed.token not in (None, token)

    asyncio.run(run())
