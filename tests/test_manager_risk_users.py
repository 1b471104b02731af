"""The user's risk history belongs to the user: what one session learns counts for the user's
other sessions at once, in this process and in another one sharing the store; it outlives the
user's sessions (one internal record per user, ``history_retention`` after its last write) and
goes with ``revoke_user``. Sync and async managers, memory and SQLite stores, one store shared
by two managers as two processes would share it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from agents import IPHONE, SAFARI
from conftest import CountingStore, SyncFacade

from sessionward import AsyncSessionManager, MemoryStore, Policy, RequestContext, SessionManager
from sessionward.core.record import Session
from sessionward.errors import RiskChallenge
from sessionward.manager.risk import RiskAssessor, user_record_id
from sessionward.stores import AsyncMemoryStore, AsyncSQLiteStore, SQLiteStore
from sessionward.testing import FakeClock

HOURS = 3600.0
DAYS = 24 * HOURS


def ctx(ip: str, ua: str = SAFARI) -> RequestContext:
    return RequestContext(ip=ip, user_agent=ua, accept_language="en-GB,en;q=0.9")


LAPTOP_HOME = ctx("81.2.69.160")  # Andrews & Arnold, GB
PHONE_HOME = ctx("81.2.69.161", IPHONE)
LAPTOP_ABROAD = ctx("73.1.2.3")  # Comcast, US: a trip
PHONE_ABROAD = ctx("73.1.2.4", IPHONE)
POLICY = Policy(idle_timeout=7 * DAYS, absolute_timeout=30 * DAYS)

Made = tuple[SessionManager, CountingStore]


@pytest.fixture(params=["sync-memory", "sync-sqlite", "async-memory", "async-sqlite"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Made]]:
    """``make(clock, shared=None)``: a manager with its own assessor (its own process), on a
    new store or on the store of an earlier one (``shared``)."""
    flavour, backend = cast(str, request.param).split("-")
    runner = asyncio.Runner()
    closers: list[Callable[[], object]] = []

    def build(clock: FakeClock, shared: CountingStore | None = None) -> Made:
        if shared is not None:
            store = shared
        elif flavour == "sync":
            store = CountingStore(
                MemoryStore() if backend == "memory" else SQLiteStore(tmp_path / "s.db")
            )
        else:
            store = CountingStore(
                AsyncMemoryStore() if backend == "memory" else AsyncSQLiteStore(tmp_path / "s.db")
            )
        if flavour == "sync":
            manager = SessionManager(
                cast(Any, store), policy=POLICY, clock=clock, risk=RiskAssessor()
            )
        else:
            inner = AsyncSessionManager(
                cast(Any, store), policy=POLICY, clock=clock, risk=RiskAssessor()
            )
            manager = cast(SessionManager, SyncFacade(inner, runner))
        closers.append(manager.close)
        return manager, store

    yield build
    for close in closers:
        close()
    runner.close()


def _record(store: CountingStore, record_id: str) -> Any:
    got = store.inner.get(record_id)  # type: ignore[attr-defined]
    return got if not asyncio.iscoroutine(got) else asyncio.run(got)


def _trip(manager: SessionManager, clock: FakeClock) -> tuple[Session, Session]:
    """Alice signs in on her laptop and her phone at home; days later she travels and her
    laptop is challenged abroad, then she confirms it was her."""
    laptop = manager.issue("alice", context=LAPTOP_HOME)
    phone = manager.issue("alice", context=PHONE_HOME)
    clock.advance(2 * DAYS)
    with pytest.raises(RiskChallenge):
        manager.validate(laptop.token, context=LAPTOP_ABROAD)
    laptop = manager.confirm(laptop.token, context=LAPTOP_ABROAD)
    clock.advance(HOURS)
    return laptop, phone


def test_a_confirmed_trip_counts_for_the_users_other_session(make: Callable[..., Made]) -> None:
    clock = FakeClock()
    manager, _ = make(clock)
    _, phone = _trip(manager, clock)
    served = manager.validate(phone.token, context=PHONE_ABROAD)  # the phone at the hotel
    assert served.risk is not None
    assert str(served.risk.decision) in ("allow", "log")


def test_the_phone_is_challenged_without_the_laptops_confirmation(
    make: Callable[..., Made],
) -> None:
    """The control for the test above: the same trip, nothing confirmed."""
    clock = FakeClock()
    manager, _ = make(clock)
    manager.issue("alice", context=LAPTOP_HOME)
    phone = manager.issue("alice", context=PHONE_HOME)
    clock.advance(2 * DAYS + HOURS)
    with pytest.raises(RiskChallenge):
        manager.validate(phone.token, context=PHONE_ABROAD)


def test_another_process_reads_the_users_record_before_it_challenges(
    make: Callable[..., Made],
) -> None:
    clock = FakeClock()
    first, store = make(clock)
    second, _ = make(clock, store)  # another process: its own memory, the same store
    laptop = first.issue("alice", context=LAPTOP_HOME)
    phone = first.issue("alice", context=PHONE_HOME)
    clock.advance(2 * DAYS)
    second.validate(phone.token, context=PHONE_HOME)  # the second process knows the phone
    with pytest.raises(RiskChallenge):
        first.validate(laptop.token, context=LAPTOP_ABROAD)
    first.confirm(laptop.token, context=LAPTOP_ABROAD)
    clock.advance(HOURS)
    store.reset()
    served = second.validate(phone.token, context=PHONE_ABROAD)
    assert served.risk is not None
    assert str(served.risk.decision) in ("allow", "log")
    assert store.calls["get"] >= 2  # the session, then the user's record before challenging


def test_the_history_outlives_the_users_sessions(make: Callable[..., Made]) -> None:
    clock = FakeClock()
    manager, store = make(clock)
    laptop, phone = _trip(manager, clock)
    manager.revoke(laptop)
    manager.revoke(phone)
    clock.advance(10 * DAYS)  # every session long gone
    again = manager.issue("alice", context=LAPTOP_HOME)
    clock.advance(2 * DAYS)
    served = manager.validate(again.token, context=LAPTOP_ABROAD)  # the next trip
    assert served.risk is not None
    assert str(served.risk.decision) in ("allow", "log")
    record = _record(store, user_record_id("alice"))
    assert record is not None
    assert record.is_internal
    assert record.user_id is None
    assert record.expires_at > clock.now()


def test_revoke_user_forgets_the_history(make: Callable[..., Made]) -> None:
    clock = FakeClock()
    manager, store = make(clock)
    _trip(manager, clock)
    assert manager.revoke_user("alice") == 2
    assert _record(store, user_record_id("alice")) is None
    again = manager.issue("alice", context=LAPTOP_HOME)
    clock.advance(2 * DAYS)
    with pytest.raises(RiskChallenge):  # afresh: the trip is new again
        manager.validate(again.token, context=LAPTOP_ABROAD)


def test_revoke_user_keeping_a_session_keeps_the_history(make: Callable[..., Made]) -> None:
    clock = FakeClock()
    manager, store = make(clock)
    laptop, _ = _trip(manager, clock)
    assert manager.revoke_user("alice", keep=laptop) == 1
    assert _record(store, user_record_id("alice")) is not None


def test_the_users_record_expires_with_the_retention_period(make: Callable[..., Made]) -> None:
    clock = FakeClock()
    manager, store = make(clock)
    manager.issue("alice", context=LAPTOP_HOME)
    record = _record(store, user_record_id("alice"))
    assert record is not None
    retention = RiskAssessor().policy.history_retention
    assert record.expires_at == pytest.approx(clock.now() + retention)


def test_the_users_record_keeps_no_address_user_agent_or_user_id(
    make: Callable[..., Made],
) -> None:
    clock = FakeClock()
    manager, store = make(clock)
    _trip(manager, clock)
    record = _record(store, user_record_id("alice"))
    assert record is not None
    text = record.data + record.context
    for raw in ("81.2.69.160", "73.1.2.3", "Mozilla", "iPhone OS", "alice"):
        assert raw not in text
    assert set(json.loads(record.data)) == {"sessionward.risk_user"}
    assert "81.2.69.0/24" in text  # the prefix, as the docs say


def test_a_network_hopping_session_writes_the_users_record_with_its_periodic_write_only(
    make: Callable[..., Made],
) -> None:
    clock = FakeClock()
    manager, store = make(clock)
    phone = manager.issue("alice", context=ctx("86.128.9.1", IPHONE))  # BT's network
    manager.validate(phone.token, context=ctx("86.128.9.1", IPHONE))
    store.reset()
    for i in range(20):  # new prefixes, allowed, learned: inside one touch interval
        clock.advance(2)
        manager.validate(phone.token, context=ctx(f"86.128.{10 + i}.7", IPHONE))
    assert store.writes() == 0
    clock.advance(manager.policy.effective_touch_interval)
    manager.validate(phone.token, context=ctx("86.129.3.3", IPHONE))
    assert store.calls["replace"] == 2  # the session's periodic write and the user's record
    record = _record(store, user_record_id("alice"))
    assert "86.129.3.0/24" in record.data


def test_what_a_session_learned_between_writes_outlives_other_sessions_writes() -> None:
    """Each periodic write gives a session a new stored history; thousands of them (another
    busy session's) must not push out what a quiet session learned since its last write."""
    clock = FakeClock()
    manager = SessionManager(MemoryStore(), policy=POLICY, clock=clock, risk=RiskAssessor())
    busy = manager.issue("bob", context=LAPTOP_HOME)
    quiet = manager.issue("alice", context=LAPTOP_HOME)
    clock.advance(HOURS)
    manager.validate(quiet.token, context=LAPTOP_HOME)  # the periodic write
    first = manager.validate(quiet.token, context=ctx("86.128.9.1"))  # BT: a new network
    assert first.risk is not None
    assert "network.new_network" in [str(r.signal) for r in first.risk.reasons]
    for _ in range(4200):  # a write each time
        clock.advance(manager.policy.effective_touch_interval + 1)
        manager.validate(busy.token, context=LAPTOP_HOME)
    again = manager.validate(quiet.token, context=ctx("86.128.9.2"))
    assert again.risk is not None
    assert "network.new_network" not in [str(r.signal) for r in again.risk.reasons]


def test_without_a_users_record_a_sign_in_takes_the_history_of_their_newest_session() -> None:
    """Sessions written before the user's record existed hold the user's history themselves:
    a sign-in then starts from the most recently active one."""
    clock = FakeClock()
    store = MemoryStore()
    manager = SessionManager(store, policy=POLICY, clock=clock, risk=RiskAssessor())
    laptop, _ = _trip(manager, clock)
    manager.validate(laptop.token, context=LAPTOP_ABROAD)
    assert store.delete(user_record_id("alice"))
    fresh = SessionManager(store, policy=POLICY, clock=clock, risk=RiskAssessor())  # restarted
    again = fresh.issue("alice", context=LAPTOP_HOME)
    assert "73.1.2.0/24" in json.dumps(json.loads(again.record.context)["user"])
    clock.advance(2 * DAYS)
    served = fresh.validate(again.token, context=LAPTOP_ABROAD)
    assert served.risk is not None
    assert str(served.risk.decision) in ("allow", "log")


def test_a_sign_in_without_a_context_reads_and_writes_no_history(
    make: Callable[..., Made],
) -> None:
    clock = FakeClock()
    manager, store = make(clock)
    store.reset()
    manager.issue("alice")
    assert store.calls["get"] == 0
    assert store.calls["add"] == 1  # the session alone
    assert _record(store, user_record_id("alice")) is None
