"""The user's risk record (``manager.risk.user_record_id``) on every store: two managers, as
two processes, share it through the store; its versions guard concurrent writers; it is no
session (no listing shows it, ``delete_all`` leaves it) and ``revoke_user`` deletes it."""

from __future__ import annotations

from typing import Any, cast

import pytest

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from agents import SAFARI

from sessionward import Policy, RequestContext, SessionManager
from sessionward.errors import RiskChallenge, VersionConflict
from sessionward.manager.risk import RiskAssessor, user_record_id
from sessionward.stores import AsyncDeleteAll, DeleteAll
from sessionward.testing import FakeClock

from .conftest import IndexedStore, RunnerFacade

HOME = RequestContext(ip="81.2.69.160", user_agent=SAFARI, accept_language="en-GB")
TABLET_HOME = RequestContext(ip="81.2.69.161", user_agent=SAFARI, accept_language="en-GB")
ABROAD = RequestContext(ip="73.1.2.3", user_agent=SAFARI, accept_language="en-GB")
TABLET_ABROAD = RequestContext(ip="73.1.2.4", user_agent=SAFARI, accept_language="en-GB")
DAYS = 86400.0
POLICY = Policy(idle_timeout=7 * DAYS, absolute_timeout=30 * DAYS)


def _manager(store: IndexedStore, clock: FakeClock) -> SessionManager:
    return SessionManager(cast(Any, store), policy=POLICY, clock=clock, risk=RiskAssessor())


def test_two_processes_share_the_users_history(store: IndexedStore, clock: FakeClock) -> None:
    first, second = _manager(store, clock), _manager(store, clock)
    laptop = first.issue("alice", context=HOME)
    record = store.get(user_record_id("alice"))
    assert record is not None
    assert record.is_internal
    assert record.version == 1
    tablet = second.issue("alice", context=TABLET_HOME)
    clock.advance(2 * DAYS)
    second.validate(tablet.token, context=TABLET_HOME)
    with pytest.raises(RiskChallenge):
        first.validate(laptop.token, context=ABROAD)
    first.confirm(laptop.token, context=ABROAD)
    record = store.get(user_record_id("alice"))
    assert record is not None
    assert record.version == 3  # the two sign-ins, then the confirmation
    assert "73.1.2.0/24" in record.data
    clock.advance(3600)
    served = second.validate(tablet.token, context=TABLET_ABROAD)
    assert served.risk is not None
    assert str(served.risk.decision) in ("allow", "log")
    assert {s.id for s in store.list_user("alice")} == {laptop.id, tablet.id}
    with pytest.raises(VersionConflict):  # a writer that read version 2 loses
        store.replace(record._replace(version=3), expected_version=2)


def test_revoke_user_deletes_the_record_and_delete_all_leaves_it(
    store: IndexedStore, clock: FakeClock
) -> None:
    manager = _manager(store, clock)
    manager.issue("alice", context=HOME)
    manager.issue("bob", context=HOME)
    inner = store.wrapped if isinstance(store, RunnerFacade) else store
    if isinstance(inner, DeleteAll | AsyncDeleteAll):
        assert isinstance(store, DeleteAll)
        assert store.delete_all() == 2
        assert store.get(user_record_id("alice")) is not None
        manager.issue("alice", context=HOME)
    assert manager.revoke_user("alice") == 1
    assert store.get(user_record_id("alice")) is None
    assert store.get(user_record_id("bob")) is not None
