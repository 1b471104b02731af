"""Durable consumers of the event log (webhook endpoints, Shared Signals streams) and their
delivery history, one backend per store (memory, SQLite, PostgreSQL, Redis).

The contract is :class:`~sessionward.stores.consumers.base.ConsumerStore`; see that module.
"""

from sessionward.errors import ConfigError
from sessionward.stores.consumers.base import (
    ACTIVE,
    ALL_APPLICATIONS,
    DISABLED,
    Consumer,
    ConsumerStore,
    Delivery,
    Outcome,
)
from sessionward.stores.consumers.memory import MemoryConsumerStore
from sessionward.stores.consumers.sqlite import SQLiteConsumerStore

__all__ = [
    "ACTIVE",
    "ALL_APPLICATIONS",
    "DISABLED",
    "Consumer",
    "ConsumerStore",
    "Delivery",
    "MemoryConsumerStore",
    "Outcome",
    "SQLiteConsumerStore",
    "open_consumer_store",
]


def open_consumer_store(spec: str) -> ConsumerStore:
    """The consumer store beside a session store ``spec``: the same SQLite file, the same
    PostgreSQL database (schema ``sessionward``) or the same Redis."""
    if "://" not in spec:
        return SQLiteConsumerStore(spec)
    scheme = spec.split("://", 1)[0].lower()
    try:
        if scheme in ("postgres", "postgresql"):
            from sessionward.stores.consumers.postgres import PostgresConsumerStore

            return PostgresConsumerStore(spec)
        if scheme.startswith(("redis", "rediss", "unix")):
            from sessionward.stores.consumers.redis import RedisConsumerStore

            return RedisConsumerStore(spec)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"consumers on {scheme} need {exc.name}") from None
    raise ConfigError(f"no consumer store for {scheme}:// URLs")
