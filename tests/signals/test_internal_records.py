"""Records the library keeps in the session store that are not sessions (the replay records of
DPoP proofs and of logout tokens, the identity-provider index) never show as sessions: the
admin console's table, the stored-session count behind the dashboard and the metrics, and a
user's listing show the real sessions only, on every store that can list or count; none of
those records validates as a session, and every store purges them at their deadline."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from proofs import Device
from servers import postgres_server as postgres_server  # a fixture

from sessionward import AsyncSessionManager, InvalidToken, cli
from sessionward.core import token as tokens
from sessionward.core.dpop import DpopPolicy
from sessionward.core.record import SessionRecord
from sessionward.errors import InvalidProof
from sessionward.manager._async.binding import AsyncBinder
from sessionward.service.admin_sessions import live_sessions
from sessionward.service.config import ServiceConfig
from sessionward.service.runtime import Runtime, open_runtime
from sessionward.signals._async.jwks import AsyncKeySource
from sessionward.signals._async.links import AsyncIdpLinks
from sessionward.signals._async.receiver import AsyncBackchannelLogout
from sessionward.signals.links import IdpLink
from sessionward.stores import (
    AsyncCachedStore,
    AsyncMemoryStore,
    AsyncScan,
    AsyncSQLiteStore,
    AsyncStore,
)
from sessionward.testing import FakeClock

from .idp import CLIENT_ID, TestIdp

URL = "https://api.example/orders"
Opener = Callable[[], AsyncStore]


@pytest.fixture(params=["memory", "sqlite", "postgres", "cached-memory", "cached-postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens a fresh store of the kind (inside the test's event loop); ``cached-`` ones are
    behind the local read cache."""
    kind = request.param.removeprefix("cached-")
    inner: Callable[[], Any]
    if kind == "memory":
        inner = AsyncMemoryStore
    elif kind == "sqlite":
        return lambda: AsyncSQLiteStore(tmp_path / "sessions.db")
    else:
        from sessionward.stores.postgres import AsyncPostgresStore

        server = request.getfixturevalue("postgres_server")
        server.empty()
        inner = lambda: AsyncPostgresStore(server.conninfo, max_size=4)  # noqa: E731
    if kind == request.param:
        return inner
    return lambda: AsyncCachedStore(inner())


def _runtime(store: AsyncStore, tmp_path: Path, clock: FakeClock) -> Runtime:
    config = ServiceConfig(store=str(tmp_path / "service.db"), admin=False, demo=False)
    return open_runtime(config, clock=clock, store=store)


async def _all_records(store: AsyncStore) -> list[SessionRecord]:
    assert isinstance(store, AsyncScan)
    out: list[SessionRecord] = []
    while page := await store.scan(after=out[-1].id if out else "", limit=2):
        out.extend(page)
    return out


async def _record_everything(
    manager: AsyncSessionManager, idp: TestIdp
) -> tuple[dict[str, str], str]:
    """Real sessions (two linked to the provider, one anonymous) plus what a DPoP proof, a
    back-channel logout and the provider links write; the ids of the live real sessions by
    name, and the DPoP proof."""
    links = AsyncIdpLinks(manager)
    clock = manager.clock
    alice = await manager.issue("alice", data=IdpLink(idp.issuer, "sid-A", "sub-a").data())
    bob = await manager.issue("bob", data=IdpLink(idp.issuer, "sid-B", "sub-b").data())
    for session in (alice, bob):
        await links.remember(session)
    visitor = await manager.issue(None)
    device = Device()
    proof = device.dpop("GET", URL, iat=clock.now())
    checked = await AsyncBinder(manager).check_dpop(DpopPolicy(), proof, method="GET", url=URL)
    assert checked.jkt == device.thumbprint
    keys = AsyncKeySource(idp.issuer, jwks_url=f"{idp.issuer}/jwks.json", clock=clock)
    logout = AsyncBackchannelLogout(links, keys, client_id=CLIENT_ID)
    body = urlencode({"logout_token": idp.logout_token(clock.now(), sid="sid-B")}).encode()
    reply = await logout.handle(body, "application/x-www-form-urlencoded")
    assert reply.status == 200
    return {"alice": alice.id, "visitor": visitor.id}, proof  # bob's ended with the logout


def _run(opener: Opener, tmp_path: Path, check: Callable[[Runtime], Awaitable[None]]) -> None:
    async def scenario() -> None:
        runtime = _runtime(opener(), tmp_path, FakeClock(time.time()))
        try:
            await check(runtime)
        finally:
            await runtime.close()

    asyncio.run(scenario())


def test_listings_and_counts_show_only_the_real_sessions(
    opener: Opener, tmp_path: Path, idp: TestIdp
) -> None:
    async def check(runtime: Runtime) -> None:
        manager = runtime.manager
        store = manager.store
        real, _ = await _record_everything(manager, idp)
        ids = set(real.values())
        now = manager.clock.now()
        internal = [r for r in await _all_records(store) if r.is_internal]
        # two index records per link (sid and sub), one DPoP proof, one logout token
        assert len(internal) == 6
        assert all(r.expires_at > now and r.user_id is None for r in internal)
        found = await live_sessions(store, now)  # the admin console's table
        assert found is not None
        assert {s.id for s in found[0]} == ids
        assert found[1] is False
        count = await runtime.session_count()
        if hasattr(store, "count"):  # the SQL stores count; the memory store does not
            assert count == len(ids)
            metrics = runtime.metrics.render(runtime.activity, sessions=count, store_up=True)
            assert f"sessionward_sessions {len(ids)}\n" in metrics
        else:
            assert count is None
        assert [s.id for s in await manager.list_user("alice")] == [real["alice"]]
        for record in internal:
            assert await manager.get(record.id) is None

    _run(opener, tmp_path, check)


def test_an_internal_record_is_never_a_session_and_is_purged_at_its_deadline(
    opener: Opener, tmp_path: Path, idp: TestIdp
) -> None:
    async def check(runtime: Runtime) -> None:
        manager = runtime.manager
        named, _ = await _record_everything(manager, idp)
        real = set(named.values())
        internal = [r for r in await _all_records(manager.store) if r.is_internal]
        for record in internal:
            token, _ = tokens.mint(record.id)  # a well-formed token naming the record
            with pytest.raises(InvalidToken):
                await manager.validate(token)
            with pytest.raises(InvalidToken):  # nor changed as one by id
                await manager.update_data(record.id, lambda data: data.update(n=1))
            assert await manager.store.get(record.id) == record  # left alone
        assert isinstance(manager.clock, FakeClock)
        manager.clock.advance(max(r.expires_at for r in internal) - manager.clock.now() + 1)
        assert await manager.purge_expired() >= len(internal)
        left = await _all_records(manager.store)
        assert not [r for r in left if r.is_internal]
        assert not {r.id for r in left} & real  # the sessions' own idle deadline passed too

    _run(opener, tmp_path, check)


def test_revoke_all_ends_the_sessions_and_keeps_the_spent_proofs(
    opener: Opener, tmp_path: Path, idp: TestIdp
) -> None:
    async def check(runtime: Runtime) -> None:
        manager = runtime.manager
        real, proof = await _record_everything(manager, idp)
        internal = [r for r in await _all_records(manager.store) if r.is_internal]
        assert await manager.revoke_all() == len(real)
        assert await _all_records(manager.store) == internal
        binder = AsyncBinder(manager)
        with pytest.raises(InvalidProof) as refused:  # a spent proof stays spent
            await binder.check_dpop(DpopPolicy(), proof, method="GET", url=URL)
        assert refused.value.reason == "replayed"

    _run(opener, tmp_path, check)


def test_the_sessions_command_lists_only_the_real_sessions(
    tmp_path: Path, idp: TestIdp, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sessions.db"
    recorded: dict[str, str] = {}

    async def check(runtime: Runtime) -> None:
        recorded.update((await _record_everything(runtime.manager, idp))[0])
        assert len(await _all_records(runtime.manager.store)) > len(recorded)

    _run(lambda: AsyncSQLiteStore(path), tmp_path, check)
    assert cli.main(["--db", str(path), "sessions", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {row["id"] for row in listed} == set(recorded.values())
    assert cli.main(["--db", str(path), "sessions", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[-1] == f"{len(recorded)} session(s)"
    assert len(table) == 2 + len(recorded)  # the header, one line per session, the total
