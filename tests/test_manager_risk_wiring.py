"""What the manager hands its callers about a risk verdict: ``Session.risk`` for a served
request, ``RiskChallenge`` and ``RiskRevoked`` with codes, weights, score and user, and a
confirmation refused for a session the manager does not admit."""

from __future__ import annotations

import logging

import pytest
from test_no_secrets_in_logs import exception_texts, leaks, record_texts

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from agents import FIREFOX, SAFARI

from sessionward import (
    EventBus,
    InvalidToken,
    MemoryStore,
    Policy,
    RequestContext,
    SessionManager,
)
from sessionward.core.events import log_event
from sessionward.core.record import Session, SessionRecord
from sessionward.errors import RiskChallenge, RiskRevoked, StoreUnavailable
from sessionward.manager.risk import RiskAssessor
from sessionward.testing import EventRecorder, FakeClock

HOME = RequestContext(ip="81.2.69.160", user_agent=SAFARI, accept_language="en-GB")
GERMAN = RequestContext(ip="86.128.9.1", user_agent=SAFARI, accept_language="de-DE")
ABROAD = RequestContext(ip="73.1.2.3", user_agent=SAFARI, accept_language="en-GB")
THIEF = RequestContext(ip="95.173.136.70", user_agent=FIREFOX, accept_language="ru")
HOURS = 3600.0


def world(**options: object) -> tuple[SessionManager, FakeClock, Session]:
    clock = FakeClock()
    manager = SessionManager(
        MemoryStore(),
        policy=Policy(idle_timeout=24 * HOURS, absolute_timeout=7 * 24 * HOURS),
        clock=clock,
        risk=RiskAssessor(),
        **options,  # type: ignore[arg-type]
    )
    session = manager.issue("alice", context=HOME)
    clock.advance(5 * HOURS)
    return manager, clock, session


def test_a_served_session_carries_its_verdict() -> None:
    manager, _, session = world()
    assert manager.risk is not None
    served = manager.validate(session.token, context=HOME)
    assert served.risk is not None
    assert str(served.risk.decision) == "allow"
    logged = manager.validate(session.token, context=GERMAN)
    assert logged.risk is not None
    assert str(logged.risk.decision) == "log"
    assert "language.changed" in [str(r.signal) for r in logged.risk.reasons]
    assert manager.validate(session.token).risk is None  # no context: nothing scored


def test_a_challenge_carries_codes_weights_score_and_user() -> None:
    manager, _, session = world()
    with pytest.raises(RiskChallenge) as caught:
        manager.validate(session.token, context=ABROAD)
    challenge = caught.value
    assert challenge.user_id == "alice"
    assert len(challenge.weights) == len(challenge.codes) == len(challenge.reasons)
    assert challenge.score == pytest.approx(sum(challenge.weights), abs=0.05)
    first = challenge.reason_list()[0]
    assert first == {
        "code": challenge.codes[0],
        "weight": challenge.weights[0],
        "sentence": challenge.reasons[0],
    }


def test_a_revoke_is_an_invalid_token_with_its_reasons() -> None:
    manager, _, session = world()
    with pytest.raises(RiskRevoked) as caught:
        manager.validate(session.token, context=THIEF)
    revoked = caught.value
    assert isinstance(revoked, InvalidToken)
    assert revoked.reason == "risk"
    assert str(revoked) == "invalid session token"  # opaque, as every InvalidToken
    assert {code.partition(".")[0] for code in revoked.codes} >= {"network", "browser"}
    assert revoked.score >= 9


def test_confirm_refuses_a_session_the_manager_does_not_admit() -> None:
    manager, _, session = world(admit=lambda record: False)
    with pytest.raises(InvalidToken) as caught:
        manager.confirm(session.token, context=ABROAD)
    assert caught.value.reason == "refused"


def test_no_token_fragment_in_risk_events_exceptions_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ASVS 16.2.5 for hijack scoring: the log, step-up and revoke decisions (their events,
    log lines and exceptions) and the owner's confirmation carry the public id, never any
    spelling of the token's secret, not even masked (the detector of
    ``test_no_secrets_in_logs``)."""
    caplog.set_level(logging.DEBUG)
    manager, clock, session = world(events=EventBus([log_event]))
    recorder = EventRecorder()
    manager.events.subscribe(recorder)
    owner = manager.issue("alice", context=HOME)
    stolen = manager.issue("bob", context=HOME)
    clock.advance(5 * HOURS)
    tokens_seen = [s.token for s in (session, owner, stolen) if s.token is not None]
    assert len(tokens_seen) == 3
    manager.validate(session.token, context=GERMAN)  # log
    raised: list[BaseException] = []
    with pytest.raises(RiskChallenge) as challenged:
        manager.validate(owner.token, context=ABROAD)  # step-up
    raised.append(challenged.value)
    confirmed = manager.confirm(owner.token, context=ABROAD)  # "this was me"
    assert confirmed.token is not None
    tokens_seen.append(confirmed.token)
    with pytest.raises(RiskRevoked) as revoked:
        manager.validate(stolen.token, context=THIEF)  # revoke
    raised.append(revoked.value)
    kinds = {e.kind for e in recorder.events}
    assert {"risk", "elevated", "revoked"} <= kinds, kinds
    texts = [repr(e.to_dict()) for e in recorder.events] + [repr(e) for e in recorder.events]
    texts += [t for exc in raised for t in exception_texts(exc)]
    texts += [t for record in caplog.records for t in record_texts(record)]
    for public in (session.id, owner.id, stolen.id):  # the positive control
        assert any(public in text for text in texts)
    assert leaks(texts, tokens_seen) == []


class _WritesDown(MemoryStore):
    """A memory store whose writes fail once ``down`` is set (reads keep working)."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("store down")

    def replace(self, record: SessionRecord, *, expected_version: int) -> None:
        self._check()
        super().replace(record, expected_version=expected_version)

    def touch(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        self._check()
        super().touch(session_id, last_seen=last_seen, expires_at=expires_at)

    def delete(self, session_id: str) -> bool:
        self._check()
        return super().delete(session_id)


def test_a_store_that_cannot_write_fails_closed() -> None:
    """A revoke the store cannot carry out, or a confirmation it cannot write, serves nothing:
    the caller gets ``StoreUnavailable`` (a 503 from the adapters), never the session."""
    store = _WritesDown()
    clock = FakeClock()
    manager = SessionManager(
        store,
        policy=Policy(idle_timeout=24 * HOURS, absolute_timeout=7 * 24 * HOURS),
        clock=clock,
        risk=RiskAssessor(),
    )
    thief_target = manager.issue("bob", context=HOME)
    owner = manager.issue("alice", context=HOME)
    clock.advance(5 * HOURS)
    with pytest.raises(RiskChallenge):
        manager.validate(owner.token, context=ABROAD)
    store.down = True
    with pytest.raises(StoreUnavailable):
        manager.validate(thief_target.token, context=THIEF)  # a revoke it cannot write
    with pytest.raises(StoreUnavailable):
        manager.confirm(owner.token, context=ABROAD)
    store.down = False
    with pytest.raises(RiskChallenge):  # nothing was learned: still a stranger's context
        manager.validate(owner.token, context=ABROAD)
    with pytest.raises(RiskRevoked):  # and the thief's session ends once the store is back
        manager.validate(thief_target.token, context=THIEF)
