"""The delivery engine against a real HTTP receiver: order, retries with backoff, a receiver
that is down for a minute, filters, disabling, two deliverers on one database."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import WAIT, postgres_server, redis_server, wait_until  # noqa: F401 - fixtures

from sessionward import SessionManager, SQLiteStore
from sessionward.core.events import EventBus, SessionCreated, SessionRevoked
from sessionward.signals.delivery import Deliverer, Limits
from sessionward.signals.recorder import Recorder
from sessionward.signals.webhook_endpoints import (
    KIND,
    ROTATION_GRACE,
    WebhookRenderer,
    create_webhook,
    rotate_secret,
)
from sessionward.signals.webhooks import WebhookVerificationError, verify
from sessionward.stores import MemoryStore
from sessionward.stores.consumers import (
    ALL_APPLICATIONS,
    DISABLED,
    ConsumerStore,
    MemoryConsumerStore,
    SQLiteConsumerStore,
)
from sessionward.stores.eventlog import MemoryEventLog
from sessionward.stores.eventlog.sqlite import SQLiteEventLog
from sessionward.testing import FakeClock
from signals._receiver import Receiver


@pytest.fixture
def clock() -> FakeClock:
    # On the wall clock: the receiver's standardwebhooks checks timestamps against real time.
    return FakeClock(time.time())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    rx.start()
    try:
        yield rx
    finally:
        rx.close()


def revoked(log: MemoryEventLog, clock: FakeClock, n: int, app: str = "default") -> list[str]:
    entries = [
        {**SessionRevoked(f"sid{i}", f"{app}/user", clock.now()).to_dict(), "application": app}
        for i in range(n)
    ]
    return log.append(entries)


def deliverer(
    log: MemoryEventLog, store: ConsumerStore, clock: FakeClock, **options: object
) -> Deliverer:
    return Deliverer(
        log,
        store,
        {KIND: WebhookRenderer()},
        clock=clock,
        draw=lambda: 0.5,
        **options,  # type: ignore[arg-type]
    )


def test_events_arrive_in_order_signed_and_with_the_log_id(
    clock: FakeClock, receiver: Receiver
) -> None:
    log, store = MemoryEventLog(), MemoryConsumerStore()
    revoked(log, clock, 2)  # before the endpoint exists: not sent
    hook, secret = create_webhook(store, log, receiver.url, application="default", now=clock.now())
    receiver.secret = secret.reveal()
    ids = revoked(log, clock, 3)
    engine = deliverer(log, store, clock)
    try:
        assert engine.run_once() == 3
        assert engine.run_once() == 0
    finally:
        engine.stop()
    assert receiver.ids() == [f"evt_{i}" for i in ids]
    first = receiver.payloads()[0]
    assert first["type"] == "session.revoked"
    assert first["data"]["session_id"] == "sid0"
    assert first["data"]["id"] == ids[0]
    assert receiver.refused == 0
    history = store.deliveries(hook.id)
    assert [d.event_id for d in history] == ids[::-1]
    assert all(d.ok and d.status == 204 and d.attempt == 1 for d in history)


def test_a_receiver_down_for_a_minute_gets_every_event_once_back(
    clock: FakeClock, receiver: Receiver
) -> None:
    log, store = MemoryEventLog(), MemoryConsumerStore()
    hook, secret = create_webhook(store, log, receiver.url, application="default", now=clock.now())
    receiver.secret = secret.reveal()
    engine = deliverer(log, store, clock)
    try:
        before = revoked(log, clock, 3)
        engine.run_once()
        receiver.stop()
        during = []
        for _ in range(6):  # a minute of (injected) time, events still happening
            during += revoked(log, clock, 2)
            engine.run_once()
            clock.advance(10)
        state = store.get(hook.id)
        assert state is not None
        assert state.failures >= 2
        assert state.next_attempt > clock.now() - 10  # backing off, not hammering
        receiver.start()
        after = revoked(log, clock, 2)
        for _ in range(20):  # at most the longest back-off (40 s) later, all is through
            engine.run_once()
            clock.advance(5)
    finally:
        engine.stop()
    expected = [f"evt_{i}" for i in before + during + after]
    got = receiver.ids()
    assert sorted(set(got)) == sorted(expected)  # none lost
    assert got == expected  # in log order, each exactly once here
    failed = [d for d in store.deliveries(hook.id, limit=100) if not d.ok]
    assert failed
    assert all(d.error == "connect" and d.status is None for d in failed)
    assert {d.message_id for d in failed} == {f"evt_{during[0]}"}  # the head event, retried
    [success] = [d for d in store.deliveries(hook.id, limit=100) if d.ok and d.attempt > 1]
    assert success.message_id == failed[0].message_id
    assert success.attempt == max(d.attempt for d in failed) + 1


def test_retries_back_off_exponentially_and_keep_the_message_id(
    clock: FakeClock, receiver: Receiver
) -> None:
    log, store = MemoryEventLog(), MemoryConsumerStore()
    hook, secret = create_webhook(store, log, receiver.url, application="default", now=clock.now())
    receiver.secret = secret.reveal()
    receiver.status = 503
    [event_id] = revoked(log, clock, 1)
    engine = deliverer(log, store, clock)
    start = clock.now()
    delays = []
    try:
        for _ in range(4):
            engine.run_once()
            state = store.get(hook.id)
            assert state is not None
            delays.append(round(state.next_attempt - clock.now(), 3))
            assert engine.run_once() == 0  # not due yet: nothing is sent
            clock.set(state.next_attempt)
        receiver.status = 200
        assert engine.run_once() == 1
    finally:
        engine.stop()
    assert delays == [5.0, 10.0, 20.0, 40.0]
    assert receiver.ids() == [f"evt_{event_id}"] * 5
    assert len({m["headers"]["webhook-timestamp"] for m in receiver.received}) == 5
    assert clock.now() - start == pytest.approx(75.0)
    assert [d.attempt for d in store.deliveries(hook.id)] == [5, 4, 3, 2, 1]


def test_filters_by_kind_and_application(clock: FakeClock, receiver: Receiver) -> None:
    log, store = MemoryEventLog(), MemoryConsumerStore()
    hook, secret = create_webhook(
        store, log, receiver.url, application="shop", now=clock.now(), kinds=["created"]
    )
    receiver.secret = secret.reveal()
    created = SessionCreated("s1", "shop/u", clock.now()).to_dict()
    ids = log.append(
        [
            {**created, "application": "shop"},
            {**created, "application": "default"},
            {**SessionRevoked("s1", "shop/u", clock.now()).to_dict(), "application": "shop"},
            {**created, "application": "shop", "session_id": "s2"},
        ]
    )
    engine = deliverer(log, store, clock)
    try:
        assert engine.run_once() == 2
    finally:
        engine.stop()
    assert receiver.ids() == [f"evt_{ids[0]}", f"evt_{ids[3]}"]
    state = store.get(hook.id)
    assert state is not None
    assert state.cursor == ids[3]


def test_an_all_applications_endpoint_gets_a_library_log_s_events(
    clock: FakeClock, receiver: Receiver
) -> None:
    log, store = MemoryEventLog(), MemoryConsumerStore()
    _, secret = create_webhook(
        store, log, receiver.url, application=ALL_APPLICATIONS, now=clock.now()
    )
    receiver.secret = secret.reveal()
    event = SessionRevoked("s1", "alice", clock.now()).to_dict()
    ids = log.append([{**event, "application": None}, {**event, "application": "shop"}])
    engine = deliverer(log, store, clock)
    try:
        assert engine.run_once() == 2
    finally:
        engine.stop()
    assert receiver.ids() == [f"evt_{i}" for i in ids]


def test_repeated_failure_disables_the_endpoint_after_five_days(clock: FakeClock) -> None:
    log, store = MemoryEventLog(), MemoryConsumerStore()
    down = Receiver()  # never started: every attempt is refused
    hook, _ = create_webhook(store, log, down.url, application="default", now=clock.now())
    revoked(log, clock, 1)
    engine = deliverer(log, store, clock)
    start, rounds = clock.now(), 0
    try:
        while (state := store.get(hook.id)) is not None and state.state != DISABLED:
            clock.set(max(clock.now(), state.next_attempt))
            engine.run_once()
            rounds += 1
            assert rounds < 500
    finally:
        engine.stop()
        down.close()
    assert state is not None
    assert state.disabled_reason == "repeated_failure"
    assert 5 * 86_400 <= clock.now() - start < 5 * 86_400 + 3600 * 1.2
    assert state.failures == rounds
    assert rounds >= 10
    assert engine.run_once() == 0  # a disabled endpoint is not tried
    store.set_state(hook.id, "active", None, clock.now())
    again = store.get(hook.id)
    assert again is not None
    assert again.failures == 0
    assert again.cursor == state.cursor


def test_redirects_are_failures_not_followed(clock: FakeClock, receiver: Receiver) -> None:
    log, store = MemoryEventLog(), MemoryConsumerStore()
    hook, secret = create_webhook(store, log, receiver.url, application="default", now=clock.now())
    receiver.secret = secret.reveal()
    receiver.status, receiver.location = 307, "http://127.0.0.1:9/elsewhere"
    revoked(log, clock, 1)
    engine = deliverer(log, store, clock)
    try:
        assert engine.run_once() == 0
    finally:
        engine.stop()
    [attempt] = store.deliveries(hook.id)
    assert (attempt.status, attempt.error, attempt.ok) == (307, "status", False)
    assert len(receiver.received) == 1


def test_an_oversized_event_is_recorded_and_skipped(clock: FakeClock, receiver: Receiver) -> None:
    log, store = MemoryEventLog(), MemoryConsumerStore()
    hook, secret = create_webhook(store, log, receiver.url, application="default", now=clock.now())
    receiver.secret = secret.reveal()
    big = {**SessionRevoked("s", "u", clock.now()).to_dict(), "application": "default"}
    ids = log.append([{**big, "note": "x" * 5000}, big])
    engine = deliverer(log, store, clock, limits=Limits(max_body=2000))
    try:
        assert engine.run_once() == 1
    finally:
        engine.stop()
    assert receiver.ids() == [f"evt_{ids[1]}"]
    assert [d.error for d in store.deliveries(hook.id)] == [None, "undeliverable"]


def _shared_stores(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> list[ConsumerStore]:
    """Three connections to one consumer database: the setup's and two deliverers'."""
    if backend == "sqlite":
        return [SQLiteConsumerStore(tmp_path / "shared.db") for _ in range(3)]
    if backend == "postgres":
        from sessionward.stores.consumers.postgres import PostgresConsumerStore

        server = request.getfixturevalue("postgres_server")
        stores = [PostgresConsumerStore(server.conninfo) for _ in range(3)]
        stores[0].clear()
        return list(stores)
    from sessionward.stores.consumers.redis import RedisConsumerStore

    server = request.getfixturevalue("redis_server")
    server.call("FLUSHALL")
    return [RedisConsumerStore(server.url) for _ in range(3)]


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "redis"])
def test_two_deliverers_on_one_database_never_send_an_event_twice(
    backend: str,
    clock: FakeClock,
    receiver: Receiver,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    log = MemoryEventLog()
    setup, *nodes = _shared_stores(backend, request, tmp_path)
    _, secret = create_webhook(setup, log, receiver.url, application="default", now=clock.now())
    receiver.secret = secret.reveal()
    ids = revoked(log, clock, 60)
    engines = [deliverer(log, node, clock, limits=Limits(batch=7)) for node in nodes]
    sent: Counter[int] = Counter()
    stop = threading.Event()

    def work(n: int) -> None:
        while not stop.is_set():
            sent[n] += engines[n].run_once()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + WAIT
    while len(receiver.ids()) < len(ids) and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    for thread in threads:
        thread.join()
    for engine, node in zip(engines, nodes, strict=True):
        engine.stop()
        node.close()
    setup.close()
    assert receiver.ids() == [f"evt_{i}" for i in ids]  # each once, in order
    assert sum(sent.values()) == len(ids)


def test_a_deliverer_that_outlives_its_lease_moves_no_cursor(
    clock: FakeClock, receiver: Receiver, tmp_path: Path
) -> None:
    log = MemoryEventLog()
    setup = SQLiteConsumerStore(tmp_path / "shared.db")
    hook, secret = create_webhook(setup, log, receiver.url, application="default", now=clock.now())
    receiver.secret = secret.reveal()
    ids = revoked(log, clock, 3)
    slow, fast = (
        deliverer(log, SQLiteConsumerStore(tmp_path / "shared.db"), clock) for _ in range(2)
    )
    receiver.hold = threading.Event()
    stalled = threading.Thread(target=slow.run_once)
    stalled.start()  # claims the endpoint, then hangs on the receiver's first answer
    wait_until(receiver.ids, "the stalled deliverer's first message")
    clock.advance(Limits().lease + 1)  # the stalled deliverer's lease runs out
    receiver.hold.set()
    receiver.hold = None
    assert fast.run_once() >= 2  # takes over; the first event may go out twice
    stalled.join()
    assert fast.run_once() == 0
    for engine in (slow, fast):
        engine.stop()
    state = setup.get(hook.id)
    setup.close()
    assert state is not None
    assert state.cursor == ids[-1]
    got = receiver.ids()
    assert sorted(set(got)) == sorted(f"evt_{i}" for i in ids)  # none lost
    assert got[-len(ids) :] == [f"evt_{i}" for i in ids]  # the taker sent all, in order
    assert Counter(got)[f"evt_{ids[0]}"] <= 2


def test_a_renderer_error_is_a_failed_attempt_retried_later(
    clock: FakeClock, receiver: Receiver
) -> None:
    log, store = MemoryEventLog(), MemoryConsumerStore()
    hook, secret = create_webhook(store, log, receiver.url, application="default", now=clock.now())
    receiver.secret = secret.reveal()
    store.set_credentials(hook.id, {"secrets": []})  # nothing to sign with
    [event_id] = revoked(log, clock, 1)
    engine = deliverer(log, store, clock)
    try:
        assert engine.run_once() == 0
        [attempt] = store.deliveries(hook.id)
        assert (attempt.error, attempt.ok) == ("render", False)
        state = store.get(hook.id)
        assert state is not None
        assert state.failures == 1
        store.set_credentials(hook.id, {"secrets": [{"secret": secret.reveal(), "expires": None}]})
        clock.set(state.next_attempt)
        assert engine.run_once() == 1
    finally:
        engine.stop()
    assert receiver.ids() == [f"evt_{event_id}"]


def test_a_rotated_secret_signs_beside_the_new_one_for_a_day(
    clock: FakeClock, receiver: Receiver
) -> None:
    log, store = MemoryEventLog(), MemoryConsumerStore()
    hook, old = create_webhook(store, log, receiver.url, application="default", now=clock.now())
    new = rotate_secret(store, hook.id, now=clock.now())
    receiver.secret = old.reveal()  # a receiver not yet told about the new secret
    revoked(log, clock, 1)
    engine = deliverer(log, store, clock)
    try:
        assert engine.run_once() == 1
        [message] = receiver.received
        signatures = message["headers"]["webhook-signature"].split(" ")
        assert len(signatures) == 2
        assert verify([new], message["headers"], message["raw"], now=clock.now())
        clock.advance(ROTATION_GRACE + 1)
        receiver.check = False  # the library checks timestamps on the wall clock
        revoked(log, clock, 1)
        assert engine.run_once() == 1
    finally:
        engine.stop()
    last = receiver.received[-1]
    assert len(last["headers"]["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        verify([old], last["headers"], last["raw"], now=clock.now())
    assert verify([new], last["headers"], last["raw"], now=clock.now())


def test_no_raw_token_reaches_a_receiver(clock: FakeClock, receiver: Receiver) -> None:
    log, store = MemoryEventLog(), MemoryConsumerStore()
    _, secret = create_webhook(store, log, receiver.url, application="default", now=clock.now())
    receiver.secret = secret.reveal()

    def record(event: object) -> None:
        log.append([{**event.to_dict(), "application": "default"}])  # type: ignore[attr-defined]

    manager = SessionManager(MemoryStore(), clock=clock, events=EventBus([record]))
    issued = manager.issue("default/alice")
    rotated = manager.rotate(manager.validate(issued.token))
    manager.revoke(rotated)
    engine = deliverer(log, store, clock)
    try:
        assert engine.run_once() >= 3
    finally:
        engine.stop()
    raw = b"".join(m["raw"] for m in receiver.received)
    for token in (issued.token, rotated.token):
        assert token is not None
        assert token.encode() not in raw
        assert token[-20:].encode() not in raw
    assert issued.id.encode() in raw


def test_an_event_recorded_in_this_process_is_delivered_at_once_not_at_the_next_poll(
    clock: FakeClock, receiver: Receiver, tmp_path: Path
) -> None:
    """The recorder wakes the deliverer after each batch: with a poll once an hour, the event
    still arrives well under a second after it was recorded."""
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    log, store = SQLiteEventLog(path), MemoryConsumerStore()
    rounds = threading.Semaphore(0)

    class Counted(Deliverer):
        def run_once(self) -> int:
            try:
                return super().run_once()
            finally:
                rounds.release()

    engine = Counted(log, store, {KIND: WebhookRenderer()}, clock=clock, draw=lambda: 0.5)
    recorder = Recorder(log, application=lambda event: "default")
    recorder.on_append(engine.wake)
    try:
        _, secret = create_webhook(store, log, receiver.url, application="default", now=0.0)
        receiver.secret = secret.reveal()
        engine.start(interval=3600.0)
        assert rounds.acquire(timeout=10)  # the first round, at start: nothing logged yet
        assert receiver.ids() == []
        recorded = time.monotonic()
        recorder(SessionRevoked("sid-prompt", "user", clock.now()))
        deadline = recorded + WAIT  # the next poll is an hour away: a loaded machine is not
        while not receiver.ids() and time.monotonic() < deadline:
            rounds.acquire(timeout=max(0.0, deadline - time.monotonic()))
        assert len(receiver.ids()) == 1, "not delivered long before the next poll"
        assert receiver.payloads()[0]["data"]["session_id"] == "sid-prompt"
    finally:
        recorder.close()
        engine.stop()
        log.close()


def test_wake_ups_in_a_burst_start_at_most_one_round_per_soonest(clock: FakeClock) -> None:
    """A recorder writing a batch every few milliseconds does not make the deliverer claim
    (a write transaction) as often: woken rounds start at least ``soonest`` apart."""
    log, store = MemoryEventLog(), MemoryConsumerStore()
    starts: list[float] = []
    first = threading.Event()

    class Counted(Deliverer):
        def run_once(self) -> int:
            starts.append(time.monotonic())
            first.set()
            return super().run_once()

    engine = Counted(log, store, {KIND: WebhookRenderer()}, clock=clock)
    try:
        engine.start(interval=3600.0, soonest=0.2)
        assert first.wait(10)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:  # a second of wake-ups, as fast as they come
            engine.wake()
    finally:
        engine.stop()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert 2 <= len(starts) <= 7  # the first, then at most one per 0.2 s of the second
    # A round notes its start a moment in, and that moment varies on a loaded machine:
    # half of soonest still tells spaced rounds from rounds as fast as the wake-ups.
    assert all(gap >= 0.1 for gap in gaps), gaps
