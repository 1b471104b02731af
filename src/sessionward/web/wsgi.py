"""WSGI middleware: the ASGI middleware's behaviour through the sync ``SessionManager``.

    app.wsgi_app = SessionMiddleware(app.wsgi_app, manager, csrf=CsrfPolicy([...], keys=[...]))
    handle = environ["sessionward"]           # SessionHandle: .session, .login(), .logout(), ...

Headers are added when the application calls ``start_response``; a session change made after
that (for example while a streamed body is being produced) cannot reach the client.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any, Literal

from sessionward.errors import InvalidToken, StoreError
from sessionward.manager._sync.manager import SessionManager
from sessionward.web._core import AdapterConfig, Outcome, Transport, log_refusal, merge_headers
from sessionward.web._http import environ_headers
from sessionward.web._sync.handle import SessionHandle
from sessionward.web.context import ContextCapture
from sessionward.web.cookies import CookiePolicy
from sessionward.web.csrf import CsrfPolicy

__all__ = ["SessionHandle", "SessionMiddleware"]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
_REASONS = {
    401: "Unauthorized",
    403: "Forbidden",
    413: "Content Too Large",
    503: "Service Unavailable",
}


class SessionMiddleware:
    """See the module docstring; the keyword arguments are those of ``AdapterConfig``."""

    def __init__(
        self,
        app: WSGIApp,
        manager: SessionManager,
        *,
        transport: Transport = "cookie",
        cookie: CookiePolicy | None = None,
        csrf: CsrfPolicy | Literal[False] | None = None,
        trusted_proxies: tuple[str, ...] | list[str] = (),
        unavailable_status: int = 503,
        realm: str = "sessionward",
        token_header: str = "session-token",  # noqa: S107 - a header name
    ) -> None:
        self.app = app
        self.manager = manager
        self.config = AdapterConfig(
            transport=transport,
            cookie=cookie or CookiePolicy(),
            csrf=csrf,
            context=ContextCapture(trusted_proxies),
            unavailable_status=unavailable_status,
            realm=realm,
            token_header=token_header,
        )

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        config, headers = self.config, environ_headers(environ)
        method = environ.get("REQUEST_METHOD", "GET")
        token = config.token_from(headers)
        context = config.context.capture(environ.get("REMOTE_ADDR"), headers)
        outcome = config.outcome(headers)
        session = None
        if token is not None:
            try:
                session = self.manager.validate(token, context=context)
                outcome.minted(session, self.manager.clock.now())
            except InvalidToken:
                outcome.rejected = True
            except StoreError:
                return self._plain(start_response, config.unavailable_status, "store unavailable")
        form = None
        if config.wants_form(method, headers):
            form = _read_body(environ, config.max_form_bytes)
            if form is None:
                return self._plain(start_response, 413, "form too large")
        reason = config.csrf_refusal(method, headers, session.id if session else None, form)
        if reason is not None:
            log_refusal("csrf", reason)
            return self._plain(start_response, 403, "cross-site request refused", outcome)
        environ["sessionward"] = SessionHandle(
            self.manager, config, session, context, outcome, presented=token is not None
        )
        return self._run(environ, start_response, outcome)

    def _run(
        self, environ: Environ, start_response: StartResponse, outcome: Outcome
    ) -> Iterable[bytes]:
        started = False

        def start_with_session(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            nonlocal started
            started = True
            merged = merge_headers(list(headers), self.config.response_headers(outcome))
            return start_response(status, merged, *exc)

        try:
            return self.app(environ, start_with_session)
        except StoreError:
            if started:
                raise
            return self._plain(start_response, self.config.unavailable_status, "store unavailable")

    def _plain(
        self, start_response: StartResponse, status: int, text: str, outcome: Outcome | None = None
    ) -> list[bytes]:
        headers = [("content-type", "text/plain; charset=utf-8"), ("cache-control", "no-store")]
        if status == 401:
            headers += list(self.config.challenge().items())
        if outcome is not None:
            headers = merge_headers(headers, self.config.response_headers(outcome))
        start_response(f"{status} {_REASONS[status]}", headers)
        return [text.encode()]


def _read_body(environ: Environ, limit: int) -> bytes | None:
    """Read the (bounded) body and put it back for the application; ``None`` if too large."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not 0 <= length <= limit:
        return None
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body
