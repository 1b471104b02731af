""" "This was me" on a DBSC-bound session through the adapters, over real HTTP (Starlette on
uvicorn, Flask on wsgiref): the owner, challenged abroad with a live bound cookie, signs in
again on a step-up path and ``handle.confirm()`` goes through, proven by the cookie its
request's validation checked; the long-lived cookie alone proves nothing and is never
scored, so a thief holding it is neither challenged nor able to confirm."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
from test_web_dbsc import BOUND, _challenge, _offer, _refresh
from web._servers import Browserish, uvicorn_server, wsgi_server

from sessionward import AsyncSessionManager, AsyncSQLiteStore, Policy, SessionManager, SQLiteStore
from sessionward.core import dbsc
from sessionward.core.binding import BindingPolicy
from sessionward.manager.risk import RiskAssessor
from sessionward.testing import FakeClock
from sessionward.web import CookiePolicy, CsrfPolicy
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.binding import DeviceBinding
from sessionward.web.flask import Sessionward, handle
from sessionward.web.starlette import get_handle

SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.4 Safari/605.1.15"
)
OWNER = {"x-forwarded-for": "81.2.69.160", "user-agent": SAFARI, "accept-language": "en-GB"}
ABROAD = {**OWNER, "x-forwarded-for": "73.1.2.3"}  # Comcast, US: challenged
POLICY = Policy(idle_timeout=86400, absolute_timeout=7 * 86400)


def _options(base: str) -> dict[str, Any]:
    return {
        "csrf": CsrfPolicy([base], keys=[secrets.token_bytes(32)], require_token=False),
        "binding": DeviceBinding(BindingPolicy(cookie_lifetime=300)),
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
        options = {"manager": manager, **_options(base)}
        return Starlette(routes=routes, middleware=[Middleware(SessionMiddleware, **options)])

    return make


def flask_app(manager: SessionManager) -> Callable[[str], Any]:
    def make(base: str) -> Flask:
        app = Flask(__name__)
        Sessionward(app, manager, cookie=CookiePolicy(), **_options(base))

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
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, FakeClock]]:
    clock = FakeClock()
    path = str(tmp_path / "s.db")
    if request.param == "asgi":
        manager: Any = AsyncSessionManager(
            AsyncSQLiteStore(path), policy=POLICY, clock=clock, risk=RiskAssessor()
        )
        serve, make = uvicorn_server, asgi_app(manager)
    else:
        manager = SessionManager(SQLiteStore(path), policy=POLICY, clock=clock, risk=RiskAssessor())
        serve, make = wsgi_server, flask_app(manager)
    with serve(make) as base:
        yield base, clock


def test_the_owner_confirms_with_a_live_bound_cookie(served: tuple[str, FakeClock]) -> None:
    base, clock = served
    device, alice = Device(), Browserish(base)
    signed_in = alice.post("/login", headers=OWNER)
    assert signed_in.json() == {"confirmed": False}
    path, challenge, authorization = _offer(signed_in.headers[dbsc.REGISTRATION])
    registered = alice.post(
        path,
        headers={**OWNER, "secure-session-response": device.registration(challenge, authorization)},
    )
    assert registered.status_code == 200
    sid = registered.json()["session_identifier"]
    clock.advance(5 * 3600)  # later: no impossible travel; the bound cookie has died
    asked = _refresh(alice, sid)
    assert _refresh(alice, sid, device.refresh(_challenge(asked))).status_code == 200
    token = alice.token
    # the long-lived cookie alone: pending, so never scored, challenged or confirmed
    thief = Browserish(base)
    thief.token = token
    probe = thief.get("/me", headers=ABROAD)  # no challenge, and no session served
    assert probe.status_code == 200
    assert probe.json() == {"user": None}
    # the owner abroad, with a live bound cookie: challenged, then "this was me"
    assert alice.get("/me", headers=ABROAD).status_code == 401
    confirmed = alice.post("/login", headers=ABROAD)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json() == {"confirmed": True}
    assert alice.token != token
    assert BOUND in alice.others
    assert alice.get("/me", headers=ABROAD).json() == {"user": "alice"}
    for client in (alice, thief):
        client.close()
