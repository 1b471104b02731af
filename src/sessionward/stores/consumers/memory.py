"""Consumers in process memory: for tests and a single process (lost on exit)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from sessionward.errors import AlreadyExists, NotFound
from sessionward.stores.consumers.base import (
    ACTIVE,
    Consumer,
    Delivery,
    Outcome,
    State,
    state_change,
)

__all__ = ["MemoryConsumerStore"]


class MemoryConsumerStore:
    def __init__(self) -> None:
        self._consumers: dict[str, Consumer] = {}
        self._leases: dict[str, tuple[str, float]] = {}  # id -> (owner, until)
        self._history: dict[str, deque[Delivery]] = {}
        self._lock = threading.Lock()

    def add(self, consumer: Consumer) -> None:
        with self._lock:
            if consumer.id in self._consumers:
                raise AlreadyExists(f"consumer {consumer.id} exists")
            self._consumers[consumer.id] = consumer

    def get(self, consumer_id: str) -> Consumer | None:
        with self._lock:
            return self._consumers.get(consumer_id)

    def consumers(self, application: str | None = None, kind: str | None = None) -> list[Consumer]:
        with self._lock:
            found = [
                c
                for c in self._consumers.values()
                if (application is None or c.application == application)
                and (kind is None or c.kind == kind)
            ]
        return sorted(found, key=lambda c: (c.created_at, c.id))

    def remove(self, consumer_id: str) -> bool:
        with self._lock:
            self._history.pop(consumer_id, None)
            self._leases.pop(consumer_id, None)
            return self._consumers.pop(consumer_id, None) is not None

    def _change(self, consumer_id: str, **changes: Any) -> None:
        with self._lock:
            current = self._consumers.get(consumer_id)
            if current is None:
                raise NotFound(f"no consumer {consumer_id}")
            self._consumers[consumer_id] = current.with_(**changes)

    def set_credentials(self, consumer_id: str, credentials: dict[str, Any]) -> None:
        self._change(consumer_id, credentials=credentials)

    def set_config(self, consumer_id: str, config: dict[str, Any]) -> None:
        self._change(consumer_id, config=config)

    def set_state(self, consumer_id: str, state: State, reason: str | None, now: float) -> None:
        self._change(consumer_id, **state_change(state, reason, now))

    def set_cursor(self, consumer_id: str, cursor: str | None) -> None:
        self._change(consumer_id, cursor=cursor)

    def claim(self, owner: str, now: float, lease: float, limit: int) -> list[Consumer]:
        with self._lock:
            due = sorted(
                (
                    c
                    for c in self._consumers.values()
                    if c.state == ACTIVE
                    and c.next_attempt <= now
                    and self._leases.get(c.id, ("", 0.0))[1] <= now
                ),
                key=lambda c: (c.next_attempt, c.id),
            )[:limit]
            for consumer in due:
                self._leases[consumer.id] = (owner, now + lease)
            return due

    def finish(
        self,
        consumer_id: str,
        owner: str,
        outcome: Outcome,
        attempts: Sequence[Delivery],
        keep: int,
    ) -> bool:
        with self._lock:
            current = self._consumers.get(consumer_id)
            if current is None or self._leases.get(consumer_id, ("", 0.0))[0] != owner:
                return False
            self._consumers[consumer_id] = current.with_(
                cursor=outcome.cursor,
                failures=outcome.failures,
                first_failure=outcome.first_failure,
                next_attempt=outcome.next_attempt,
                state=outcome.state,
                disabled_reason=outcome.disabled_reason,
            )
            del self._leases[consumer_id]
            history = self._history.setdefault(consumer_id, deque())
            history.extend(attempts)
            while len(history) > keep:
                history.popleft()
            return True

    def deliveries(self, consumer_id: str, limit: int = 50) -> list[Delivery]:
        with self._lock:
            history = list(self._history.get(consumer_id, ()))
        return history[::-1][:limit]

    def close(self) -> None:
        pass
