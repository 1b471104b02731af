"""HTTP benchmark of the service's validate endpoint and of ``--workers`` (by hand).

    python benchmarks/bench_service.py [--duration 10] [--rounds 3] [--no-node] [--no-workers]

Every server runs on loopback and is loaded in turn, round after round, by
``wrk -t2 -c64 -d<duration>s`` after a 2 s warm-up:

* ``service``: ``sessionward serve --no-admin --no-demo`` (stock uvicorn, one process), loaded
  with ``POST /v1/sessions/validate``: API-key check, JSON body, a SQLite session store with
  10,000 sessions; each request presents one of 1,000 valid tokens picked at random. The
  default policy writes a session's ``last_seen`` at most once a minute; the tokens are made
  so that these writes come steadily (about 17 a second) from the start, as under real load;
* ``service-2-workers``: the same with ``--workers 2``;
* ``bare-starlette``: a hello-world Starlette route on the same uvicorn with the same
  settings, loaded with the same requests (it reads neither key nor body);
* ``express-redis``: Express 5 + express-session + connect-redis (one Node process) reading a
  signed-in session on ``GET /me``, its store a private ``redis-server`` started here on a
  free port. The npm packages are installed once into ``~/.cache/sessionward-bench/node``.

The table gives the median req/s of the rounds and each server's CPU time per request (user +
system of its whole process tree, from ``/proc``, around the measured runs), then the ratios
the service is held to. Any non-2xx answer or socket error fails the run. Needs ``wrk`` and,
for the Node row, ``node``, ``npm`` and ``redis-server``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

SESSIONS = 10_000
TOKENS = 1_000
WRK = ["-t2", "-c64"]
NODE_CACHE = Path.home() / ".cache" / "sessionward-bench" / "node"
NODE_PACKAGES = ["express@5", "express-session", "connect-redis", "redis"]

# The requests are formatted once, at start, so that wrk spends little CPU per request: it
# shares the machine's cores with the servers it loads.
LUA = """
local tokens = {%s}
local requests = {}
init = function(args)
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %s"}
  for i, token in ipairs(tokens) do
    requests[i] = wrk.format("POST", nil, headers, '{"token":"' .. token .. '"}')
  end
end
request = function()
  return requests[math.random(#requests)]
end
"""

NODE_APP = """
import express from "express";
import session from "express-session";
import { RedisStore } from "connect-redis";
import { createClient } from "redis";
const client = createClient({ url: `redis://127.0.0.1:${process.argv[3]}` });
await client.connect();
const app = express();
app.use(session({ store: new RedisStore({ client, prefix: "swbench:" }), secret: "bench-only",
  resave: false, saveUninitialized: false, cookie: { maxAge: 86400000 } }));
app.get("/login", (req, res) => { req.session.user = "alice"; res.json({ ok: true }); });
app.get("/me", (req, res) => req.session.user ? res.json({ user: req.session.user })
  : res.status(401).end());
app.listen(Number(process.argv[2]), "127.0.0.1");
"""

# The uvicorn settings of ``sessionward serve`` (see sessionward.cli.serve), for the bare peer.
UVICORN = {"log_level": "warning", "access_log": False, "proxy_headers": False}


# -- the peers ----------------------------------------------------------------------------------


def bare_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def hello(request: Request) -> Response:
        return JSONResponse({"message": "hello, world"})

    return Starlette(routes=[Route("/v1/sessions/validate", hello, methods=["POST"])])


def serve_bare(port: int) -> None:
    import uvicorn

    uvicorn.run(bare_app(), host="127.0.0.1", port=port, **UVICORN)  # type: ignore[arg-type]


# -- running things -----------------------------------------------------------------------------


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, **kwargs)  # noqa: S603 - our own fixed commands


def wait_for(port: int, process: subprocess.Popen[bytes], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{process.args!r} did not start")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live descendants (Linux ``/proc``)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += tree_cpu_seconds(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


def wrk(port: int, duration: int, extra: list[str], path: str) -> float:
    argv = [tool("wrk"), *WRK, f"-d{duration}s", *extra, f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(  # noqa: S603 - our own fixed command
        argv, capture_output=True, text=True, timeout=duration + 60, check=True
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert found is not None, out
    return float(found.group(1))


# -- preparing data -----------------------------------------------------------------------------


def prepare(db: str) -> tuple[str, list[str]]:
    """Fill the store and the service state; returns a validate-scope key and tokens."""
    from sessionward import AsyncSessionManager, AsyncSQLiteStore, EventBus, Policy
    from sessionward.service.keys import create_key
    from sessionward.service.state import ServiceState
    from sessionward.testing import FakeClock

    async def fill() -> list[str]:
        # The tokens were last seen at times spread evenly over the past touch interval, so
        # their ``last_seen`` writes also spread evenly over the run.
        interval = Policy().effective_touch_interval
        start = time.time()
        clock = FakeClock(start - interval)
        manager = AsyncSessionManager(AsyncSQLiteStore(db), events=EventBus([]), clock=clock)
        made = []
        for i in range(SESSIONS):
            if i < TOKENS:
                clock.set(start - interval + interval * i / TOKENS)
            made.append((await manager.issue(f"user{i}", data={"cart": ["tea"]})).token)
        await manager.close()
        return [t for t in made[:TOKENS] if t is not None]

    tokens = asyncio.run(fill())
    state = ServiceState(db)
    key = create_key(state, "validate", "bench", time.time())[0]
    state.close()
    return key, tokens


def check_validate(port: int, key: str, token: str) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/sessions/validate",
        data=json.dumps({"token": token}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        answer = json.loads(response.read())
    assert answer["decision"] == "allow", answer


def start_node(workdir: Path) -> tuple[list[subprocess.Popen[bytes]], int, str]:
    """A private redis-server and the Express app on it; returns them, the app's port and a
    signed-in session cookie."""
    npm = tool("npm")
    if not (NODE_CACHE / "node_modules" / "connect-redis").exists():
        NODE_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "init", "-y"], cwd=NODE_CACHE, check=True, capture_output=True)  # noqa: S603
        subprocess.run(  # noqa: S603
            [npm, "install", "--silent", *NODE_PACKAGES],
            cwd=NODE_CACHE,
            check=True,
            capture_output=True,
            timeout=600,
        )
    (NODE_CACHE / "app.mjs").write_text(NODE_APP)
    redis_port = free_port()
    options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    redis = spawn([tool("redis-server"), "--port", str(redis_port), *options])
    wait_for(redis_port, redis)
    port = free_port()
    node = spawn([tool("node"), "app.mjs", str(port), str(redis_port)], cwd=NODE_CACHE)
    wait_for(port, node)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as response:
        cookie = response.headers["Set-Cookie"].split(";")[0]
    return [node, redis], port, cookie


# -- the run ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description="HTTP benchmark of the service")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-node", action="store_true", help="leave out express-redis")
    parser.add_argument("--no-workers", action="store_true", help="leave out --workers 2")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="sessionward-bench-service-"))
    processes: list[subprocess.Popen[bytes]] = []
    # name -> (pid whose process tree is measured, port, wrk options, path)
    servers: dict[str, tuple[int, int, list[str], str]] = {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    try:
        db = str(workdir / "service.db")
        key, tokens = prepare(db)
        script = workdir / "validate.lua"
        script.write_text(LUA % (",".join(f'"{t}"' for t in tokens), key))
        post = ["-s", str(script)]
        variants = {"service": 1} if args.no_workers else {"service": 1, "service-2-workers": 2}
        for name, count in variants.items():
            port = free_port()
            argv = [sys.executable, "-m", "sessionward", "serve", "--port", str(port)]
            argv += ["--store", db, "--no-admin", "--no-demo", "--log-level", "warning"]
            process = spawn([*argv, "--workers", str(count)], env=env, stdout=subprocess.DEVNULL)
            processes.append(process)
            wait_for(port, process)
            check_validate(port, key, tokens[0])
            servers[name] = (process.pid, port, post, "/v1/sessions/validate")
        port = free_port()
        bare = spawn([sys.executable, __file__, "serve-bare", str(port)])
        processes.append(bare)
        wait_for(port, bare)
        servers["bare-starlette"] = (bare.pid, port, post, "/v1/sessions/validate")
        if not args.no_node:
            started, port, cookie = start_node(workdir)
            processes += started
            servers["express-redis"] = (started[0].pid, port, ["-H", f"Cookie: {cookie}"], "/me")
        rates: dict[str, list[float]] = {name: [] for name in servers}
        cpu: dict[str, list[float]] = {name: [] for name in servers}
        for round_no in range(args.rounds):
            for name, (pid, port, extra, path) in servers.items():
                wrk(port, 2, extra, path)
                before = tree_cpu_seconds(pid)
                rate = wrk(port, args.duration, extra, path)
                spent = tree_cpu_seconds(pid) - before
                rates[name].append(rate)
                cpu[name].append(spent / (rate * args.duration) * 1e6)
                print(
                    f"round {round_no + 1} {name}: {rate:,.0f} req/s,"
                    f" {cpu[name][-1]:.0f} us CPU/req",
                    flush=True,
                )
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)  # Ctrl-C: every server here stops on it
        for process in processes:
            process.wait(20)
        shutil.rmtree(workdir, ignore_errors=True)
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"\nwrk {' '.join(WRK)} -d{args.duration}s, {args.rounds} round(s), 0 errors")
    print("| server | req/s (median) | min-max | CPU us/req (median) |")
    print("|---|---:|---:|---:|")
    for name, values in rates.items():
        print(
            f"| {name} | {median[name]:,.0f} | {min(values):,.0f}-{max(values):,.0f}"
            f" | {statistics.median(cpu[name]):.0f} |"
        )
    print()
    for name, other, floor in (
        ("service", "bare-starlette", 0.5),
        ("service", "express-redis", 2.0),
        ("service-2-workers", "service", 1.6),
    ):
        if name in median and other in median:
            ratio = median[name] / median[other]
            print(f"{name} / {other} = {ratio:.2f} (wanted >= {floor})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve-bare":
        serve_bare(int(sys.argv[2]))
    else:
        sys.exit(main())
