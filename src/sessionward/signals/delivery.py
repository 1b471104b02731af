"""The delivery engine: durable, at-least-once push of event-log entries to HTTP consumers.

Shared by webhooks (:mod:`sessionward.signals.webhook_endpoints`) and Shared Signals push
streams: each consumer kind plugs a :class:`Renderer` that turns one
:class:`~sessionward.stores.eventlog.base.LoggedEvent` into a request body and headers; the
:class:`Deliverer` does the rest::

    deliverer = Deliverer(event_log, consumer_store, {"webhook": WebhookRenderer()}, clock=clock)
    deliverer.start()        # a background thread; or call run_once() yourself (tests, cron)
    ...
    deliverer.stop()

One round (:meth:`Deliverer.run_once`) claims the consumers that are due (a lease in the
consumer store: two deliverers on one database never work on the same consumer at once),
and for each walks ``EventLog.read(cursor, batch)`` forward:

* an event the consumer does not want (another application, a kind outside its filter) is
  skipped: the cursor moves past it;
* a wanted event is rendered and POSTed (no redirects, timeouts, the answer's body unread);
  a 2xx moves the cursor past it, anything else stops the round for that consumer: events
  reach each consumer in log order, and a failing event blocks the ones behind it;
* the round's outcome and its attempts (status, latency, error code) are written together,
  and only while this deliverer still holds the lease; a round stops sending when the lease
  runs out (``Limits.lease``, well beyond ``Limits.round_budget`` plus one request's timeout).

Guarantees: **at-least-once** (a crash between a 2xx and the write of the new cursor sends
the event again, with the same idempotency id: renderers derive it from the log entry id);
**per-consumer order**; failure never touches the request that caused the event (delivery
runs in its own thread, on events already in the log).

Retries (:class:`RetryPolicy`): after the n-th consecutive failure the consumer is due again
after ``min(cap, base * 2**(n-1))`` seconds, times a random factor in ``1 ± jitter``; it is
disabled when it has failed for ``disable_after`` seconds *and* at least ``min_failures``
times in a row (defaults: 5 s doubling to 1 h, disabled after 5 days and 10 failures). A
disabled consumer keeps its cursor: re-enabling it delivers what it missed, if the log still
holds it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from sessionward.clock import Clock
from sessionward.errors import StoreError
from sessionward.stores.consumers.base import DISABLED, Consumer, ConsumerStore, Delivery, Outcome
from sessionward.stores.eventlog.base import EventLog, EventQuery, LoggedEvent

__all__ = [
    "Deliverer",
    "Limits",
    "Rendered",
    "Renderer",
    "RetryPolicy",
    "Skip",
    "Undeliverable",
    "log_end",
]

logger = logging.getLogger("sessionward.signals.delivery")


@dataclass(frozen=True, slots=True)
class Rendered:
    """One request: ``message_id`` is the idempotency id recorded in the history."""

    message_id: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Undeliverable(Exception):
    """Raised by a renderer for an event that can never be sent (too large, ...): it is
    recorded with ``reason`` and skipped, not retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Skip(Exception):
    """Raised by a renderer for an event that means nothing to this consumer (a Shared
    Signals stream for an event with no CAEP form): the cursor moves past it, unrecorded."""


class Renderer(Protocol):
    def render(self, consumer: Consumer, event: LoggedEvent, now: float) -> Rendered: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 5.0
    cap: float = 3600.0
    jitter: float = 0.2
    disable_after: float = 5 * 86_400.0
    min_failures: int = 10

    def delay(self, failures: int, draw: Callable[[], float]) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure."""
        plain = min(self.cap, self.base * 2 ** min(failures - 1, 40))
        return float(plain * (1 - self.jitter + 2 * self.jitter * draw()))

    def gives_up(self, failures: int, first_failure: float, now: float) -> bool:
        return failures >= self.min_failures and now - first_failure >= self.disable_after


@dataclass(frozen=True, slots=True)
class Limits:
    timeout: float = 10.0  # per request (read, write, pool)
    connect_timeout: float = 5.0
    max_body: int = 256 * 1024  # a larger rendered event is recorded as undeliverable
    batch: int = 100  # log entries read per consumer and round
    lease: float = 120.0  # seconds a claimed consumer is ours
    round_budget: float = 60.0  # stop a consumer's round after this long (wall clock)
    history: int = 100  # delivery attempts kept per consumer
    claim: int = 32  # consumers claimed per round
    workers: int = 4  # consumers delivered in parallel


def log_end(log: EventLog) -> str | None:
    """The id of the newest entry (a new consumer's starting cursor), or ``None``."""
    page = log.query(EventQuery(limit=1))
    return page.events[0].id if page.events else None


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Deliverer:
    def __init__(
        self,
        log: EventLog,
        store: ConsumerStore,
        renderers: Mapping[str, Renderer],
        *,
        clock: Clock,
        policy: RetryPolicy | None = None,
        limits: Limits | None = None,
        client: httpx.Client | None = None,
        owner: str | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.log = log
        self.store = store
        self.renderers = dict(renderers)
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.limits = limits or Limits()
        self.owner = owner or _owner()
        self._draw = draw
        self._own_client = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(self.limits.timeout, connect=self.limits.connect_timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": "sessionward-deliverer"},
        )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="sw-deliver")

    # -- one round ---------------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim the due consumers and deliver to each; returns how many events were
        delivered (2xx). Store errors end the round quietly (the next one retries)."""
        try:
            claimed = self.store.claim(
                self.owner, self.clock.now(), self.limits.lease, self.limits.claim
            )
        except StoreError as exc:
            logger.warning("delivery round skipped: %s", type(exc).__name__)
            return 0
        mine = [c for c in claimed if c.kind in self.renderers]
        for other in claimed:
            if other.kind not in self.renderers:  # another deliverer's kind: hand it back
                self._release(other)
        return sum(self._pool.map(self._deliver_safely, mine))

    def _release(self, consumer: Consumer) -> None:
        outcome = Outcome(
            consumer.cursor, consumer.failures, consumer.first_failure, consumer.next_attempt,
            consumer.state, consumer.disabled_reason,
        )  # fmt: skip
        with contextlib.suppress(StoreError):  # else the lease runs out by itself
            self.store.finish(consumer.id, self.owner, outcome, (), self.limits.history)

    def _deliver_safely(self, consumer: Consumer) -> int:
        try:
            return self.deliver(consumer)
        except StoreError as exc:
            logger.warning("delivery to %s interrupted: %s", consumer.id, type(exc).__name__)
        except Exception:
            logger.exception("delivery to %s failed unexpectedly", consumer.id)
        return 0

    def deliver(self, consumer: Consumer) -> int:
        """One round for a consumer this deliverer holds the lease of."""
        renderer = self.renderers[consumer.kind]
        events = self.log.read(consumer.cursor, self.limits.batch)
        cursor, failures, first = consumer.cursor, consumer.failures, consumer.first_failure
        attempts: list[Delivery] = []
        delivered, failed = 0, False
        started, lease_end = time.monotonic(), self.clock.now() + self.limits.lease
        for event in events:
            # Past the lease another deliverer may own the consumer: stop sending.
            if time.monotonic() - started > self.limits.round_budget or (
                self.clock.now() >= lease_end
            ):
                break
            if not consumer.wants(event.kind, event.application):
                cursor = event.id
                continue
            now = self.clock.now()
            attempt = self._attempt(consumer, renderer, event, now, failures + 1)
            if attempt is None:
                cursor = event.id
                continue
            attempts.append(attempt)
            if attempt.ok or (attempt.status is None and attempt.error == "undeliverable"):
                cursor, failures, first = event.id, 0, None
                delivered += attempt.ok
                continue
            failures, first, failed = failures + 1, first if first is not None else now, True
            break
        outcome = self._outcome(consumer, cursor, failures, first, failed)
        if not self.store.finish(consumer.id, self.owner, outcome, attempts, self.limits.history):
            logger.warning("lease on %s lost: its round is not recorded", consumer.id)
        return delivered

    def _outcome(
        self, consumer: Consumer, cursor: str | None, failures: int, first: float | None,
        failed: bool,
    ) -> Outcome:  # fmt: skip
        now = self.clock.now()
        if not failed or first is None:
            return Outcome(cursor, failures, first, now)
        if self.policy.gives_up(failures, first, now):
            logger.warning("consumer %s disabled after %d failures", consumer.id, failures)
            return Outcome(cursor, failures, first, now, DISABLED, "repeated_failure")
        return Outcome(cursor, failures, first, now + self.policy.delay(failures, self._draw))

    def _attempt(
        self, consumer: Consumer, renderer: Renderer, event: LoggedEvent, now: float, n: int
    ) -> Delivery | None:
        try:
            rendered = renderer.render(consumer, event, now)
            if len(rendered.body) > self.limits.max_body:
                raise Undeliverable("too_large")
        except Skip:
            return None
        except Undeliverable as exc:
            logger.warning("event %s not deliverable to %s: %s", event.id, consumer.id, exc)
            return Delivery(consumer.id, event.id, "", now, n, None, 0.0, "undeliverable")
        except Exception:  # a renderer's bug or bad credentials: retried with back-off
            logger.exception("rendering event %s for %s failed", event.id, consumer.id)
            return Delivery(consumer.id, event.id, "", now, n, None, 0.0, "render")
        status, error, latency = self._post(consumer.url, rendered)
        return Delivery(consumer.id, event.id, rendered.message_id, now, n, status, latency, error)

    def _post(self, url: str, rendered: Rendered) -> tuple[int | None, str | None, float]:
        headers = {"content-type": "application/json", **rendered.headers}
        started = time.perf_counter()
        try:
            with self._client.stream("POST", url, content=rendered.body, headers=headers) as r:
                status = r.status_code  # the body is never read: nothing in it is ours to keep
        except httpx.TimeoutException:
            return None, "timeout", _ms(started)
        except httpx.ConnectError:
            return None, "connect", _ms(started)
        except httpx.HTTPError:
            return None, "http", _ms(started)
        return status, None if 200 <= status < 300 else "status", _ms(started)

    # -- the background thread ---------------------------------------------------------------

    def start(self, interval: float = 1.0, soonest: float = 0.1) -> None:
        """Deliver in a daemon thread: a round every ``interval`` seconds, or sooner after
        :meth:`wake`, but never within ``soonest`` seconds of the previous round's start (a
        recorder that wakes the deliverer after every batch costs at most ``1 / soonest``
        rounds a second; a round is a read of the consumer store when nothing is due, a write
        transaction when something is)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop,
            args=(interval, soonest),
            name="sessionward-deliverer",
            daemon=True,
        )
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _loop(self, interval: float, soonest: float) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.run_once()
            except Exception:
                logger.exception("delivery round failed")
            self._wake.wait(interval)
            rest = soonest - (time.monotonic() - began)
            if rest > 0:
                self._stop.wait(rest)
            self._wake.clear()  # what it announced is in the log: the next round reads it

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the thread (a round in flight finishes) and close what this deliverer opened."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._pool.shutdown(wait=True)
        if self._own_client:
            self._client.close()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
