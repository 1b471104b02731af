"""The validate endpoint's fast path: ``POST /v1/sessions/validate`` served as raw ASGI.

Validate is the call a backend makes on every one of its own requests, so it is the one
endpoint whose cost matters. :class:`ServiceApp` hands exactly that method and path to
:class:`FastValidate` before Starlette's middleware, router, exception handlers, ``Request``
and ``Response`` objects; everything else goes the ordinary way, including any other method
on that path (405, listed by the router), a service mounted under a ``root_path``, and an
app given extra middleware (``add_middleware``), where the same path is routed to the
``Request``-based endpoint of ``sessionward.service.api``.

Shared with that routed endpoint, so both answer alike byte for byte: the API-key check
(``authenticate``), body parsing (``parse_body``), the answer itself
(``Api.validate_answer``: decision, session, rotated token, step-up, events, the admit check),
error mapping (``mapped``, ``error_response``) and the metrics. The fast path's own part is
small: finding two headers in the scope, reading the body (chunked or not, at most
``MAX_BODY`` bytes), and sending the 200 answer with pre-built headers. ``tests/service/
test_fast_path.py`` sends the same raw requests to both and compares the answers.

A client that disconnects before its body is complete gets no answer and is not counted
(the routed endpoint would try to answer 500 to nobody).
"""

from __future__ import annotations

import logging
from time import perf_counter

from starlette.types import Receive, Scope, Send

from sessionward.service.api import (
    CHALLENGE,
    MAX_BODY,
    REFUSED,
    Api,
    ApiError,
    authenticate,
    error_response,
    mapped,
    parse_body,
)
from sessionward.service.runtime import Runtime

__all__ = ["VALIDATE_PATH", "FastValidate"]

VALIDATE_PATH = "/v1/sessions/validate"

_log = logging.getLogger("sessionward.service")
_NO_STORE = (b"cache-control", b"no-store")
_JSON = (b"content-type", b"application/json")
_FORBIDDEN = "this operation needs a key of scope 'validate'"
_TOO_LARGE = f"body exceeds {MAX_BODY} bytes"


class _Gone(Exception):
    """The client disconnected before its body was complete."""


async def _read_body(receive: Receive) -> bytes | bytearray:
    """The whole request body; ``ApiError`` 413 as soon as it exceeds ``MAX_BODY``."""
    raw: bytes | bytearray = b""
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk: bytes = message.get("body", b"")
            if not message.get("more_body", False) and not raw:
                if len(chunk) > MAX_BODY:
                    raise ApiError(413, "request_too_large", _TOO_LARGE)
                return chunk  # the common case: one message, no copy
            if not isinstance(raw, bytearray):
                raw = bytearray()
            raw += chunk
            if len(raw) > MAX_BODY:
                raise ApiError(413, "request_too_large", _TOO_LARGE)
            if not message.get("more_body", False):
                return raw
        elif kind == "http.disconnect":
            raise _Gone


class FastValidate:
    """``POST /v1/sessions/validate`` as an ASGI callable (``http`` scopes only)."""

    __slots__ = ("api", "metrics", "runtime")

    def __init__(self, runtime: Runtime, api: Api) -> None:
        self.runtime = runtime
        self.api = api
        self.metrics = runtime.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        authorization = content_type = None
        for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
            if name == b"authorization":
                if authorization is None:
                    authorization = value
            elif name == b"content-type" and content_type is None:
                content_type = value
        try:
            key = authenticate(
                self.runtime, "" if authorization is None else authorization.decode("latin-1")
            )
            if not key.allows("validate"):
                raise ApiError(403, "forbidden", _FORBIDDEN)
            raw = await _read_body(receive)
            body = parse_body(raw, "" if content_type is None else content_type.decode("latin-1"))
            answer = await self.api.validate_answer(body)
        except _Gone:
            return
        except Exception as exc:
            error = mapped(exc)
            if error.code in REFUSED:  # as the routed endpoint logs it
                client = scope.get("client") or ("-",)
                _log.warning("API validate refused: %s, client %s", error.code, client[0])
            headers = CHALLENGE if error.code == "unauthenticated" else None
            response = error_response(error.status, error.code, error.message, headers)
            self.metrics.observe("validate", error.status, perf_counter() - started)
            await response(scope, receive, send)
            return
        self.metrics.observe("validate", 200, perf_counter() - started)
        length = (b"content-length", str(len(answer)).encode("ascii"))
        await send(
            {"type": "http.response.start", "status": 200, "headers": [_NO_STORE, length, _JSON]}
        )
        await send({"type": "http.response.body", "body": answer})
