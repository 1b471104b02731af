"""``sessionward.service.server``: one socket write per event-loop turn, nothing held longer,
streamed responses still stream; and ``sessionward serve``'s access-log switch."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionward.service.server import FLUSH_AT, CoalescingTransport, http_protocol

from ._server import serve, wait_until_ok


def _pending(sock: socket.socket) -> bytes:
    """What the peer can read right now, without waiting."""
    sock.setblocking(False)
    try:
        return sock.recv(1 << 20)
    except BlockingIOError:
        return b""


async def _connected() -> tuple[CoalescingTransport, asyncio.Transport, socket.socket]:
    """A real TCP transport of the running loop, wrapped; and the peer's socket."""
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    listener.close()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, accepted)
    return CoalescingTransport(transport, loop), transport, client


def test_writes_of_one_turn_leave_as_one_at_its_end() -> None:
    async def run() -> None:
        wrapped, _, peer = await _connected()
        wrapped.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        wrapped.write(b"")
        wrapped.write(b"ok")
        assert wrapped.get_write_buffer_size() == 40
        assert _pending(peer) == b""  # held until the loop turns
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert _pending(peer) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        assert wrapped.get_write_buffer_size() == 0
        wrapped.writelines([b"a", b"b"])
        wrapped.close()  # writes what is held first
        await asyncio.sleep(0.05)  # the transport closes on a later turn
        peer.setblocking(True)
        peer.settimeout(5)
        assert peer.recv(100) == b"ab"
        assert peer.recv(100) == b""  # then the end of the stream
        peer.close()

    asyncio.run(run())


def test_large_writes_are_not_held() -> None:
    async def run() -> None:
        wrapped, _, peer = await _connected()
        wrapped.write(b"x" * 10)
        wrapped.write(b"y" * FLUSH_AT)
        time.sleep(0.05)  # blocking: the loop does not turn, so this was written at once
        received = bytearray()
        while chunk := _pending(peer):
            received += chunk
        assert received == b"x" * 10 + b"y" * FLUSH_AT
        wrapped.abort()
        peer.close()

    asyncio.run(run())


def test_abort_drops_what_is_held() -> None:
    async def run() -> None:
        wrapped, transport, peer = await _connected()
        wrapped.write(b"never sent")
        wrapped.abort()
        await asyncio.sleep(0.05)
        assert transport.is_closing()
        peer.settimeout(5)
        with contextlib.suppress(ConnectionResetError):  # an abort may reset: nothing was sent
            assert peer.recv(100) == b""
        peer.close()

    asyncio.run(run())


def test_the_serving_protocol_is_httptools_with_the_wrapper() -> None:
    protocol = http_protocol()
    assert not isinstance(protocol, str)
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert issubclass(protocol, HttpToolsProtocol)


def _streaming_app(release: threading.Event) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/stream":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")],
                }
            )
            await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
            while not release.is_set():
                await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": b"data: 2\n\n", "more_body": False})
            return
        body = scope["path"].encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def test_a_stream_goes_out_as_it_is_sent() -> None:
    release = threading.Event()
    with serve(_streaming_app(release)) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            while b"data: 1\n\n" not in received:
                received += sock.recv(4096)  # arrives while the app still waits
            assert received.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"data: 2" not in received
            release.set()
            while b"0\r\n\r\n" not in received:
                received += sock.recv(4096)
            assert b"data: 2\n\n" in received


def test_pipelined_requests_are_answered_in_order() -> None:
    with serve(_streaming_app(threading.Event())) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /third HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            received = b""
            while chunk := sock.recv(4096):
                received += chunk
    bodies = re.findall(rb"\r\n\r\n(/first|/second|/third)", received)
    assert bodies == [b"/first", b"/second", b"/third"]
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
