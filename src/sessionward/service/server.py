"""How ``sessionward serve`` runs uvicorn: one write per response, no access log by default.

Stock uvicorn writes an HTTP/1.1 response in two socket writes, the status line and headers
when the app sends ``http.response.start`` and the body when it sends
``http.response.body``: two ``send`` system calls and, on a connection with ``TCP_NODELAY``
(uvloop sets it), two TCP segments the client must take in. For a small JSON answer such as
the validate endpoint's, that second write costs about as much as everything the service
itself does. :func:`http_protocol` returns uvicorn's httptools protocol with its transport
wrapped in :class:`CoalescingTransport`, which holds the writes made during one turn of the
event loop and hands them to the socket as one write at the end of that turn
(``loop.call_soon``). Nothing waits longer than that turn: a streamed response (the admin
page's server-sent events) still goes out chunk by chunk as the app sends it, and more than
``FLUSH_AT`` bytes are written at once, so uvicorn's flow control sees the socket's real
buffer. ``close`` writes what is held first; ``abort`` drops it, as it drops the socket's.

Without httptools (``uvicorn[standard]`` installs it) uvicorn's own choice is used.
``benchmarks/bench_service.py`` serves every Python variant it compares with the same
settings; ``--stock-uvicorn`` there measures plain uvicorn.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["FLUSH_AT", "CoalescingTransport", "http_protocol", "uvicorn_options"]

FLUSH_AT = 64 * 1024


class CoalescingTransport(asyncio.Transport):
    """A write transport that merges the writes of one event-loop turn into one."""

    __slots__ = ("_held", "_held_bytes", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes | bytearray | memoryview] = []
        self._held_bytes = 0

    # -- writing -----------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        held = self._held
        if not held:
            self._loop.call_soon(self.flush)
        held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes >= FLUSH_AT:
            self.flush()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Write what is held now (one write)."""
        held = self._held
        if not held:
            return
        data = held[0] if len(held) == 1 else b"".join(held)
        held.clear()
        self._held_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._held_bytes + self._transport.get_write_buffer_size()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held.clear()
        self._held_bytes = 0
        self._transport.abort()

    # -- everything else is the socket's -------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()


_PROTOCOL: type[asyncio.Protocol] | None = None


def http_protocol() -> type[asyncio.Protocol] | str:
    """uvicorn's httptools protocol writing through :class:`CoalescingTransport`, or
    ``"auto"`` when httptools is not installed."""
    global _PROTOCOL
    if _PROTOCOL is None:
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        except ImportError:
            return "auto"

        class CoalescingHttpToolsProtocol(HttpToolsProtocol):
            def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
                super().connection_made(CoalescingTransport(transport, self.loop))

        _PROTOCOL = CoalescingHttpToolsProtocol
    return _PROTOCOL


def uvicorn_options(*, coalesce: bool = True, access_log: bool = False) -> dict[str, Any]:
    """The uvicorn settings of ``sessionward serve`` that bear on speed: uvloop when installed
    (uvicorn's ``auto``), the protocol above, and the access log off unless asked for (its
    record per request costs about half as much again as the whole validate request; see
    docs/service.md)."""
    return {
        "loop": "auto",
        "http": http_protocol() if coalesce else "auto",
        "access_log": access_log,
    }
