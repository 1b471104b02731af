"""Durable consumers of the event log (webhook endpoints, Shared Signals streams) and their
delivery history, one backend per store (memory, SQLite, PostgreSQL, Redis).

The contract is :class:`~sessionward.stores.consumers.base.ConsumerStore`; see that module.
"""

from sessionward.stores.consumers.base import (
    ACTIVE,
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
    "DISABLED",
    "Consumer",
    "ConsumerStore",
    "Delivery",
    "MemoryConsumerStore",
    "Outcome",
    "SQLiteConsumerStore",
]
