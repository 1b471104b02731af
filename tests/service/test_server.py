"""The service's HTTP server as it runs: streamed responses go out as they are sent,
pipelined requests are answered in order, and ``sessionward serve``'s access-log switch."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ._server import wait_until_ok
from .conftest import Service


def _post(path: str, key: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_pipelined_requests_are_answered_in_order(service: Service) -> None:
    issued = service.client.post(
        "/v1/sessions", json={"user_id": "pia"}, headers=service.auth("issue")
    )
    token = issued.json()["token"]
    key = service.keys["validate"]
    port = int(str(service.client.base_url).rstrip("/").rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(  # three requests in one write, before any answer
            _post("/v1/sessions/validate", key, json.dumps({"token": token}).encode())
            + _post("/v1/sessions/validate", key, b'{"token":"x"}')
            + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    bodies = re.findall(rb"\r\n\r\n(\{[^\r]*\})", received)
    assert [json.loads(b).get("decision", json.loads(b).get("status")) for b in bodies] == [
        "allow",
        "deny",
        "ok",
    ]
    assert received.count(b"HTTP/1.1 200 OK") == 3


@pytest.mark.parametrize("access_log", [False, True])
def test_serve_logs_requests_only_when_asked(tmp_path: Path, access_log: bool) -> None:
    argv = [sys.executable, "-m", "sessionward", "serve", "--port", "0", "--store", "s.db"]
    argv += ["--no-admin", "--no-demo", "--log-level", "info"]
    if access_log:
        argv.append("--access-log")
    process = subprocess.Popen(
        argv,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")},
    )
    assert process.stdout is not None
    try:
        base = None
        deadline = time.monotonic() + 30
        while base is None and time.monotonic() < deadline:
            found = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline())
            base = found.group(0) if found else None
        assert base is not None
        wait_until_ok(base + "/healthz")
        assert httpx.get(base + "/healthz?probe=1").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=15)
    assert "Application startup complete" in output  # info records are shown
    assert ('"GET /healthz?probe=1 HTTP/1.1" 200' in output) is access_log
