"""SessionManager behaviour, for both twins (sync and async) on both embedded stores.

Every test takes ``h`` or ``make_harness`` from conftest.py and so runs four times: sync and
async manager, each over MemoryStore and a SQLiteStore file. Time only moves when a test says
so (FakeClock). ``EPS`` is small but well above float resolution at the fake epoch (~2e-7).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from conftest import Harness, MakeHarness

from sessionward import Policy, RequestContext, RevokeReason, Session
from sessionward.core import token as tokens
from sessionward.core.events import (
    Event,
    EventBus,
    SessionCreated,
    SessionElevated,
    SessionRevoked,
    SessionRotated,
    SessionValidatedWithRotation,
    TheftSuspected,
    TokenRejected,
)
from sessionward.core.events import (
    SessionExpired as ExpiredEvent,
)
from sessionward.errors import (
    DataTooLarge,
    InvalidArgument,
    InvalidToken,
    SessionExpired,
    SessionLimitReached,
    StepUpRequired,
    UpdateConflict,
)

EPS = 0.001
E = TypeVar("E", bound=Event)
VECTORS = json.loads((Path(__file__).parent / "vectors" / "tokens.json").read_text("utf-8"))


def reason_of(h: Harness, token: object) -> str:
    with pytest.raises(InvalidToken) as caught:
        h.m.validate(token)
    return caught.value.reason


def forged(session_id: str) -> str:
    """A well-formed token for a real session id but with a secret the server never issued."""
    return tokens.token_from_parts(session_id, secrets.token_bytes(32))


def of_type(h: Harness, kind: type[E]) -> list[E]:
    return [e for e in h.events.events if isinstance(e, kind)]


def assert_token(session: Session) -> str:
    assert session.token is not None
    assert tokens.parse(session.token).session_id == session.id
    return session.token


# -- issue ------------------------------------------------------------------------------------


def test_issue_login(h: Harness) -> None:
    t0 = h.clock.now()
    s = h.m.issue("alice", auth_level=2, scopes=["write", "read", "read"], data={"theme": "dark"})
    token = assert_token(s)
    assert (s.user_id, s.is_anonymous, s.auth_level, s.auth_time) == ("alice", False, 2, t0)
    assert s.scopes == frozenset({"read", "write"})
    assert s.data == {"theme": "dark"}
    assert (s.generation, s.rotated, s.created_at, s.last_seen) == (0, True, t0, t0)
    assert s.expires_at == t0 + h.policy.idle_timeout
    assert s.absolute_expires_at == t0 + h.policy.absolute_timeout

    stored = h.stored(s.id)
    assert stored is not None
    assert stored.secret_hash == hashlib.sha256(tokens.parse(token).secret).digest()[:16]
    assert token not in repr(tuple(stored))
    assert tokens.parse(token).secret not in tuple(stored)

    again = h.m.validate(token)
    assert (again.id, again.user_id, again.token, again.data) == (s.id, "alice", None, s.data)
    assert h.kinds() == ["created"]
    created = of_type(h, SessionCreated)[0]
    assert (created.session_id, created.user_id, created.anonymous) == (s.id, "alice", False)
    assert created.upgraded_from is None


def test_issue_with_explicit_auth_time(h: Harness) -> None:
    s = h.m.issue("alice", auth_time=h.clock.now() - 600)
    assert s.auth_time == h.clock.now() - 600


def test_issue_anonymous(h: Harness) -> None:
    s = h.m.issue(auth_level=3, data={"cart": []})
    assert_token(s)
    assert (s.user_id, s.is_anonymous, s.auth_level, s.auth_time) == (None, True, 0, None)
    assert s.scopes == frozenset()
    assert h.m.validate(s.token).data == {"cart": []}
    assert of_type(h, SessionCreated)[0].anonymous is True


def test_each_issue_gets_a_new_id_and_token(h: Harness) -> None:
    issued = [h.m.issue("alice") for _ in range(20)]
    assert len({s.id for s in issued}) == 20
    assert len({s.token for s in issued}) == 20


def test_issue_data_size_limit_counts_utf8_bytes(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(max_data_bytes=32))
    # '{"k":"' + value + '"}' is 8 bytes of JSON around the value.
    assert h.m.issue("alice", data={"k": "x" * 24}).data == {"k": "x" * 24}
    assert h.m.issue("alice", data={"k": "\u00e9" * 12}).data == {"k": "\u00e9" * 12}
    h.store.reset()
    h.events.events.clear()
    with pytest.raises(DataTooLarge):
        h.m.issue("alice", data={"k": "x" * 25})
    with pytest.raises(DataTooLarge):
        h.m.issue("alice", data={"k": "\u00e9" * 13})
    assert h.store.writes() == 0
    assert h.events.events == []
    assert len(h.m.list_user("alice")) == 2


BAD_ISSUE_ARGUMENTS: list[tuple[str, dict[str, Any]]] = [
    ("empty user id", {"user_id": ""}),
    ("int user id", {"user_id": 123}),
    ("bytes user id", {"user_id": b"alice"}),
    ("user id too long", {"user_id": "x" * 257}),
    ("negative level", {"user_id": "alice", "auth_level": -1}),
    ("bool level", {"user_id": "alice", "auth_level": True}),
    ("float level", {"user_id": "alice", "auth_level": 1.5}),
    ("str level", {"user_id": "alice", "auth_level": "1"}),
    ("scopes as one string", {"user_id": "alice", "scopes": "read"}),
    ("scope with space", {"user_id": "alice", "scopes": ["read write"]}),
    ("empty scope", {"user_id": "alice", "scopes": [""]}),
    ("non-str scope", {"user_id": "alice", "scopes": [1]}),
    ("non-printable scope", {"user_id": "alice", "scopes": ["a\nb"]}),
    ("scopes not iterable", {"user_id": "alice", "scopes": 5}),
    ("data not JSON", {"user_id": "alice", "data": {"x": object()}}),
    ("data with NaN", {"user_id": "alice", "data": {"x": float("nan")}}),
    ("data not a mapping", {"user_id": "alice", "data": ["a", "b"]}),
    ("data an int", {"user_id": "alice", "data": 5}),
    ("data with a tuple key", {"user_id": "alice", "data": {(1, 2): "x"}}),
]


@pytest.mark.parametrize(
    "kwargs", [a for _, a in BAD_ISSUE_ARGUMENTS], ids=[n for n, _ in BAD_ISSUE_ARGUMENTS]
)
def test_issue_rejects_bad_arguments(h: Harness, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        h.m.issue(**kwargs)
    assert isinstance(caught.value, ValueError)
    assert h.store.writes() == 0
    assert h.events.events == []


def test_issue_accepts_boundary_arguments(h: Harness) -> None:
    s = h.m.issue("x" * 256, auth_level=0, scopes=set(), data={})
    assert (s.user_id, s.auth_level, s.scopes, s.data) == ("x" * 256, 0, frozenset(), {})


# -- fixation: login upgrades an anonymous session ----------------------------------------------


def test_login_keeps_the_cart_and_kills_the_anonymous_token(h: Harness) -> None:
    anon = h.m.issue(data={"cart": ["apple"]})
    anon_token = assert_token(anon)
    # The cart changes after the application last saw ``anon``: login must use the fresh cart.
    h.m.update_data(anon, lambda d: d["cart"].append("pear"))
    user = h.m.issue("alice", previous=anon)
    user_token = assert_token(user)
    assert user.data == {"cart": ["apple", "pear"]}
    assert user.id != anon.id
    assert user_token != anon_token
    assert reason_of(h, anon_token) == "unknown"
    assert h.stored(anon.id) is None
    assert h.m.validate(user_token).data == {"cart": ["apple", "pear"]}
    revoked = of_type(h, SessionRevoked)
    assert [(e.session_id, e.reason) for e in revoked] == [(anon.id, "login-upgrade")]
    created = of_type(h, SessionCreated)[-1]
    assert (created.session_id, created.upgraded_from) == (user.id, anon.id)


def test_login_data_wins_over_carried_data(h: Harness) -> None:
    anon = h.m.issue(data={"cart": ["apple"], "lang": "de"})
    user = h.m.issue("alice", previous=anon, data={"cart": []})
    assert user.data == {"cart": [], "lang": "de"}


def test_same_user_relogin_carries_data(h: Harness) -> None:
    first = h.m.issue("alice", data={"draft": 1})
    second = h.m.issue("alice", previous=first)
    assert second.data == {"draft": 1}
    assert reason_of(h, first.token) == "unknown"


def test_data_never_follows_into_another_users_session(h: Harness) -> None:
    bob = h.m.issue("bob", data={"iban": "DE00"})
    alice = h.m.issue("alice", previous=bob)
    assert alice.data == {}
    assert h.m.validate(alice.token).data == {}
    # The previous session on this client ends either way.
    assert reason_of(h, bob.token) == "unknown"


def test_login_with_a_previous_session_that_is_already_gone(h: Harness) -> None:
    anon = h.m.issue(data={"cart": [1]})
    assert h.m.revoke(anon)
    user = h.m.issue("alice", previous=anon)
    assert user.data == {}
    assert of_type(h, SessionCreated)[-1].upgraded_from is None


# -- validate: rejections -----------------------------------------------------------------------


def _garbage() -> list[object]:
    values: list[object] = [
        v["input"]["value"] for v in VECTORS["invalid"] if v["input"]["type"] == "str"
    ]
    return [*values, None, b"sw1_", 42, ["sw1_"], object()]


def test_malformed_tokens_never_reach_the_store(h: Harness) -> None:
    h.m.issue("alice")
    h.store.reset()
    h.events.events.clear()
    garbage = _garbage()
    for value in garbage:
        assert reason_of(h, value) in {"malformed", "checksum"}
    assert sum(h.store.calls.values()) == 0
    rejected = of_type(h, TokenRejected)
    assert len(rejected) == len(h.events.events) == len(garbage)
    assert all(e.session_id is None and e.user_id is None for e in rejected)


def test_unknown_token_costs_one_read(h: Harness) -> None:
    token, parsed = tokens.mint()
    h.store.reset()
    assert reason_of(h, token) == "unknown"
    assert h.store.calls == {"get": 1}
    rejected = of_type(h, TokenRejected)[0]
    assert (rejected.session_id, rejected.reason) == (parsed.session_id, "unknown")


def test_wrong_secret_for_a_known_id_does_not_revoke(h: Harness) -> None:
    s = h.m.issue("alice")
    r = h.m.rotate(s)  # a previous secret exists too: a wrong one is still not "theft"
    before = h.stored(s.id)
    h.store.reset()
    h.events.events.clear()
    for _ in range(20):
        assert reason_of(h, forged(s.id)) == "mismatch"
    assert h.store.writes() == 0
    assert h.stored(s.id) == before
    assert h.kinds() == ["rejected"] * 20
    assert h.m.validate(r.token).id == s.id
    assert h.m.validate(s.token).id == s.id


# -- validate: expiry -------------------------------------------------------------------------


def test_idle_expiry_edge(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(idle_timeout=100, absolute_timeout=1000, touch_interval=10))
    t0 = h.clock.now()
    early = h.m.issue("alice")
    late = h.m.issue("alice")
    h.clock.set(t0 + 100 - EPS)
    assert h.m.validate(early.token).id == early.id
    h.clock.set(t0 + 100)
    with pytest.raises(SessionExpired) as caught:
        h.m.validate(late.token)
    assert caught.value.reason == "expired-idle"
    assert isinstance(caught.value, InvalidToken)
    assert h.stored(late.id) is None
    expired = of_type(h, ExpiredEvent)
    assert [(e.session_id, e.deadline) for e in expired] == [(late.id, "idle")]
    assert reason_of(h, late.token) == "unknown"


def test_activity_extends_the_idle_deadline(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(idle_timeout=100, absolute_timeout=10_000, touch_interval=10))
    t0 = h.clock.now()
    s = h.m.issue("alice")
    for step in range(1, 11):  # 600 s in all, six idle timeouts, never idle for 100 s
        h.clock.set(t0 + 60 * step)
        assert h.m.validate(s.token).expires_at == t0 + 60 * step + 100
    last = t0 + 600
    h.clock.set(last + 100 - EPS)
    h.m.validate(s.token)
    h.clock.set(last + 100 - EPS + 100)
    assert reason_of(h, s.token) == "expired-idle"


def test_throttled_touch_means_activity_inside_the_interval_does_not_extend(
    make_harness: MakeHarness,
) -> None:
    # Documented in Policy: the effective idle timeout lies between idle - touch and idle.
    h = make_harness(Policy(idle_timeout=100, absolute_timeout=1000, touch_interval=10))
    t0 = h.clock.now()
    s = h.m.issue("alice")
    h.clock.set(t0 + 10 - EPS)
    h.store.reset()
    h.m.validate(s.token)
    assert h.store.writes() == 0
    h.clock.set(t0 + 100)
    assert reason_of(h, s.token) == "expired-idle"


def test_absolute_expiry_for_an_always_active_session(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(idle_timeout=100, absolute_timeout=300, touch_interval=10))
    t0 = h.clock.now()
    s = h.m.issue("alice")
    for step in range(1, 6):
        h.clock.set(t0 + 50 * step)
        v = h.m.validate(s.token)
        assert v.expires_at <= v.absolute_expires_at == t0 + 300
    h.clock.set(t0 + 300 - EPS)
    h.m.validate(s.token)
    h.clock.set(t0 + 300)
    with pytest.raises(SessionExpired) as caught:
        h.m.validate(s.token)
    assert caught.value.reason == "expired-absolute"
    assert [e.deadline for e in of_type(h, ExpiredEvent)] == ["absolute"]
    assert h.stored(s.id) is None


def test_last_seen_writes_are_throttled(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(idle_timeout=1000, absolute_timeout=10_000, touch_interval=10))
    t0 = h.clock.now()
    s = h.m.issue("alice")
    h.store.reset()
    for i in range(121):  # one validation every 0.5 s for 60 s
        h.clock.set(t0 + i * 0.5)
        h.m.validate(s.token)
    assert h.store.writes() == 6  # at 10, 20, ... 60 s: one per touch interval
    stored = h.stored(s.id)
    assert stored is not None
    assert stored.last_seen == t0 + 60
    assert stored.expires_at == t0 + 60 + 1000
    h.store.reset()
    for _ in range(50):  # a burst at one instant costs nothing more
        h.m.validate(s.token)
    assert h.store.writes() == 0


# -- rotation and theft -----------------------------------------------------------------------


def test_rotation_grace_window_edges_and_theft(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(rotation_grace=30, idle_timeout=1000, absolute_timeout=10_000))
    s = h.m.issue("alice")
    h.clock.advance(5)
    t1 = h.clock.now()
    r = h.m.rotate(s)
    new_token = assert_token(r)
    assert (r.id, r.generation) == (s.id, 1)
    assert new_token != s.token
    rotated = of_type(h, SessionRotated)
    assert [(e.session_id, e.generation) for e in rotated] == [(s.id, 1)]

    h.clock.set(t1 + 30 - EPS)
    in_grace = h.m.validate(s.token)  # resolves to the successor, rotates nothing
    assert (in_grace.id, in_grace.token, in_grace.generation) == (s.id, new_token, 1)
    assert h.m.validate(new_token).token is None
    assert len(of_type(h, SessionRotated)) == 1

    h.events.events.clear()
    h.clock.set(t1 + 30)
    assert reason_of(h, s.token) == "reused"
    assert h.kinds() == ["theft-suspected", "revoked"]
    theft = of_type(h, TheftSuspected)[0]
    assert (theft.session_id, theft.user_id, theft.generation) == (s.id, "alice", 1)
    assert of_type(h, SessionRevoked)[0].reason == "theft"
    assert h.stored(s.id) is None
    assert reason_of(h, new_token) == "unknown"


def test_zero_grace_means_the_old_secret_is_theft_at_once(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(rotation_grace=0))
    s = h.m.issue("alice")
    r = h.m.rotate(s)
    assert reason_of(h, s.token) == "reused"
    assert reason_of(h, r.token) == "unknown"


def test_rotate_is_idempotent_per_presented_secret(h: Harness) -> None:
    s = h.m.issue("alice")
    first = h.m.rotate(s)
    second = h.m.rotate(s)  # a parallel request still holding generation 0
    again = h.m.rotate(h.m.validate(s.token))  # a retry of the same request
    for late in (second, again):
        assert (late.id, late.generation, late.token) == (s.id, 1, first.token)
    assert h.m.validate(assert_token(first)).generation == 1
    assert h.m.validate(s.token).token == first.token
    assert len(of_type(h, SessionRotated)) == 1


def test_rotate_of_a_session_without_its_secret_returns_the_current_one(h: Harness) -> None:
    s = h.m.issue("alice")
    looked_up = h.m.get(s.id)  # by id: the manager does not know which secret it holds
    assert looked_up is not None
    first = h.m.rotate(s)
    second = h.m.rotate(looked_up)
    assert second.token is None
    assert (second.id, second.generation) == (s.id, 1)
    assert h.m.validate(assert_token(first)).generation == 1
    assert len(of_type(h, SessionRotated)) == 1


def test_every_token_inside_its_window_leads_to_the_newest_across_rotations(h: Harness) -> None:
    s0 = h.m.issue("alice")
    s1 = h.m.rotate(s0)
    s2 = h.m.rotate(s1)  # the holder of the new token rotates again at once
    newest = assert_token(s2)
    for old in (s0, s1):
        handed = h.m.validate(old.token)
        assert (handed.token, handed.generation) == (newest, 2)
        assert h.m.rotate(handed).token == newest  # and rotating from it changes nothing
    assert len(of_type(h, SessionRotated)) == 2
    stored = h.stored(s0.id)
    assert stored is not None
    for token in (s0.token, s1.token, newest):
        secret = tokens.parse(token).secret
        assert all(secret not in value for value in stored if isinstance(value, bytes))
    assert "theft-suspected" not in h.kinds()


def test_rotate_after_the_window_closed_is_stale_not_theft(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(rotation_grace=30))
    s = h.m.issue("alice")
    first = h.m.rotate(s)
    h.clock.advance(30)
    with pytest.raises(InvalidToken) as caught:
        h.m.rotate(s)  # validated long ago, rotated out since, window closed
    assert caught.value.reason == "stale"
    assert "theft-suspected" not in h.kinds()
    assert h.m.validate(assert_token(first)).generation == 1


def test_the_presented_secret_never_shows(h: Harness) -> None:
    s = h.m.issue("alice")
    validated = h.m.validate(s.token)
    secret = tokens.parse(assert_token(s)).secret
    for shown in (repr(validated), str(validated), repr(validated.record)):
        assert secret.hex() not in shown
        assert repr(secret) not in shown


def test_rotate_a_revoked_session_fails(h: Harness) -> None:
    s = h.m.issue("alice")
    h.m.revoke(s)
    with pytest.raises(InvalidToken):
        h.m.rotate(s)


def test_auto_renewal_with_rotate_after(make_harness: MakeHarness) -> None:
    h = make_harness(
        Policy(rotate_after=60, rotation_grace=30, idle_timeout=1000, absolute_timeout=10_000)
    )
    t0 = h.clock.now()
    s = h.m.issue("alice")
    h.clock.set(t0 + 60 - EPS)
    assert h.m.validate(s.token).token is None
    h.clock.set(t0 + 60)
    renewed = h.m.validate(s.token)
    new_token = assert_token(renewed)
    assert (renewed.id, renewed.generation, renewed.rotated) == (s.id, 1, True)
    event = of_type(h, SessionValidatedWithRotation)
    assert [(e.session_id, e.generation) for e in event] == [(s.id, 1)]
    assert h.m.validate(new_token).token is None
    # A parallel request with the old token inside the window: handed the renewed token.
    parallel = h.m.validate(s.token)
    assert (parallel.token, parallel.generation) == (new_token, 1)
    assert len(event) == len(of_type(h, SessionValidatedWithRotation))
    h.clock.set(t0 + 60 + 30)
    assert reason_of(h, s.token) == "reused"
    assert reason_of(h, new_token) == "unknown"
    assert "theft-suspected" in h.kinds()


def test_a_renewal_that_loses_a_race_reads_again(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(rotate_after=60, idle_timeout=1000, absolute_timeout=10_000))
    s = h.m.issue("alice")
    h.clock.advance(60)
    h.store.reset()
    h.store.conflicts = 1  # another writer got there first; the record is still current
    renewed = h.m.validate(s.token)
    assert renewed.generation == 1
    assert h.m.validate(assert_token(renewed)).token is None
    assert (h.store.calls["get"], h.store.calls["replace"]) == (3, 2)


def test_a_renewal_that_keeps_losing_serves_the_session_as_is(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(rotate_after=60, idle_timeout=1000, absolute_timeout=10_000))
    s = h.m.issue("alice")
    h.clock.advance(60)
    h.store.conflicts = -1
    served = h.m.validate(s.token)
    assert (served.id, served.token, served.generation) == (s.id, None, 0)
    assert "theft-suspected" not in h.kinds()
    h.store.conflicts = 0
    assert h.m.validate(s.token).generation == 1  # the next request renews it


# -- step-up ----------------------------------------------------------------------------------


def test_elevate(h: Harness) -> None:
    s = h.m.issue("alice", auth_level=1, scopes=["read"])
    h.clock.advance(100)
    e = h.m.elevate(s, auth_level=2, scopes=["read", "admin"])
    token = assert_token(e)
    assert (e.id, e.auth_time, e.auth_level, e.generation) == (s.id, h.clock.now(), 2, 1)
    assert e.scopes == frozenset({"read", "admin"})
    assert token != s.token
    # No grace for a privilege change: the old token is dead at once, and is not "theft".
    assert reason_of(h, s.token) == "mismatch"
    v = h.m.validate(token)
    assert (v.auth_level, v.scopes) == (2, frozenset({"read", "admin"}))
    elevated = of_type(h, SessionElevated)
    assert [(x.session_id, x.auth_level) for x in elevated] == [(s.id, 2)]
    assert "revoked" not in h.kinds()


def test_elevate_without_changes_only_refreshes_auth_time(h: Harness) -> None:
    s = h.m.issue("alice", auth_level=3, scopes=["a"])
    h.clock.advance(50)
    e = h.m.elevate(s)
    assert (e.auth_time, e.auth_level, e.scopes) == (h.clock.now(), 3, frozenset({"a"}))


def test_elevate_ends_the_grace_of_an_earlier_rotation(h: Harness) -> None:
    s = h.m.issue("alice")
    r = h.m.rotate(s)
    e = h.m.elevate(r)
    assert reason_of(h, s.token) == "mismatch"
    assert reason_of(h, r.token) == "mismatch"
    assert h.m.validate(e.token).id == s.id


def test_anonymous_session_cannot_elevate(h: Harness) -> None:
    anon = h.m.issue()
    h.store.reset()
    with pytest.raises(InvalidArgument):
        h.m.elevate(anon, auth_level=2)
    assert h.store.writes() == 0


@pytest.mark.parametrize("level", [-1, True, 2.0, "2"])
def test_elevate_rejects_bad_levels(h: Harness, level: object) -> None:
    s = h.m.issue("alice")
    with pytest.raises(InvalidArgument):
        h.m.elevate(s, auth_level=cast(Any, level))
    assert h.m.validate(s.token).auth_level == 1


def test_elevate_a_stale_or_revoked_session_fails(h: Harness) -> None:
    s = h.m.issue("alice")
    h.m.rotate(s)
    with pytest.raises(InvalidToken):
        h.m.elevate(s)  # generation 0 was rotated away by another request
    other = h.m.issue("alice")
    h.m.revoke(other)
    with pytest.raises(InvalidToken):
        h.m.elevate(other)


def test_require_recent_auth(h: Harness) -> None:
    t0 = h.clock.now()
    s = h.m.issue("alice", auth_level=1)
    h.m.require_recent_auth(s)
    h.m.require_recent_auth(s, max_age=300)
    h.clock.set(t0 + 300)
    h.m.require_recent_auth(s, max_age=300)
    h.clock.set(t0 + 300 + EPS)
    with pytest.raises(StepUpRequired) as caught:
        h.m.require_recent_auth(s, max_age=300)
    assert (caught.value.max_age, caught.value.min_level) == (300, 1)
    h.m.require_recent_auth(s, max_age=None)  # any age
    with pytest.raises(StepUpRequired) as caught:
        h.m.require_recent_auth(s, min_level=2)
    assert caught.value.min_level == 2
    e = h.m.elevate(s, auth_level=2)
    h.m.require_recent_auth(e, max_age=300, min_level=2)


def test_require_recent_auth_with_an_old_login_or_anonymous(h: Harness) -> None:
    old = h.m.issue("alice", auth_time=h.clock.now() - 1000)
    with pytest.raises(StepUpRequired):
        h.m.require_recent_auth(old, max_age=300)
    anon = h.m.issue()
    with pytest.raises(StepUpRequired):
        h.m.require_recent_auth(anon, min_level=0)


# -- ending sessions --------------------------------------------------------------------------


def test_revoke(h: Harness) -> None:
    s = h.m.issue("alice")
    assert h.m.revoke(s) is True
    revoked = of_type(h, SessionRevoked)
    assert [(e.session_id, e.user_id, e.reason) for e in revoked] == [(s.id, "alice", "logout")]
    assert reason_of(h, s.token) == "unknown"
    assert h.m.revoke(s) is False
    assert h.m.revoke(s.id) is False
    assert len(of_type(h, SessionRevoked)) == 1


def test_revoke_by_id_with_a_reason(h: Harness) -> None:
    s = h.m.issue("bob")
    assert h.m.revoke(s.id, reason=RevokeReason.ADMIN) is True
    assert of_type(h, SessionRevoked)[0].reason == "admin"
    assert reason_of(h, s.token) == "unknown"


@pytest.mark.parametrize("bad", ["", "nope", "A" * 17, 42])
def test_revoke_rejects_what_is_not_a_session_id(h: Harness, bad: object) -> None:
    with pytest.raises(InvalidArgument):
        h.m.revoke(cast(Any, bad))


def test_revoke_refuses_a_raw_token_in_place_of_an_id(h: Harness) -> None:
    s = h.m.issue("alice")
    with pytest.raises(InvalidArgument):
        h.m.revoke(cast(str, s.token))
    assert h.m.validate(s.token).id == s.id


def test_revoke_user(h: Harness) -> None:
    alice = [h.m.issue("alice") for _ in range(3)]
    bob = h.m.issue("bob")
    anon = h.m.issue()
    assert h.m.revoke_user("alice") == 3
    revoked = of_type(h, SessionRevoked)
    assert {e.session_id for e in revoked} == {s.id for s in alice}
    assert {(e.user_id, e.reason) for e in revoked} == {("alice", "logout-everywhere")}
    for s in alice:
        assert reason_of(h, s.token) == "unknown"
    assert h.m.validate(bob.token).user_id == "bob"
    assert h.m.validate(anon.token).is_anonymous
    assert h.m.revoke_user("alice") == 0


def test_revoke_user_keeping_the_current_session(h: Harness) -> None:
    a, b, c = (h.m.issue("alice") for _ in range(3))
    assert h.m.revoke_user("alice", keep=b, reason=RevokeReason.PASSWORD_CHANGE) == 2
    assert h.m.validate(b.token).id == b.id
    assert reason_of(h, a.token) == reason_of(h, c.token) == "unknown"
    assert {e.reason for e in of_type(h, SessionRevoked)} == {"password-change"}
    d = h.m.issue("alice")
    assert h.m.revoke_user("alice", keep=d.id) == 1
    assert [s.id for s in h.m.list_user("alice")] == [d.id]


def test_revoke_user_rejects_bad_arguments(h: Harness) -> None:
    with pytest.raises(InvalidArgument):
        h.m.revoke_user("")
    with pytest.raises(InvalidArgument):
        h.m.revoke_user("alice", keep="not-an-id")


def test_list_user_live_only_oldest_first(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(idle_timeout=100, absolute_timeout=1000, touch_interval=10))
    t0 = h.clock.now()
    a = h.m.issue("alice")
    h.clock.advance(50)
    b = h.m.issue("alice")
    h.clock.advance(10)
    c = h.m.issue("alice")
    h.m.issue("bob")
    listed = h.m.list_user("alice")
    assert [s.id for s in listed] == [a.id, b.id, c.id]
    assert all(s.token is None for s in listed)
    h.clock.set(t0 + 100)
    assert [s.id for s in h.m.list_user("alice")] == [b.id, c.id]
    assert h.m.list_user("nobody") == []
    with pytest.raises(InvalidArgument):
        h.m.list_user("")


def test_session_cap_evicts_the_oldest(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(max_sessions_per_user=2))
    a = h.m.issue("alice")
    h.clock.advance(1)
    b = h.m.issue("alice")
    h.clock.advance(1)
    c = h.m.issue("alice")
    assert reason_of(h, a.token) == "unknown"
    assert [s.id for s in h.m.list_user("alice")] == [b.id, c.id]
    revoked = of_type(h, SessionRevoked)
    assert [(e.session_id, e.user_id, e.reason) for e in revoked] == [
        (a.id, "alice", "session-limit")
    ]
    for _ in range(5):  # anonymous sessions and other users are not capped with alice
        h.m.issue()
    h.m.issue("bob")
    h.m.issue("bob")
    assert [s.id for s in h.m.list_user("alice")] == [b.id, c.id]


def test_session_cap_does_not_count_expired_sessions(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(max_sessions_per_user=2, idle_timeout=100, absolute_timeout=1000))
    h.m.issue("alice")
    h.m.issue("alice")
    h.clock.advance(100)
    c = h.m.issue("alice")
    h.clock.advance(1)
    d = h.m.issue("alice")
    assert [s.id for s in h.m.list_user("alice")] == [c.id, d.id]
    assert of_type(h, SessionRevoked) == []


def test_session_cap_reject(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(max_sessions_per_user=2, on_session_limit="reject"))
    a = h.m.issue("alice")
    h.clock.advance(1)
    b = h.m.issue("alice")
    h.events.events.clear()
    with pytest.raises(SessionLimitReached):
        h.m.issue("alice")
    assert h.events.events == []
    assert [s.id for s in h.m.list_user("alice")] == [a.id, b.id]
    assert h.m.validate(a.token).id == a.id
    h.m.revoke(a)
    assert h.m.issue("alice").user_id == "alice"


def test_purge_expired(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(idle_timeout=100, absolute_timeout=1000, touch_interval=10))
    t0 = h.clock.now()
    a = h.m.issue("alice")
    h.clock.advance(50)
    b = h.m.issue()
    h.clock.advance(40)
    c = h.m.issue("carol")
    h.clock.set(t0 + 150)
    assert h.m.purge_expired() == 2
    assert h.stored(a.id) is None
    assert h.stored(b.id) is None
    assert h.stored(c.id) is not None
    assert h.m.purge_expired() == 0
    assert h.m.validate(c.token).id == c.id


# -- data -------------------------------------------------------------------------------------


def test_update_data_mutating_and_returning_forms(h: Harness) -> None:
    s = h.m.issue("alice", data={"n": 0})
    u = h.m.update_data(s, lambda d: d.update(n=1))
    assert (u.data, u.version, u.token) == ({"n": 1}, s.version + 1, None)
    assert h.m.validate(s.token).data == {"n": 1}
    fresh = h.m.update_data(u, lambda d: {"fresh": True})
    assert fresh.data == {"fresh": True}
    by_id = h.m.update_data(s.id, lambda d: d.update(x=2))
    assert by_id.data == {"fresh": True, "x": 2}
    assert h.m.validate(s.token).data == {"fresh": True, "x": 2}


def test_update_data_retries_instead_of_losing_an_update(h: Harness) -> None:
    s = h.m.issue("alice", data={"cart": []})
    calls: list[list[str]] = []

    def add(item: str) -> Any:
        def change(d: dict[str, Any]) -> None:
            calls.append(list(d["cart"]))
            d["cart"].append(item)

        return change

    h.m.update_data(s, add("a"))
    h.m.update_data(s, add("b"))  # ``s`` is stale now: version conflict, re-read, retry
    assert h.m.validate(s.token).data == {"cart": ["a", "b"]}
    assert calls == [[], [], ["a"]]
    h.store.conflicts = 3
    h.store.reset()
    assert h.m.update_data(s, add("c")).data == {"cart": ["a", "b", "c"]}
    assert h.store.calls["replace"] == 4


def test_update_conflict_when_retries_are_exhausted(h: Harness) -> None:
    s = h.m.issue("alice", data={"n": 0})
    h.store.conflicts = -1
    attempts: list[int] = []
    with pytest.raises(UpdateConflict):
        h.m.update_data(s, lambda d: attempts.append(1), retries=3)
    assert len(attempts) == 3
    stored = h.stored(s.id)
    assert stored is not None
    assert json.loads(stored.data) == {"n": 0}


def test_update_data_after_revoke(h: Harness) -> None:
    s = h.m.issue("alice")
    h.m.revoke(s)
    with pytest.raises(InvalidToken):
        h.m.update_data(s, lambda d: d.update(x=1))
    with pytest.raises(InvalidToken):
        h.m.update_data(s.id, lambda d: d.update(x=1))


def test_update_data_size_limit_and_json(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(max_data_bytes=32))
    s = h.m.issue("alice", data={"k": "v"})
    with pytest.raises(DataTooLarge):
        h.m.update_data(s, lambda d: d.update(k="x" * 25))
    with pytest.raises(InvalidArgument):
        h.m.update_data(s, lambda d: d.update(k={1, 2}))
    assert h.m.validate(s.token).data == {"k": "v"}


# -- context history --------------------------------------------------------------------------


def _entries(session: Session) -> list[str | None]:
    return [entry.get("ip") for entry in session.context_history]


def test_context_history_is_bounded_and_appended_only_on_change(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(context_history=3, touch_interval=10))
    t0 = h.clock.now()
    ctx = {name: RequestContext(ip=name, user_agent="UA/1") for name in "ABCD"}
    s = h.m.issue("alice", context=ctx["A"])
    assert s.context_history == [{"ip": "A", "user_agent": "UA/1", "since": t0}]
    h.clock.advance(1)
    h.store.reset()
    assert _entries(h.m.validate(s.token, context=ctx["A"])) == ["A"]
    assert _entries(h.m.validate(s.token)) == ["A"]
    assert h.store.writes() == 0
    v = h.m.validate(s.token, context=ctx["B"])
    assert _entries(v) == ["A", "B"]
    assert v.context_history[-1]["since"] == t0 + 1
    assert h.store.writes() == 1
    assert _entries(h.m.validate(s.token, context=ctx["B"])) == ["A", "B"]
    assert h.store.writes() == 1
    h.m.validate(s.token, context=ctx["C"])
    assert _entries(h.m.validate(s.token, context=ctx["D"])) == ["B", "C", "D"]
    assert _entries(h.m.validate(s.token, context=ctx["A"])) == ["C", "D", "A"]
    stored = h.stored(s.id)
    assert stored is not None
    assert [e["ip"] for e in json.loads(stored.context)] == ["C", "D", "A"]


def test_context_history_disabled(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(context_history=0, touch_interval=10))
    s = h.m.issue("alice", context=RequestContext(ip="192.0.2.1"))
    assert s.context_history == []
    h.store.reset()
    assert h.m.validate(s.token, context=RequestContext(ip="192.0.2.2")).context_history == []
    assert h.store.writes() == 0


def test_context_fields_are_clipped(h: Harness) -> None:
    s = h.m.issue(context=RequestContext(user_agent="x" * 5000))
    assert s.context_history[0]["user_agent"] == "x" * 512


# -- events -----------------------------------------------------------------------------------


def test_events_are_delivered_in_order(h: Harness) -> None:
    s = h.m.issue("alice")
    r = h.m.rotate(s)
    e = h.m.elevate(r, auth_level=2)
    reason_of(h, "garbage")
    h.m.revoke(e)
    assert h.kinds() == ["created", "rotated", "elevated", "rejected", "revoked"]
    times = [x.at for x in h.events.events]
    assert times == sorted(times)
    assert all(x.session_id == s.id for x in h.events.events if x.kind != "rejected")


def test_a_raising_subscriber_breaks_nothing(
    make_harness: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(event: Event) -> None:
        raise RuntimeError("subscriber down")

    h = make_harness(events=EventBus([boom]))
    with caplog.at_level("ERROR", logger="sessionward.events"):
        s = h.m.issue("alice")
        assert h.m.validate(s.token).id == s.id
        r = h.m.rotate(s)
        assert reason_of(h, "garbage") == "malformed"
        assert h.m.revoke(r) is True
    assert h.kinds() == ["created", "rotated", "rejected", "revoked"]
    failures = [rec for rec in caplog.records if "subscriber" in rec.getMessage()]
    assert len(failures) == 4


def test_update_data_with_a_stale_session_does_not_roll_back_activity(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(Policy(idle_timeout=100, absolute_timeout=1000, touch_interval=10))
    t0 = h.clock.now()
    s = h.m.issue("alice", data={"n": 0})
    h.clock.set(t0 + 50)
    h.m.validate(s.token)  # activity: the idle deadline moves to t0 + 150
    h.m.update_data(s, lambda d: d.update(n=1))  # ``s`` still says t0 + 100
    h.clock.set(t0 + 120)
    v = h.m.validate(s.token)
    assert v.data == {"n": 1}


def test_update_data_on_an_expired_session_fails(make_harness: MakeHarness) -> None:
    h = make_harness(Policy(idle_timeout=100, absolute_timeout=1000, touch_interval=10))
    s = h.m.issue("alice", data={"n": 0})
    h.clock.advance(100)
    with pytest.raises(InvalidToken):
        h.m.update_data(s, lambda d: d.update(n=1))
    with pytest.raises(InvalidToken):
        h.m.update_data(s.id, lambda d: d.update(n=1))
