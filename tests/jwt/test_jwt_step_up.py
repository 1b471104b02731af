"""The JWT mode's answers to ASVS 7.2.4 and 7.5.3: a login can end the user's other refresh
families (and their access tokens), and an access token can demand a recent, strong enough
authentication, which ``step_up`` provides with a new pair, the old refresh token dead at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from jwt_forge import AUD, ISS

from sessionward import AsyncSessionManager, EventBus, Policy, SessionManager
from sessionward.core.events import RevokeReason, SessionElevated, SessionRevoked
from sessionward.errors import InvalidToken, StepUpRequired
from sessionward.jwt import AsyncTokenService, KeySet, TokenService
from sessionward.stores import AsyncMemoryStore, MemoryStore
from sessionward.testing import EventRecorder, FakeClock

POLICY = Policy(idle_timeout=3600, absolute_timeout=4 * 3600, rotation_grace=30)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> EventRecorder:
    return EventRecorder()


@pytest.fixture
def service(clock: FakeClock, events: EventRecorder) -> Iterator[TokenService]:
    manager = SessionManager(MemoryStore(), policy=POLICY, clock=clock, events=EventBus([events]))
    keyset = KeySet.generate("ES256", now=clock.now())
    yield TokenService(manager, keyset, issuer=ISS, audience=AUD)
    manager.close()


def _reason(call: object) -> str:
    with pytest.raises(InvalidToken) as info:
        call()  # type: ignore[operator]
    return info.value.reason


def test_a_login_can_end_the_users_other_families(
    service: TokenService, clock: FakeClock, events: EventRecorder
) -> None:
    laptop = service.login("alice")
    phone = service.login("alice")  # by default, families live side by side
    bob = service.login("bob")
    clock.advance(1.5)
    assert service.authenticate(laptop.access_token).sub == "alice"
    only = service.login("alice", end_other_sessions=True)
    for old in (laptop, phone):
        assert _reason(lambda old=old: service.authenticate(old.access_token)) in (
            "user-cutoff",
            "session-revoked",
        )
        assert _reason(lambda old=old: service.refresh(old.refresh_token)) == "unknown"
    assert service.authenticate(only.access_token).sub == "alice"  # not born revoked
    assert service.refresh(only.refresh_token).session_id == only.session_id
    assert service.authenticate(bob.access_token).sub == "bob"
    ended = [e for e in events.events if isinstance(e, SessionRevoked)]
    assert {(e.session_id, e.reason) for e in ended} == {
        (laptop.session_id, RevokeReason.NEW_LOGIN),
        (phone.session_id, RevokeReason.NEW_LOGIN),
    }


def test_step_up_gives_a_fresh_authentication_and_kills_the_old_tokens(
    service: TokenService, clock: FakeClock, events: EventRecorder
) -> None:
    pair = service.login("alice", auth_level=1)
    clock.advance(200)
    claims = service.authenticate(pair.access_token)
    with pytest.raises(StepUpRequired):
        service.require_recent_auth(claims, max_age=100)
    with pytest.raises(StepUpRequired):
        service.require_recent_auth(claims, min_level=2)
    service.require_recent_auth(claims)  # any age at level 1 is fine
    stepped = service.step_up(pair.refresh_token, auth_level=2, access=claims)
    fresh = service.authenticate(stepped.access_token)
    assert (fresh.auth_level, fresh.auth_time) == (2, int(clock.now()))
    service.require_recent_auth(fresh, max_age=100, min_level=2)
    assert stepped.session_id == pair.session_id
    assert stepped.refresh_token != pair.refresh_token
    assert _reason(lambda: service.authenticate(pair.access_token)) == "revoked"
    assert any(isinstance(e, SessionElevated) for e in events.events)
    clock.advance(150)
    with pytest.raises(StepUpRequired):
        service.require_recent_auth(service.authenticate(stepped.access_token), max_age=100)
    # No grace window: the refresh token from before the step-up is dead, and presenting it
    # is treated as theft of the family.
    assert _reason(lambda: service.refresh(pair.refresh_token)) == "reused"
    assert _reason(lambda: service.refresh(stepped.refresh_token)) == "unknown"


def test_only_the_current_refresh_token_steps_up(service: TokenService, clock: FakeClock) -> None:
    pair = service.login("alice")
    newer = service.refresh(pair.refresh_token)  # pair's token is now in its grace window
    assert _reason(lambda: service.step_up(pair.refresh_token)) == "stale"
    assert service.step_up(newer.refresh_token).session_id == pair.session_id
    with pytest.raises(InvalidToken):
        service.step_up("sw1_not-a-token")


def test_async_step_up_and_single_family_login(clock: FakeClock) -> None:
    async def run() -> tuple[int, str]:
        manager = AsyncSessionManager(AsyncMemoryStore(), policy=POLICY, clock=clock)
        service = AsyncTokenService(
            manager, KeySet.generate("ES256", now=clock.now()), issuer=ISS, audience=AUD
        )
        first = await service.login("alice")
        clock.advance(2)
        second = await service.login("alice", end_other_sessions=True)
        stepped = await service.step_up(second.refresh_token, auth_level=3)
        with pytest.raises(InvalidToken):
            await service.authenticate(first.access_token)
        claims = await service.authenticate(stepped.access_token)
        await manager.close()
        return claims.auth_level, claims.sub

    assert asyncio.run(run()) == (3, "alice")
