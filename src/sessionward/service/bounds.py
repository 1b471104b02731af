"""Bounds on every request, checked before the service reads it.

:class:`RequestBounds` wraps the whole service. It answers at once, without calling the app,
when the header block is too large or has too many lines (431), the URL is too long (414), or
``Content-Length`` is malformed (400) or over the body limit (413). A body without a length
(chunked) is counted as it arrives: the read that crosses the limit answers 413 and the app
sees the client disconnect. Nothing past the limit is ever buffered.

The header bound here refuses what the server has already parsed: uvicorn's httptools parser
reads a whole header block first, so an exposed service sits behind a proxy that bounds
headers (see ``docs/throttling.md``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_FORM_BYTES",
    "MAX_FORM_FIELDS",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_URL_BYTES",
    "RequestBounds",
]

#: Header names and values together; browsers send a few KiB, cookies included.
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADERS = 100
#: Path and query string.
MAX_URL_BYTES = 8 * 1024
#: Every body: the API's JSON (``sessionward.service.api.MAX_BODY``) is the largest.
MAX_BODY_BYTES = 64 * 1024
#: The admin page's and the demo shop's forms hold a handful of short fields.
MAX_FORM_BYTES = 16 * 1024
MAX_FORM_FIELDS = 100

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestBounds:
    """ASGI middleware: see the module docstring. WebSocket and lifespan scopes pass."""

    def __init__(self, app: ASGIApp, *, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await _answer(scope, send, *refusal)
            return
        await _Cut(self.app, self.max_body).run(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if len(headers) > MAX_HEADERS:
            return 431, "headers_too_large", f"more than {MAX_HEADERS} header lines"
        if sum(len(name) + len(value) for name, value in headers) > MAX_HEADER_BYTES:
            return 431, "headers_too_large", f"headers exceed {MAX_HEADER_BYTES} bytes"
        if len(scope.get("raw_path") or b"") + len(scope["query_string"]) > MAX_URL_BYTES:
            return 414, "uri_too_long", f"the URL exceeds {MAX_URL_BYTES} bytes"
        lengths = [value for name, value in headers if name.lower() == b"content-length"]
        if lengths:
            if len(set(lengths)) != 1 or not lengths[0].isdigit() or len(lengths[0]) > 18:
                return 400, "invalid_request", "Content-Length is not a byte count"
            if int(lengths[0]) > self.max_body:
                return 413, "request_too_large", f"body exceeds {self.max_body} bytes"
        return None


class _Cut:
    """One request whose body is counted as it is read. The read that crosses the limit
    answers 413 itself (unless the app has started answering) and tells the app the client
    is gone, so every reader, however deeply mounted, stops the same way; what the app
    answers or raises after that goes nowhere."""

    __slots__ = ("answered", "app", "limit", "seen", "started")

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit
        self.seen = 0
        self.started = self.answered = False

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Message:
            if self.seen > self.limit:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                self.seen += len(message.get("body", b""))
                if self.seen > self.limit:
                    if not self.started:
                        self.answered = self.started = True
                        text = f"body exceeds {self.limit} bytes"
                        await _answer(scope, send, 413, "request_too_large", text)
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if self.answered:
                return
            self.started = self.started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not self.answered:
                raise


async def _answer(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    """The API's error shape under ``/v1`` and for machines; plain text for the pages."""
    path: str = scope.get("path", "")
    if path.startswith(("/admin", "/demo")):
        body, kind = message.encode(), b"text/plain; charset=utf-8"
    else:
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        kind = b"application/json"
    headers = [
        (b"content-type", kind),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
