"""Consumers in PostgreSQL: ``<schema>.consumers`` and ``<schema>.deliveries`` beside the
sessions and the event log (default schema ``sessionward``), created on first use under an
advisory lock.

The pool opens and the tables are created on first use; each process uses a pool of its own
(a child of ``fork()`` makes one and leaves the parent's connections alone). ``claim`` is one
``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``: deliverers
on any number of nodes each take different consumers, without waiting on each other.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from sessionward.errors import (
    AlreadyExists,
    NotFound,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
)
from sessionward.stores._postgres_db import LOCK, ProcessPool, schema_name
from sessionward.stores.consumers.base import (
    COLUMNS,
    DELIVERY_COLUMNS,
    Consumer,
    Delivery,
    Outcome,
    State,
    consumer_from_row,
    consumer_row,
    delivery_from_row,
    delivery_row,
    state_change,
)

__all__ = ["PostgresConsumerStore"]

_LOCK_KEY = 0x5357_636F_6E73  # "SWcons": one advisory lock for creating the tables

_CREATE = (
    "CREATE SCHEMA IF NOT EXISTS {s}",
    """CREATE TABLE IF NOT EXISTS {s}.consumers (
        id text PRIMARY KEY,
        kind text NOT NULL,
        application text NOT NULL,
        url text NOT NULL,
        created_at double precision NOT NULL,
        config text NOT NULL,
        credentials text NOT NULL,
        kinds text,
        cursor text,
        state text NOT NULL,
        failures integer NOT NULL,
        first_failure double precision,
        next_attempt double precision NOT NULL,
        disabled_reason text,
        lease_owner text,
        lease_until double precision NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS {s}.deliveries (
        seq bigserial PRIMARY KEY,
        consumer_id text NOT NULL,
        event_id text NOT NULL,
        message_id text NOT NULL,
        at double precision NOT NULL,
        attempt integer NOT NULL,
        status integer,
        latency_ms double precision NOT NULL,
        error text
    )""",
    "CREATE INDEX IF NOT EXISTS deliveries_by_consumer ON {s}.deliveries (consumer_id, seq)",
)


def _translate(exc: psycopg.Error | PoolTimeout) -> StoreError:
    if isinstance(exc, PoolTimeout | psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnavailable(f"postgres: {type(exc).__name__}")
    return StoreCorrupt(f"postgres: {type(exc).__name__}: {exc}")


class PostgresConsumerStore:
    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "sessionward",
        max_size: int = 4,
        timeout: float = 5.0,
    ) -> None:
        self._s = schema_name(schema, "a schema name is lowercase letters, digits and _")
        self._conninfo = conninfo
        self._max_size = max_size
        self._timeout = timeout
        self._pools = ProcessPool(self._new_pool, closed="postgres: the consumer store is closed")
        self._ready = False
        self._opening = threading.Lock()

    def _new_pool(self) -> ConnectionPool[Any]:
        """This process's pool, opened on its first use (so that a service starts while the
        database is still down: the calls then raise ``StoreUnavailable``)."""
        pool: ConnectionPool[Any] = ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._max_size,
            timeout=self._timeout,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": 5},
        )
        pool.open(wait=False)
        return pool

    def _ensure(self, pool: ConnectionPool[Any]) -> None:
        """Create the tables on first use."""
        with self._opening:
            if self._ready:
                return
            with pool.connection() as conn, conn.transaction():
                conn.execute(LOCK, (_LOCK_KEY,))
                for statement in _CREATE:
                    conn.execute(self._q(statement))
            self._ready = True

    def _q(self, template: str) -> Any:
        return (
            template.replace("{s}", self._s)
            .replace("{cols}", ", ".join(COLUMNS))
            .replace("{dcols}", ", ".join(DELIVERY_COLUMNS))
            .replace("{marks}", ", ".join("%s" for _ in COLUMNS))
            .replace("{dmarks}", ", ".join("%s" for _ in DELIVERY_COLUMNS))
        )

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            pool = self._pools.get()
            if not self._ready:
                self._ensure(pool)
            with pool.connection() as conn, conn.transaction():
                yield conn
        except StoreError:
            raise
        except psycopg.errors.UniqueViolation:
            raise AlreadyExists("consumer exists") from None
        except (psycopg.Error, PoolTimeout) as exc:
            raise _translate(exc) from exc

    def clear(self) -> None:
        """Delete every consumer and delivery (for tests)."""
        with self._tx() as conn:
            conn.execute(self._q("TRUNCATE {s}.consumers, {s}.deliveries"))

    def add(self, consumer: Consumer) -> None:
        with self._tx() as conn:
            conn.execute(
                self._q("INSERT INTO {s}.consumers ({cols}) VALUES ({marks})"),
                consumer_row(consumer),
            )

    def get(self, consumer_id: str) -> Consumer | None:
        with self._tx() as conn:
            row = conn.execute(
                self._q("SELECT {cols} FROM {s}.consumers WHERE id = %s"), (consumer_id,)
            ).fetchone()
        return consumer_from_row(row) if row else None

    def consumers(self, application: str | None = None, kind: str | None = None) -> list[Consumer]:
        with self._tx() as conn:
            rows = conn.execute(
                self._q(
                    "SELECT {cols} FROM {s}.consumers"
                    " WHERE (%(a)s::text IS NULL OR application = %(a)s)"
                    " AND (%(k)s::text IS NULL OR kind = %(k)s) ORDER BY created_at, id"
                ),
                {"a": application, "k": kind},
            ).fetchall()
        return [consumer_from_row(row) for row in rows]

    def remove(self, consumer_id: str) -> bool:
        with self._tx() as conn:
            conn.execute(
                self._q("DELETE FROM {s}.deliveries WHERE consumer_id = %s"), (consumer_id,)
            )
            done = conn.execute(self._q("DELETE FROM {s}.consumers WHERE id = %s"), (consumer_id,))
            return done.rowcount > 0

    def _update(self, consumer_id: str, changes: dict[str, Any]) -> None:
        # The names are this module's and state_change's literals, never user input.
        assignments = ", ".join(f"{name} = %s" for name in changes)
        with self._tx() as conn:
            done = conn.execute(
                self._q("UPDATE {s}.consumers SET " + assignments + " WHERE id = %s"),  # noqa: S608
                (*changes.values(), consumer_id),
            )
            if done.rowcount == 0:
                raise NotFound(f"no consumer {consumer_id}")

    def set_credentials(self, consumer_id: str, credentials: dict[str, Any]) -> None:
        self._update(consumer_id, {"credentials": json.dumps(credentials)})

    def set_config(self, consumer_id: str, config: dict[str, Any]) -> None:
        self._update(consumer_id, {"config": json.dumps(config)})

    def set_state(self, consumer_id: str, state: State, reason: str | None, now: float) -> None:
        self._update(consumer_id, state_change(state, reason, now))

    def set_cursor(self, consumer_id: str, cursor: str | None) -> None:
        self._update(consumer_id, {"cursor": cursor})

    def claim(self, owner: str, now: float, lease: float, limit: int) -> list[Consumer]:
        with self._tx() as conn:
            rows = conn.execute(
                self._q(
                    "UPDATE {s}.consumers SET lease_owner = %(o)s, lease_until = %(u)s"
                    " WHERE id IN (SELECT id FROM {s}.consumers WHERE state = 'active'"
                    " AND next_attempt <= %(n)s AND lease_until <= %(n)s"
                    " ORDER BY next_attempt, id LIMIT %(l)s FOR UPDATE SKIP LOCKED)"
                    " RETURNING {cols}"
                ),
                {"o": owner, "u": now + lease, "n": now, "l": limit},
            ).fetchall()
        found = [consumer_from_row(row) for row in rows]
        return sorted(found, key=lambda c: (c.next_attempt, c.id))

    def finish(
        self,
        consumer_id: str,
        owner: str,
        outcome: Outcome,
        attempts: Sequence[Delivery],
        keep: int,
    ) -> bool:
        with self._tx() as conn:
            done = conn.execute(
                self._q(
                    "UPDATE {s}.consumers SET cursor = %s, failures = %s, first_failure = %s,"
                    " next_attempt = %s, state = %s, disabled_reason = %s, lease_owner = NULL,"
                    " lease_until = 0 WHERE id = %s AND lease_owner = %s"
                ),
                (
                    outcome.cursor, outcome.failures, outcome.first_failure,
                    outcome.next_attempt, outcome.state, outcome.disabled_reason,
                    consumer_id, owner,
                ),
            )  # fmt: skip
            if done.rowcount == 0:
                return False
            if attempts:
                with conn.cursor() as cur:
                    cur.executemany(
                        self._q("INSERT INTO {s}.deliveries ({dcols}) VALUES ({dmarks})"),
                        [delivery_row(a) for a in attempts],
                    )
                conn.execute(
                    self._q(
                        "DELETE FROM {s}.deliveries WHERE consumer_id = %(c)s AND seq <="
                        " (SELECT seq FROM {s}.deliveries WHERE consumer_id = %(c)s"
                        " ORDER BY seq DESC LIMIT 1 OFFSET %(k)s)"
                    ),
                    {"c": consumer_id, "k": keep},
                )
            return True

    def deliveries(self, consumer_id: str, limit: int = 50) -> list[Delivery]:
        with self._tx() as conn:
            rows = conn.execute(
                self._q(
                    "SELECT {dcols} FROM {s}.deliveries"
                    " WHERE consumer_id = %s ORDER BY seq DESC LIMIT %s"
                ),
                (consumer_id, limit),
            ).fetchall()
        return [delivery_from_row(row) for row in rows]

    def close(self) -> None:
        pool = self._pools.close()
        if pool is not None:
            pool.close()
