"""Hijack scoring through the manager: every decision path with fixed contexts, the stored
history (no address, no user-agent string), throttled writes, events and "this was me"."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from agents import FIREFOX, SAFARI

from sessionward import InvalidToken, MemoryStore, Policy, RequestContext, SessionManager
from sessionward.core.events import EventBus, RiskAssessed, SessionRevoked
from sessionward.core.record import Session
from sessionward.errors import ConfigError, RiskChallenge, StepUpRequired
from sessionward.manager.risk import RiskAssessor, decisions_of
from sessionward.testing import EventRecorder, FakeClock

HOURS = 3600.0


def ctx(ip: str, ua: str = SAFARI, lang: str | None = "en-GB,en;q=0.9") -> RequestContext:
    return RequestContext(ip=ip, user_agent=ua, accept_language=lang)


HOME = ctx("81.2.69.160")  # Andrews & Arnold, GB
HOME_NEXT = ctx("81.2.69.161")  # a new address in the same /24
BT_GERMAN = ctx("86.128.9.1", lang="de-DE")  # another GB network, another language
ABROAD = ctx("73.1.2.3")  # Comcast, US: the owner's browser, another country
THIEF = ctx("95.173.136.70", FIREFOX, "ru")  # RU, another system, another language


class World:
    def __init__(self, *, risk: bool = True) -> None:
        self.clock = FakeClock()
        self.events = EventRecorder()
        self.store = MemoryStore()
        self.manager = SessionManager(
            self.store,
            policy=Policy(idle_timeout=24 * HOURS, absolute_timeout=7 * 24 * HOURS),
            clock=self.clock,
            events=EventBus([self.events]),
            risk=RiskAssessor() if risk else None,
        )

    def login(self, context: RequestContext = HOME) -> Session:
        session = self.manager.issue("alice", context=context)
        self.clock.advance(5 * HOURS)  # later: no impossible-travel signal
        return session

    def version(self, session: Session) -> int:
        record = self.store.get(session.id)
        assert record is not None
        return record.version

    def risk_events(self) -> list[RiskAssessed]:
        return [e for e in self.events.events if isinstance(e, RiskAssessed)]


@pytest.fixture
def world() -> World:
    return World()


def test_the_stored_history_keeps_prefixes_and_owners_not_addresses_or_user_agents(
    world: World,
) -> None:
    session = world.login()
    stored = session.record.context
    assert "81.2.69.160" not in stored
    assert SAFARI not in stored
    assert "Macintosh" not in stored
    loaded = json.loads(stored)
    assert loaded["session"]["networks"][0][:3] == ["81.2.69.0/24", "Andrews & Arnold Ltd", "GB"]
    assert loaded["session"]["browser"][0] == "Safari"


def test_without_an_assessor_the_raw_context_history_is_kept_as_before() -> None:
    world = World(risk=False)
    session = world.login(ctx("95.173.136.70"))
    assert world.manager.validate(session.token, context=THIEF).id == session.id
    assert "95.173.136.70" in world.store.get(session.id).context  # type: ignore[union-attr]


def test_allow_a_new_address_in_the_same_network(world: World) -> None:
    session = world.login()
    assert world.manager.validate(session.token, context=HOME_NEXT).id == session.id
    assert world.risk_events() == []


def test_log_serves_the_request_and_reports_the_reasons(world: World) -> None:
    session = world.login()
    assert world.manager.validate(session.token, context=BT_GERMAN).id == session.id
    (event,) = world.risk_events()
    assert event.decision == "log"
    assert "language.changed" in [code for code, _, _ in event.reasons]
    assert "86.128.9.1" not in repr(event)
    assert session.token is not None
    assert session.token not in repr(event)


def test_step_up_keeps_the_session_and_the_owner_goes_on(world: World) -> None:
    session = world.login()
    with pytest.raises(RiskChallenge) as caught:
        world.manager.validate(session.token, context=ABROAD)
    challenge = caught.value
    assert isinstance(challenge, StepUpRequired)
    assert challenge.session_id == session.id
    assert "network.new_country" in challenge.codes
    assert any("COMCAST" in reason and "(US)" in reason for reason in challenge.reasons)
    assert [e.decision for e in world.risk_events()] == ["step_up"]
    world.clock.advance(30)
    assert world.manager.validate(session.token, context=HOME).id == session.id


def test_revoke_ends_the_session_with_reason_risk(world: World) -> None:
    session = world.login()
    with pytest.raises(InvalidToken) as caught:
        world.manager.validate(session.token, context=THIEF)
    assert caught.value.reason == "risk"
    assert world.store.get(session.id) is None
    revoked = [e for e in world.events.events if isinstance(e, SessionRevoked)]
    assert [e.reason for e in revoked] == ["risk"]
    assert [e.decision for e in world.risk_events()] == ["revoke"]
    with pytest.raises(InvalidToken):
        world.manager.validate(session.token, context=HOME)


def test_a_thief_hopping_networks_makes_no_store_write(world: World) -> None:
    session = world.login()
    world.manager.validate(session.token, context=HOME)  # the owner's periodic write
    before = world.version(session)
    for i in range(20):
        world.clock.advance(1)
        with pytest.raises(RiskChallenge):
            world.manager.validate(session.token, context=ctx(f"73.1.{i}.3"))
    assert world.version(session) == before


def test_a_roaming_phone_writes_once_per_touch_interval(world: World) -> None:
    session = world.login(ctx("86.128.9.1"))  # a phone on BT's network
    world.manager.validate(session.token, context=ctx("86.128.9.1"))  # the periodic write
    before = world.version(session)
    for i in range(20):
        world.clock.advance(2)  # inside one touch interval (60 s)
        world.manager.validate(session.token, context=ctx(f"86.128.{10 + i}.7"))
    assert world.version(session) == before
    world.clock.advance(world.manager.policy.effective_touch_interval)
    world.manager.validate(session.token, context=ctx("86.129.3.3"))
    assert world.version(session) == before + 1
    stored = json.loads(world.store.get(session.id).context)  # type: ignore[union-attr]
    prefixes = [row[0] for row in stored["session"]["networks"]]
    assert "86.129.3.0/24" in prefixes
    assert "86.128.29.0/24" in prefixes


def test_logged_decisions_are_written_with_the_next_periodic_write(world: World) -> None:
    session = world.login()
    world.manager.validate(session.token, context=BT_GERMAN)
    world.clock.advance(world.manager.policy.effective_touch_interval)
    world.manager.validate(session.token, context=BT_GERMAN)
    record = world.store.get(session.id)
    assert record is not None
    (logged,) = decisions_of(record.context)
    assert logged["decision"] == "log"
    assert any(code == "language.changed" for code, _, _ in logged["reasons"])


def test_confirm_teaches_the_context_and_cuts_off_the_old_token(world: World) -> None:
    session = world.login()
    with pytest.raises(RiskChallenge):
        world.manager.validate(session.token, context=ABROAD)
    confirmed = world.manager.confirm(session.token, context=ABROAD)
    assert confirmed.token is not None
    assert confirmed.id == session.id
    with pytest.raises(InvalidToken):
        world.manager.validate(session.token, context=HOME)
    world.clock.advance(60)
    assert world.manager.validate(confirmed.token, context=ABROAD).id == session.id
    assert world.risk_events()[-1].decision == "step_up"  # nothing new after confirming


def test_confirm_needs_an_assessor_and_the_current_secret() -> None:
    plain = World(risk=False)
    session = plain.login()
    with pytest.raises(ConfigError):
        plain.manager.confirm(session.token, context=HOME)
    world = World()
    session = world.login()
    rotated = world.manager.rotate(session)
    world.clock.advance(world.manager.policy.rotation_grace + 1)
    with pytest.raises(InvalidToken):
        world.manager.confirm(session.token, context=HOME)
    assert rotated.token is not None


def test_a_new_login_carries_the_users_history_from_their_newest_session(world: World) -> None:
    first = world.login()
    with pytest.raises(RiskChallenge):
        world.manager.validate(first.token, context=ABROAD)
    world.manager.confirm(first.token, context=ABROAD)
    second = world.manager.issue("alice", context=HOME)
    user = json.loads(second.record.context)["user"]
    assert any("COMCAST-7922" in row for row in user["paths"])


def test_a_session_without_readable_history_starts_one_at_its_next_request(world: World) -> None:
    session = world.login()
    record = world.store.get(session.id)
    assert record is not None
    raw = json.dumps([{"ip": "81.2.69.160", "user_agent": SAFARI, "since": 0}])
    world.store.replace(record._replace(context=raw, version=2), expected_version=1)
    assert world.manager.validate(session.token, context=HOME).id == session.id
    world.clock.advance(world.manager.policy.effective_touch_interval)
    world.manager.validate(session.token, context=HOME)
    assert "81.2.69.160" not in world.store.get(session.id).context  # type: ignore[union-attr]


def test_anonymous_sessions_are_not_scored(world: World) -> None:
    session = world.manager.issue(context=HOME)
    world.clock.advance(60)
    assert world.manager.validate(session.token, context=THIEF).id == session.id
