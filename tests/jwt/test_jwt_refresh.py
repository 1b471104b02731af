"""Refresh tokens: rotation on every use, the grace-window handoff (several tabs, retries),
theft detection, absolute lifetime, and the revocation modes with their lag.

Every test runs against the sync service and the async one (driven through a small facade),
on the in-memory store and on a real SQLite file.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from jwt_forge import AUD, ISS
from jwt_reference import CrossChecked, cross_checked

from sessionward import AsyncSessionManager, EventBus, Policy, SessionManager
from sessionward.core.events import SessionRevoked, SessionRotated, TheftSuspected
from sessionward.errors import (
    ConfigError,
    InvalidArgument,
    InvalidToken,
    SessionExpired,
    VersionConflict,
)
from sessionward.jwt import (
    AccessTokenVerifier,
    AsyncTokenService,
    KeySet,
    Revocations,
    TokenPair,
    TokenService,
)
from sessionward.jwt.refresh import FAMILY_KEY, USED_LIMIT
from sessionward.stores import AsyncMemoryStore, AsyncSQLiteStore, MemoryStore, SQLiteStore
from sessionward.testing import EventRecorder, FakeClock

POLICY = Policy(idle_timeout=3600, absolute_timeout=4 * 3600, rotation_grace=30)
START = 1_800_000_000.0


class _Blocking:
    """Presents an ``AsyncTokenService`` with the blocking API of ``TokenService``."""

    def __init__(self, service: AsyncTokenService, runner: asyncio.Runner) -> None:
        self._service = service
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._service, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            result = target(*args, **kwargs)
            return self._runner.run(result) if inspect.iscoroutine(result) else result

        return call


@dataclass
class World:
    service: TokenService
    clock: FakeClock
    events: EventRecorder
    keyset: KeySet
    store: Any
    run: Callable[[Any], Any]
    make_service: Callable[[], TokenService]

    def stored(self, session_id: str) -> Any:
        return self.run(self.store.get(session_id))

    def of_kind(self, kind: type) -> list[Any]:
        return [e for e in self.events.events if isinstance(e, kind)]


@pytest.fixture(
    params=[
        "sync-memory",
        "sync-sqlite",
        "async-memory",
        "async-sqlite",
    ]
)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    flavor, backend = cast(str, request.param).split("-")
    clock = FakeClock(START)
    recorder = EventRecorder()
    keyset = KeySet.generate("ES256", now=clock.now())
    runner = asyncio.Runner()

    def run(value: Any) -> Any:
        return runner.run(value) if inspect.iscoroutine(value) else value

    path = tmp_path / "refresh.db"
    store: Any
    if flavor == "sync":
        store = MemoryStore() if backend == "memory" else SQLiteStore(path)
    else:
        store = AsyncMemoryStore() if backend == "memory" else AsyncSQLiteStore(path)

    def make_service() -> TokenService:
        """Another service on the same store and key set: another process, in effect (its
        own revocation lists and verified-token cache)."""
        bus = EventBus([recorder])
        if flavor == "sync":
            manager = SessionManager(store, policy=POLICY, clock=clock, events=bus)
            sync_service = TokenService(manager, keyset, issuer=ISS, audience=AUD)
            sync_service.verifier = cross_checked(sync_service.verifier)
            return sync_service
        async_manager = AsyncSessionManager(store, policy=POLICY, clock=clock, events=bus)
        service = AsyncTokenService(async_manager, keyset, issuer=ISS, audience=AUD)
        service.verifier = cross_checked(service.verifier)
        return cast(TokenService, _Blocking(service, runner))

    yield World(make_service(), clock, recorder, keyset, store, run, make_service)
    run(store.close())
    runner.close()


def _rejected(call: Callable[[], object]) -> str:
    with pytest.raises(InvalidToken) as info:
        call()
    return info.value.reason


def test_login_gives_an_access_jwt_and_an_opaque_refresh_token(world: World) -> None:
    before = CrossChecked.checked
    pair = world.service.login("alice", scopes=["read", "write"], auth_level=2)
    assert pair.refresh_token.startswith("sw1_")
    assert len(pair.refresh_token) == 68
    claims = world.service.authenticate(pair.access_token)
    assert (claims.sub, claims.sid, claims.scopes, claims.auth_level) == (
        "alice",
        pair.session_id,
        frozenset({"read", "write"}),
        2,
    )
    assert claims.exp == pair.access_expires_at == START + 300
    assert pair.refresh_expires_at == START + 3600
    assert pair.access_token not in repr(pair)
    assert pair.refresh_token not in repr(pair)
    assert CrossChecked.checked == before + 1  # the service's verdicts are cross-checked
    body = pair.response(START + 10)
    assert body["token_type"] == "Bearer"  # noqa: S105 - the scheme name
    assert body["expires_in"] == 290


def test_every_refresh_rotates_and_the_old_token_replays_the_same_pair(world: World) -> None:
    first = world.service.login("alice")
    world.clock.advance(200)
    second = world.service.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert second.session_id == first.session_id
    # A second tab, or a retry after a lost response, inside the grace window: same pair.
    world.clock.advance(29)
    assert world.service.refresh(first.refresh_token) == second
    third = world.service.refresh(second.refresh_token)
    assert third.refresh_token not in (first.refresh_token, second.refresh_token)
    rotations = world.of_kind(SessionRotated)
    assert [(e.generation, e.cause) for e in rotations] == [(1, "refresh"), (2, "refresh")]
    assert world.of_kind(TheftSuspected) == []
    record = world.stored(third.session_id)  # the one verifier size, kept by rotation
    assert (len(record.secret_hash), len(record.prev_secret_hash)) == (16, 16)


def test_the_store_holds_no_usable_token(world: World) -> None:
    first = world.service.login("alice")
    second = world.service.refresh(first.refresh_token)
    record = world.stored(second.session_id)
    text = repr(tuple(record))
    for secret in (first.refresh_token, second.refresh_token, second.access_token):
        assert secret not in text
        assert secret[4:40] not in text
    family = json.loads(record.data)[FAMILY_KEY]
    assert family["handoff"]["g"] == record.generation
    assert len(family["used"]) == 1


def test_reuse_after_the_grace_window_is_theft(world: World) -> None:
    first = world.service.login("alice")
    second = world.service.refresh(first.refresh_token)
    world.clock.advance(31)
    assert _rejected(lambda: world.service.refresh(first.refresh_token)) == "reused"
    assert [e.session_id for e in world.of_kind(TheftSuspected)] == [first.session_id]
    assert [e.reason for e in world.of_kind(SessionRevoked)] == ["theft"]
    assert world.stored(first.session_id) is None
    # The whole family is dead: the legitimate holder's newer refresh token too ...
    assert _rejected(lambda: world.service.refresh(second.refresh_token)) == "unknown"
    # ... and its access token, at once in this process (the event revoked the session) ...
    assert _rejected(lambda: world.service.authenticate(second.access_token)) == ("session-revoked")
    # ... and at once anywhere that checks the backing session ...
    other = world.make_service()
    assert (
        _rejected(lambda: other.authenticate(second.access_token, check_session=True))
        == "session-revoked"
    )
    # ... and elsewhere within the documented lag: the token's exp plus the 60 s skew.
    assert other.authenticate(second.access_token).sid == second.session_id
    world.clock.set(second.access_expires_at + 60)
    assert _rejected(lambda: other.authenticate(second.access_token)) == "expired"


def test_reuse_of_an_older_generation_is_theft_too(world: World) -> None:
    first = world.service.login("alice")
    second = world.service.refresh(first.refresh_token)
    world.clock.advance(60)
    world.service.refresh(second.refresh_token)
    world.clock.advance(60)
    # first is two generations back: the manager no longer knows it, the family does.
    assert _rejected(lambda: world.service.refresh(first.refresh_token)) == "reused"
    assert [e.detail for e in world.of_kind(TheftSuspected)] == ["rotated-refresh-token-reused"]
    assert world.stored(first.session_id) is None


def test_an_older_generation_inside_its_grace_window_is_refused_without_logout(
    world: World,
) -> None:
    first = world.service.login("alice")
    second = world.service.refresh(first.refresh_token)
    third = world.service.refresh(second.refresh_token)  # a fast second refresh
    world.clock.advance(5)
    assert _rejected(lambda: world.service.refresh(first.refresh_token)) == "stale"
    assert world.of_kind(TheftSuspected) == []
    assert world.service.refresh(third.refresh_token).session_id == first.session_id


def test_the_family_remembers_a_bounded_number_of_rotated_tokens(world: World) -> None:
    pair = world.service.login("alice")
    oldest = pair.refresh_token
    for _ in range(USED_LIMIT + 1):
        world.clock.advance(31)
        pair = world.service.refresh(pair.refresh_token)
    family = json.loads(world.stored(pair.session_id).data)[FAMILY_KEY]
    assert len(family["used"]) == USED_LIMIT
    # Beyond the memory a rotated token is merely unknown: refused, the family lives on.
    assert _rejected(lambda: world.service.refresh(oldest)) == "mismatch"
    assert world.service.refresh(pair.refresh_token).session_id == pair.session_id


def test_absolute_and_idle_lifetimes(world: World) -> None:
    pair = world.service.login("alice")
    for _ in range(7):
        world.clock.advance(1800)
        pair = world.service.refresh(pair.refresh_token)
    # 3.5 h in: the access token never outlives the family's absolute expiry.
    world.clock.advance(1500)
    last = world.service.refresh(pair.refresh_token)
    assert last.access_expires_at == START + 4 * 3600
    assert last.refresh_expires_at == START + 4 * 3600
    world.clock.set(START + 4 * 3600)
    with pytest.raises(SessionExpired):
        world.service.refresh(last.refresh_token)
    idle = world.service.login("bob")
    world.clock.advance(3600)
    with pytest.raises(SessionExpired):
        world.service.refresh(idle.refresh_token)


def test_logout_kills_the_family_and_the_presented_access_token(world: World) -> None:
    pair = world.service.login("alice")
    other = world.service.login("alice")
    claims = world.service.authenticate(pair.access_token)
    assert world.service.logout(access=claims) is True
    assert _rejected(lambda: world.service.authenticate(pair.access_token)) == "revoked"
    assert _rejected(lambda: world.service.refresh(pair.refresh_token)) == "unknown"
    assert world.service.authenticate(other.access_token).sub == "alice"  # another device
    assert world.service.logout(refresh_token=other.refresh_token) is True
    assert _rejected(lambda: world.service.authenticate(other.access_token)) == ("session-revoked")
    assert world.service.logout() is False


def test_logout_everywhere_cuts_off_every_access_token_of_the_user(world: World) -> None:
    a1, a2 = world.service.login("alice"), world.service.login("alice")
    bob = world.service.login("bob")
    world.clock.advance(0.4)
    assert world.service.logout_everywhere("alice", keep=a2.session_id) == 1
    # a1's session ended (the event revoked it); a2's session lives but its token is cut off.
    assert _rejected(lambda: world.service.authenticate(a1.access_token)) == "session-revoked"
    assert _rejected(lambda: world.service.authenticate(a2.access_token)) == "user-cutoff"
    assert _rejected(lambda: world.service.refresh(a1.refresh_token)) == "unknown"
    assert world.service.authenticate(bob.access_token).sub == "bob"
    # The kept session refreshes to a token issued after the cut-off, in the same second.
    fresh = world.service.refresh(a2.refresh_token)
    assert world.service.authenticate(fresh.access_token).sub == "alice"
    again = world.service.login("alice")
    assert world.service.authenticate(again.access_token).sub == "alice"


def test_revocation_in_another_process_and_the_session_check(world: World) -> None:
    pair = world.service.login("alice")
    admin = world.make_service()  # another process sharing the store
    assert admin.logout(access=admin.authenticate(pair.access_token)) is True
    # This process has not heard of it: without a session check the token lives to its exp.
    assert world.service.authenticate(pair.access_token).sub == "alice"
    assert (
        _rejected(lambda: world.service.authenticate(pair.access_token, check_session=True))
        == "session-revoked"
    )


def test_only_refresh_sessions_refresh(world: World) -> None:
    manager = world.service.manager
    cookie_session = world.run(manager.issue("alice"))
    assert _rejected(lambda: world.service.refresh(cookie_session.token)) == "not-refresh"
    assert _rejected(lambda: world.service.refresh("sw1_garbage")) == "malformed"
    assert _rejected(lambda: world.service.refresh(None)) == "malformed"


def test_login_needs_a_user(world: World) -> None:
    for user in (None, "", 7):
        with pytest.raises(InvalidArgument):
            world.service.login(user)  # type: ignore[arg-type]


def test_refresh_needs_a_policy_without_automatic_rotation() -> None:
    manager = SessionManager(MemoryStore(), policy=Policy(rotate_after=60))
    with pytest.raises(ConfigError):
        TokenService(manager, KeySet.generate("ES256", now=0), issuer=ISS, audience=AUD)


# -- several tabs at once ---------------------------------------------------------------------


def _sync_service(store: Any, clock: FakeClock, recorder: EventRecorder) -> TokenService:
    manager = SessionManager(store, policy=POLICY, clock=clock, events=EventBus([recorder]))
    return TokenService(
        manager, KeySet.generate("ES256", now=clock.now()), issuer=ISS, audience=AUD
    )


class _CountingConflicts:
    """A pass-through around a real store that counts lost ``replace`` races."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.conflicts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def replace(self, record: Any, *, expected_version: int) -> None:
        try:
            self.inner.replace(record, expected_version=expected_version)
        except VersionConflict:
            self.conflicts += 1
            raise


def _ten_tabs(service: TokenService, refresh_token: str) -> list[TokenPair | BaseException]:
    barrier = threading.Barrier(10)
    results: list[TokenPair | BaseException] = []
    lock = threading.Lock()

    def tab() -> None:
        barrier.wait(timeout=10)
        try:
            outcome: TokenPair | BaseException = service.refresh(refresh_token)
        except BaseException as exc:  # collected and asserted by the caller
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=tab) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_ten_threads_refreshing_the_same_token_get_one_new_pair(
    backend: str, tmp_path: Path
) -> None:
    """Real threads; a short GIL switch interval makes them interleave inside ``refresh`` so
    that rotations really collide (the test insists on seeing lost races)."""
    clock = FakeClock(START)
    inner = MemoryStore() if backend == "memory" else SQLiteStore(tmp_path / "tabs.db")
    store = _CountingConflicts(inner)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for round_ in range(20):
            recorder = EventRecorder()
            service = _sync_service(store, clock, recorder)
            first = service.login("alice")
            results = _ten_tabs(service, first.refresh_token)
            assert len(results) == 10
            assert all(isinstance(r, TokenPair) for r in results), results
            assert len(set(results)) == 1  # one new pair, whoever won the race
            assert [e.generation for e in recorder.events if isinstance(e, SessionRotated)] == [1]
            assert not [
                e for e in recorder.events if isinstance(e, TheftSuspected | SessionRevoked)
            ]
            new = cast(TokenPair, results[0])
            assert service.authenticate(new.access_token).sid == first.session_id
            assert service.refresh(new.refresh_token).session_id == first.session_id
            if round_ >= 2 and store.conflicts:
                break
        assert store.conflicts > 0, "the threads never collided; the test proved nothing"
    finally:
        sys.setswitchinterval(interval)
        inner.close()


class _Yielding:
    """A real async store whose every call first yields to the event loop, as a networked
    store (Redis, PostgreSQL) does, so concurrent tasks really interleave."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.conflicts = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(target):
            return target  # plain attributes and calls

        async def call(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            try:
                return await target(*args, **kwargs)
            except VersionConflict:
                self.conflicts += 1
                raise

        return call


@pytest.mark.parametrize("interleave", [False, True])
def test_ten_asyncio_tasks_refreshing_the_same_token_get_one_new_pair(
    interleave: bool, tmp_path: Path
) -> None:
    async def scenario() -> None:
        clock = FakeClock(START)
        recorder = EventRecorder()
        inner = AsyncSQLiteStore(tmp_path / "tabs.db")
        store: Any = _Yielding(inner) if interleave else inner
        manager = AsyncSessionManager(
            store, policy=POLICY, clock=clock, events=EventBus([recorder])
        )
        keyset = KeySet.generate("ES256", now=clock.now())
        service = AsyncTokenService(manager, keyset, issuer=ISS, audience=AUD)
        try:
            first = await service.login("alice")
            results = await asyncio.gather(
                *(service.refresh(first.refresh_token) for _ in range(10)),
                return_exceptions=True,
            )
            assert all(isinstance(r, TokenPair) for r in results), results
            assert len(set(results)) == 1
            rotated = [e for e in recorder.events if isinstance(e, SessionRotated)]
            assert [e.generation for e in rotated] == [1]
            assert not [e for e in recorder.events if isinstance(e, TheftSuspected)]
            new = cast(TokenPair, results[0])
            assert (await service.refresh(new.refresh_token)).session_id == first.session_id
            if interleave:  # every task read the record before the first write: 9 lost races
                assert store.conflicts == 9
        finally:
            await inner.close()

    asyncio.run(scenario())


def test_a_wrong_secret_cannot_open_the_handoff(world: World) -> None:
    from sessionward.jwt import refresh

    first = world.service.login("alice")
    world.service.refresh(first.refresh_token)
    record = world.stored(first.session_id)
    assert refresh.open_handoff(record, b"\x00" * 32, world.clock.now()) is None
    world.clock.advance(30)
    from sessionward.core.token import parse

    assert (
        refresh.open_handoff(record, parse(first.refresh_token).secret, world.clock.now()) is None
    )


def test_revocations_shared_between_services(world: World) -> None:
    """Two services fed the same Revocations object see each other's revocations at once."""
    shared = Revocations()
    verifier = AccessTokenVerifier(
        world.keyset, issuer=ISS, audience=AUD, clock=world.clock, revocations=shared
    )
    pair = world.service.login("alice")
    assert verifier.verify(pair.access_token).sub == "alice"
    shared.cut_off_user("alice", now=world.clock.advance(1))
    assert _rejected(lambda: verifier.verify(pair.access_token)) == "user-cutoff"
