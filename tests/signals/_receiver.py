"""A real HTTP webhook receiver on a loopback port that can go down and come back on the same
port; it checks every message with the independent ``standardwebhooks`` package.

The port is held from the start (:func:`servers.reserved_port`): while the receiver is down,
deliveries are refused and no other process can take the port. :meth:`Receiver.close` lets it
go."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import standardwebhooks
from servers import reserved_port


class _Server(ThreadingHTTPServer):
    allow_reuse_port = True  # binds the port the receiver holds


class Receiver:
    def __init__(self) -> None:
        self._reserved = reserved_port()
        self.port: int = self._reserved.getsockname()[1]
        self.secret: str | None = None  # whsec_ text; set once the endpoint exists
        self.status = 204
        self.location: str | None = None
        self.received: list[dict[str, Any]] = []  # verified messages, in arrival order
        self.refused = 0  # messages whose signature did not verify
        self.hold: threading.Event | None = None  # answers wait until it is set
        #: False: keep messages unchecked (the test checks them on its own fake clock).
        self.check = True
        self.lock = threading.Lock()
        self._arrived = threading.Condition(self.lock)
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def ids(self) -> list[str]:
        with self.lock:
            return [m["id"] for m in self.received]

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.take(dict(self.headers.items()), body)
                if receiver.hold is not None:
                    receiver.hold.wait(10)
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("location", receiver.location)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def take(self, headers: dict[str, str], body: bytes) -> None:
        assert self.secret is not None
        try:
            payload = (
                standardwebhooks.Webhook(self.secret).verify(body, headers)
                if self.check
                else json.loads(body)
            )
        except standardwebhooks.WebhookVerificationError:
            with self.lock:
                self.refused += 1
            return
        lower = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            self.received.append(
                {"id": lower["webhook-id"], "payload": payload, "raw": body, "headers": lower}
            )
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` verified messages have arrived; ``False`` after ``timeout``."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.received) >= count, timeout)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def close(self) -> None:
        """Stop, and let the port go."""
        self.stop()
        self._reserved.close()

    def payloads(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(m["raw"]) for m in self.received]
