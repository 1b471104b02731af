"""Fixtures of the receiver tests: a test identity provider served over HTTP, and a node
(manager, links, receivers) on a store, with a fake clock started at the wall clock's time (so
Redis TTLs and the provider's ``iat`` agree)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sessionward import SessionManager
from sessionward.core.record import Session
from sessionward.signals._sync.jwks import KeySource
from sessionward.signals._sync.links import IdpLinks
from sessionward.signals._sync.receiver import BackchannelLogout, SsfReceiver
from sessionward.signals.links import IdpLink
from sessionward.stores import MemoryStore
from sessionward.stores._sync.base import Store
from sessionward.testing import EventRecorder, FakeClock

from .idp import CLIENT_ID, TestIdp

AUDIENCE = "https://shop.example"


@pytest.fixture(scope="module")
def idp() -> Iterator[TestIdp]:
    provider = TestIdp()
    with provider.serve():
        yield provider


@dataclass
class Node:
    manager: SessionManager
    links: IdpLinks
    keys: KeySource
    logout: BackchannelLogout
    ssf: SsfReceiver
    clock: FakeClock
    events: EventRecorder

    def login(self, user: str, idp: TestIdp, sid: str | None, sub: str | None = None) -> Session:
        link = IdpLink(idp.issuer, sid, sub or f"sub-{user}")
        session = self.manager.issue(user, data=link.data())
        self.links.remember(session)
        return session

    def alive(self, session: Session) -> bool:
        try:
            self.manager.validate(session.token)
        except Exception:
            return False
        return True


def make_node(store: Store, idp: TestIdp, clock: FakeClock | None = None, **ssf: object) -> Node:
    clock = clock or FakeClock(time.time())
    events = EventRecorder()
    manager = SessionManager(store, clock=clock)
    manager.events.subscribe(events)
    links = IdpLinks(manager)
    keys = KeySource(idp.issuer, jwks_url=f"{idp.issuer}/jwks.json", clock=clock)
    logout = BackchannelLogout(links, keys, client_id=CLIENT_ID)
    receiver = SsfReceiver(links, keys, audience=AUDIENCE, **ssf)  # type: ignore[arg-type]
    return Node(manager, links, keys, logout, receiver, clock, events)


@pytest.fixture
def node(idp: TestIdp) -> Iterator[Node]:
    made = make_node(MemoryStore(), idp)
    yield made
    made.keys.close()
