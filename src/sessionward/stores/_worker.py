"""Where a store's blocking calls run: on one worker thread in the async flavour, in place in
the sync one. The generated sync twin of ``await worker.async_call(f, x)`` is
``worker.sync_call(f, x)``, so one source serves both.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["Worker"]

T = TypeVar("T")


class Worker:
    """Runs a store's blocking calls one at a time, in the order they were made.

    Sync callers run the call in their own thread under a lock, so a process's writers queue
    on the lock instead of sleeping in the database's busy handler. Async callers hand it to
    one thread of its own, started on first use; after a ``fork()`` the child starts its own
    thread (the parent's does not exist there). The lock is never held across an ``await``.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    def sync_call(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            return fn(*args)

    async def async_call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), self.sync_call, fn, *args)

    def _executor(self) -> ThreadPoolExecutor:
        pid = os.getpid()
        pool = self._pool
        if pool is not None and self._pid == pid:
            return pool
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        self._pool, self._pid = pool, pid
        return pool

    def close(self) -> None:
        """Let the thread finish what it was given and exit. Idempotent; the worker starts a
        new thread if it is used again."""
        pool, self._pool = self._pool, None
        if pool is not None and self._pid == os.getpid():
            pool.shutdown(wait=False)
