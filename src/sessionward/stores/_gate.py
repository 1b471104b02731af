"""A lock for both flavours of a generated store: ``async with AsyncGate()`` becomes
``with Gate()`` in the sync twin. The async one is an ``asyncio.Lock``, which may be held across
an ``await``; the sync one a ``threading.Lock``.
"""

from __future__ import annotations

import asyncio
import threading

__all__ = ["AsyncGate", "Gate"]


class AsyncGate:
    """Lets one task at a time through (an ``asyncio.Lock``)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> None:
        await self._lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()


class Gate:
    """Lets one thread at a time through (a ``threading.Lock``)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
