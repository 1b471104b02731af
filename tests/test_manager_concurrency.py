"""Many requests carrying one token at once: nobody is logged out, nobody is called a thief.

Real stores, real threads, tasks and processes; only the clock is fake (it stands still while
the requests race, so every rotated-out token is inside its grace window). Each scenario
checks that every client's last token still validates, that no theft was reported, that one
rotation happened per round however many requests asked for it, and that a real replay of the
rotated-out token after the grace window is still caught.
"""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sessionward import AsyncSessionManager, EventBus, Policy, SessionManager
from sessionward.core.events import (
    SessionRevoked,
    SessionRotated,
    SessionValidatedWithRotation,
    TheftSuspected,
)
from sessionward.errors import InvalidToken, VersionConflict
from sessionward.stores import AsyncMemoryStore, AsyncSQLiteStore, MemoryStore, SQLiteStore
from sessionward.testing import EventRecorder, FakeClock

START = 1_800_000_000.0
GRACE = 30.0
DUE = Policy(idle_timeout=3600, absolute_timeout=7200, rotate_after=60, rotation_grace=GRACE)
EXPLICIT = Policy(idle_timeout=3600, absolute_timeout=7200, rotation_grace=GRACE)
CLIENTS = 12
ROUNDS = 3


class Racing:
    """A real store that counts the lost races (``VersionConflict``) it reports. With
    ``yielding``, every async call first yields to the event loop, as a networked store does,
    so concurrent tasks really interleave. :meth:`gate` holds the next reads' answers until that
    many threads have read, so they all start from one version and their writes must collide
    (on a loaded machine, released threads may otherwise run one after another)."""

    def __init__(self, inner: Any, *, yielding: bool = False) -> None:
        self.inner = inner
        self.yielding = yielding
        self.conflicts = 0
        self._lock = threading.Lock()
        self._gate: threading.Barrier | None = None
        self._gated = 0

    def gate(self, parties: int) -> None:
        with self._lock:
            self._gate, self._gated = threading.Barrier(parties, timeout=30), parties

    def _hold(self) -> None:
        with self._lock:
            gate = self._gate
            if gate is None:
                return
            self._gated -= 1
            if self._gated == 0:
                self._gate = None
        gate.wait()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not callable(target) or name.startswith("_"):
            return target
        if inspect.iscoroutinefunction(target):

            async def async_call(*args: Any, **kwargs: Any) -> Any:
                if self.yielding:
                    await asyncio.sleep(0)
                try:
                    return await target(*args, **kwargs)
                except VersionConflict:
                    self.conflicts += 1
                    raise

            return async_call

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = target(*args, **kwargs)
            except VersionConflict:
                self.conflicts += 1
                raise
            if name == "get":
                self._hold()
            return result

        return call


def _kinds(recorder: EventRecorder, kind: type) -> list[Any]:
    return [e for e in recorder.events if isinstance(e, kind)]


def _no_false_alarm(recorder: EventRecorder) -> None:
    assert _kinds(recorder, TheftSuspected) == []
    assert _kinds(recorder, SessionRevoked) == []


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """A short GIL switch interval, so threads interleave inside the manager's calls."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def _sync_store(backend: str, path: Path) -> Any:
    return MemoryStore() if backend == "memory" else SQLiteStore(path)


def _at_once(count: int, work: Callable[[int], str]) -> list[str]:
    """Run ``work(i)`` on ``count`` threads released together; their results in order."""
    barrier = threading.Barrier(count)

    def released(i: int) -> str:
        barrier.wait(timeout=30)
        return work(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(released, range(count)))


def _renew_all(manager: SessionManager, token: str) -> list[str]:
    """Every client presents ``token`` at once (the renewal due); each one's token after."""
    return _at_once(CLIENTS, lambda _: manager.validate(token).token or token)


def _rotate_all(manager: SessionManager, held: list[str]) -> list[str]:
    """Every client asks to rotate the token it holds, at once; each one's token after."""
    return _at_once(len(held), lambda i: manager.rotate(manager.validate(held[i])).token or held[i])


def _replay_after_grace_is_theft(
    manager: SessionManager, clock: FakeClock, recorder: EventRecorder, old: str, last: str
) -> None:
    clock.advance(GRACE)
    with pytest.raises(InvalidToken) as caught:
        manager.validate(old)
    assert caught.value.reason == "reused"
    assert len(_kinds(recorder, TheftSuspected)) == 1
    with pytest.raises(InvalidToken):
        manager.validate(last)  # the session ended with the theft


# -- threads ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_threads_validating_one_token_when_rotation_is_due(backend: str, tmp_path: Path) -> None:
    store = Racing(_sync_store(backend, tmp_path / "due.db"))
    try:
        for attempt in range(20):
            clock, recorder = FakeClock(START), EventRecorder()
            manager = SessionManager(store, policy=DUE, clock=clock, events=EventBus([recorder]))
            old = manager.issue("alice").token
            assert old is not None
            clock.advance(60)
            if attempt == 0:
                store.gate(CLIENTS)
            last = _renew_all(manager, old)
            new = last[0]
            assert new != old
            assert last == [new] * CLIENTS  # every client was handed the one new token
            assert manager.validate(new).token is None
            assert manager.validate(old).token == new  # and the old one still leads there
            assert len(_kinds(recorder, SessionValidatedWithRotation)) == 1
            _no_false_alarm(recorder)
            if store.conflicts or attempt == 19:
                _replay_after_grace_is_theft(manager, clock, recorder, old, new)
                break
        assert store.conflicts > 0, "the threads never collided; the test proved nothing"
    finally:
        store.inner.close()


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_threads_rotating_one_token_explicitly_round_after_round(
    backend: str, tmp_path: Path
) -> None:
    store = Racing(_sync_store(backend, tmp_path / "explicit.db"))
    try:
        for attempt in range(20):
            clock, recorder = FakeClock(START), EventRecorder()
            bus = EventBus([recorder])
            manager = SessionManager(store, policy=EXPLICIT, clock=clock, events=bus)
            first = manager.issue("alice").token
            assert first is not None
            held = [first] * CLIENTS
            rounds = [first]
            for round_ in range(ROUNDS):
                if attempt == round_ == 0:
                    store.gate(CLIENTS)
                held = _rotate_all(manager, held)
                assert len(set(held)) == 1
                assert held[0] not in rounds  # a new secret each round, one for all clients
                rounds.append(held[0])
            assert len(_kinds(recorder, SessionRotated)) == ROUNDS
            for token in rounds[:-1]:  # a tab that slept through every round: still signed in
                assert manager.validate(token).token == rounds[-1]
            assert manager.validate(rounds[-1]).token is None
            _no_false_alarm(recorder)
            if store.conflicts or attempt == 19:
                _replay_after_grace_is_theft(manager, clock, recorder, rounds[-2], rounds[-1])
                break
        assert store.conflicts > 0, "the threads never collided; the test proved nothing"
    finally:
        store.inner.close()


# -- asyncio tasks ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_tasks_validating_and_rotating_one_token(backend: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        inner = AsyncMemoryStore() if backend == "memory" else AsyncSQLiteStore(tmp_path / "a.db")
        store = Racing(inner, yielding=True)
        clock, recorder = FakeClock(START), EventRecorder()
        manager = AsyncSessionManager(store, policy=DUE, clock=clock, events=EventBus([recorder]))
        try:
            old = (await manager.issue("alice")).token
            assert old is not None
            clock.advance(60)
            due = await asyncio.gather(*(manager.validate(old) for _ in range(CLIENTS)))
            new = due[0].token
            assert new is not None
            assert [s.token for s in due] == [new] * CLIENTS
            # Every task read the record before the first write: all but one lost the race.
            assert store.conflicts == CLIENTS - 1
            assert len(_kinds(recorder, SessionValidatedWithRotation)) == 1

            async def rotate_explicitly(token: str) -> str:
                session = await manager.rotate(await manager.validate(token))
                return session.token or token

            held = await asyncio.gather(*(rotate_explicitly(new) for _ in range(CLIENTS)))
            newest = held[0]
            assert held == [newest] * CLIENTS
            assert newest not in (old, new)
            assert len(_kinds(recorder, SessionRotated)) == 1
            for token in (old, new):
                assert (await manager.validate(token)).token == newest
            assert (await manager.validate(newest)).token is None
            _no_false_alarm(recorder)
            clock.advance(GRACE)
            with pytest.raises(InvalidToken) as caught:
                await manager.validate(new)
            assert caught.value.reason == "reused"
            assert len(_kinds(recorder, TheftSuspected)) == 1
        finally:
            await inner.close()

    asyncio.run(scenario())


# -- two processes, one SQLite file -----------------------------------------------------------


def _process_client(
    db: str, first: str, barrier: Any, results: Any, threads: int
) -> None:  # pragma: no cover - runs in a child process
    clock, recorder = FakeClock(START + 60), EventRecorder()
    manager = SessionManager(
        SQLiteStore(db, create=False), policy=DUE, clock=clock, events=EventBus([recorder])
    )
    try:
        barrier.wait(timeout=60)
        due = _at_once(threads, lambda _: manager.validate(first).token or first)
        barrier.wait(timeout=60)
        held = _at_once(threads, lambda i: manager.rotate(manager.validate(due[i])).token or due[i])
        counts = {
            kind.__name__: len(_kinds(recorder, kind))
            for kind in (SessionValidatedWithRotation, SessionRotated, TheftSuspected)
        }
        results.put((due, held, counts))
    except BaseException as exc:
        results.put(repr(exc))
    finally:
        manager.close()


def test_two_processes_sharing_one_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    clock, recorder = FakeClock(START), EventRecorder()
    manager = SessionManager(SQLiteStore(db), policy=DUE, clock=clock, events=EventBus([recorder]))
    try:
        first = manager.issue("alice").token
        assert first is not None
        spawn = multiprocessing.get_context("spawn")
        barrier, results = spawn.Barrier(2), spawn.Queue()
        workers = [
            spawn.Process(target=_process_client, args=(str(db), first, barrier, results, 6))
            for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        assert all(isinstance(o, tuple) for o in outcomes), outcomes
        due = [t for o in outcomes for t in o[0]]
        held = [t for o in outcomes for t in o[1]]
        counts = [o[2] for o in outcomes]
        renewed, rotated = due[0], held[0]
        assert due == [renewed] * 12  # one renewal for both processes' requests
        assert held == [rotated] * 12  # one explicit rotation for all of them
        assert sum(c["SessionValidatedWithRotation"] for c in counts) == 1
        assert sum(c["SessionRotated"] for c in counts) == 1
        assert sum(c["TheftSuspected"] for c in counts) == 0
        clock.advance(60)
        for token in (first, renewed):  # inside their windows: they lead to the newest
            assert manager.validate(token).token == rotated
        assert manager.validate(rotated).token is None
        _no_false_alarm(recorder)
        _replay_after_grace_is_theft(manager, clock, recorder, renewed, rotated)
    finally:
        manager.close()
