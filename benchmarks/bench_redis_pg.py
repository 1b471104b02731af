"""Redis and PostgreSQL stores against their floors, measured in the same run (by hand, not CI).

    .venv/bin/python benchmarks/bench_redis_pg.py                 # everything (~5 min)
    .venv/bin/python benchmarks/bench_redis_pg.py --only latency  # latency, memory, throughput
    .venv/bin/python benchmarks/bench_redis_pg.py --sessions 100000
    .venv/bin/python benchmarks/bench_redis_pg.py --only latency --rounds 41  # steadier medians
    .venv/bin/python benchmarks/bench_redis_pg.py --store postgres  # one store only
    .venv/bin/python benchmarks/bench_redis_pg.py --store redis               # Redis rows only

It starts its own private servers on loopback ports (redis-server standalone, a 3-master
Redis Cluster, a PostgreSQL cluster in a temporary directory), like the tests, and tears them
down at the end. Method as in ../shared/PEERS.md: timeit-style batches (~40 ms), GC off,
interleaved rounds (each round runs one batch of every row), medians and min-max, ratios to
a floor measured in the same run.

* latency: ``SessionManager.validate`` (sync and async) on Redis vs one raw redis-py ``GET``
  of the same key through the store's own client (the same pool); on PostgreSQL vs one
  prepared primary-key ``SELECT`` of the same row through the store's own psycopg pool.
* memory: Redis ``used_memory`` growth per stored session at ``--sessions`` sessions, for
  anonymous sessions, one login per user, three logins per user, and after a touch, written
  through ``AsyncRedisStore.add`` (and ``touch``), 100 at a time.
* throughput: validations, touches and logins per second with 64 concurrent asyncio
  requests against one Redis server, a 3-master Redis Cluster and PostgreSQL (the client
  shares the 2 cores with the servers).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import importlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import redis

from sessionward import AsyncSessionManager, Policy, SessionManager
from sessionward.core.record import SessionRecord
from sessionward.errors import StoreUnavailable
from sessionward.stores import MemoryStore
from sessionward.stores.postgres import AsyncPostgresStore, PostgresStore
from sessionward.stores.redis import AsyncRedisStore, RedisStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
servers: Any = importlib.import_module("servers")  # the tests' private-server helpers


ROUNDS = 11
BATCH_SECONDS = 0.04
POLICY = Policy(idle_timeout=1800, absolute_timeout=8 * 3600, touch_interval=60)


# -- timing ------------------------------------------------------------------------------------


def calibrate(op: Callable[[], object]) -> int:
    n = 1
    while True:
        started = time.perf_counter()
        for _ in range(n):
            op()
        if time.perf_counter() - started >= BATCH_SECONDS / 4:
            return max(1, int(n * BATCH_SECONDS / (time.perf_counter() - started)))
        n *= 4


def interleaved(rows: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    sizes = {name: calibrate(op) for name, op in rows.items()}
    samples: dict[str, list[float]] = {name: [] for name in rows}
    gc.disable()
    try:
        for _ in range(ROUNDS):
            for name, op in rows.items():
                n = sizes[name]
                started = time.perf_counter()
                for _ in range(n):
                    op()
                samples[name].append((time.perf_counter() - started) / n * 1e6)
    finally:
        gc.enable()
    return samples


def table(title: str, samples: dict[str, list[float]], floor: str) -> None:
    base = statistics.median(samples[floor])
    print(f"\n### {title}\n")
    print("| operation | median µs | min-max µs | x floor |")
    print("|---|---:|---:|---:|")
    for name, values in samples.items():
        median = statistics.median(values)
        print(
            f"| {name} | {median:.1f} | {min(values):.1f}-{max(values):.1f} | {median / base:.2f} |"
        )


class AsyncOps:
    """Runs coroutine factories as batches on one event loop, for ``interleaved``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def op(self, factory: Callable[[], Any], n_inner: int = 50) -> Callable[[], object]:
        async def many() -> None:
            for _ in range(n_inner):
                await factory()

        def run() -> object:
            return self.loop.run_until_complete(many())

        run.inner = n_inner  # type: ignore[attr-defined]
        return run


def scaled(samples: dict[str, list[float]], inner: dict[str, int]) -> dict[str, list[float]]:
    return {k: [v / inner.get(k, 1) for v in vs] for k, vs in samples.items()}


# -- latency -----------------------------------------------------------------------------------


def latency_redis(url: str) -> None:
    store = RedisStore(url)
    manager = SessionManager(store, policy=POLICY)
    session = manager.issue("124156", data={"cart": [1, 2, 3]})
    assert session.token is not None
    token = session.token
    raw_id = base64.urlsafe_b64decode(session.id)
    key = b"{" + raw_id[:2] + b"}" + raw_id[2:]  # the record's documented key
    client: Any = store._client  # the store's own client: the same pool as validate
    assert client.get(key) is not None
    ops = AsyncOps()
    async_store = AsyncRedisStore(url)
    async_manager = AsyncSessionManager(async_store, policy=POLICY)
    async_client: Any = async_store._client
    rows = {
        "raw redis-py GET, same key, same pool (floor)": lambda: client.get(key),
        "validate, sync (GET + decode + checks)": lambda: manager.validate(token),
        "store.get, sync": lambda: store.get(session.id),
        "raw redis.asyncio GET, same key, same pool (x50 in one loop run)": ops.op(
            lambda: async_client.get(key)
        ),
        "validate, async (x50 in one loop run)": ops.op(lambda: async_manager.validate(token)),
    }
    inner = {k: getattr(v, "inner", 1) for k, v in rows.items()}
    samples = scaled(interleaved(rows), inner)
    print(f"\nrecord: {len(client.get(key))} bytes stored; token validated {len(rows)} ways")
    table(
        "Redis: validate vs one GET round trip (µs/op)",
        samples,
        "raw redis-py GET, same key, same pool (floor)",
    )
    async_base = statistics.median(
        samples["raw redis.asyncio GET, same key, same pool (x50 in one loop run)"]
    )
    async_validate = statistics.median(samples["validate, async (x50 in one loop run)"])
    print(f"\nasync validate / async GET = {async_validate / async_base:.2f}")
    ops.loop.run_until_complete(async_manager.close())
    ops.loop.close()
    manager.close()


def latency_postgres(conninfo: str) -> None:
    store = PostgresStore(conninfo, min_size=1, max_size=1)
    manager = SessionManager(store, policy=POLICY)
    filler = [manager.issue(f"user-{i}") for i in range(2000)]
    session = manager.issue("124156", data={"cart": [1, 2, 3]})
    assert session.token is not None
    assert filler
    token = session.token
    query = store._q.get
    pool = store._pool  # the floor runs through the store's own pool
    assert pool is not None

    def prepared_select() -> object:
        with pool.connection() as conn:
            return conn.execute(query, (session.id,), prepare=True).fetchone()

    ops = AsyncOps()
    async_store = AsyncPostgresStore(conninfo, min_size=1, max_size=1)
    async_manager = AsyncSessionManager(async_store, policy=POLICY)
    ops.loop.run_until_complete(async_store.open())
    async_pool = async_store._pool
    assert async_pool is not None

    async def async_select() -> object:
        async with async_pool.connection() as conn:
            cursor = await conn.execute(query, (session.id,), prepare=True)
            return await cursor.fetchone()

    rows = {
        "prepared PK SELECT through the pool (floor)": prepared_select,
        "validate, sync (SELECT + checks)": lambda: manager.validate(token),
        "store.get, sync": lambda: store.get(session.id),
        "prepared PK SELECT, async (x50 in one loop run)": ops.op(async_select),
        "validate, async (x50 in one loop run)": ops.op(lambda: async_manager.validate(token)),
    }
    inner = {k: getattr(v, "inner", 1) for k, v in rows.items()}
    samples = scaled(interleaved(rows), inner)
    table(
        "PostgreSQL: validate vs one prepared primary-key SELECT through the same pool (µs/op)",
        samples,
        "prepared PK SELECT through the pool (floor)",
    )
    base = statistics.median(samples["prepared PK SELECT, async (x50 in one loop run)"])
    mine = statistics.median(samples["validate, async (x50 in one loop run)"])
    print(f"\nasync validate / async prepared SELECT = {mine / base:.2f}")
    ops.loop.run_until_complete(async_manager.close())
    ops.loop.close()
    manager.close()


# -- memory ------------------------------------------------------------------------------------


def memory_redis(url: str, count: int) -> None:
    """Bytes per session at ``count`` sessions, each written by ``AsyncRedisStore.add``."""
    raw = redis.Redis.from_url(url, socket_timeout=600)  # FLUSHALL of 1M keys on a busy VM
    scenarios: dict[str, Callable[[int], str | None]] = {
        "anonymous": lambda i: None,
        "one login per user": lambda i: str(100_000_000 + i),
        "three logins per user": lambda i: str(100_000_000 + i // 3),
        "one login per user, text ids": lambda i: f"u{i:08d}",  # 9 characters, not a number
    }
    print(f"\n### Redis memory per session at {count:,} sessions\n")
    print("| sessions | bytes/session (used_memory growth / sessions) | stored record bytes |")
    print("|---|---:|---:|")
    for name, user_of in scenarios.items():
        for touched in (False, True):
            per_session, record_bytes = _fill(raw, url, count, user_of, touched)
            label = f"{name}{', after one touch' if touched else ''}"
            print(f"| {label} | {per_session:.1f} | {record_bytes} |")
    raw.flushall()
    raw.close()


def _fill(
    raw: redis.Redis,
    url: str,
    count: int,
    user_of: Callable[[int], str | None],
    touched: bool,
) -> tuple[float, int]:
    raw.flushall()
    time.sleep(0.2)
    start = time.time()  # each fill's sessions live 30 minutes from its own start
    store = AsyncRedisStore(url, socket_timeout=30)
    clock = _Clock(start)
    maker = SessionManager(MemoryStore(), policy=POLICY, clock=clock)
    templates = {
        kind: maker.issue(user).record for kind, user in (("anonymous", None), ("user", "u"))
    }

    async def fill() -> int:
        await store.get("AAAAAAAAAAAAAAAA")  # reads the salt, as the first call of any kind
        sizes = []
        for batch in range(0, count, 100):
            records = []
            for i in range(batch, min(batch + 100, count)):
                now = start + i * 0.000_731  # distinct, non-integral wall-clock times
                records.append(_minted(templates, store, user_of(i), now))
            await asyncio.gather(*(store.add(r) for r in records))
            if touched:
                later = [r.last_seen + 61.337 for r in records]
                await asyncio.gather(
                    *(
                        store.touch(r.id, last_seen=t, expires_at=t + 1800)
                        for r, t in zip(records, later, strict=True)
                    )
                )
            if batch < 1000:
                sizes += [len(raw.get(_key(r.id)) or b"") for r in records]
        await store.close()
        return round(statistics.median(sizes))

    before = int(raw.info("memory")["used_memory"])
    record_bytes = asyncio.run(fill())
    time.sleep(2)  # let Redis finish growing its key tables (incremental rehashing)
    after = int(raw.info("memory")["used_memory"])
    assert raw.dbsize() >= count
    return (after - before) / count, record_bytes


def _minted(
    templates: dict[str, SessionRecord], store: AsyncRedisStore, user_id: str | None, now: float
) -> SessionRecord:
    """A record as the manager mints it at ``now`` for a store that places users: a 16-byte
    verifier, and for a user, the id starting with the user's locality."""
    locality = b"" if user_id is None else store.user_locality(user_id)
    session_id = base64.urlsafe_b64encode(locality + os.urandom(12 - len(locality))).decode()
    template = templates["anonymous" if user_id is None else "user"]
    return template._replace(
        id=session_id,
        secret_hash=os.urandom(16),
        user_id=user_id,
        auth_time=None if user_id is None else now,
        created_at=now,
        rotated_at=now,
        last_seen=now,
        expires_at=now + POLICY.idle_timeout,
        absolute_expires_at=now + POLICY.absolute_timeout,
    )


def _key(session_id: str) -> bytes:
    raw_id = base64.urlsafe_b64decode(session_id)
    return b"{" + raw_id[:2] + b"}" + raw_id[2:]


class _Clock:
    def __init__(self, now: float) -> None:
        self.now_value = now

    def now(self) -> float:
        return self.now_value


def memory_postgres(conninfo: str, count: int) -> None:
    store = PostgresStore(conninfo, max_size=4)
    store.open()
    clock = _Clock(time.time())
    maker = SessionManager(MemoryStore(), policy=POLICY, clock=clock)
    rows = []
    for i in range(count):
        clock.now_value += 0.000_731
        record = maker.issue(str(100_000_000 + i // 3)).record
        maker.store.delete(record.id)
        rows.append(record)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cursor:
        cursor.execute("TRUNCATE sessionward.sessions")
        with cursor.copy(
            "COPY sessionward.sessions FROM STDIN"
        ) as copy:  # the same columns, in order
            for record in rows:
                copy.write_row(record)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE sessionward.sessions")
        size = conn.execute(
            "SELECT pg_table_size('sessionward.sessions'), pg_indexes_size('sessionward.sessions')"
        ).fetchone()
    assert size is not None
    print(f"\n### PostgreSQL size per session at {count:,} sessions (three logins per user)\n")
    print(f"table {size[0] / count:.0f} B + indexes {size[1] / count:.0f} B per session")
    store.close()


# -- throughput --------------------------------------------------------------------------------


CpuReader = Callable[[], dict[int, float]]


def redis_cpu(ports: list[int]) -> CpuReader:
    """Seconds of CPU each redis-server process on ``ports`` has used so far, by port."""

    def read() -> dict[int, float]:
        used = {}
        for port in ports:
            client = redis.Redis(host="127.0.0.1", port=port)
            info = client.info("cpu")
            used[port] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
            client.close()
        return used

    return read


def postgres_cpu(data: Path) -> CpuReader:
    """Seconds of CPU the postmaster and each of its children have used so far, by pid
    (/proc)."""
    ticks = float(os.sysconf("SC_CLK_TCK"))

    def read() -> dict[int, float]:
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
        used = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid, ppid = int(stat.parent.name), int(fields[1])
            if postmaster in (pid, ppid):
                used[pid] = (int(fields[11]) + int(fields[12])) / ticks
        return used

    return read


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two readings by the processes alive at the second. A backend
    that exited in between (the previous pool's, closing) is left out rather than counted
    negative; one started in between counts from zero."""
    return sum(seconds - before.get(key, 0.0) for key, seconds in after.items())


def throughput(
    label: str,
    make_store: Callable[[], Any],
    cpu: CpuReader,
    seconds: float = 4.0,
    concurrency: int = 64,
) -> float:
    """Validations (then logins) per second with ``concurrency`` asyncio tasks, and the
    server CPU each one cost."""

    async def run(
        work: Callable[[AsyncSessionManager, int], Any], policy: Policy
    ) -> tuple[float, float]:
        before = cpu()
        manager = AsyncSessionManager(make_store(), policy=policy)
        done = 0
        stop = time.perf_counter() + seconds

        async def worker(k: int) -> None:
            nonlocal done
            i = k
            while time.perf_counter() < stop:
                try:
                    await work(manager, i)
                except StoreUnavailable:
                    failures.append(i)
                done += 1
                i += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
        # Read before closing: PostgreSQL backends take their CPU time with them when the
        # pool's connections close (it gave negative figures).
        used = cpu_between(before, cpu())
        await manager.close()
        return done / elapsed, used

    async def prepare() -> tuple[list[str], list[str]]:
        manager = AsyncSessionManager(make_store(), policy=POLICY)
        tokens, ids = [], []
        for i in range(512):
            session = await manager.issue(f"user-{i}")
            assert session.token is not None
            tokens.append(session.token)
            ids.append(session.id)
        await manager.close()
        return tokens, ids

    tokens, ids = asyncio.run(prepare())
    base = time.time() + 1
    failures: list[int] = []
    rates = []
    capped = Policy(idle_timeout=1800, absolute_timeout=8 * 3600, max_sessions_per_user=3)
    for what, policy, work in (
        ("validate", POLICY, lambda m, i: m.validate(tokens[i % len(tokens)])),
        (
            "touch",
            POLICY,
            lambda m, i: m.store.touch(ids[i % 512], last_seen=base + i, expires_at=base + i),
        ),
        ("issue (login)", POLICY, lambda m, i: m.issue(f"load-{i % 5000}")),
        ("issue (login, cap of 3 per user)", capped, lambda m, i: m.issue(f"cap-{i % 5000}")),
    ):
        rate, used = asyncio.run(run(work, policy))
        per_op = used / (rate * seconds) * 1e6
        failed = f" ({len(failures)} StoreUnavailable)" if failures else ""
        print(f"| {label} | {what}{failed} | {rate:,.0f} | {per_op:.1f} | {1e6 / per_op:,.0f} |")
        failures.clear()
        rates.append(rate)
    return rates[0]


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    global ROUNDS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["latency", "memory", "throughput"], action="append")
    parser.add_argument("--store", choices=["redis", "postgres"], action="append")
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS, help=f"interleaved latency rounds (default {ROUNDS})"
    )
    args = parser.parse_args()
    ROUNDS = max(1, args.rounds)
    parts = set(args.only or ["latency", "memory", "throughput"])
    stores = set(args.store or ["redis", "postgres"])
    binary = servers._redis_binary()
    work = Path(tempfile.mkdtemp(prefix="sw-bench-"))
    version = subprocess.run(  # noqa: S603 - our own redis-server binary
        [binary, "--version"], capture_output=True, text=True, check=True
    )
    print(f"{version.stdout.split(' sha=')[0]}; python {sys.version.split()[0]}")
    standalone = servers.RedisServer(binary, work)
    standalone.launch()
    cluster = servers.RedisClusterServers(
        [servers.RedisServer(binary, work, cluster=True) for _ in range(3)]
    )
    bindir = servers._postgres_bin()
    assert bindir is not None
    pg_dir = Path(tempfile.mkdtemp(prefix="sw-bench-pg-"))
    postgres = servers.PostgresServer(bindir, pg_dir)
    try:
        if "postgres" in stores:
            postgres.init()
            postgres.launch()
        if "latency" in parts:
            if "redis" in stores:
                latency_redis(standalone.url)
            if "postgres" in stores:
                latency_postgres(postgres.conninfo)
        if "memory" in parts:
            if "redis" in stores:
                memory_redis(standalone.url, args.sessions)
            if "postgres" in stores:
                memory_postgres(postgres.conninfo, min(args.sessions, 200_000))
        if "throughput" in parts:
            print("\n### Throughput, 64 concurrent asyncio requests from one Python process\n")
            print("| target | operation | ops/s | server CPU µs/op | ops/s per server core |")
            print("|---|---|---:|---:|---:|")
            if "redis" in stores:
                cluster.create()
                one = throughput(
                    "1 Redis server",
                    lambda: AsyncRedisStore(standalone.url),
                    redis_cpu([standalone.port]),
                )
                three = throughput(
                    "Redis Cluster, 3 masters",
                    lambda: AsyncRedisStore(cluster.url),
                    redis_cpu([n.port for n in cluster.nodes]),
                )
                print(f"\nvalidate: cluster / single server = {three / one:.2f}")
            if "postgres" in stores:
                throughput(
                    "PostgreSQL (pool of 10)",
                    lambda: AsyncPostgresStore(postgres.conninfo, max_size=10),
                    postgres_cpu(postgres.data),
                )
    finally:
        standalone.stop()
        cluster.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(pg_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
