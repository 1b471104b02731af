"""The consumer store: durable readers of the event log that push what they read somewhere.

A *consumer* is one delivery target (a webhook endpoint, a Shared Signals push stream): its
``kind`` picks the renderer that turns an event into an HTTP request, ``config`` holds the
renderer's public settings, ``credentials`` its secrets (signing keys, an authorization
header), ``kinds`` the events it wants, and ``cursor`` how far into the
:class:`~sessionward.stores.eventlog.base.EventLog` it has been delivered. The deliverer
(:mod:`sessionward.signals.delivery`) drives it; nothing here decides when to retry.

The operations, each atomic in every backend:

* ``add`` (create-only: :class:`~sessionward.errors.AlreadyExists` on a taken id), ``get``
  (``None`` when missing), ``consumers`` (oldest first), ``remove`` (idempotent; drops the
  delivery history too), ``set_credentials``, ``set_state`` (``active`` clears the failure
  count and makes the consumer due now), ``set_cursor``.
* ``claim(owner, now, lease, limit)``: the *lease*. Picks active consumers that are due
  (``next_attempt <= now``) and that no other owner holds (``lease_until <= now``), and marks
  them held by ``owner`` until ``now + lease``. Two deliverers on one database never hold the
  same consumer at once, so they never deliver its events concurrently.
* ``finish(id, owner, outcome, attempts, keep)``: writes the outcome of one round (new cursor,
  failure count, next attempt, state), appends ``attempts`` to the history (trimmed to the
  newest ``keep``) and releases the lease, in one transaction; only while ``owner`` still
  holds the lease (returns ``False`` and changes nothing otherwise: a deliverer that outlived
  its lease must not move a cursor someone else now owns).
* ``deliveries(id, limit)``: the history, newest first.

Missing consumers: ``set_*`` raise :class:`~sessionward.errors.NotFound`; ``finish`` returns
``False``. Backend failures raise :class:`~sessionward.errors.StoreUnavailable`.
Credentials are secrets: they are stored (they must be, to sign) but never logged, listed or
shown; :meth:`Consumer.public` leaves them out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final, Literal, Protocol, runtime_checkable

__all__ = [
    "ACTIVE",
    "ALL_APPLICATIONS",
    "COLUMNS",
    "DELIVERY_COLUMNS",
    "DISABLED",
    "Consumer",
    "ConsumerStore",
    "Delivery",
    "Outcome",
    "consumer_from_row",
    "consumer_row",
    "delivery_from_row",
    "delivery_row",
    "state_change",
]

ACTIVE: Final = "active"
#: A consumer of this application receives the events of every application, and those logged
#: without one (a library's own log): for single-application use, never for a tenant.
ALL_APPLICATIONS: Final = "*"
DISABLED: Final = "disabled"
State = Literal["active", "disabled"]


@dataclass(frozen=True, slots=True)
class Consumer:
    id: str
    kind: str  # the renderer: "webhook", "ssf", ...
    application: str  # the tenancy namespace whose events it receives (or ALL_APPLICATIONS)
    url: str
    created_at: float
    config: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, Any] = field(default_factory=dict, repr=False)
    kinds: frozenset[str] | None = None  # None: every kind
    cursor: str | None = None  # the last log entry delivered (or skipped)
    state: State = "active"
    failures: int = 0  # consecutive failed attempts
    first_failure: float | None = None  # when the current run of failures began
    next_attempt: float = 0.0
    disabled_reason: str | None = None

    def wants(self, kind: str, application: str | None) -> bool:
        mine = self.application == ALL_APPLICATIONS or application == self.application
        return mine and (self.kinds is None or kind in self.kinds)

    def public(self) -> dict[str, Any]:
        """Everything but the credentials, JSON-compatible."""
        out = asdict(self)
        del out["credentials"]
        out["kinds"] = None if self.kinds is None else sorted(self.kinds)
        return out

    def with_(self, **changes: Any) -> Consumer:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a round of delivery leaves behind."""

    cursor: str | None
    failures: int
    first_failure: float | None
    next_attempt: float
    state: State = "active"
    disabled_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to deliver one event. ``status`` is the HTTP status (None when no answer
    came); ``error`` a short reason code (``timeout``, ``connect``, ``status``, ...)."""

    consumer_id: str
    event_id: str
    message_id: str
    at: float
    attempt: int  # 1 for the first try of this event, 2 for its first retry, ...
    status: int | None
    latency_ms: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@runtime_checkable
class ConsumerStore(Protocol):
    def add(self, consumer: Consumer) -> None: ...

    def get(self, consumer_id: str) -> Consumer | None: ...

    def consumers(self, application: str | None = None, kind: str | None = None) -> list[Consumer]:
        """Consumers, oldest first; ``application`` / ``kind`` filter when given."""

    def remove(self, consumer_id: str) -> bool:
        """Whether it existed."""

    def set_credentials(self, consumer_id: str, credentials: dict[str, Any]) -> None: ...

    def set_config(self, consumer_id: str, config: dict[str, Any]) -> None:
        """Replace ``config``; the cursor, state, lease and history stay."""

    def set_state(self, consumer_id: str, state: State, reason: str | None, now: float) -> None:
        """``active`` also clears ``failures`` / ``first_failure`` and sets
        ``next_attempt = now``."""

    def set_cursor(self, consumer_id: str, cursor: str | None) -> None: ...

    def claim(self, owner: str, now: float, lease: float, limit: int) -> list[Consumer]: ...

    def finish(
        self,
        consumer_id: str,
        owner: str,
        outcome: Outcome,
        attempts: Sequence[Delivery],
        keep: int,
    ) -> bool: ...

    def deliveries(self, consumer_id: str, limit: int = 50) -> list[Delivery]: ...

    def close(self) -> None: ...


# -- the row form every SQL / Redis backend stores ---------------------------------------------

#: Column order of the consumer tables (SQLite and PostgreSQL).
COLUMNS: Final = (
    "id", "kind", "application", "url", "created_at", "config", "credentials", "kinds",
    "cursor", "state", "failures", "first_failure", "next_attempt", "disabled_reason",
)  # fmt: skip
DELIVERY_COLUMNS: Final = (
    "consumer_id", "event_id", "message_id", "at", "attempt", "status", "latency_ms", "error",
)  # fmt: skip


def state_change(state: State, reason: str | None, now: float) -> dict[str, Any]:
    """The fields ``set_state`` writes, by name: ``active`` also clears the failure count and
    makes the consumer due ``now``; any other state records ``reason``."""
    if state == ACTIVE:
        return {
            "state": state, "disabled_reason": None, "failures": 0, "first_failure": None,
            "next_attempt": now,
        }  # fmt: skip
    return {"state": state, "disabled_reason": reason}


def consumer_row(consumer: Consumer) -> tuple[Any, ...]:
    kinds = None if consumer.kinds is None else json.dumps(sorted(consumer.kinds))
    return (
        consumer.id,
        consumer.kind,
        consumer.application,
        consumer.url,
        consumer.created_at,
        json.dumps(consumer.config, separators=(",", ":")),
        json.dumps(consumer.credentials, separators=(",", ":")),
        kinds,
        consumer.cursor,
        consumer.state,
        consumer.failures,
        consumer.first_failure,
        consumer.next_attempt,
        consumer.disabled_reason,
    )


def consumer_from_row(row: Sequence[Any]) -> Consumer:
    (cid, kind, app, url, created, config, creds, kinds, cursor, state, fails, first, nxt,
     reason) = row  # fmt: skip
    return Consumer(
        id=cid,
        kind=kind,
        application=app,
        url=url,
        created_at=float(created),
        config=json.loads(config),
        credentials=json.loads(creds),
        kinds=None if kinds is None else frozenset(json.loads(kinds)),
        cursor=cursor,
        state=DISABLED if state == DISABLED else ACTIVE,
        failures=int(fails),
        first_failure=None if first is None else float(first),
        next_attempt=float(nxt),
        disabled_reason=reason,
    )


def delivery_row(delivery: Delivery) -> tuple[Any, ...]:
    return tuple(getattr(delivery, name) for name in DELIVERY_COLUMNS)


def delivery_from_row(row: Sequence[Any]) -> Delivery:
    cid, event_id, message_id, at, attempt, status, latency, error = row
    return Delivery(
        cid, event_id, message_id, float(at), int(attempt),
        None if status is None else int(status), float(latency), error,
    )  # fmt: skip
