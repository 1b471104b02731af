"""Session stores. Each comes as a sync class and an ``Async`` twin with the same behaviour.

* :class:`MemoryStore` / :class:`AsyncMemoryStore`: in-process dict, for tests and one process.
* :class:`SQLiteStore` / :class:`AsyncSQLiteStore`: the embedded default, one file, many
  threads and processes.
"""

from sessionward._async.base import AsyncStore, UserCap
from sessionward._async.memory import AsyncMemoryStore
from sessionward._async.sqlite import AsyncSQLiteStore
from sessionward._sync.base import Store
from sessionward._sync.memory import MemoryStore
from sessionward._sync.sqlite import SQLiteStore

__all__ = [
    "AsyncMemoryStore",
    "AsyncSQLiteStore",
    "AsyncStore",
    "MemoryStore",
    "SQLiteStore",
    "Store",
    "UserCap",
]
