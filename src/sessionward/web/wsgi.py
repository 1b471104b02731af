"""WSGI middleware: the ASGI middleware's behaviour through the sync ``SessionManager``.

    app.wsgi_app = SessionMiddleware(app.wsgi_app, manager, csrf=CsrfPolicy([...], keys=[...]))
    handle = environ["sessionward"]           # SessionHandle: .session, .login(), .logout(), ...
    handle.mapping["cart"] = ["book"]         # the session data as a dict, written back below

Changes to ``handle.mapping`` (``flask.session`` under Flask) are written back and headers are
added when the application calls ``start_response``; a session change made after that (for
example while a streamed body is being produced) cannot reach the client.

``binding=`` and ``dpop=`` bind sessions to a key the client keeps, as in the ASGI middleware
(see :mod:`sessionward.web.binding`); ``device_signal=`` serves ``device.js`` and reads the
device signal, as there too (:mod:`sessionward.web.device`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any, Literal

from sessionward.core.dpop import DpopPolicy
from sessionward.errors import InvalidProof, InvalidToken, RiskChallenge, StoreError
from sessionward.manager._sync.manager import SessionManager
from sessionward.manager._sync.proof import ProofCheck
from sessionward.web._challenge import challenge_body, challenge_redirect
from sessionward.web._core import AdapterConfig, Outcome, Transport, log_refusal, merge_headers
from sessionward.web._http import Reply, authorization, environ_headers
from sessionward.web._sync.binding import DeviceGate
from sessionward.web._sync.handle import SessionHandle
from sessionward.web.binding import DeviceBinding
from sessionward.web.context import ContextCapture
from sessionward.web.cookies import CookiePolicy
from sessionward.web.csrf import CsrfPolicy
from sessionward.web.device import SCRIPT_HEADERS, DeviceSignal, device_script

__all__ = ["SessionHandle", "SessionMiddleware", "open_handle"]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
_REASONS = {
    200: "OK",
    303: "See Other",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    405: "Method Not Allowed",
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
        binding: DeviceBinding | None = None,
        dpop: DpopPolicy | None = None,
        origin: str | None = None,
        step_up_paths: tuple[str, ...] | list[str] = (),
        device_signal: DeviceSignal | None = None,
    ) -> None:
        self.app = app
        self.manager = manager
        self.config = AdapterConfig(
            transport=transport,
            cookie=cookie or CookiePolicy(),
            csrf=csrf,
            context=ContextCapture(trusted_proxies, device_signal),
            unavailable_status=unavailable_status,
            realm=realm,
            token_header=token_header,
            remember_by_default=remember_by_default,
            binding=binding,
            dpop=dpop,
            origin=origin,
            step_up_paths=tuple(step_up_paths),
        )
        self.gate = None if binding is None and dpop is None else DeviceGate(manager, self.config)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        config, headers = self.config, environ_headers(environ)
        method = environ.get("REQUEST_METHOD", "GET")
        device = config.context.device
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if device is not None and path == device.path and method in ("GET", "HEAD"):
            start_response("200 OK", list(SCRIPT_HEADERS))
            return [device_script() if method == "GET" else b""]
        url = config.url(environ.get("wsgi.url_scheme", "http"), headers.get("host"), path)
        proof = None if self.gate is None else self.gate.precondition(headers, method, url)
        try:
            handle = open_handle(self.manager, config, environ, headers, proof=proof)
        except InvalidProof as exc:  # a bound token without its key's proof: untouched
            log_refusal("dpop", exc.reason)
            return self._plain(start_response, 401, "proof of possession refused", gate=exc)
        except StoreError:
            return self._plain(start_response, config.unavailable_status, "store unavailable")
        except RiskChallenge as challenge:  # sign in again; the session survives
            return self._challenged(start_response, challenge, environ, headers, method)
        if self.gate is not None:
            try:
                reply = self._bind(self.gate, handle, headers, method, (path, url, proof))
            except InvalidProof as exc:
                log_refusal("dpop", exc.reason)
                return self._plain(start_response, 401, "proof of possession refused", gate=exc)
            except StoreError:
                return self._plain(start_response, config.unavailable_status, "store unavailable")
            if reply is not None:  # with the outcome: a token renewed by this validation
                extra = config.response_headers(handle.outcome)
                status = f"{reply.status} {_REASONS[reply.status]}"
                start_response(status, merge_headers(reply.headers, extra))
                return [reply.body]
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

    def _bind(
        self,
        gate: DeviceGate,
        handle: SessionHandle,
        headers: dict[str, str],
        method: str,
        where: tuple[str, str, ProofCheck | None],
    ) -> Reply | None:
        """Answer a binding endpoint, or check the request's binding in place (``where``: the
        path, the URL and the proof check the validation ran)."""
        path, url, proof = where
        session = handle._current()
        route = gate.route(path)
        if route is not None:
            return gate.endpoint(route, method, headers, session, url)
        if self.config.cookie_mode:
            handle._session, handle.proven = gate.admit(session, headers)
        else:
            jkt = gate.dpop(session, authorization(headers), method, headers, url, proof)
            handle.proof_jkt, handle.proven = jkt, jkt is not None and session is not None
        return None

    def _run(
        self, environ: Environ, start_response: StartResponse, handle: SessionHandle
    ) -> Iterable[bytes]:
        started = False

        def start_with_session(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            nonlocal started
            handle.commit()  # a no-op when the framework (Flask) already wrote its session back
            started = True
            extra = self.config.response_headers(handle.outcome)
            if self.gate is not None:
                extra += self.gate.after(handle._current(), handle.outcome)
            merged = merge_headers(list(headers), extra)
            return start_response(status, merged, *exc)

        try:
            return self.app(environ, start_with_session)
        except StoreError:
            if started:
                raise
            return self._plain(start_response, self.config.unavailable_status, "store unavailable")

    def _challenged(
        self,
        start_response: StartResponse,
        challenge: RiskChallenge,
        environ: Environ,
        headers: dict[str, str],
        method: str,
    ) -> list[bytes]:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        paths = self.config.step_up_paths
        location = challenge_redirect(paths, method, path, query, headers)
        if location is None:
            kind, body = challenge_body(challenge, headers)
            return self._plain(start_response, 401, body.decode(), content_type=kind)
        start_response("303 See Other", [("location", location), ("cache-control", "no-store")])
        return [b""]

    def _plain(
        self,
        start_response: StartResponse,
        status: int,
        text: str,
        outcome: Outcome | None = None,
        content_type: str = "text/plain; charset=utf-8",
        *,
        gate: InvalidProof | None = None,
    ) -> list[bytes]:
        headers = [("content-type", content_type), ("cache-control", "no-store")]
        if gate is not None and self.gate is not None:
            headers = merge_headers(headers, self.gate.dpop_refusal(gate))
        elif status == 401:
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
    proof: ProofCheck | None = None,
) -> SessionHandle:
    """Validate the request's token (an invalid one is noted for expiry, never raised) and
    return the request's handle. ``StoreError`` propagates: the caller fails closed. A
    ``RiskChallenge`` propagates too, unless ``challenged_runs_without`` or the path is one of
    the configured ``step_up_paths``: the request then runs without the session (which
    survives, its cookie untouched), the challenge in the handle's ``challenge`` and in
    ``environ["sessionward.challenge"]`` for the application's sign-in page. ``proof`` is
    the key-bound session's proof check (``InvalidProof`` propagates, nothing written)."""
    headers = environ_headers(environ) if headers is None else headers
    token = config.token_from(headers)
    context = config.context.capture(environ.get("REMOTE_ADDR"), headers)
    outcome = config.outcome(headers)
    session, challenge = None, None
    if token is not None:
        try:
            session = manager.validate(token, context=context, proof=proof)
            outcome.minted(session, manager.clock.now())
        except InvalidProof:
            raise
        except InvalidToken:
            outcome.rejected = True
        except RiskChallenge as challenged:
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            if not (challenged_runs_without or config.reaches_when_challenged(path)):
                raise
            environ["sessionward.challenge"] = challenge = challenged
    return SessionHandle(
        manager,
        config,
        session,
        context,
        outcome,
        presented=token is not None,
        challenge=challenge,
        challenged_token=token if challenge is not None else None,
        challenged_proof=proof,
    )


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
