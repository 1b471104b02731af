"""HTTP benchmark of the ASGI adapter (by hand; not part of the test suite).

    .venv/bin/python benchmarks/bench_http.py [--rounds 3] [--duration 10] [--no-node]

Serves three apps, one process each, on loopback, and loads each with
``wrk -t2 -c64 -d<duration>s --latency`` sending ``GET /me`` with a valid session cookie:

* ``sessionward``: Starlette + ``sessionward.web.asgi.SessionMiddleware`` over
  ``AsyncSQLiteStore`` (WAL file, 100k sessions), uvicorn, 1 worker;
* ``bare-sqlite``: a Starlette endpoint that parses the cookie, hashes it and does one SQLite
  primary-key SELECT itself (WAL file, 100k rows), uvicorn, 1 worker;
* ``express-redis``: Express 5 + express-session + connect-redis on the local redis-server
  (``npm install`` into a temporary directory), 1 Node process.

Rounds are interleaved (each round loads every server once, after a 2 s warm-up); the table
gives median and min-max req/s and the ratios to the other rows measured in the same run.
Needs ``wrk`` and, for the Node row, ``node``/``npm`` and a redis-server on 127.0.0.1:6379.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SESSIONS = 100_000
COOKIE = "__Host-id"
NODE_APP = """
import express from "express";
import session from "express-session";
import { RedisStore } from "connect-redis";
import { createClient } from "redis";
const client = createClient({ url: "redis://127.0.0.1:6379" });
await client.connect();
const app = express();
app.use(session({ store: new RedisStore({ client, prefix: "swbench:" }), secret: "bench-only",
  resave: false, saveUninitialized: false, cookie: { maxAge: 86400000 } }));
app.get("/login", (req, res) => { req.session.user = "alice"; res.json({ ok: true }); });
app.get("/me", (req, res) => req.session.user ? res.json({ user: req.session.user })
  : res.status(401).end());
app.listen(Number(process.argv[2]), "127.0.0.1");
"""


# -- the served apps ----------------------------------------------------------------------------


def sessionward_app(db: str) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from sessionward import AsyncSessionManager, AsyncSQLiteStore, EventBus
    from sessionward.web.asgi import SessionMiddleware

    manager = AsyncSessionManager(AsyncSQLiteStore(db), events=EventBus([]))

    async def me(request: Request) -> Response:
        session = request.state.sessionward.session
        if session is None or session.user_id is None:
            return Response(status_code=401)
        return JSONResponse({"user": session.user_id})

    app = Starlette(routes=[Route("/me", me)])
    return SessionMiddleware(app, manager, csrf=False)


def bare_app(db: str) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    connection = sqlite3.connect(db, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")

    async def me(request: Request) -> Response:
        token = request.cookies.get(COOKIE)
        if token is None:
            return Response(status_code=401)
        row = connection.execute(
            "SELECT user, expires FROM bare WHERE id = ?",
            (hashlib.sha256(token.encode()).digest(),),
        ).fetchone()
        if row is None or row[1] <= time.time():
            return Response(status_code=401)
        return JSONResponse({"user": row[0]})

    return Starlette(routes=[Route("/me", me)])


def serve(variant: str, port: int, db: str) -> None:
    import uvicorn

    app = sessionward_app(db) if variant == "sessionward" else bare_app(db)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- preparing data ---------------------------------------------------------------------------


def prepare_sessionward(db: str) -> str:
    from sessionward import EventBus, SessionManager, SQLiteStore

    manager = SessionManager(SQLiteStore(db), events=EventBus([]))
    for i in range(SESSIONS - 1):
        manager.issue(f"user{i}")
    token = manager.issue("alice").token
    manager.close()
    assert token is not None
    return token


def prepare_bare(db: str) -> str:
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(
        "CREATE TABLE bare (id BLOB PRIMARY KEY, user TEXT, expires REAL) STRICT, WITHOUT ROWID"
    )
    tokens = [os.urandom(32).hex() for _ in range(SESSIONS)]
    later = time.time() + 86400
    connection.executemany(
        "INSERT INTO bare VALUES (?, ?, ?)",
        [(hashlib.sha256(t.encode()).digest(), f"user{i}", later) for i, t in enumerate(tokens)],
    )
    connection.execute(
        "UPDATE bare SET user = 'alice' WHERE id = ?",
        (hashlib.sha256(tokens[-1].encode()).digest(),),
    )
    connection.commit()
    connection.close()
    return tokens[-1]


# -- in-process CPU time per request (robust against a noisy shared machine) -----------------


def cpu_per_request(app: Any, cookie: str, requests: int = 5000) -> float:
    """Process CPU microseconds per request, calling the ASGI app in-process (no socket)."""
    import asyncio

    headers = [(b"host", b"127.0.0.1"), (b"cookie", cookie.encode()), (b"user-agent", b"wrk")]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/me",
        "raw_path": b"/me",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def loop() -> float:
        started = time.process_time()
        for _ in range(requests):
            await app(dict(scope), receive, send)
        return (time.process_time() - started) / requests * 1e6

    spent = asyncio.run(loop())
    assert set(statuses) == {200}, set(statuses)
    return spent


# -- running servers and wrk ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(port: int, process: subprocess.Popen[bytes], limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def get(port: int, path: str, cookie: str | None) -> tuple[int, str, list[str]]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    response = connection.getresponse()
    body = response.read().decode()
    cookies = response.headers.get_all("Set-Cookie") or []
    connection.close()
    return response.status, body, cookies


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed")
    return found


def run(argv: list[str], **kwargs: Any) -> str:
    done = subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)  # noqa: S603
    return str(done.stdout)


def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, **kwargs)  # noqa: S603 - our own fixed commands


def start_node(workdir: Path) -> tuple[subprocess.Popen[bytes], int, str]:
    npm = tool("npm")
    if not (workdir / "node_modules" / "connect-redis").exists():
        run([npm, "init", "-y"], cwd=workdir)
        packages = ["express@5", "express-session", "connect-redis", "redis"]
        run([npm, "install", "--silent", *packages], cwd=workdir, timeout=600)
    (workdir / "app.mjs").write_text(NODE_APP)
    port = free_port()
    process = spawn([tool("node"), "app.mjs", str(port)], cwd=workdir)
    wait_for(port, process)
    status, _, cookies = get(port, "/login", None)
    assert status == 200, status
    return process, port, cookies[0].split(";")[0]


def wrk(port: int, cookie: str, duration: int) -> float:
    argv = [tool("wrk"), "-t2", "-c64", f"-d{duration}s", "--latency"]
    out = run(
        [*argv, "-H", f"Cookie: {cookie}", f"http://127.0.0.1:{port}/me"], timeout=duration + 60
    )
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert found is not None, out
    return float(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description="HTTP benchmark of the ASGI adapter")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--no-node", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="sessionward-bench-http-"))
    servers: dict[str, tuple[subprocess.Popen[bytes], int, str]] = {}
    try:
        for variant, prepare in (
            ("sessionward", prepare_sessionward),
            ("bare-sqlite", prepare_bare),
        ):
            db = str(workdir / f"{variant}.db")
            cookie = f"{COOKIE}={prepare(db)}"
            port = free_port()
            process = spawn([sys.executable, __file__, "serve", variant, str(port), db])
            wait_for(port, process)
            status, body, set_cookie = get(port, "/me", cookie)
            assert (status, json.loads(body)) == (200, {"user": "alice"}), (status, body)
            assert get(port, "/me", None)[0] == 401
            assert not set_cookie, "an untouched request must not set a cookie"
            servers[variant] = (process, port, cookie)
        if not args.no_node:
            servers["express-redis"] = start_node(workdir)
        results: dict[str, list[float]] = {name: [] for name in servers}
        for round_no in range(args.rounds):
            for name, (_, port, cookie) in servers.items():
                wrk(port, cookie, 2)  # warm-up
                results[name].append(wrk(port, cookie, args.duration))
                print(f"round {round_no + 1} {name}: {results[name][-1]:,.0f} req/s", flush=True)
        cpu: dict[str, list[float]] = {"sessionward": [], "bare-sqlite": []}
        apps = {
            "sessionward": sessionward_app(str(workdir / "sessionward.db")),
            "bare-sqlite": bare_app(str(workdir / "bare-sqlite.db")),
        }
        for _ in range(args.rounds * 2):
            for name, app in apps.items():
                cpu[name].append(cpu_per_request(app, servers[name][2]))
    finally:
        for process, _, _ in servers.values():
            process.terminate()
            process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in results.items()}
    print("\n| server | req/s median | min-max | µs/req |")
    print("|---|---:|---:|---:|")
    for name, values in results.items():
        print(
            f"| {name} | {medians[name]:,.0f} | {min(values):,.0f}-{max(values):,.0f} "
            f"| {1e6 / medians[name]:.0f} |"
        )
    print(f"\nsessionward / bare-sqlite = {medians['sessionward'] / medians['bare-sqlite']:.2f}")
    sw_cpu, bare_cpu = statistics.median(cpu["sessionward"]), statistics.median(cpu["bare-sqlite"])
    print(
        f"in-process CPU per request: sessionward {sw_cpu:.1f} us, bare-sqlite {bare_cpu:.1f} us"
        f" (+{sw_cpu - bare_cpu:.1f} us; min-max {min(cpu['sessionward']):.1f}-"
        f"{max(cpu['sessionward']):.1f} / {min(cpu['bare-sqlite']):.1f}-"
        f"{max(cpu['bare-sqlite']):.1f})"
    )
    if "express-redis" in medians:
        print(
            f"sessionward / express-redis = {medians['sessionward'] / medians['express-redis']:.2f}"
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(main())
