"""Session stores. Each comes as a sync class and an ``Async`` twin with the same behaviour.

* :class:`MemoryStore` / :class:`AsyncMemoryStore`: in-process dict, for tests and one process.
* :class:`SQLiteStore` / :class:`AsyncSQLiteStore`: the embedded default, one file, many
  threads and processes.
* ``sessionward.stores.redis`` and ``sessionward.stores.postgres``: many machines (they need
  their extras).

The interface (:class:`Store`) and the capabilities (:class:`UserIndex`, :class:`Broadcast`,
:class:`DeleteAll`, :class:`Locality`) are described in ``sessionward.stores._async.base``.
"""

from sessionward.stores._async.base import (
    AsyncBroadcast,
    AsyncDeleteAll,
    AsyncStore,
    AsyncSubscription,
    AsyncUserIndex,
    UserCap,
)
from sessionward.stores._async.memory import AsyncMemoryStore
from sessionward.stores._async.sqlite import AsyncSQLiteStore
from sessionward.stores._sync.base import Broadcast, DeleteAll, Store, Subscription, UserIndex
from sessionward.stores._sync.memory import MemoryStore
from sessionward.stores._sync.sqlite import SQLiteStore
from sessionward.stores.locality import Locality

__all__ = [
    "AsyncBroadcast",
    "AsyncDeleteAll",
    "AsyncMemoryStore",
    "AsyncSQLiteStore",
    "AsyncStore",
    "AsyncSubscription",
    "AsyncUserIndex",
    "Broadcast",
    "DeleteAll",
    "Locality",
    "MemoryStore",
    "SQLiteStore",
    "Store",
    "Subscription",
    "UserCap",
    "UserIndex",
]
