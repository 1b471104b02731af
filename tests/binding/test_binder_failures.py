"""Key binding when things go wrong, without a browser: a store that fails fails closed (a
DPoP proof whose ``jti`` cannot be spent is not accepted, a refresh or registration that
cannot be written sets no cookie and binds nothing), and no credential of the binding (the
session token, a bound cookie, the registration's authorization value, a signed registration,
refresh or DPoP proof) reaches an event or a log line, whatever the outcome."""

from __future__ import annotations

import logging

import pytest
from proofs import Device
from test_no_secrets_in_logs import exception_texts, leaks, record_texts

from sessionward import MemoryStore, SessionManager
from sessionward.core import binding as states
from sessionward.core.binding import BindingPolicy, binding_of
from sessionward.core.dpop import DpopPolicy
from sessionward.core.events import EventBus, log_event
from sessionward.core.record import Session, SessionRecord
from sessionward.errors import InvalidProof, StoreUnavailable
from sessionward.manager._sync.binding import Binder, DpopCheck
from sessionward.stores._sync.base import UserCap
from sessionward.testing import EventRecorder, FakeClock

URL = "https://shop.example/orders"


class Flaky(MemoryStore):
    """A memory store whose writes fail once ``down`` is set (reads keep working)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def add(self, record: SessionRecord, *, cap: UserCap | None = None) -> list[str]:
        if self.down:
            raise StoreUnavailable("store down")
        return super().add(record, cap=cap)

    def replace(self, record: SessionRecord, *, expected_version: int) -> None:
        if self.down:
            raise StoreUnavailable("store down")
        super().replace(record, expected_version=expected_version)


def _manager(store: MemoryStore, recorder: EventRecorder) -> SessionManager:
    return SessionManager(store, clock=FakeClock(), events=EventBus([recorder, log_event]))


def test_a_dpop_proof_that_cannot_be_spent_is_not_accepted() -> None:
    store, device = Flaky(), Device()
    manager = _manager(store, EventRecorder())
    state = states.dpop_state(device.thumbprint, manager.clock.now())
    session = manager.issue("alice", data={states.BINDING_KEY: states.encode(state)})
    token = session.token
    assert token is not None
    proof = device.dpop("GET", URL, iat=manager.clock.now(), token=token)
    store.down = True
    check = DpopCheck(
        Binder(manager), DpopPolicy(), proof, method="GET", url=URL, access_token=token
    )
    with pytest.raises(StoreUnavailable):
        manager.validate(token, proof=check)
    assert check.checked is None  # not proven: the replay cache never saw the jti
    store.down = False  # back up: the same proof is still good once, and only once
    manager.validate(token, proof=check)
    again = DpopCheck(
        Binder(manager), DpopPolicy(), proof, method="GET", url=URL, access_token=token
    )
    with pytest.raises(InvalidProof):
        manager.validate(token, proof=again)


def test_a_registration_or_refresh_that_cannot_be_written_binds_nothing() -> None:
    store, device = Flaky(), Device()
    manager = _manager(store, EventRecorder())
    binder = Binder(manager, BindingPolicy(cookie_lifetime=300))
    session = manager.issue("alice")
    offered = binder.reoffer(session)
    assert offered is not None
    current = manager.get(session.id)
    assert current is not None
    registration = device.registration(*offered)
    store.down = True
    with pytest.raises(StoreUnavailable):
        binder.register(current, registration)
    store.down = False
    assert binding_of(Session(store.get(session.id)).data).state == "offered"  # type: ignore[arg-type]
    registered = binder.register(current, registration)
    asked = binder.refresh(registered.session, registered.sid, None)
    assert asked.session is not None
    assert asked.challenge is not None
    before = store.get(session.id)
    store.down = True
    with pytest.raises(StoreUnavailable):
        binder.refresh(asked.session, registered.sid, device.refresh(asked.challenge))
    assert store.get(session.id) == before  # no new cookie stored, the challenge unspent


def test_no_binding_credential_reaches_an_event_or_a_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    recorder, device, thief = EventRecorder(), Device(), Device()
    manager = _manager(MemoryStore(), recorder)
    binder = Binder(manager, BindingPolicy(cookie_lifetime=300))
    secrets: list[str] = []  # the binding's own credentials
    session = manager.issue("alice")
    assert session.token is not None
    offered = binder.reoffer(session)
    assert offered is not None
    current = manager.get(session.id)
    assert current is not None
    registration = device.registration(*offered)
    registered = binder.register(current, registration)
    asked = binder.refresh(registered.session, registered.sid, None)
    assert asked.session is not None
    assert asked.challenge is not None
    forged = thief.refresh(asked.challenge)
    assert binder.refresh(asked.session, registered.sid, forged).cookie is None  # theft event
    proof = device.refresh(asked.challenge)
    refreshed = binder.refresh(asked.session, registered.sid, proof)
    assert refreshed.cookie is not None
    raised: list[BaseException] = []
    with pytest.raises(InvalidProof) as replayed:  # a registration replayed: refused, reported
        binder.register(registered.session, registration)
    raised.append(replayed.value)
    dpop = device.dpop("GET", URL, iat=manager.clock.now())
    binder.check_dpop(DpopPolicy(), dpop, method="GET", url=URL)
    with pytest.raises(InvalidProof) as foreign:
        binder.check_dpop(DpopPolicy(), dpop, method="GET", url=URL, jkt="x", session=session)
    raised.append(foreign.value)
    secrets += [offered[1], registered.cookie, refreshed.cookie]
    for jwt in (registration, forged, proof, dpop):
        secrets += [jwt.rsplit(".", 1)[1]]  # each signature (the whole JWT contains it)
    texts = [repr(e.to_dict()) for e in recorder.events] + [repr(e) for e in recorder.events]
    texts += [t for exc in raised for t in exception_texts(exc)]
    texts += [t for record in caplog.records for t in record_texts(record)]
    assert any(session.id in text for text in texts)  # the positive control: the capture works
    assert {type(e).__name__ for e in recorder.events} >= {"SessionBound", "TheftSuspected"}
    assert leaks(texts, [session.token]) == []
    # any 12 characters in a row of a binding credential is a leak, masked or not
    windows = {secret[i : i + 12] for secret in secrets for i in range(len(secret) - 11)}
    assert [w for w in windows if any(w in text for text in texts)] == []
