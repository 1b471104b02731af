"""Webhook delivery throughput and the cost of an idle round, on SQLite, to a loopback
receiver (a plain ``http.server`` answering 204) in a thread of this process.

    .venv/bin/python benchmarks/bench_webhooks.py [--events 2000] [--endpoints 1]

Appends ``--events`` events to a SQLite event log, registers ``--endpoints`` endpoints on the
same file, then runs delivery rounds until every endpoint has every event; prints deliveries
per second (each one a signed POST, answered, its attempt recorded) and the time of one round
with nothing to deliver (claim, read the log, release: what every process pays per second
per endpoint while idle).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sessionward.core.events import SessionRevoked
from sessionward.signals.delivery import Deliverer
from sessionward.signals.webhook_endpoints import KIND, WebhookRenderer, create_webhook
from sessionward.stores.consumers import SQLiteConsumerStore
from sessionward.stores.eventlog.sqlite import SQLiteEventLog
from sessionward.testing import FakeClock


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--endpoints", type=int, default=1)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        log, store, clock = SQLiteEventLog(path), SQLiteConsumerStore(path), FakeClock()
        for _ in range(args.endpoints):
            create_webhook(store, log, url, application="default", now=clock.now())
        now = clock.now()
        log.append(
            [
                {**SessionRevoked(f"s{i}", "default/u", now).to_dict(), "application": "default"}
                for i in range(args.events)
            ]
        )
        engine = Deliverer(log, store, {KIND: WebhookRenderer()}, clock=clock)
        started = time.perf_counter()
        delivered = 0
        while delivered < args.events * args.endpoints:
            delivered += engine.run_once()
        elapsed = time.perf_counter() - started
        idle = []
        for _ in range(200):
            begin = time.perf_counter()
            engine.run_once()
            idle.append(time.perf_counter() - begin)
        engine.stop()
        store.close()
        log.close()
    server.shutdown()
    idle.sort()
    print(f"delivered {delivered} events to {args.endpoints} endpoint(s) in {elapsed:.2f} s:"
          f" {delivered / elapsed:,.0f} deliveries/s")  # fmt: skip
    print(f"idle round (claim + read + release, {args.endpoints} endpoint(s)):"
          f" median {idle[len(idle) // 2] * 1e3:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
