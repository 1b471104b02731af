"""Mount a receiver in any WSGI application (Flask, Django, ...)::

    from sessionward.signals import wsgi
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {
        "/oidc/backchannel-logout": wsgi.receiver_app(logout_receiver)})

or call ``receiver.handle(body, content_type)`` from a view and copy the
:class:`~sessionward.signals.reply.Reply` into the framework's response (see docs/events.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from sessionward.signals._sync.receiver import MAX_BODY, BackchannelLogout, SsfReceiver
from sessionward.signals.reply import Reply, json_reply

__all__ = ["receiver_app"]

StartResponse = Callable[..., Any]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def receiver_app(receiver: BackchannelLogout | SsfReceiver) -> App:
    """A WSGI application that hands each ``POST`` to ``receiver``."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            reply = json_reply(405, {"error": "method_not_allowed"})
            return _send(
                start_response, reply._replace(headers=(*reply.headers, ("allow", "POST")))
            )
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            return _send(start_response, json_reply(413, {"error": "invalid_request"}))
        body = environ["wsgi.input"].read(length) if length else b""
        content_type = environ.get("CONTENT_TYPE")
        if isinstance(receiver, BackchannelLogout):
            reply = receiver.handle(body, content_type)
        else:
            reply = receiver.handle(body, content_type, environ.get("HTTP_AUTHORIZATION"))
        return _send(start_response, reply)

    return app


def _send(start_response: StartResponse, reply: Reply) -> list[bytes]:
    status = f"{reply.status} {HTTPStatus(reply.status).phrase}"
    headers = [*reply.headers, ("content-length", str(len(reply.body)))]
    start_response(status, headers)
    return [reply.body]
