"""A key-bound session is proven before ``validate`` writes anything, against a real SQLite
store with hijack scoring on: a DPoP-bound token without its key's proof (or with another
key's) raises and leaves the record exactly as it was (no renewal, no touch, no context
history, no risk learning); a DBSC session without a live bound cookie is served unwritten;
the owner's proven request then renews as usual."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from _shared import dpop_check, dpop_session, scored_manager
from proofs import Device

from sessionward import SessionManager
from sessionward.core import binding as states
from sessionward.core.binding import BindingPolicy
from sessionward.core.context import RequestContext
from sessionward.core.jwk import client_key
from sessionward.core.record import Session
from sessionward.errors import InvalidProof
from sessionward.manager._sync.binding import Binder, CookieCheck

URL = "https://api.example/orders"
OWNER = RequestContext(ip="198.51.100.7", user_agent="Owner/1.0", accept_language="en")
THIEF = RequestContext(ip="203.0.113.9", user_agent="Thief/2.0", accept_language="ru")


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[SessionManager]:
    with scored_manager(tmp_path) as m:
        yield m


_check = partial(dpop_check, method="GET", url=URL)


def test_a_dpop_bound_token_without_its_proof_changes_nothing(manager: SessionManager) -> None:
    device, thief = Device(), Device()
    session = dpop_session(manager, device, OWNER)
    token = session.token
    assert token is not None
    manager.clock.advance(601)  # type: ignore[attr-defined]  # renewal and touch due
    before = manager.store.get(session.id)
    for proof in (None, thief.dpop("GET", URL, iat=manager.clock.now(), token=token)):
        with pytest.raises(InvalidProof):
            manager.validate(token, context=THIEF, proof=_check(manager, token, proof))
    bearer = _check(manager, token, device.dpop("GET", URL, iat=manager.clock.now(), token=token))
    bearer.scheme = "bearer"
    with pytest.raises(InvalidProof):
        manager.validate(token, context=THIEF, proof=bearer)
    assert manager.store.get(session.id) == before  # byte for byte
    proven = _check(manager, token, device.dpop("GET", URL, iat=manager.clock.now(), token=token))
    renewed = manager.validate(token, context=OWNER, proof=proven)
    assert renewed.token is not None
    assert renewed.token != token
    assert proven.checked is not None
    assert proven.checked.jkt == device.thumbprint
    after = manager.store.get(session.id)
    assert after is not None
    assert before is not None
    assert (after.generation, after.last_seen) == (before.generation + 1, manager.clock.now())


def _dbsc_session(manager: SessionManager, lifetime: int) -> tuple[Session, str]:
    device, now = Device(), manager.clock.now()
    bound = states.bound_state(client_key(device.jwk, "ES256"), "dbsc", now)
    bound, cookie = states.new_cookie(bound, now, BindingPolicy(cookie_lifetime=lifetime))
    data = {states.BINDING_KEY: states.encode(bound)}
    return manager.issue("alice", data=data, context=OWNER), cookie


def test_a_dbsc_session_without_a_live_bound_cookie_is_served_unwritten(
    manager: SessionManager,
) -> None:
    session, cookie = _dbsc_session(manager, 300)
    lasting, lasting_cookie = _dbsc_session(manager, 900)
    token = session.token
    assert token is not None
    assert lasting.token is not None
    manager.clock.advance(601)  # type: ignore[attr-defined]  # renewal due; 300 s cookie dead
    before = manager.store.get(session.id)
    binder = Binder(manager)
    for presented in (None, cookie, "forged"):
        held = manager.validate(token, context=THIEF, proof=CookieCheck(binder, presented))
        assert held.token is None
        assert held.id == session.id
    assert manager.store.get(session.id) == before  # byte for byte
    # a live bound cookie proves the key: the request renews as any other
    proof = CookieCheck(binder, lasting_cookie)
    renewed = manager.validate(lasting.token, context=OWNER, proof=proof)
    assert renewed.token is not None
    assert renewed.generation == lasting.generation + 1
