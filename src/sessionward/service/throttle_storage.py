"""Storage for the rate limits of ``sessionward.service.throttle``, in the configured store.

The limits come from the ``limits`` library (its moving-window strategy). It ships an async
Redis storage, used as it is for a ``redis://`` store; it has none for SQLite or PostgreSQL,
so this module adds the two through its public extension API (a ``limits.aio.storage.Storage``
with ``MovingWindowSupport``):

* :class:`StateWindows`: the service state's SQLite file (the session file by default), table
  ``service_throttle``; every process on the host shares it.
* :class:`PostgresWindows`: table ``sessionward_throttle`` in the session database (created on
  first use), on a small pool of its own in each process (a child of ``fork()`` makes its
  own and leaves the parent's connections alone); every node shares it.

A window is one row per key holding the times of its latest hits (never more than the limit),
read and rewritten in one transaction, so a hit is atomic across processes and nodes. Time is
the service's clock (injected in tests); nodes sharing PostgreSQL or Redis need synchronised
clocks, as they do for session expiry.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from limits.aio.storage import MovingWindowSupport, Storage

from sessionward.errors import StoreError, StoreUnavailable
from sessionward.service.state import ServiceState

__all__ = ["PostgresWindows", "StateWindows", "redis_windows"]

Now = Callable[[], float]
Closer = Callable[[], Awaitable[None]]


class _Windows(Storage, MovingWindowSupport):
    """What both adapters share: the ``limits`` protocol in terms of five operations."""

    def __init__(self, now: Now) -> None:
        super().__init__(wrap_exceptions=False)
        self.now = now

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return StoreError

    # The fixed-window counters (limits' ``incr``/``get``), kept in the same table.
    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return await self._counter_add(key, float(expiry), amount)

    async def get(self, key: str) -> int:
        return (await self._counter(key))[0]

    async def get_expiry(self, key: str) -> float:
        return (await self._counter(key))[1]

    async def clear(self, key: str) -> None:
        await self._forget(key)

    async def reset(self) -> int | None:
        """Drop the expired rows (``limits`` calls this to reset the storage; live ones stay,
        so a reset never lifts a lockout)."""
        return await self._purge()

    async def check(self) -> bool:
        try:
            await self._counter("sessionward-health")
        except StoreError:
            return False
        return True

    async def _counter_add(self, key: str, expiry: float, amount: int) -> int:
        raise NotImplementedError

    async def _counter(self, key: str) -> tuple[int, float]:
        raise NotImplementedError

    async def _forget(self, key: str) -> None:
        raise NotImplementedError

    async def _purge(self) -> int:
        raise NotImplementedError


class StateWindows(_Windows):
    """Rate-limit windows in the service state (SQLite)."""

    def __init__(self, state: ServiceState, now: Now) -> None:
        super().__init__(now)
        self.state = state

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return self.state.window_acquire(key, limit, float(expiry), amount, self.now())

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        return self.state.window(key, float(expiry), self.now())

    async def _counter_add(self, key: str, expiry: float, amount: int) -> int:
        return self.state.counter_add(key, expiry, amount, self.now())

    async def _counter(self, key: str) -> tuple[int, float]:
        return self.state.counter(key, self.now())

    async def _forget(self, key: str) -> None:
        self.state.forget_window(key)

    async def _purge(self) -> int:
        return self.state.purge_windows(self.now())


_PG_TABLE = """CREATE TABLE IF NOT EXISTS sessionward_throttle (
    key text PRIMARY KEY,
    hits double precision[] NOT NULL,
    count bigint NOT NULL,
    expires_at double precision NOT NULL
)"""


class PostgresWindows(_Windows):
    """Rate-limit windows in PostgreSQL (``conninfo``: the session store's URL)."""

    def __init__(self, conninfo: str, now: Now, *, max_size: int = 4) -> None:
        super().__init__(now)
        from psycopg_pool import AsyncConnectionPool

        from sessionward.stores._postgres_db import ProcessPool

        def make() -> Any:
            return AsyncConnectionPool(
                conninfo, min_size=1, max_size=max_size, open=False, kwargs={"autocommit": True}
            )

        self._pools = ProcessPool(make, closed="rate-limit store: closed")
        self._ready = False

    async def _conn(self) -> Any:
        pool = self._pools.get()
        if pool.closed:  # this process's, new: opened in the loop that uses it
            await pool.open(wait=False)
        if not self._ready:
            async with pool.connection(timeout=5) as conn:
                await conn.execute(_PG_TABLE)
            self._ready = True
        return pool.connection(timeout=5)

    async def _run(self, sql: str, params: tuple[Any, ...]) -> Any:
        import psycopg

        try:
            async with await self._conn() as conn:
                cursor = await conn.execute(sql, params)
                return await cursor.fetchone() if cursor.description else None
        except (psycopg.Error, TimeoutError) as exc:
            raise StoreUnavailable(f"rate-limit store: {type(exc).__name__}") from exc

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        import psycopg

        now = self.now()
        try:
            async with await self._conn() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO sessionward_throttle VALUES (%s, '{}', 0, 0)"
                    " ON CONFLICT (key) DO NOTHING",
                    (key,),
                )
                cursor = await conn.execute(
                    "SELECT hits FROM sessionward_throttle WHERE key = %s FOR UPDATE", (key,)
                )
                row = await cursor.fetchone()
                hits = [t for t in (row[0] if row else []) if t > now - expiry]
                if len(hits) + amount > limit:
                    return False
                await conn.execute(
                    "UPDATE sessionward_throttle SET hits = %s, count = 0, expires_at = %s"
                    " WHERE key = %s",
                    (([now] * amount + hits)[:limit], now + expiry, key),
                )
                return True
        except (psycopg.Error, TimeoutError) as exc:
            raise StoreUnavailable(f"rate-limit store: {type(exc).__name__}") from exc

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = self.now()
        row = await self._run("SELECT hits FROM sessionward_throttle WHERE key = %s", (key,))
        hits = [t for t in (row[0] if row else []) if t > now - expiry]
        return (hits[-1], len(hits)) if hits else (now, 0)

    async def _counter_add(self, key: str, expiry: float, amount: int) -> int:
        now = self.now()
        row = await self._run(
            "INSERT INTO sessionward_throttle AS t VALUES (%s, '{}', %s, %s)"
            " ON CONFLICT (key) DO UPDATE SET"
            " count = CASE WHEN t.expires_at > %s THEN t.count + excluded.count"
            " ELSE excluded.count END,"
            " expires_at = CASE WHEN t.expires_at > %s THEN t.expires_at"
            " ELSE excluded.expires_at END RETURNING count",
            (key, amount, now + expiry, now, now),
        )
        return int(row[0])

    async def _counter(self, key: str) -> tuple[int, float]:
        now = self.now()
        row = await self._run(
            "SELECT count, expires_at FROM sessionward_throttle WHERE key = %s AND expires_at > %s",
            (key, now),
        )
        return (0, now) if row is None else (int(row[0]), float(row[1]))

    async def _forget(self, key: str) -> None:
        await self._run("DELETE FROM sessionward_throttle WHERE key = %s", (key,))

    async def _purge(self) -> int:
        await self._run("DELETE FROM sessionward_throttle WHERE expires_at <= %s", (self.now(),))
        return 0

    async def close(self) -> None:
        pool = self._pools.close()
        if pool is not None:
            await pool.close()


def redis_windows(url: str) -> tuple[Storage, Closer | None]:
    """``limits``' own async Redis storage (through redis-py) for a ``redis://``,
    ``rediss://``, ``unix://`` or ``redis+cluster://`` store URL, and what closes its
    connections (a connection pool of ours, except for a cluster)."""
    from limits.aio.storage import RedisClusterStorage, RedisStorage
    from redis.asyncio import ConnectionPool

    scheme, rest = url.split("://", 1)
    # Wrapped: a Redis error reaches the guard as limits' StorageError, and fails closed.
    options: dict[str, Any] = {"key_prefix": "sessionward-throttle", "wrap_exceptions": True}
    options["implementation"] = "redispy"
    if scheme == "redis+cluster":
        return RedisClusterStorage("async+redis+cluster://" + rest, **options), None
    pool = ConnectionPool.from_url(url)  # ours, so that closing the service closes it
    options["connection_pool"] = pool  # a documented option, typed narrower in limits
    storage = RedisStorage("async+redis://", **options)
    return storage, pool.disconnect


def retry_seconds(reset_at: float, now: float) -> int:
    """Whole seconds until ``reset_at`` (at least 1: a 429 never says "try again in 0 s")."""
    return max(1, math.ceil(reset_at - now))
