"""The recorder: session events into a durable :class:`~sessionward.stores.eventlog.EventLog`,
off the request's path.

Subscribe a :class:`Recorder` to the manager's ``EventBus``. For each event it puts the event
(and the application it belongs to) on a bounded in-memory queue and returns: the request
that caused the event never waits for the log and never fails because of it. One background
thread wakes when the queue stops being empty, waits up to ``linger`` seconds (20 ms) for
more, turns the events into their dicts and appends them in transactions of up to ``batch``
(200) events (group commit: under load, one write carries many events, and the thread wakes
once per batch). On SQLite the log shares the session file, whose writes take turns: a batch
holds the write lock for about as long as its inserts take (under 10 µs an event for a session
already logged, more for a new one), and a session write that meets it waits that long, or
SQLite's first busy-handler step (1 ms).

Guarantees and limits:

* Order: entries are appended in the order their events were emitted in this process.
* A crash (``kill -9``, power loss) loses what was queued and not yet appended: at most the
  events of the last ``linger`` plus one write (tens of milliseconds under normal load), or,
  while the log is unreachable, everything buffered since it went away. A clean shutdown
  (``close()``) appends what is queued first.
* Outage: a failed append is retried with exponential backoff and jitter (0.1 s doubling to
  5 s), keeping the batch in hand. Meanwhile events queue up to ``buffer`` (10,000); beyond
  that they are dropped and counted (``dropped``), never blocking the request. An entry the
  log refuses outright (``InvalidArgument``) is dropped alone, and counted.
* Retention: every ``prune_every`` seconds (an hour) the thread drops entries older than
  ``retention`` (90 days); ``retention=None`` keeps them all (Redis still bounds its stream).

``flush()`` waits until everything recorded before it is appended (tests, admin reads that want
to see their own writes); ``stats()`` gives the counters for metrics; ``on_append(callback)``
calls ``callback()`` on the writer thread after each batch is committed (a deliverer's
``wake``: it reads the log at once rather than at its next poll).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from sessionward.core.events import Event
from sessionward.errors import InvalidArgument
from sessionward.stores.eventlog.base import EventLog

__all__ = ["DEFAULT_RETENTION", "Recorder"]

_log = logging.getLogger("sessionward.events.recorder")

DEFAULT_RETENTION: Final = 90 * 86_400.0
_RETRY_FIRST: Final = 0.1
_RETRY_CAP: Final = 5.0


# This process's id, kept up to date across fork() without a system call per event.
_process = os.getpid()


def _forked() -> None:
    global _process
    _process = os.getpid()


os.register_at_fork(after_in_child=_forked)


def _no_application(event: Event) -> str | None:
    return None


_FIELDS: dict[type[Event], tuple[str, ...]] = {}


def _entry(event: Event, application: str | None) -> dict[str, Any]:
    """``event.to_dict()`` plus ``application``, without ``asdict``'s deep copy (an event's
    fields are immutable: strings, numbers and tuples)."""
    names = _FIELDS.get(type(event))
    if names is None:
        names = _FIELDS[type(event)] = tuple(f.name for f in dataclasses.fields(event))
    entry = {name: getattr(event, name) for name in names}
    entry["kind"] = event.kind
    entry["application"] = application
    return entry


class Recorder:
    """An ``EventBus`` subscriber that appends events to ``log`` from a background thread.

    ``application(event)`` names the application an event belongs to (the service knows it from
    the API key that caused it); ``clock()`` is the wall-clock time retention counts from.
    """

    def __init__(
        self,
        log: EventLog,
        *,
        application: Callable[[Event], str | None] = _no_application,
        clock: Callable[[], float] = time.time,
        retention: float | None = DEFAULT_RETENTION,
        prune_every: float = 3600.0,
        linger: float = 0.02,
        batch: int = 200,
        buffer: int = 10_000,
    ) -> None:
        if retention is not None and not retention > 0:
            raise InvalidArgument("retention must be a positive number of seconds, or None")
        if batch < 1 or buffer < 1 or linger < 0 or not prune_every > 0:
            raise InvalidArgument("batch and buffer must be positive, linger not negative")
        self.log = log
        self.retention = retention
        self._application = application
        self._clock = clock
        self._prune_every = prune_every
        self._linger = linger
        self._batch = batch
        self._buffer = buffer
        # The request side numbers and queues an event under a short lock (so the queue is in
        # number order, which flush() relies on), and wakes the writer only when it sleeps:
        # once per batch, not once per event.
        self._queue: deque[tuple[int, Event, str | None]] = deque()
        self._queueing = threading.Lock()
        self._recorded = 0  # sequence number of the latest event queued
        self._done = threading.Condition()
        self._finished = 0  # every event up to this one is appended (or dropped)
        self._wake = threading.Event()
        self._hurry = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False
        self._listeners: list[Callable[[], None]] = []
        self.written = 0
        self.dropped = 0
        self.failures = 0
        self.pruned = 0

    # -- the request side --------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        """Queue ``event`` (never blocks, never raises); its dict is made by the writer."""
        if self._closed or len(self._queue) >= self._buffer:
            self.dropped += 1
            return
        if self._pid != _process:
            self._start()
        application = self._application(event)
        with self._queueing:
            self._recorded += 1
            self._queue.append((self._recorded, event, application))
        if not self._wake.is_set():
            self._wake.set()

    def _start(self) -> None:
        with self._done:
            if self._pid == os.getpid():
                return
            if self._pid:  # a child of fork(): the parent's queue and thread are not ours
                self._queue.clear()
            thread = threading.Thread(target=self._run, name="sessionward-recorder", daemon=True)
            self._thread, self._pid = thread, os.getpid()
            thread.start()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event recorded so far is appended; ``False`` on timeout."""
        target = self._recorded
        with self._done:
            if self._finished >= target:
                return True
        self._hurry.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        with self._done:
            while self._finished < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(left)
        return True

    def on_append(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` on the writer thread after each batch is appended, once its
        entries can be read. It must return quickly; an exception it raises is logged."""
        self._listeners.append(callback)

    def stats(self) -> dict[str, int]:
        """Counters for metrics: appended, dropped (buffer full, refused, unwritten at close),
        failed appends (each retry counts) and entries pruned by retention."""
        return {
            "written": self.written,
            "dropped": self.dropped,
            "failures": self.failures,
            "pruned": self.pruned,
            "pending": len(self._queue),
        }

    def close(self, timeout: float = 5.0) -> None:
        """Append what is queued (waiting at most ``timeout``), then stop the thread. What the
        log could not take by then is dropped and counted. The log itself stays open."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._hurry.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and self._pid == os.getpid():
            thread.join(timeout)
        lost = len(self._queue)
        self._queue.clear()
        if lost:
            self.dropped += lost
            _log.error("event log: %d events were not written before shutdown", lost)

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        next_prune = time.monotonic()
        while True:
            if self.retention is not None and time.monotonic() >= next_prune:
                self._prune()
                next_prune = time.monotonic() + self._prune_every
            batch = self._take(min(1.0, self._prune_every))
            if batch:
                self._write(batch)
            elif self._stop.is_set():
                return

    def _take(self, wait: float) -> list[tuple[int, dict[str, Any]]]:
        """The next batch: once something is queued (waiting at most ``wait``), whatever
        arrives within ``linger``, up to ``batch`` entries, as dicts."""
        if not self._queue:
            self._wake.clear()
            if not self._queue and not self._stop.is_set():
                self._wake.wait(wait)
            if not self._queue:
                return []
        if self._linger and not self._hurry.is_set() and len(self._queue) < self._batch:
            self._hurry.wait(self._linger)
        self._hurry.clear()
        batch: list[tuple[int, dict[str, Any]]] = []
        queued = self._queue
        while queued and len(batch) < self._batch:
            sequence, event, application = queued.popleft()
            batch.append((sequence, _entry(event, application)))
        return batch

    def _write(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        entries = [entry for _, entry in batch]
        delay = _RETRY_FIRST
        while True:
            try:
                self.log.append(entries)
                self.written += len(entries)
                self._appended()
                break
            except InvalidArgument:
                self._write_one_by_one(entries)
                break
            except Exception as exc:
                self.failures += 1
                if self._stop.is_set():
                    self.dropped += len(entries)
                    _log.error("event log unavailable at shutdown: %d events lost", len(entries))
                    break
                _log.warning("event log append failed (%s); retrying in %.1f s", exc, delay)
                self._stop.wait(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter
                delay = min(delay * 2, _RETRY_CAP)
        self._finish(batch[-1][0])

    def _appended(self) -> None:
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                _log.exception("event log listener %r failed", listener)

    def _write_one_by_one(self, entries: list[dict[str, Any]]) -> None:
        written = self.written
        for entry in entries:
            try:
                self.log.append([entry])
                self.written += 1
            except InvalidArgument as exc:
                self.dropped += 1
                _log.error("event log refused a %s event: %s", entry.get("kind"), exc)
            except Exception as exc:  # an outage mid-way: these entries are retried no more
                self.dropped += 1
                self.failures += 1
                _log.warning("event log append failed (%s): one event lost", exc)
        if self.written != written:
            self._appended()

    def _finish(self, sequence: int) -> None:
        with self._done:
            self._finished = sequence
            self._done.notify_all()

    def _prune(self) -> None:
        if self.retention is None:
            return
        try:
            self.pruned += self.log.prune(self._clock() - self.retention)
        except Exception as exc:
            _log.warning("event log retention prune failed (%s); next try later", exc)
