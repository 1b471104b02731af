"""Ending every session of every user (ASVS 7.4.5): the manager (both flavours), the
``sessions revoke-all`` command, and the JWT mode, whose access tokens die with their
sessions. The service's API and admin page are tested in tests/service/test_revoke_all.py."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from sessionward import (
    AsyncMemoryStore,
    AsyncSessionManager,
    ConfigError,
    InvalidToken,
    MemoryStore,
    Policy,
    SessionManager,
    SQLiteStore,
)
from sessionward.core.events import AllSessionsRevoked, EventBus, RevokeReason
from sessionward.core.record import SessionRecord
from sessionward.jwt import KeySet, TokenService
from sessionward.testing import EventRecorder, FakeClock


def test_revoke_all_ends_every_session_but_the_kept_one() -> None:
    recorder = EventRecorder()
    with SessionManager(SQLiteStore(":memory:"), events=EventBus([recorder])) as manager:
        admin = manager.issue("sessionward:admin:root")
        users = [manager.issue(u) for u in ("alice", "alice", "bob")]
        guest = manager.issue()
        recorder.events.clear()
        assert manager.revoke_all(keep=admin, reason=RevokeReason.ADMIN) == 4
        [event] = recorder.events  # one event for the lot
        assert isinstance(event, AllSessionsRevoked)
        assert (event.count, event.kept, event.reason) == (4, admin.id, "admin")
        for session in (*users, guest):
            with pytest.raises(InvalidToken):
                manager.validate(session.token)
        assert manager.validate(admin.token).user_id == "sessionward:admin:root"
        assert manager.list_user("alice") == []
        assert manager.revoke_all() == 1  # and the administrator's own, when asked


def test_async_revoke_all() -> None:
    async def run() -> tuple[int, int]:
        async with AsyncSessionManager(AsyncMemoryStore()) as manager:
            for user in ("ann", "ben", None):
                await manager.issue(user)
            return await manager.revoke_all(), len(manager.store)  # type: ignore[arg-type]

    assert asyncio.run(run()) == (3, 0)


class IndexOnly:
    """A real store (MemoryStore behind it) offering only what every store offers: the
    store interface and the user index, no ``delete_all``."""

    def __init__(self) -> None:
        self._inner = MemoryStore()

    def get(self, session_id: str) -> SessionRecord | None:
        return self._inner.get(session_id)

    def add(self, record: SessionRecord, *, cap: object = None) -> list[str]:
        return self._inner.add(record)

    def delete(self, session_id: str) -> bool:
        return self._inner.delete(session_id)

    def close(self) -> None:
        self._inner.close()


def test_a_store_without_the_capability_is_a_clear_error() -> None:
    manager = SessionManager(IndexOnly())  # type: ignore[arg-type]
    session = manager.issue("alice")
    with pytest.raises(ConfigError, match="cannot end every session"):
        manager.revoke_all()
    assert manager.store.get(session.id) is not None


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sessionward", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_command_needs_confirmation(tmp_path: Path) -> None:
    path = str(tmp_path / "all.db")
    with SessionManager(SQLiteStore(path)) as manager:
        tokens = [manager.issue(u).token for u in ("alice", "bob", "carol")]
    refused = _cli("--db", path, "sessions", "revoke-all")
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    with SessionManager(SQLiteStore(path)) as manager:
        assert all(manager.validate(t) for t in tokens)
    done = _cli("--db", path, "sessions", "revoke-all", "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "revoked all 3 session(s)"
    with SessionManager(SQLiteStore(path)) as manager:
        for token in tokens:
            with pytest.raises(InvalidToken):
                manager.validate(token)


def test_jwt_access_tokens_die_with_every_session() -> None:
    clock = FakeClock()
    policy = Policy(rotate_after=None)
    manager = SessionManager(MemoryStore(), policy=policy, clock=clock)
    service = TokenService(
        manager, KeySet.generate("ES256", now=clock.now()), issuer="https://i", audience="a"
    )
    pairs = [service.login(u) for u in ("alice", "bob")]
    clock.advance(1.5)
    assert manager.revoke_all() == 2
    for pair in pairs:
        with pytest.raises(InvalidToken):
            service.authenticate(pair.access_token)
        with pytest.raises(InvalidToken):
            service.refresh(pair.refresh_token)
    fresh = service.login("alice")  # a login right after is not born revoked
    assert service.authenticate(fresh.access_token).sub == "alice"
