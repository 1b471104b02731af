"""What the binding tests set up alike: a scored manager and a DPoP-bound session on it; the
service on a real uvicorn; the two web flavours (Starlette on uvicorn, Flask on wsgiref) with
the handlers their apps share and the "this was me" app; a DPoP client that keeps the server's
nonce, and a proof signed by another library (joserfc)."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from agents import SAFARI
from flask import Flask, jsonify
from joserfc import jwk as jose_jwk
from joserfc import jws as jose_jws
from joserfc.jws import JWSRegistry
from proofs import Device
from service._server import serve
from service.conftest import Service, make_keys
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from web._servers import uvicorn_server, wsgi_server

from sessionward import AsyncSessionManager, AsyncSQLiteStore, Policy, SessionManager, SQLiteStore
from sessionward.core import binding as states
from sessionward.core.context import RequestContext
from sessionward.core.dpop import DpopPolicy, access_token_hash
from sessionward.core.record import Session
from sessionward.manager._sync.binding import Binder, DpopCheck
from sessionward.manager.risk import RiskAssessor
from sessionward.service import ServiceConfig, create_app
from sessionward.service.runtime import Runtime
from sessionward.testing import FakeClock
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.flask import Sessionward, handle
from sessionward.web.starlette import get_handle

# -- the manager, in process ------------------------------------------------------------------


@contextmanager
def scored_manager(tmp_path: Path) -> Iterator[SessionManager]:
    """A manager on a real SQLite file with hijack scoring on and a fake clock (renewal due
    after 600 s)."""
    policy = Policy(idle_timeout=3600, absolute_timeout=86400, rotate_after=600)
    store = SQLiteStore(str(tmp_path / "s.db"))
    with SessionManager(store, policy=policy, clock=FakeClock(), risk=RiskAssessor()) as m:
        yield m


def dpop_session(manager: SessionManager, device: Device, context: RequestContext) -> Session:
    """Alice's session, bound to ``device``'s key from the start."""
    state = states.dpop_state(device.thumbprint, manager.clock.now())
    data = {states.BINDING_KEY: states.encode(state)}
    return manager.issue("alice", data=data, context=context)


def dpop_check(
    manager: SessionManager, token: str, proof: str | None, *, method: str, url: str
) -> DpopCheck:
    return DpopCheck(
        Binder(manager), DpopPolicy(), proof, method=method, url=url, access_token=token
    )


# -- the service ------------------------------------------------------------------------------


def service_config(tmp_path: Path, *, state: str = "state.db", **extra: Any) -> ServiceConfig:
    """The service on ``tmp_path/service.db``: no admin, no demo, keys never cached."""
    return ServiceConfig(
        store=str(tmp_path / "service.db"),
        state=str(tmp_path / state),
        admin=False,
        demo=False,
        policy=Policy(idle_timeout=3600, absolute_timeout=86400, rotate_after=None),
        key_cache_seconds=0,
        **extra,
    )


@contextmanager
def running_service(config: ServiceConfig, clock: FakeClock) -> Iterator[Service]:
    """The service on a real uvicorn (loopback), with an API key of each scope."""
    app = create_app(config, clock=clock)
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base, httpx.Client(base_url=base, timeout=10) as client:
            yield Service(app, runtime, clock, client, make_keys(runtime), Path(config.store))
    finally:
        asyncio.run(runtime.close())


# -- the web flavours -------------------------------------------------------------------------

SERVERS = {"asgi": uvicorn_server, "wsgi": wsgi_server}


def flavour_manager(kind: str, path: str, clock: FakeClock, **options: Any) -> Any:
    """The manager ``kind`` (``asgi`` or ``wsgi``) serves from: async or sync, on the SQLite
    file ``path``."""
    if kind == "asgi":
        return AsyncSessionManager(AsyncSQLiteStore(path), clock=clock, **options)
    return SessionManager(SQLiteStore(path), clock=clock, **options)


async def _login(request: Request) -> Response:
    await get_handle(request).login("alice")
    return JSONResponse({"ok": True})


async def _me(request: Request) -> Response:
    h = get_handle(request)
    session = h.session
    body = {"user": session.user_id if session else None, "proven": h.proven}
    return JSONResponse(body, status_code=200 if session else 401)


def _flask_login() -> Any:
    handle().login("alice")
    return jsonify(ok=True)


def _flask_me() -> Any:
    session = handle().session
    body = {"user": session.user_id if session else None, "proven": handle().proven}
    return jsonify(body), 200 if session else 401


def login_and_me_routes(me_methods: list[str]) -> list[Route]:
    """``POST /login`` signs alice in; ``/me`` answers with the session's user and whether its
    request proved the bound key (401 without a session)."""
    return [Route("/login", _login, methods=["POST"]), Route("/me", _me, methods=me_methods)]


def add_login_and_me(app: Flask, me_methods: list[str]) -> None:
    """:func:`login_and_me_routes` on a Flask app."""
    app.post("/login")(_flask_login)
    app.route("/me", methods=me_methods)(_flask_me)


#: The request headers of the owner's browser at home, and of the same browser abroad
#: (Comcast, US), where hijack scoring challenges the session.
OWNER = {"x-forwarded-for": "81.2.69.160", "user-agent": SAFARI, "accept-language": "en-GB"}
ABROAD = {**OWNER, "x-forwarded-for": "73.1.2.3"}
CONFIRM_POLICY = Policy(idle_timeout=86400, absolute_timeout=7 * 86400)


def _confirm_asgi(manager: AsyncSessionManager, options: Callable[[str], dict[str, Any]]) -> Any:
    async def login(request: Request) -> Response:
        h = get_handle(request)
        if h.challenge is not None:
            await h.confirm()
            return JSONResponse({"confirmed": True})
        await h.login("alice")
        return JSONResponse({"confirmed": False})

    async def me(request: Request) -> Response:
        session = get_handle(request).session
        return JSONResponse({"user": session and session.user_id}, status_code=200)

    def make(base: str) -> Starlette:
        routes = [Route("/login", login, methods=["POST"]), Route("/me", me)]
        middleware = Middleware(SessionMiddleware, manager=manager, **options(base))
        return Starlette(routes=routes, middleware=[middleware])

    return make


def _confirm_flask(manager: SessionManager, options: Callable[[str], dict[str, Any]]) -> Any:
    def make(base: str) -> Flask:
        app = Flask(__name__)
        Sessionward(app, manager, **options(base))

        @app.post("/login")
        def login() -> Any:
            h = handle()
            if h.challenge is not None:
                h.confirm()
                return jsonify(confirmed=True)
            h.login("alice")
            return jsonify(confirmed=False)

        @app.get("/me")
        def me() -> Any:
            session = handle().session
            return jsonify(user=session and session.user_id)

        return app

    return make


@contextmanager
def serving_confirm(
    kind: str, path: str, clock: FakeClock, options: Callable[[str], dict[str, Any]]
) -> Iterator[str]:
    """An app of flavour ``kind`` with hijack scoring on (the adapter's ``options`` for its
    base URL): ``POST /login`` signs alice in, or confirms ("this was me") a challenged
    session; ``GET /me`` names the session's user. Yields the base URL."""
    manager = flavour_manager(kind, path, clock, policy=CONFIRM_POLICY, risk=RiskAssessor())
    make = _confirm_asgi(manager, options) if kind == "asgi" else _confirm_flask(manager, options)
    with SERVERS[kind](make) as base:
        yield base


# -- a DPoP client ----------------------------------------------------------------------------


class DpopClient:
    """An HTTP client with a key: each call sends ``Authorization: <scheme> <token>`` and a
    fresh proof for its method and URL with the server's latest nonce, kept from every answer.
    ``proof`` sends a ready-made proof instead; ``url`` and ``htm`` sign another URL or method
    than the request's."""

    def __init__(self, base: str, clock: FakeClock) -> None:
        self.base, self.clock = base, clock
        self.http = httpx.Client(base_url=base, timeout=10)
        self.nonce: str | None = None

    def headers(self, path: str) -> dict[str, str]:
        """What every call to ``path`` sends besides the token and the proof."""
        return {}

    def received(self, response: httpx.Response) -> None:
        """Sees every answer."""

    def call(
        self,
        method: str,
        path: str,
        device: Device | None,
        token: str | None = None,
        *,
        scheme: str = "DPoP",
        url: str | None = None,
        htm: str | None = None,
        proof: str | None = None,
    ) -> httpx.Response:
        headers = self.headers(path)
        if token is not None:
            headers["authorization"] = f"{scheme} {token}"
        if proof is None and device is not None:
            proof = device.dpop(
                htm or method,
                url or self.base + path,
                iat=self.clock.now(),
                token=token,
                nonce=self.nonce,
            )
        if proof is not None:
            headers["dpop"] = proof
        response = self.http.request(method, path, headers=headers)
        self.nonce = response.headers.get("dpop-nonce", self.nonce)
        self.received(response)
        return response


def joserfc_proof(
    key: jose_jwk.ECKey, client: DpopClient, method: str, path: str, token: str | None = None
) -> str:
    """A DPoP proof that joserfc, another library than ours, signs with ``key`` (P-256) for
    ``client``'s base URL and its latest nonce (``null`` before the first)."""
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    claims: dict[str, Any] = {
        "jti": secrets.token_urlsafe(16),
        "htm": method,
        "htu": client.base + path,
        "iat": int(client.clock.now()),
        "nonce": client.nonce,
    }
    if token is not None:
        claims["ath"] = access_token_hash(token)
    registry = JWSRegistry(algorithms=["ES256"])
    return jose_jws.serialize_compact(header, json.dumps(claims), key, registry=registry)
