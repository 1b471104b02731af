""" "This was me" on a DPoP-bound session through the adapters, over real HTTP (Starlette on
uvicorn, Flask on wsgiref): the owner, challenged abroad, signs in again on a step-up path and
``handle.confirm()`` goes through with the request's proof (checked once, by the validation);
a thief holding the token without the key cannot even reach the confirmation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from proofs import Device

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from flask import Flask, jsonify
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from web._servers import uvicorn_server, wsgi_server

from sessionward import AsyncSessionManager, AsyncSQLiteStore, Policy, SessionManager, SQLiteStore
from sessionward.core.dpop import DpopPolicy
from sessionward.manager.risk import RiskAssessor
from sessionward.testing import FakeClock
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.flask import Sessionward, handle
from sessionward.web.starlette import get_handle

SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.4 Safari/605.1.15"
)
OWNER = {"x-forwarded-for": "81.2.69.160", "user-agent": SAFARI, "accept-language": "en-GB"}
ABROAD = {**OWNER, "x-forwarded-for": "73.1.2.3"}  # Comcast, US: challenged
POLICY = Policy(idle_timeout=86400, absolute_timeout=7 * 86400)
OPTIONS: dict[str, Any] = {
    "transport": "bearer",
    "dpop": DpopPolicy(),
    "trusted_proxies": ["127.0.0.1"],
    "step_up_paths": ["/login"],
}


def asgi_app(manager: AsyncSessionManager) -> Callable[[str], Any]:
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
        return Starlette(
            routes=routes, middleware=[Middleware(SessionMiddleware, manager=manager, **OPTIONS)]
        )

    return make


def flask_app(manager: SessionManager) -> Callable[[str], Any]:
    def make(base: str) -> Flask:
        app = Flask(__name__)
        Sessionward(app, manager, **OPTIONS)

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


@pytest.fixture(params=["asgi", "wsgi"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, FakeClock, SQLiteStore]]:
    clock = FakeClock(time.time())
    path = str(tmp_path / "s.db")
    mirror = SQLiteStore(path)
    if request.param == "asgi":
        manager: Any = AsyncSessionManager(
            AsyncSQLiteStore(path), policy=POLICY, clock=clock, risk=RiskAssessor()
        )
        serve, make = uvicorn_server, asgi_app(manager)
    else:
        manager = SessionManager(SQLiteStore(path), policy=POLICY, clock=clock, risk=RiskAssessor())
        serve, make = wsgi_server, flask_app(manager)
    with serve(make) as base:
        yield base, clock, mirror
    mirror.close()


def _call(
    base: str,
    clock: FakeClock,
    path: str,
    headers: dict[str, str],
    device: Device | None,
    token: str | None,
) -> httpx.Response:
    sent = dict(headers)
    method = "POST" if path == "/login" else "GET"
    if token is not None:
        sent["authorization"] = f"DPoP {token}"
    if device is not None:
        sent["dpop"] = device.dpop(method, base + path, iat=clock.now(), token=token)
    return httpx.request(method, base + path, headers=sent, timeout=10)


def test_the_owner_confirms_with_the_proof_a_thief_cannot(
    served: tuple[str, FakeClock, SQLiteStore],
) -> None:
    base, clock, store = served
    owner, thief = Device(), Device()
    signed_in = _call(base, clock, "/login", OWNER, owner, None)
    assert signed_in.json() == {"confirmed": False}
    token = signed_in.headers["session-token"]
    clock.advance(5 * 3600)  # later: no impossible travel
    before = store.get(token[4:20])
    for device in (None, thief):  # the token without the key: refused before any confirmation
        refused = _call(base, clock, "/login", ABROAD, device, token)
        assert refused.status_code == 401
    assert store.get(token[4:20]) == before
    # the owner abroad: challenged on a page, then "this was me" on the sign-in path
    assert _call(base, clock, "/me", ABROAD, owner, token).status_code == 401
    confirmed = _call(base, clock, "/login", ABROAD, owner, token)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json() == {"confirmed": True}
    fresh = confirmed.headers["session-token"]
    assert fresh != token
    assert _call(base, clock, "/me", ABROAD, owner, fresh).json() == {"user": "alice"}
