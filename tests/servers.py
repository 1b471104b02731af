"""Private Redis and PostgreSQL servers for tests, started and torn down by the tests.

Nothing here touches a server the machine already runs (the usual 6379 / 5432): every server
binds 127.0.0.1 on a free port, keeps its files in a temporary directory and dies with the
test session. A missing binary skips the tests that need it with a clear reason, unless
``SESSIONWARD_REQUIRE_SERVICES=1`` is set (CI), which turns the skip into a failure.

Fixtures (session scope): ``redis_server``, ``redis_cluster``, ``postgres_server``.

Also the waiting helpers every test shares: :func:`wait_until` polls with a deadline of
:data:`WAIT` (CI runs the suite on a loaded 2-core machine), :func:`reserved_port` holds a port
for a server that starts later.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
REQUIRE_ENV = "SESSIONWARD_REQUIRE_SERVICES"
START_TIMEOUT = 20.0
#: How long a test waits for background work (threads, deliverers, broadcasts) before failing.
WAIT = 30.0


def unavailable(reason: str) -> None:
    """Skip (or, when services are required, fail) the calling test with ``reason``."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 forbids skipping)", pytrace=False)
    pytest.skip(reason)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until(
    check: Callable[[], T], what: str, timeout: float = WAIT, interval: float = 0.02
) -> T:
    """Call ``check`` until it returns something truthy, and return that; fail the test with
    ``what`` after ``timeout`` seconds. Exceptions from ``check`` are not swallowed."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def reserved_port() -> socket.socket:
    """A loopback port held for a server that starts later (or stops and comes back): a socket
    bound with ``SO_REUSEPORT`` that never listens. Connections are refused as if nobody were
    there, no other process can take the port meanwhile, and a server socket with
    ``SO_REUSEPORT`` (:func:`uvicorn_thread` sets it) can bind it. Close it when done."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port(*, with_bus: bool = False) -> int:
    """A loopback port nobody listens on (and, for cluster nodes, port + 10000 too)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if not with_bus or (port < 55_000 and _port_is_free(port + 10_000)):
            return port
    raise RuntimeError("no free loopback port found")


def _wait_for(check: object, what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if callable(check) and check():
                return
        except Exception as exc:  # any failure means "not yet"
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up within {timeout} s (last error: {last!r})")


def _stop(process: subprocess.Popen[bytes] | None, *, hard: bool = False) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# -- Redis -------------------------------------------------------------------------------------


class RedisServer:
    """One private ``redis-server`` (standalone, or a cluster node with ``cluster=True``)."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        *,
        cluster: bool = False,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.cluster = cluster
        self.extra = extra
        self.port = free_port(with_bus=cluster)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.directory),
            "--loglevel", "warning",
            "--logfile", str(self.directory / f"redis-{self.port}.log"),
        ]  # fmt: skip
        args += self.extra
        if self.cluster:
            args += [
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{self.port}.conf",
                "--cluster-node-timeout", "2000",
            ]  # fmt: skip
        return args

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for(self.ping, f"redis-server on port {self.port}")

    def launch(self) -> None:
        """First start: on a port another process grabbed meanwhile, try another port."""
        for attempt in range(3):
            try:
                self.start()
                return
            except RuntimeError:
                self.stop()
                if attempt == 2:
                    raise
                self.port = free_port(with_bus=self.cluster)

    def ping(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError("redis-server exited")
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")

    def stop(self, *, hard: bool = True) -> None:
        _stop(self.process, hard=hard)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def call(self, *args: str) -> str:
        """One command through ``redis-cli`` (for setup and assertions, not the hot path)."""
        cli = shutil.which("redis-cli") or "redis-cli"
        done = subprocess.run(
            [cli, "-h", "127.0.0.1", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout.strip()


class RedisClusterServers:
    """A 3-master Redis Cluster on loopback ports, no replicas."""

    def __init__(self, nodes: list[RedisServer]) -> None:
        self.nodes = nodes

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def create(self) -> None:
        for node in self.nodes:
            node.launch()
        cli = shutil.which("redis-cli") or "redis-cli"
        subprocess.run(
            [
                cli, "--cluster", "create",
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                "--cluster-replicas", "0", "--cluster-yes",
            ],
            capture_output=True,
            timeout=60,
            check=True,
        )  # fmt: skip
        _wait_for(self.ready, "redis cluster")

    def ready(self) -> bool:
        for node in self.nodes:
            info = node.call("CLUSTER", "INFO")
            if "cluster_state:ok" not in info or "cluster_slots_assigned:16384" not in info:
                return False
        return True

    def flush(self) -> None:
        for node in self.nodes:
            node.call("FLUSHALL")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@contextlib.contextmanager
def private_redis(*extra: str) -> Iterator[RedisServer]:
    """A standalone redis-server of one's own (e.g. with persistence, to stop and restart)."""
    binary = _redis_binary()
    directory = Path(tempfile.mkdtemp(prefix="sw-redis-"))
    server = RedisServer(binary, directory, extra=extra)
    try:
        server.launch()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None or shutil.which("redis-cli") is None:
        unavailable("redis-server / redis-cli not installed (apt-get install redis-server)")
    assert binary is not None
    return binary


_SHARED: dict[str, list[Any]] = {}  # name -> [server, users, its context manager]


@contextlib.contextmanager
def _shared(name: str, start: Callable[[], contextlib.AbstractContextManager[T]]) -> Iterator[T]:
    """One server per test session, however many modules import the fixture (each import
    makes its own session fixture; they all get this one server, stopped with the last)."""
    entry = _SHARED.get(name)
    if entry is None:
        manager = start()
        entry = _SHARED[name] = [manager.__enter__(), 0, manager]
    entry[1] += 1
    try:
        yield entry[0]
    finally:
        entry[1] -= 1
        if entry[1] == 0:
            del _SHARED[name]
            entry[2].__exit__(None, None, None)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with _shared("redis", private_redis) as server:
        yield server


@contextlib.contextmanager
def private_cluster() -> Iterator[RedisClusterServers]:
    """A 3-master Redis Cluster of one's own."""
    binary = _redis_binary()
    directory = Path(tempfile.mkdtemp(prefix="sw-cluster-"))
    cluster = RedisClusterServers([RedisServer(binary, directory, cluster=True) for _ in range(3)])
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    with _shared("cluster", private_cluster) as cluster:
        yield cluster


# -- PostgreSQL --------------------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    def major(path: str) -> int:
        name = Path(path).parent.parent.name
        return int(name) if name.isdigit() else 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=major)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """A private PostgreSQL cluster in a temporary directory, on a free loopback port.

    ``initdb`` refuses to run as root, so under root every server command runs as the
    ``postgres`` system user (``runuser``) in a directory that user owns.
    """

    def __init__(self, bindir: Path, directory: Path) -> None:
        self.bindir = bindir
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RuntimeError("running as root without runuser")
            self._as = [runuser, "-u", "postgres", "--"]
            shutil.chown(directory, "postgres", "postgres")
        self.user = "postgres" if self._as else os.environ.get("USER", "postgres")

    @property
    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        subprocess.run(
            [*self._as, *args],
            capture_output=True,
            timeout=timeout,
            check=True,
            cwd=self.directory,
        )

    def init(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D", str(self.data),
            "-A", "trust",
            "-U", self.user,
            "-E", "UTF8",
            "--locale", "C",
            "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory}"
            " -c fsync=off -c full_page_writes=off -c max_connections=60"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D", str(self.data),
            "-l", str(self.directory / "postgres.log"),
            "-o", options,
            "-w", "-t", "60",
            "start",
        )  # fmt: skip

    def launch(self) -> None:
        """First start: on a port another process grabbed meanwhile, try another port."""
        for attempt in range(3):
            try:
                self.start()
                return
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise
                self.port = free_port()

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server. ``immediate`` is a crash (recovery from WAL on the next start)."""
        if not (self.data / "postmaster.pid").exists():
            return
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    def kill(self) -> None:
        """``kill -9`` the postmaster and every process it started: a crash, recovered from
        the WAL on the next :meth:`start`."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        pids = [postmaster]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    pids.append(int(stat.parent.name))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        # Until reaped: the next postmaster takes a zombie's pid in the lock file for a live one.
        while any(Path(f"/proc/{pid}").exists() for pid in pids):
            if time.monotonic() > deadline:
                raise RuntimeError("the killed PostgreSQL processes did not go away")
            time.sleep(0.02)

    def empty(self, schema: str = "sessionward") -> None:
        """Delete every session row (the schema, once created, stays)."""
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            exists = conn.execute("SELECT to_regclass(%s)", (f"{schema}.sessions",)).fetchone()
            if exists and exists[0] is not None:
                conn.execute(f"TRUNCATE {schema}.sessions")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with _shared("postgres", private_postgres) as server:
        yield server


@contextlib.contextmanager
def private_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of one's own, in a temporary directory."""
    bindir = _postgres_bin()
    if bindir is None or not (bindir / "pg_ctl").exists():
        unavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) not installed (apt-get install postgresql)"
        )
    assert bindir is not None
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        unavailable("running as root, and runuser is missing to drop to the postgres user")
    directory = Path(tempfile.mkdtemp(prefix="sw-pg-"))
    server = PostgresServer(bindir, directory)
    try:
        server.init()
        server.launch()
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


# -- store pairs for the contract suite ---------------------------------------------------------
#
# Each yields ``(sync_store, async_store)`` on a freshly emptied server. The contract runs on a
# FakeClock that starts at 1.8e9 (January 2027): ``clock_offset`` maps those times onto the wall
# clock and ``expire_grace`` keeps records past their (fake) deadline, so Redis TTLs neither
# drop a record the suite still expects nor depend on today's date.

FAKE_EPOCH = 1_800_000_000.0
TEST_GRACE = 86_400.0


def redis_stores(url: str) -> tuple[Any, Any]:
    """A sync and an async store on ``url``, with times mapped for the fake clock."""
    from sessionward.stores.redis import AsyncRedisStore, RedisStore

    offset = time.time() - FAKE_EPOCH
    return (
        RedisStore(url, clock_offset=offset, expire_grace=TEST_GRACE),
        AsyncRedisStore(url, clock_offset=offset, expire_grace=TEST_GRACE),
    )


def _close_pair(sync_store: object, async_store: object) -> None:
    import asyncio

    sync_store.close()  # type: ignore[attr-defined]
    asyncio.run(async_store.close())  # type: ignore[attr-defined]


def redis_pair(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any]]:
    server = request.getfixturevalue("redis_server")
    server.call("FLUSHALL")
    sync_store, async_store = redis_stores(server.url)
    try:
        yield sync_store, async_store
    finally:
        _close_pair(sync_store, async_store)


def redis_cluster_pair(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any]]:
    cluster = request.getfixturevalue("redis_cluster")
    cluster.flush()
    sync_store, async_store = redis_stores(cluster.url)
    try:
        yield sync_store, async_store
    finally:
        _close_pair(sync_store, async_store)


def postgres_pair(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any]]:
    from sessionward.stores.postgres import AsyncPostgresStore, PostgresStore

    server = request.getfixturevalue("postgres_server")
    server.empty()
    sync_store = PostgresStore(server.conninfo, max_size=4)
    async_store = AsyncPostgresStore(server.conninfo, max_size=4)
    try:
        yield sync_store, async_store
    finally:
        _close_pair(sync_store, async_store)


@contextlib.contextmanager
def uvicorn_thread(
    make_app: Callable[[str], Any],
    *,
    host: str = "127.0.0.1",
    graceful: int | None = None,
    cert: tuple[str, str] | None = None,
    port: int = 0,
    **options: Any,
) -> Iterator[str]:
    """Serve ``make_app(base_url)`` with a real uvicorn in a thread of the test process, on a
    free port of ``host`` (or ``port``: a receiver that comes back where it was; https with
    ``cert`` = (certfile, keyfile)); yields the base URL.

    In-process, so a ``FakeClock`` given to the app drives its expiry. ``graceful`` bounds how
    long open streams are waited for at shutdown; ``options`` go to ``uvicorn.Config``."""
    import threading

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # a port from reserved_port()
    sock.bind((host, port))
    base = f"{'https' if cert else 'http'}://{host}:{sock.getsockname()[1]}"
    settings: dict[str, Any] = {"access_log": False, **options}
    if graceful is not None:
        settings["timeout_graceful_shutdown"] = graceful
    if cert is not None:
        settings["ssl_certfile"], settings["ssl_keyfile"] = cert
    config = uvicorn.Config(make_app(base), lifespan="off", ws="none", log_config=None, **settings)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(10 + (graceful or 0))
        sock.close()
