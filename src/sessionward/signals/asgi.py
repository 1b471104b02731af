"""Mount a receiver in any ASGI application (Starlette, FastAPI, Quart, ...)::

    from sessionward.signals import asgi
    app.mount("/oidc/backchannel-logout", asgi.receiver_app(logout_receiver))
    app.mount("/ssf/events", asgi.receiver_app(ssf_receiver))

``POST`` only (``405`` otherwise); the body is read up to the receiver's limit (``413``
past it). Everything else is the receiver's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sessionward.signals._async.receiver import MAX_BODY, AsyncBackchannelLogout, AsyncSsfReceiver
from sessionward.signals.reply import Reply, json_reply

__all__ = ["receiver_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def receiver_app(receiver: AsyncBackchannelLogout | AsyncSsfReceiver) -> App:
    """An ASGI application that hands each ``POST`` to ``receiver``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            reply = json_reply(405, {"error": "method_not_allowed"})
            await _send(send, reply._replace(headers=(*reply.headers, ("allow", "POST"))))
            return
        body = await _body(receive)
        if body is None:
            await _send(send, json_reply(413, {"error": "invalid_request"}))
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        content_type = headers.get("content-type")
        if isinstance(receiver, AsyncBackchannelLogout):
            reply = await receiver.handle(body, content_type)
        else:
            reply = await receiver.handle(body, content_type, headers.get("authorization"))
        await _send(send, reply)

    return app


async def _body(receive: Receive) -> bytes | None:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None  # nobody to answer; nothing is applied
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            return None
        if not message.get("more_body", False):
            return bytes(body)


async def _send(send: Send, reply: Reply) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    headers.append((b"content-length", str(len(reply.body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})
