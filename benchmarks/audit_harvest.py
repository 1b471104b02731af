"""A full token harvest against a local target, timed: the demo shop on loopback, then
``sessionward audit --harvest full`` (20,000 tokens) with its progress bar and HTML report.

    .venv/bin/python benchmarks/audit_harvest.py [--samples 20000] [--concurrency 4]
                                                 [--html audit-harvest.html]

The demo shop (``sessionward.service``, SQLite in a temporary directory, plain HTTP on
127.0.0.1) gets a user ``alice``; each token costs two requests there (the shop page for the
form's anti-CSRF field, then the form post that starts a session). The auditor runs in this
process, the shop in a thread of it: both share the machine's cores, as they would on a
laptop. Prints the wall time of the audit command, which includes the analysis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from argon2 import PasswordHasher

from sessionward.cli import main
from sessionward.service import ServiceConfig, create_app
from sessionward.service.state import UserRow

PASSWORD = "wonderland-tea-party"  # noqa: S105 - the throwaway account of this local shop
SCENARIO = """
[session]
cookie = "__Host-shop"

[login]
form = "/demo/login"

[authenticated]
path = "/demo/account"
contains = "Two-step verification"

[harvest]
method = "POST"
path = "/demo/cart/add"
form = { item = "tea" }
fields_from = "/demo/"
"""


def run(samples: int, concurrency: int, html: str) -> None:
    directory = Path(tempfile.mkdtemp(prefix="audit-harvest-"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # Every sample is a new guest session from one address: no limit on them.
    config = ServiceConfig(
        store=str(directory / "shop.db"), public_url=base, admin=False, demo_guest_limit=False
    )
    app = create_app(config)
    runtime = app.state.runtime
    row = UserRow("demo", "alice", PasswordHasher().hash(PASSWORD), None, time.time())
    runtime.state.add_user(row)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    (directory / "shop.toml").write_text(SCENARIO)
    os.environ["SESSIONWARD_AUDIT_USER"] = "alice"
    os.environ["SESSIONWARD_AUDIT_PASSWORD"] = PASSWORD
    started = time.perf_counter()
    status = main([
        "audit", base, "--scenario", str(directory / "shop.toml"), "--only", "harvest",
        "--samples", str(samples), "--rate", "0", "--concurrency", str(concurrency),
        "--allow-load", "--html", html, "--quiet",
    ])  # fmt: skip
    elapsed = time.perf_counter() - started
    server.should_exit = True
    thread.join(10)
    asyncio.run(app.state.runtime.close())
    print(f"{samples} tokens in {elapsed:.1f} s (exit status {status}); report: {html}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--html", default="audit-harvest.html")
    args = parser.parse_args()
    run(args.samples, args.concurrency, args.html)
