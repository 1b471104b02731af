"""WSGI middleware: the ASGI middleware's behaviour through the sync ``SessionManager``.

    app.wsgi_app = SessionMiddleware(app.wsgi_app, manager, csrf=CsrfPolicy([...], keys=[...]))
    handle = environ["sessionward"]           # SessionHandle: .session, .login(), .logout(), ...
    handle.mapping["cart"] = ["book"]         # the session data as a dict, written back below

Changes to ``handle.mapping`` (``flask.session`` under Flask) are written back and headers are
added when the application calls ``start_response``; a session change made after that (for
example while a streamed body is being produced) cannot reach the client.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any, Literal

from sessionward.errors import InvalidToken, RiskChallenge, StoreError
from sessionward.manager._sync.manager import SessionManager
from sessionward.web._challenge import challenge_body
from sessionward.web._core import AdapterConfig, Outcome, Transport, log_refusal, merge_headers
from sessionward.web._http import environ_headers
from sessionward.web._sync.handle import SessionHandle
from sessionward.web.context import ContextCapture
from sessionward.web.cookies import CookiePolicy
from sessionward.web.csrf import CsrfPolicy

__all__ = ["SessionHandle", "SessionMiddleware", "open_handle"]

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
        remember_by_default: bool = False,
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
            remember_by_default=remember_by_default,
        )

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        config, headers = self.config, environ_headers(environ)
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            handle = open_handle(self.manager, config, environ, headers)
        except StoreError:
            return self._plain(start_response, config.unavailable_status, "store unavailable")
        except RiskChallenge as challenge:  # sign in again; the session survives
            kind, body = challenge_body(challenge, headers)
            return self._plain(start_response, 401, body.decode(), content_type=kind)
        session, outcome = handle._current(), handle.outcome  # not .session: no Vary for this look
        form = None
        if config.wants_form(method, headers):
            form = _read_body(environ, config.max_form_bytes)
            if form is None:
                return self._plain(start_response, 413, "form too large")
        reason = config.csrf_refusal(method, headers, session.id if session else None, form)
        if reason is not None:
            log_refusal("csrf", reason)
            return self._plain(start_response, 403, config.refusal_message(reason), outcome)
        environ["sessionward"] = handle
        return self._run(environ, start_response, handle)

    def _run(
        self, environ: Environ, start_response: StartResponse, handle: SessionHandle
    ) -> Iterable[bytes]:
        started = False

        def start_with_session(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            nonlocal started
            handle.commit()  # a no-op when the framework (Flask) already wrote its session back
            started = True
            merged = merge_headers(list(headers), self.config.response_headers(handle.outcome))
            return start_response(status, merged, *exc)

        try:
            return self.app(environ, start_with_session)
        except StoreError:
            if started:
                raise
            return self._plain(start_response, self.config.unavailable_status, "store unavailable")

    def _plain(
        self,
        start_response: StartResponse,
        status: int,
        text: str,
        outcome: Outcome | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> list[bytes]:
        headers = [("content-type", content_type), ("cache-control", "no-store")]
        if status == 401:
            headers += list(self.config.challenge().items())
        if outcome is not None:
            headers = merge_headers(headers, self.config.response_headers(outcome))
        start_response(f"{status} {_REASONS[status]}", headers)
        return [text.encode()]


def open_handle(
    manager: SessionManager,
    config: AdapterConfig,
    environ: Environ,
    headers: dict[str, str] | None = None,
    *,
    challenged_runs_without: bool = False,
) -> SessionHandle:
    """Validate the request's token (an invalid one is noted for expiry, never raised) and
    return the request's handle. ``StoreError`` propagates: the caller fails closed. A
    ``RiskChallenge`` propagates too, unless ``challenged_runs_without``: the request then runs
    without the session (which survives, its cookie untouched) and the challenge is left in
    ``environ["sessionward.challenge"]`` for the application's sign-in page."""
    headers = environ_headers(environ) if headers is None else headers
    token = config.token_from(headers)
    context = config.context.capture(environ.get("REMOTE_ADDR"), headers)
    outcome = config.outcome(headers)
    session = None
    if token is not None:
        try:
            session = manager.validate(token, context=context)
            outcome.minted(session, manager.clock.now())
        except InvalidToken:
            outcome.rejected = True
        except RiskChallenge as challenge:
            if not challenged_runs_without:
                raise
            environ["sessionward.challenge"] = challenge
    return SessionHandle(manager, config, session, context, outcome, presented=token is not None)


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
