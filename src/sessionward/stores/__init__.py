"""Session stores. Each comes as a sync class and an ``Async`` twin with the same behaviour.

* :class:`MemoryStore` / :class:`AsyncMemoryStore`: in-process dict, for tests and one process.
* :class:`SQLiteStore` / :class:`AsyncSQLiteStore`: the embedded default, one file, many
  threads and processes.
* ``sessionward.stores.redis`` and ``sessionward.stores.postgres``: many machines (they need
  their extras).
* :class:`CachedStore` / :class:`AsyncCachedStore`: an optional local read cache over any store
  that broadcasts its changes.

The interface (:class:`Store`) and the capabilities (:class:`UserIndex`, :class:`Broadcast`,
:class:`DeleteAll`, :class:`Locality`, :class:`Scan`) are described in
``sessionward.stores._async.base``.
"""

from sessionward.stores._async.base import (
    AsyncBroadcast,
    AsyncDeleteAll,
    AsyncScan,
    AsyncStore,
    AsyncSubscription,
    AsyncUserIndex,
    UserCap,
)
from sessionward.stores._async.cached import AsyncCachedStore
from sessionward.stores._async.memory import AsyncMemoryStore
from sessionward.stores._async.sqlite import AsyncSQLiteStore
from sessionward.stores._sync.base import (
    Broadcast,
    DeleteAll,
    Scan,
    Store,
    Subscription,
    UserIndex,
)
from sessionward.stores._sync.cached import CachedStore
from sessionward.stores._sync.memory import MemoryStore
from sessionward.stores._sync.sqlite import SQLiteStore
from sessionward.stores.locality import Locality

__all__ = [
    "AsyncBroadcast",
    "AsyncCachedStore",
    "AsyncDeleteAll",
    "AsyncMemoryStore",
    "AsyncSQLiteStore",
    "AsyncScan",
    "AsyncStore",
    "AsyncSubscription",
    "AsyncUserIndex",
    "Broadcast",
    "CachedStore",
    "DeleteAll",
    "Locality",
    "MemoryStore",
    "SQLiteStore",
    "Scan",
    "Store",
    "Subscription",
    "UserCap",
    "UserIndex",
]
