"""Pure ASGI middleware: works under Starlette, FastAPI and any ASGI 3 framework.

    app.add_middleware(SessionMiddleware, manager=manager, csrf=CsrfPolicy([...], keys=[...]))

    request.session["cart"] = ["book"]   # a dict, as with Starlette's own middleware
    request.session.clear()              # ends the session (server-side revoke, cookie expired)

    handle = request.state.sessionward        # or scope["sessionward"]
    handle.session               # Session or None
    await handle.login("alice")  # new token; the anonymous session's data carries over
    await handle.logout()        # server-side revoke, cookie expired, site data cleared

Per request: refuse a cross-site unsafe request (cookie transport), validate the presented
token (``None`` when absent or invalid), run the app, write back what it changed in
``request.session`` (``scope["session"]``, a :class:`~sessionward.web.mapping.SessionMapping`)
when the response starts, then add ``Set-Cookie`` only if a token was minted or must be
cleared. A store outage answers 503 (or 401); it never lets the request
through as if authenticated. WebSocket and lifespan scopes pass through untouched.

With ``binding=DeviceBinding()`` (cookie transport) or ``dpop=DpopPolicy()`` (bearer transport)
sessions are bound to a key the client keeps: see :mod:`sessionward.web.binding`.
With ``device_signal=DeviceSignal(secret=...)`` the middleware serves ``device.js`` and puts
the device signal in each request's context (off by default; :mod:`sessionward.web.device`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal

from sessionward.core.dpop import DpopPolicy
from sessionward.errors import InvalidProof, InvalidToken, RiskChallenge, StoreError
from sessionward.manager._async.manager import AsyncSessionManager
from sessionward.web._async.binding import AsyncDeviceGate
from sessionward.web._async.handle import AsyncSessionHandle
from sessionward.web._challenge import challenge_body, challenge_redirect
from sessionward.web._core import AdapterConfig, Outcome, Transport, log_refusal, merge_headers
from sessionward.web._http import asgi_headers, authorization
from sessionward.web.binding import DeviceBinding
from sessionward.web.context import ContextCapture
from sessionward.web.cookies import CookiePolicy
from sessionward.web.csrf import CsrfPolicy
from sessionward.web.device import SCRIPT_HEADERS, DeviceSignal, device_script

__all__ = ["AsyncSessionHandle", "SessionMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SessionMiddleware:
    """See the module docstring; the keyword arguments are those of ``AdapterConfig``."""

    def __init__(
        self,
        app: ASGIApp,
        manager: AsyncSessionManager,
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
        self.gate = (
            None if binding is None and dpop is None else AsyncDeviceGate(manager, self.config)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        config, headers, method = self.config, asgi_headers(scope["headers"]), scope["method"]
        device = config.context.device
        if device is not None and scope["path"] == device.path and method in ("GET", "HEAD"):
            await _send_reply(send, 200, list(SCRIPT_HEADERS))
            body = device_script() if method == "GET" else b""
            await send({"type": "http.response.body", "body": body})
            return
        token = config.token_from(headers)
        client = scope.get("client")
        context = config.context.capture(client[0] if client else None, headers)
        outcome = config.outcome(headers)
        session, challenge, gate = None, None, self.gate
        url, precondition = "", None
        if gate is not None:
            url = config.url(scope.get("scheme", "http"), headers.get("host"), scope["path"])
            precondition = gate.precondition(headers, method, url)
        if token is not None:
            try:
                session = await self.manager.validate(token, context=context, proof=precondition)
                outcome.minted(session, self.manager.clock.now())
            except InvalidProof as exc:  # a bound token without its key's proof: untouched
                log_refusal("dpop", exc.reason)
                await self._plain(send, 401, "proof of possession refused", gate=exc)
                return
            except InvalidToken:
                outcome.rejected = True
            except RiskChallenge as challenged:  # sign in again; the session survives
                if not config.reaches_when_challenged(scope["path"]):
                    await self._challenged(send, challenged, scope, headers)
                    return
                challenge = challenged  # the sign-in page runs, without the session
            except StoreError:
                await self._plain(send, config.unavailable_status, "session store unavailable")
                return
        proven, jkt = False, None
        if gate is not None:
            route = gate.route(scope["path"])
            try:
                if route is not None:  # with the outcome: a token renewed by this validation
                    reply = await gate.endpoint(route, method, headers, session, url)
                    extra = config.response_headers(outcome)
                    await _send_reply(send, reply.status, merge_headers(reply.headers, extra))
                    await send({"type": "http.response.body", "body": reply.body})
                    return
                if config.cookie_mode:
                    session, proven = gate.admit(session, headers)
                else:
                    credentials = authorization(headers)
                    jkt = await gate.dpop(session, credentials, method, headers, url, precondition)
                    proven = jkt is not None and session is not None
            except InvalidProof as exc:
                log_refusal("dpop", exc.reason)
                await self._plain(send, 401, "proof of possession refused", gate=exc)
                return
            except StoreError:
                await self._plain(send, config.unavailable_status, "session store unavailable")
                return
        form = None
        if config.wants_form(method, headers):
            form = await _read_body(receive, config.max_form_bytes)
            if form is None:
                await self._plain(send, 413, "form too large")
                return
            receive = _replay(form, receive)
        reason = config.csrf_refusal(method, headers, session.id if session else None, form)
        if reason is not None:
            log_refusal("csrf", reason)
            await self._plain(send, 403, config.refusal_message(reason), outcome)
            return
        handle = AsyncSessionHandle(
            self.manager,
            config,
            session,
            context,
            outcome,
            presented=token is not None,
            proven=proven,
            proof_jkt=jkt,
            challenge=challenge,
            challenged_token=token if challenge is not None else None,
            challenged_proof=precondition,
        )
        scope["sessionward"] = handle
        scope.setdefault("state", {})["sessionward"] = handle
        scope["session"] = handle.mapping
        await self._run(scope, receive, send, handle)

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, handle: AsyncSessionHandle
    ) -> None:
        started = False

        async def send_with_session(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                await handle.commit()
                started = True
                extra = self.config.response_headers(handle.outcome)
                if self.gate is not None:
                    extra += await self.gate.after(handle._current(), handle.outcome)
                if extra:
                    message = {**message, "headers": _with_headers(message, extra)}
            await send(message)

        try:
            await self.app(scope, receive, send_with_session)
        except StoreError:
            if started:
                raise
            await self._plain(send, self.config.unavailable_status, "session store unavailable")

    async def _challenged(
        self, send: Send, challenge: RiskChallenge, scope: Scope, headers: dict[str, str]
    ) -> None:
        query = scope.get("query_string", b"").decode("latin-1")
        paths = self.config.step_up_paths
        location = challenge_redirect(paths, scope["method"], scope["path"], query, headers)
        if location is None:
            kind, body = challenge_body(challenge, headers)
            await self._plain(send, 401, body.decode(), content_type=kind)
            return
        raw = [(b"location", location.encode("latin-1")), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": 303, "headers": raw})
        await send({"type": "http.response.body", "body": b""})

    async def _plain(
        self,
        send: Send,
        status: int,
        text: str,
        outcome: Outcome | None = None,
        content_type: str = "text/plain; charset=utf-8",
        *,
        gate: InvalidProof | None = None,
    ) -> None:
        headers = [("content-type", content_type), ("cache-control", "no-store")]
        if gate is not None and self.gate is not None:
            headers = merge_headers(headers, self.gate.dpop_refusal(gate))
        elif status == 401:
            headers += list(self.config.challenge().items())
        if outcome is not None:
            headers = merge_headers(headers, self.config.response_headers(outcome))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": text.encode()})


_MERGED = (b"vary", b"cache-control")


async def _send_reply(send: Send, status: int, headers: list[tuple[str, str]]) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})


def _with_headers(message: Message, extra: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    raw: list[tuple[bytes, bytes]] = list(message.get("headers", []))
    if any(name.lower() in _MERGED for name, _ in raw):  # rare: merge on text
        text = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in merge_headers(text, extra)]
    return raw + [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra]


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or ``None`` when it exceeds ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
