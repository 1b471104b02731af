"""Pauses between optimistic-concurrency retries, for both flavours of the manager.

Two writers that keep changing one record can fall into lockstep: each rereads just before
the other commits, so the same one loses race after race (seen with two processes appending
to one cart on SQLite: runs of 20+ lost races). A short random pause that grows with every
lost race breaks the rhythm (exponential backoff with full jitter). It lives outside
``_async`` so the generated sync manager calls ``sync_pause`` (unasync maps ``async_`` to
``sync_``): a plain sleep, no event loop and no thread hop.
"""

from __future__ import annotations

import asyncio
import random
import time

__all__ = ["async_pause", "async_sleep", "delay", "sync_pause", "sync_sleep"]

BASE = 50e-6
CAP = 0.01


def delay(lost: int) -> float:
    """Seconds to wait after the ``lost``-th lost race in a row (0-based)."""
    return random.uniform(0.0, min(CAP, BASE * 2.0**lost))  # noqa: S311 - jitter, not a secret


async def async_pause(lost: int) -> None:
    await asyncio.sleep(delay(lost))


def sync_pause(lost: int) -> None:
    time.sleep(delay(lost))


async def async_sleep(seconds: float) -> None:
    """A plain pause (``sync_sleep`` in the generated code)."""
    await asyncio.sleep(seconds)


def sync_sleep(seconds: float) -> None:
    time.sleep(seconds)
