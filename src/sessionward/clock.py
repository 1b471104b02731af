"""Time, injected. sessionward never calls ``time.time()`` outside :class:`SystemClock`.

A clock is any object with a ``now() -> float`` method returning seconds since the Unix epoch.
Tests use :class:`sessionward.testing.FakeClock` so every expiry is deterministic.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Source of the current time in seconds since the epoch (UTC)."""

    def now(self) -> float: ...


class SystemClock:
    """The wall clock (``time.time``)."""

    __slots__ = ()

    def now(self) -> float:
        return time.time()

    def __repr__(self) -> str:
        return "SystemClock()"
