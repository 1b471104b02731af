"""The service's webhooks: endpoints kept beside the sessions, delivered from the event log.

:func:`open_webhooks` opens the consumer store in the same place as the session store (the
SQLite file, the PostgreSQL database, the Redis) and a :class:`Deliverer` that reads the
service's event log; :meth:`Webhooks.start` runs it in a background thread (the app's
lifespan does), so a request that causes an event only ever waits for the event to be queued
for the log. Every service process runs a deliverer; the consumer store's lease keeps them
from delivering one endpoint's events twice at once.

Payloads carry user ids as the application knows them (without the service's
``<application>/`` prefix), as ``GET /v1/events`` does.
"""

from __future__ import annotations

import logging
from typing import Any

from sessionward.clock import Clock
from sessionward.service.config import ServiceConfig
from sessionward.service.tenancy import public_user
from sessionward.signals.delivery import Deliverer
from sessionward.signals.webhook_endpoints import KIND, WebhookRenderer
from sessionward.stores.consumers import ConsumerStore, MemoryConsumerStore, open_consumer_store
from sessionward.stores.eventlog import EventLog, LoggedEvent

__all__ = ["POLL_SECONDS", "Webhooks", "open_webhooks", "webhook_event"]

_log = logging.getLogger("sessionward.service")
#: How often each process looks for new events when nothing woke it sooner.
POLL_SECONDS = 1.0


def webhook_event(event: LoggedEvent) -> dict[str, Any]:
    """The ``data`` of a webhook: the logged event with the application's own user id."""
    out = event.to_dict()
    if event.application is not None and event.user_id is not None:
        out["user_id"] = public_user(event.user_id)
    return out


class Webhooks:
    def __init__(self, store: ConsumerStore, log: EventLog, clock: Clock) -> None:
        self.store = store
        self.log = log
        self.clock = clock
        self.deliverer = Deliverer(
            log, store, {KIND: WebhookRenderer(present=webhook_event)}, clock=clock
        )
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.deliverer.start(POLL_SECONDS)

    def close(self) -> None:
        self.deliverer.stop()
        self.store.close()


def open_webhooks(
    config: ServiceConfig,
    log: EventLog | None,
    clock: Clock,
    *,
    store: ConsumerStore | None = None,
    shared: bool = True,
) -> Webhooks | None:
    """Webhooks for the service, or ``None`` without an event log to deliver from.
    ``shared=False`` (a session store handed in by a test) keeps the endpoints in memory."""
    if log is None:
        return None
    if store is None:
        memory = not shared or config.store == ":memory:"
        store = MemoryConsumerStore() if memory else open_consumer_store(config.store)
    return Webhooks(store, log, clock)
