"""HTTP benchmark of the service's validate endpoint (by hand; not part of the test suite).

    .venv/bin/python benchmarks/bench_service.py [--duration 60] [--rounds 1] [--no-node]
        [--routed] [--stock-uvicorn]

Serves, one process each, 1 uvicorn worker, on loopback, and loads each with
``wrk -t2 -c64 -d<duration>s --latency``:

* ``service-validate``: ``POST /v1/sessions/validate`` of the sessionward service (API-key
  check, JSON body, ``AsyncSQLiteStore`` WAL file with 10k sessions; each request presents
  one of 1,000 valid tokens, picked at random by the wrk script). The default policy writes a
  session's ``last_seen`` at most once a minute (``touch_interval``); the 1,000 tokens are
  prepared so that these writes come steadily, about 17 a second, from the first second of
  the run, as under a steady real load (each write also empties the store's read cache);
* ``bare-starlette``: a Starlette endpoint that parses the same JSON body and answers a
  constant JSON document (no authentication, no store);
* ``service-routed`` (with ``--routed``): the service built with ``fast_validate=False``, so
  validate goes through Starlette's middleware and router like every other endpoint;
* ``express-redis`` (optional): Express 5 + express-session + connect-redis reading a
  session (from ``bench_http.py``), needs node/npm and a redis-server on 127.0.0.1:6379.

Every Python server of a run gets the same uvicorn settings (``uvicorn_settings``): those of
``sessionward serve`` (uvloop, httptools with each response written at once, no access log,
no proxy headers; see ``sessionward.service.server``), or with ``--stock-uvicorn`` uvicorn's
own httptools protocol, which writes headers and body separately. Besides
req/s the table gives each server's own CPU time per request (user + system, read from
``/proc/<pid>/stat`` around the measured run): on a shared, noisy machine it moves far less
than req/s, and its ratios say what the req/s ratios would be when each server has a core.

Any non-2xx answer or socket error fails the run (the service answers 200 for every
decision, so a denied token would not show here: the script checks one request first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench_http import free_port, spawn, start_node, tool, wait_for
from bench_http import wrk as wrk_get

SESSIONS = 10_000
TOKENS = 1_000

LUA = """
local tokens = {%s}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
request = function()
  local body = '{"token":"' .. tokens[math.random(#tokens)] .. '"}'
  return wrk.format(nil, nil, nil, body)
end
"""


def service_app(db: str, *, fast: bool = True) -> Any:
    from sessionward.service import ServiceConfig, create_app

    return create_app(ServiceConfig(store=db, admin=False, demo=False), fast_validate=fast)


def bare_app() -> Any:
    import json as _json

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def validate(request: Request) -> Response:
        body = _json.loads(await request.body())
        return JSONResponse({"decision": "allow", "token_length": len(body["token"])})

    return Starlette(routes=[Route("/v1/sessions/validate", validate, methods=["POST"])])


def uvicorn_settings(stock: bool) -> dict[str, Any]:
    """The one set of uvicorn options every served variant of a run gets: those of
    ``sessionward serve`` (``sessionward.service.server``: uvloop, httptools writing each
    response at once, no access log, no proxy headers), or with ``stock`` uvicorn's own
    httptools protocol (two writes per response) and otherwise the same."""
    import importlib.util

    from sessionward.service.server import uvicorn_options

    options = uvicorn_options(coalesce=not stock, access_log=False)
    fast_loop = importlib.util.find_spec("uvloop") is not None
    fast_http = importlib.util.find_spec("httptools") is not None
    options["loop"] = "uvloop" if fast_loop else "asyncio"
    if stock:
        options["http"] = "httptools" if fast_http else "h11"
    return {**options, "log_level": "warning", "proxy_headers": False, "workers": 1}


def serve(variant: str, port: int, db: str, stock: bool) -> None:
    import uvicorn

    if variant == "bare-starlette":
        app = bare_app()
    else:
        app = service_app(db, fast=variant == "service-validate")
    uvicorn.run(app, host="127.0.0.1", port=port, **uvicorn_settings(stock))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare(db: str) -> tuple[str, list[str]]:
    """Fill the store and the service state; returns a validate-scope key and tokens."""
    from sessionward import AsyncSessionManager, AsyncSQLiteStore, EventBus, Policy
    from sessionward.service.keys import create_key
    from sessionward.service.state import ServiceState
    from sessionward.testing import FakeClock

    async def fill() -> list[str]:
        # The tokens the load presents were last seen at times spread evenly over the past
        # touch interval, so their ``last_seen`` writes (one per token per interval) also
        # spread evenly over the run, as under a steady real load, instead of all falling
        # due together a minute after this preparation.
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


def post(port: int, key: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/sessions/validate",
        data=json.dumps({"token": token}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        result: dict[str, Any] = json.loads(response.read())
        return result


def wrk_post(port: int, script: Path, duration: int) -> tuple[float, str]:
    argv = [tool("wrk"), "-t2", "-c64", f"-d{duration}s", "--latency", "-s", str(script)]
    done = subprocess.run(  # noqa: S603 - our own fixed command
        [*argv, f"http://127.0.0.1:{port}/v1/sessions/validate"],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    )
    out = done.stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert found is not None, out
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    return float(found.group(1)), p99.group(1) if p99 else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description="HTTP benchmark of the validate endpoint")
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-node", action="store_true")
    parser.add_argument("--routed", action="store_true", help="also the service without fast path")
    parser.add_argument(
        "--stock-uvicorn", action="store_true", help="uvicorn's own protocol for every server"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="sessionward-bench-service-"))
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    node: tuple[subprocess.Popen[bytes], int, str] | None = None
    try:
        db = str(workdir / "service.db")
        key, tokens = prepare(db)
        script = workdir / "validate.lua"
        script.write_text(LUA % (",".join(f'"{t}"' for t in tokens), key))
        variants = ["service-validate", "bare-starlette"]
        if args.routed:
            variants.append("service-routed")
        settings = uvicorn_settings(args.stock_uvicorn)
        print(f"uvicorn settings (every Python server): {settings}", flush=True)
        mode = "stock" if args.stock_uvicorn else "sessionward"
        for variant in variants:
            port = free_port()
            process = spawn([sys.executable, __file__, "serve", variant, str(port), db, mode])
            wait_for(port, process)
            servers[variant] = (process, port)
        answer = post(servers["service-validate"][1], key, tokens[0])
        assert answer["decision"] == "allow", answer
        if not args.no_node:
            node = start_node(workdir)
        results: dict[str, list[float]] = {name: [] for name in servers}
        cpu: dict[str, list[float]] = {name: [] for name in servers}
        p99: dict[str, str] = {}
        if node is not None:
            results["express-redis"] = []
            cpu["express-redis"] = []
        for round_no in range(args.rounds):
            for name, (process, port) in servers.items():
                wrk_post(port, script, 2)  # warm-up
                before = cpu_seconds(process.pid)
                rate, p99[name] = wrk_post(port, script, args.duration)
                spent = cpu_seconds(process.pid) - before
                results[name].append(rate)
                cpu[name].append(spent / (rate * args.duration) * 1e6)
                print(
                    f"round {round_no + 1} {name}: {rate:,.0f} req/s,"
                    f" {cpu[name][-1]:.1f} us CPU/req",
                    flush=True,
                )
            if node is not None:
                wrk_get(node[1], node[2], 2)
                before = cpu_seconds(node[0].pid)
                rate = wrk_get(node[1], node[2], args.duration)
                spent = cpu_seconds(node[0].pid) - before
                results["express-redis"].append(rate)
                cpu["express-redis"].append(spent / (rate * args.duration) * 1e6)
                p99["express-redis"] = "?"
                print(
                    f"round {round_no + 1} express-redis: {rate:,.0f} req/s,"
                    f" {cpu['express-redis'][-1]:.1f} us CPU/req (node only, not redis-server)",
                    flush=True,
                )
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(10)
        if node is not None:
            node[0].terminate()
            node[0].wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in results.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    load = os.getloadavg()
    print(f"\nwrk -t2 -c64 -d{args.duration}s, {args.rounds} round(s), 0 errors")
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("| server | req/s median | min-max | p99 latency | CPU us/req |")
    print("|---|---:|---:|---:|---:|")
    for name, values in results.items():
        print(
            f"| {name} | {medians[name]:,.0f} | {min(values):,.0f}-{max(values):,.0f} "
            f"| {p99.get(name, '?')} | {cpu_medians[name]:.1f} |"
        )
    print()
    for other in ("bare-starlette", "service-routed", "express-redis"):
        if other in medians:
            print(
                f"service-validate / {other} = {medians['service-validate'] / medians[other]:.2f}"
                f" req/s; {cpu_medians[other] / cpu_medians['service-validate']:.2f}"
                " by CPU per request"
            )
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] == "stock")
    else:
        sys.exit(main())
