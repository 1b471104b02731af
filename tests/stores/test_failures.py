"""Outages: the store server is killed and restarted under a stream of validations.

What must hold, for Redis and PostgreSQL, sync and async:
* no validation succeeds while the server is down: every request in the outage ends in
  ``StoreUnavailable`` (fail closed; adapters answer 503), never in anything else;
* the clients reconnect by themselves: requests succeed again within 2 s of the server
  accepting connections;
* nothing committed is lost: every session whose ``issue`` returned before the crash
  validates after it (Redis with AOF ``appendfsync always``; PostgreSQL crash recovery, after
  an immediate shutdown or a ``kill -9`` of every server process), and a writer killed with
  ``kill -9`` mid-login leaves every login it finished intact and no lock behind.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from servers import PostgresServer, RedisServer, private_redis, wait_until
from servers import postgres_server as postgres_server  # a fixture

from sessionward import AsyncSessionManager, Policy, Session, SessionManager
from sessionward.errors import InvalidToken, StoreUnavailable

POLICY = Policy(idle_timeout=3600, absolute_timeout=7200, touch_interval=600)
RECOVERY = 2.0


@dataclass(frozen=True)
class Outcome:
    start: float
    end: float
    kind: str  # "ok", "unavailable", "rejected" or "error:<type>"


def _classify(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, StoreUnavailable):
        return "unavailable"
    if isinstance(exc, InvalidToken):
        return "rejected"
    return f"error:{type(exc).__name__}"


class Stream:
    """Calls ``validate(token)`` back to back on a thread until stopped; keeps every outcome."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def run_sync(self, manager: SessionManager, token: str) -> None:
        def loop() -> None:
            while not self.stop.is_set():
                start = time.monotonic()
                error: BaseException | None = None
                try:
                    manager.validate(token)
                except Exception as exc:  # classified below
                    error = exc
                self.outcomes.append(Outcome(start, time.monotonic(), _classify(error)))
                time.sleep(0.005)

        self._start(loop)

    def run_async(self, make: Callable[[], AsyncSessionManager], token: str) -> None:
        async def main() -> None:
            manager = make()
            while not self.stop.is_set():
                start = time.monotonic()
                error: BaseException | None = None
                try:
                    await manager.validate(token)
                except Exception as exc:  # classified below
                    error = exc
                self.outcomes.append(Outcome(start, time.monotonic(), _classify(error)))
                await asyncio.sleep(0.005)
            await manager.close()

        self._start(lambda: asyncio.run(main()))

    def _start(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self.threads.append(thread)

    def wait_for(self, what: str, check: Callable[[Outcome], bool]) -> None:
        """Until some outcome passes ``check`` (the threads may be slow on a loaded machine)."""
        wait_until(lambda: any(check(o) for o in list(self.outcomes)), what)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)
        assert not any(t.is_alive() for t in self.threads)


@dataclass(frozen=True)
class Outage:
    down: float  # the server process is gone
    spawned: float  # a new server process was started
    up: float  # ... and accepts connections


def _outage(
    stream: Stream, stop: Callable[[], None], start: Callable[[], None], *, down_for: float
) -> Outage:
    """Stop the server for at least ``down_for`` seconds, and until a request ran wholly in
    the outage; start it again; then wait until requests have run for ``RECOVERY`` seconds
    past the moment it accepted connections."""
    stream.wait_for("a request before the outage", lambda o: o.kind == "ok")
    stop()
    down = time.monotonic()
    time.sleep(down_for)  # the length of the outage, not a synchronisation
    stream.wait_for("a request during the outage", lambda o: o.start > down)
    spawned = time.monotonic()
    start()
    up = time.monotonic()
    stream.wait_for("a request after the recovery time", lambda o: o.start > up + RECOVERY)
    return Outage(down, spawned, up)


def _check(outcomes: list[Outcome], outage: Outage) -> None:
    kinds = {o.kind for o in outcomes}
    assert kinds <= {"ok", "unavailable"}, kinds  # nothing but success or a clean 503
    during = [o for o in outcomes if outage.down < o.end < outage.spawned]
    assert during, "no request ran during the outage"
    assert all(o.kind == "unavailable" for o in during)  # 0 authenticated while down
    assert any(o.kind == "unavailable" for o in outcomes)
    back = [o for o in outcomes if o.kind == "ok" and o.start > outage.spawned]
    assert back, "service never came back"
    assert back[0].end - outage.up < RECOVERY
    settled = [o for o in outcomes if o.start > outage.up + RECOVERY]
    assert settled
    assert all(o.kind == "ok" for o in settled)


# -- Redis -------------------------------------------------------------------------------------


@pytest.fixture
def persistent_redis() -> Iterator[RedisServer]:
    with private_redis("--appendonly", "yes", "--appendfsync", "always") as server:
        yield server


def test_redis_outage(persistent_redis: RedisServer) -> None:
    from sessionward.stores.redis import AsyncRedisStore, RedisStore

    url = persistent_redis.url
    manager = SessionManager(RedisStore(url), policy=POLICY)
    session = manager.issue("alice")
    assert session.token is not None
    committed = [manager.issue(f"user-{i}") for i in range(50)]
    stream = Stream()
    stream.run_sync(manager, session.token)
    stream.run_async(
        lambda: AsyncSessionManager(AsyncRedisStore(url), policy=POLICY), session.token
    )
    outage = _outage(stream, persistent_redis.stop, persistent_redis.start, down_for=1.0)
    stream.finish()
    _check(stream.outcomes, outage)
    _all_validate(manager, committed)
    manager.close()


def _all_validate(manager: SessionManager, sessions: list[Session]) -> None:
    for session in sessions:
        assert session.token is not None
        assert manager.validate(session.token).id == session.id


# -- PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> PostgresServer:
    found = request.getfixturevalue("postgres_server")
    assert isinstance(found, PostgresServer)
    found.empty()
    return found


@pytest.mark.parametrize("crash", ["immediate", "kill -9"])
def test_postgres_crash_and_restart(pg: PostgresServer, crash: str) -> None:
    from sessionward.stores.postgres import AsyncPostgresStore, PostgresStore

    manager = SessionManager(PostgresStore(pg.conninfo), policy=POLICY)
    session = manager.issue("alice")
    assert session.token is not None
    committed: list[Session] = []
    writing = threading.Event()
    writing.set()

    def writer() -> None:  # logins right up to the crash: each one that returned is committed
        issuer = SessionManager(PostgresStore(pg.conninfo), policy=POLICY)
        while writing.is_set():
            try:
                committed.append(issuer.issue(f"user-{len(committed)}"))
            except StoreUnavailable:
                time.sleep(0.01)
        issuer.close()

    stream = Stream()
    stream.run_sync(manager, session.token)
    stream.run_async(
        lambda: AsyncSessionManager(AsyncPostgresStore(pg.conninfo), policy=POLICY), session.token
    )
    issuing = threading.Thread(target=writer, daemon=True)
    issuing.start()
    stop = (lambda: pg.stop("immediate")) if crash == "immediate" else pg.kill
    outage = _outage(stream, stop, pg.start, down_for=1.0)
    writing.clear()
    issuing.join(timeout=15)
    stream.finish()
    _check(stream.outcomes, outage)
    assert len(committed) > 10
    _all_validate(manager, committed)  # crash recovery kept every committed login
    manager.close()


# Logins through the capped (transactional) path, each token printed once its issue returned.
_WRITER = r"""
import sys
from sessionward import Policy, SessionManager
from sessionward.stores.postgres import PostgresStore

manager = SessionManager(PostgresStore(sys.argv[1]), policy=Policy(max_sessions_per_user=3))
i = 0
while True:
    print(manager.issue(f"writer-{i % 400}-{i}").token, flush=True)
    i += 1
"""


def test_postgres_kill_9_of_a_writer_loses_no_committed_session(pg: PostgresServer) -> None:
    from sessionward.stores.postgres import PostgresStore

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, pg.conninfo], stdout=subprocess.PIPE, text=True, env=env
    )
    assert writer.stdout is not None
    tokens = [writer.stdout.readline().strip() for _ in range(300)]
    writer.kill()  # SIGKILL, most likely in the middle of a login's transaction
    writer.wait(timeout=10)
    tokens += [line.strip() for line in writer.stdout if line.strip()]
    writer.stdout.close()
    manager = SessionManager(PostgresStore(pg.conninfo), policy=POLICY)
    try:
        for token in tokens:
            manager.validate(token)
        # The killed writer's transaction and its per-user lock are gone with its connection.
        started = time.monotonic()
        for i in range(20):
            manager.issue(f"writer-{i}-{i}")
        assert time.monotonic() - started < 5
    finally:
        manager.close()
