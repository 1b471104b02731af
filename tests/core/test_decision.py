"""The lifetime rules as a pure function: every rule, its order and its edges, no store."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward import Policy
from sessionward.core.decision import (
    Action,
    Decision,
    Match,
    Proof,
    Risk,
    deadline_passed,
    decide,
    idle_deadline,
    match_secret,
    rotation_due,
    step_up,
)
from sessionward.core.record import SessionRecord
from sessionward.core.successor import links_after_rotation
from sessionward.core.token import mint, new_session_id, verifier

T0 = 1_800_000_000.0
POLICY = Policy(idle_timeout=1000, absolute_timeout=10_000, rotate_after=600, rotation_grace=30)


def record(**fields: Any) -> SessionRecord:
    """A live record created at T0, last seen at T0, never rotated."""
    base = SessionRecord(
        id=new_session_id(),
        secret_hash=bytes(16),
        prev_secret_hash=None,
        grace_until=0.0,
        generation=0,
        user_id="alice",
        auth_level=1,
        auth_time=T0,
        scopes="",
        data="{}",
        created_at=T0,
        rotated_at=T0,
        last_seen=T0,
        expires_at=T0 + 1000,
        absolute_expires_at=T0 + 10_000,
        version=1,
        context="[]",
    )
    return base._replace(**fields)


def test_a_fresh_session_is_allowed_without_a_write() -> None:
    assert decide(record(), T0 + 1, POLICY, Match.CURRENT) == Decision(Action.ALLOW)


def test_an_unknown_secret_is_a_mismatch_whatever_else_holds() -> None:
    dead = record(expires_at=T0, grace_until=T0 + 5)
    assert decide(dead, T0 + 1, POLICY, Match.NONE, admitted=False, risk=Risk.REVOKE) == (
        Decision(Action.REJECT, "mismatch")
    )


def test_the_previous_secret_is_served_inside_its_grace_and_theft_from_its_end() -> None:
    rotated = record(grace_until=T0 + 30, prev_secret_hash=bytes(16))
    assert decide(rotated, T0 + 30 - 1e-6, POLICY, Match.PREVIOUS).action is Action.SUCCESSOR
    assert decide(rotated, T0 + 30, POLICY, Match.PREVIOUS) == Decision(Action.THEFT, "reused")
    # Theft comes before the refusal and the deadlines: a stolen token is reported either way.
    expired = rotated._replace(expires_at=T0 + 10)
    assert decide(expired, T0 + 40, POLICY, Match.PREVIOUS, admitted=False).action is (Action.THEFT)
    assert decide(rotated, T0 + 1, POLICY, Match.EARLIER).action is Action.SUCCESSOR


def test_a_refused_record_is_rejected_before_its_deadlines() -> None:
    dead = record(expires_at=T0)
    assert decide(dead, T0 + 1, POLICY, Match.CURRENT, admitted=False) == (
        Decision(Action.REJECT, "refused")
    )


@pytest.mark.parametrize(
    ("now", "reason"),
    [(T0 + 1000, "idle"), (T0 + 9999, "idle"), (T0 + 10_000, "absolute"), (T0 + 1e6, "absolute")],
)
def test_expiry_names_the_deadline_that_passed(now: float, reason: str) -> None:
    live = record(expires_at=min(now, T0 + 10_000))
    for match in (Match.CURRENT, Match.EARLIER):
        assert decide(live, now, POLICY, match) == Decision(Action.EXPIRE, reason)
    assert deadline_passed(live, now) == Decision(Action.EXPIRE, reason)
    assert deadline_passed(live, live.expires_at - 1e-3) is None


def test_the_risk_verdict_comes_after_authentication_and_before_renewal() -> None:
    due = record(rotated_at=T0 - 600, last_seen=T0 - 600)
    assert decide(due, T0, POLICY, Match.CURRENT).action is Action.ROTATE
    assert decide(due, T0, POLICY, Match.CURRENT, risk=Risk.STEP_UP) == (
        Decision(Action.STEP_UP, "risk")
    )
    assert decide(due, T0, POLICY, Match.CURRENT, risk=Risk.REVOKE) == (
        Decision(Action.REVOKE, "risk")
    )
    in_grace = due._replace(grace_until=T0 + 5)
    assert decide(in_grace, T0, POLICY, Match.PREVIOUS, risk=Risk.REVOKE).action is (Action.REVOKE)


def test_a_pending_proof_holds_after_the_deadlines_and_before_risk_and_renewal() -> None:
    due = record(rotated_at=T0 - 600, last_seen=T0 - 600)
    held = Decision(Action.HOLD, "proof")
    assert decide(due, T0, POLICY, Match.CURRENT, proof=Proof.PENDING) == held
    assert decide(due, T0, POLICY, Match.CURRENT, proof=Proof.PENDING, risk=Risk.REVOKE) == held
    in_grace = due._replace(grace_until=T0 + 5)
    assert decide(in_grace, T0, POLICY, Match.PREVIOUS, proof=Proof.PENDING) == held
    assert decide(due, T0, POLICY, Match.CURRENT, proof=Proof.PROVEN).action is Action.ROTATE
    assert decide(due, T0, POLICY, Match.NONE, proof=Proof.PENDING).action is Action.REJECT
    dead = due._replace(expires_at=T0)
    assert decide(dead, T0, POLICY, Match.CURRENT, proof=Proof.PENDING).action is Action.EXPIRE


def test_renewal_is_due_after_rotate_after_but_never_inside_a_grace_window() -> None:
    fresh = record(rotated_at=T0, grace_until=T0 + 30)
    quick = Policy(idle_timeout=1000, absolute_timeout=10_000, rotate_after=10)
    assert not rotation_due(fresh, T0 + 29, quick)  # due since T0 + 10, but T0's grace is open
    assert decide(fresh, T0 + 29, quick, Match.CURRENT).action is Action.ALLOW
    assert rotation_due(fresh, T0 + 30, quick)
    assert decide(fresh, T0 + 30, quick, Match.CURRENT).action is Action.ROTATE
    assert not rotation_due(record(), T0 + 599, POLICY)
    assert rotation_due(record(), T0 + 600, POLICY)
    assert not rotation_due(record(), T0 + 9999, Policy(absolute_timeout=10_000))


def test_touch_is_throttled_by_the_touch_interval() -> None:
    policy = Policy(idle_timeout=1000, absolute_timeout=10_000, touch_interval=60)
    assert decide(record(), T0 + 60 - 1e-3, policy, Match.CURRENT).action is Action.ALLOW
    assert decide(record(), T0 + 60, policy, Match.CURRENT).action is Action.TOUCH
    always = Policy(touch_interval=0)
    assert decide(record(), T0, always, Match.CURRENT).action is Action.TOUCH


times = st.floats(min_value=0, max_value=20_000, allow_nan=False)


@settings(max_examples=500, deadline=None)
@given(
    created=times,
    seen=times,
    rotated=times,
    grace=times,
    now=times,
    idle=st.floats(min_value=1, max_value=5000),
    rotate_after=st.none() | st.floats(min_value=1, max_value=5000),
    match=st.sampled_from(Match),
    admitted=st.booleans(),
    risk=st.sampled_from(Risk),
)
def test_each_rule_holds_for_any_record_and_time(
    created: float,
    seen: float,
    rotated: float,
    grace: float,
    now: float,
    idle: float,
    rotate_after: float | None,
    match: Match,
    admitted: bool,
    risk: Risk,
) -> None:
    policy = Policy(idle_timeout=idle, absolute_timeout=5000, rotate_after=rotate_after)
    absolute = created + 5000
    subject = record(
        created_at=created,
        last_seen=seen,
        rotated_at=rotated,
        grace_until=grace,
        expires_at=idle_deadline(seen, absolute, policy),
        absolute_expires_at=absolute,
    )
    action, reason = decide(subject, now, policy, match, admitted=admitted, risk=risk)
    authenticated = match in (Match.CURRENT, Match.EARLIER) or (
        match is Match.PREVIOUS and now < grace
    )
    alive = now < subject.expires_at
    # Only an authenticated, admitted, live session is ever served, renewed or handed over.
    if action in (Action.ALLOW, Action.TOUCH, Action.ROTATE, Action.SUCCESSOR):
        assert authenticated
        assert admitted
        assert alive
        assert risk is Risk.ALLOW
    assert (action is Action.SUCCESSOR) == (
        match in (Match.PREVIOUS, Match.EARLIER)
        and authenticated
        and admitted
        and alive
        and risk is Risk.ALLOW
    )
    # Theft is declared for the previous secret after its window, and for nothing else.
    assert (action is Action.THEFT) == (match is Match.PREVIOUS and now >= grace)
    if action is Action.EXPIRE:
        assert not alive
        assert reason == ("absolute" if now >= absolute else "idle")
    if action is Action.ROTATE:
        assert rotate_after is not None
        assert now - rotated >= rotate_after
        assert now >= grace
    if action is Action.ALLOW:
        assert now - seen < policy.effective_touch_interval
        assert not rotation_due(subject, now, policy)


@settings(max_examples=300, deadline=None)
@given(now=times, absolute=times, idle=st.floats(min_value=1, max_value=5000))
def test_the_idle_deadline_never_passes_the_absolute_one(
    now: float, absolute: float, idle: float
) -> None:
    policy = Policy(idle_timeout=idle, absolute_timeout=5000)
    deadline = idle_deadline(now, absolute, policy)
    assert deadline <= absolute
    assert deadline <= now + idle
    assert deadline in (absolute, now + idle)


def test_step_up_names_what_is_missing() -> None:
    strong = record(auth_level=2, auth_time=T0)
    assert step_up(strong, T0 + 300, max_age=300, min_level=2).action is Action.ALLOW
    assert step_up(strong, T0 + 300, max_age=None, min_level=2).action is Action.ALLOW
    assert step_up(strong, T0 + 300.001, max_age=300, min_level=1) == Decision(
        Action.STEP_UP, "age"
    )
    assert step_up(strong, T0, max_age=None, min_level=3) == Decision(Action.STEP_UP, "level")
    assert step_up(strong._replace(auth_time=None), T0, max_age=1, min_level=1) == Decision(
        Action.STEP_UP, "age"
    )
    anonymous = record(user_id=None, auth_level=0, auth_time=None)
    assert step_up(anonymous, T0, max_age=None, min_level=0) == Decision(
        Action.STEP_UP, "anonymous"
    )


def test_match_secret_tells_current_previous_earlier_and_unknown_apart() -> None:
    _, s0 = mint()
    _, s1 = mint(s0.session_id)
    _, s2 = mint(s0.session_id)
    _, stranger = mint(s0.session_id)
    gen0 = record(id=s0.session_id, secret_hash=verifier(s0.secret))
    gen1 = gen0._replace(
        secret_hash=verifier(s1.secret),
        prev_secret_hash=verifier(s0.secret),
        grace_until=T0 + 30,
        successor=links_after_rotation(gen0, s0.secret, s1.secret, T0, 30),
    )
    gen2 = gen1._replace(
        secret_hash=verifier(s2.secret),
        prev_secret_hash=verifier(s1.secret),
        grace_until=T0 + 40,
        successor=links_after_rotation(gen1, s1.secret, s2.secret, T0 + 10, 30),
    )
    assert match_secret(gen2, s2.secret, T0 + 11) == (Match.CURRENT, None)
    assert match_secret(gen2, s1.secret, T0 + 11) == (Match.PREVIOUS, None)
    assert match_secret(gen2, s1.secret, T0 + 99) == (Match.PREVIOUS, None)  # theft is decide's
    assert match_secret(gen2, s0.secret, T0 + 11) == (Match.EARLIER, s2.secret)
    assert match_secret(gen2, s0.secret, T0 + 30) == (Match.NONE, None)  # its window closed
    assert match_secret(gen2, stranger.secret, T0 + 11) == (Match.NONE, None)
    # Only the 16-byte verifier is compared: the full digest or a cut one matches nothing.
    full = gen0._replace(secret_hash=verifier(s0.secret) + bytes(16))
    assert match_secret(full, s0.secret, T0) == (Match.NONE, None)
