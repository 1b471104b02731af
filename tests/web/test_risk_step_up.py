"""The sign-in page stays reachable while a session is challenged (``step_up_paths``), over
real HTTP: Starlette + the ASGI middleware on uvicorn, and the WSGI middleware on wsgiref. A
browser's page request is redirected there; the page sees the challenge; "this was me"
(``handle.confirm()``) after a new sign-in restores the session under a new token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from agents import SAFARI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import AsyncSessionManager, AsyncSQLiteStore, EventBus, Policy, RequestContext
from sessionward.core.events import SessionRevoked
from sessionward.errors import ConfigError
from sessionward.manager.risk import RiskAssessor
from sessionward.testing import EventRecorder, FakeClock
from sessionward.web import CookiePolicy
from sessionward.web._core import AdapterConfig
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.starlette import get_handle, require_user

from ._servers import Browserish, uvicorn_server

OWNER = {"x-forwarded-for": "81.2.69.160", "user-agent": SAFARI, "accept-language": "en-GB"}
# The owner abroad (Comcast, US), in their own browser: challenged until they sign in again.
ABROAD = {**OWNER, "x-forwarded-for": "73.1.2.3"}
HOURS = 3600.0


def build_app(manager: AsyncSessionManager) -> Starlette:
    async def signin(request: Request) -> Response:
        handle = get_handle(request)
        form = await request.json()
        if form.get("password") != "right":  # the application's own check
            return JSONResponse({"signed_in": False}, status_code=403)
        if handle.challenge is not None and form.get("this_was_me"):
            await handle.confirm()
        else:
            await handle.login("alice")
        return JSONResponse({"signed_in": True})

    async def page(request: Request) -> Response:
        challenge = get_handle(request).challenge
        if challenge is None:
            return JSONResponse({"challenged": False})
        return JSONResponse(
            {
                "challenged": True,
                "user": challenge.user_id,
                "codes": list(challenge.codes),
                "next": request.query_params.get("next"),
            }
        )

    async def me(request: Request) -> Response:
        session = await require_user(request)
        return JSONResponse({"user": session.user_id})

    app = Starlette(
        routes=[
            Route("/login", page),
            Route("/login/submit", signin, methods=["POST"]),
            Route("/me", me),
        ]
    )
    app.add_middleware(
        SessionMiddleware,
        manager=manager,
        cookie=CookiePolicy(),
        csrf=False,  # this test is about the context, not cross-site forms
        trusted_proxies=["127.0.0.1"],
        step_up_paths=["/login"],
    )
    return app


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, FakeClock, EventRecorder]]:
    recorder = EventRecorder()
    clock = FakeClock()
    manager = AsyncSessionManager(
        AsyncSQLiteStore(str(tmp_path / "s.db")),
        policy=Policy(idle_timeout=86400, absolute_timeout=7 * 86400),
        clock=clock,
        events=EventBus([recorder]),
        risk=RiskAssessor(),
    )
    with uvicorn_server(lambda base: build_app(manager)) as base:
        yield base, clock, recorder


def sign_in(base: str, clock: FakeClock) -> Browserish:
    owner = Browserish(base)
    response = owner.request("POST", "/login/submit", json={"password": "right"}, headers=OWNER)
    assert response.status_code == 200, response.text
    clock.advance(5 * HOURS)  # later: no impossible-travel signal
    assert owner.request("GET", "/me", headers=OWNER).json() == {"user": "alice"}
    return owner


def test_a_challenged_page_request_is_sent_to_the_sign_in_page_which_runs(
    served: tuple[str, FakeClock, EventRecorder],
) -> None:
    base, clock, _ = served
    owner = sign_in(base, clock)
    token = owner.token
    api = owner.request("GET", "/me", headers={**ABROAD, "accept": "application/json"})
    assert api.status_code == 401
    assert "network.new_country" in api.json()["reasons"]

    page = owner.request("GET", "/me?tab=2", headers={**ABROAD, "accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fme%3Ftab%3D2&reason=risk"

    login = owner.request("GET", "/login?next=/me", headers=ABROAD)
    assert login.status_code == 200
    body = login.json()
    assert body["challenged"] is True
    assert body["user"] == "alice"
    assert "network.new_country" in body["codes"]
    assert "set-cookie" not in login.headers  # the session survives, the cookie untouched
    assert owner.token == token
    owner.client.close()


def test_this_was_me_after_signing_in_again_restores_the_session_under_a_new_token(
    served: tuple[str, FakeClock, EventRecorder],
) -> None:
    base, clock, _ = served
    owner = sign_in(base, clock)
    old = owner.token
    assert owner.request("GET", "/me", headers=ABROAD).status_code == 401
    wrong = owner.request(
        "POST", "/login/submit", json={"password": "wrong", "this_was_me": True}, headers=ABROAD
    )
    assert wrong.status_code == 403
    confirmed = owner.request(
        "POST", "/login/submit", json={"password": "right", "this_was_me": True}, headers=ABROAD
    )
    assert confirmed.status_code == 200
    assert owner.token is not None
    assert owner.token != old
    clock.advance(60)
    assert owner.request("GET", "/me", headers=ABROAD).json() == {"user": "alice"}
    thief = Browserish(base)
    assert thief.request("GET", "/me", token=old, headers=OWNER).status_code == 401
    for client in (owner, thief):
        client.client.close()


def test_the_owners_fresh_sign_in_ends_the_challenged_session(
    served: tuple[str, FakeClock, EventRecorder],
) -> None:
    base, clock, recorder = served
    owner = sign_in(base, clock)
    old = owner.token
    assert owner.request("GET", "/me", headers=ABROAD).status_code == 401
    fresh = owner.request("POST", "/login/submit", json={"password": "right"}, headers=ABROAD)
    assert fresh.status_code == 200
    assert owner.token is not None
    assert owner.token != old
    ended = [e for e in recorder.events if isinstance(e, SessionRevoked)]
    assert [e.reason for e in ended] == ["new-login"]
    home = Browserish(base)
    assert home.request("GET", "/me", token=old, headers=OWNER).status_code == 401
    for client in (owner, home):
        client.client.close()


def test_step_up_paths_are_checked() -> None:
    with pytest.raises(ConfigError):
        AdapterConfig(csrf=False, step_up_paths=("login",))
    with pytest.raises(ConfigError):
        AdapterConfig(csrf=False, step_up_paths="/login")  # type: ignore[arg-type]
    config = AdapterConfig(csrf=False, step_up_paths=("/login/",))
    assert config.reaches_when_challenged("/login")
    assert config.reaches_when_challenged("/login/totp")
    assert not config.reaches_when_challenged("/loginx")
    assert not config.reaches_when_challenged("/account")


def test_the_wsgi_middleware_lets_the_sign_in_page_run_too(tmp_path: Path) -> None:
    from sessionward import SessionManager, SQLiteStore
    from sessionward.web.wsgi import SessionHandle
    from sessionward.web.wsgi import SessionMiddleware as WsgiMiddleware

    from ._servers import wsgi_server

    clock = FakeClock()
    manager = SessionManager(
        SQLiteStore(str(tmp_path / "w.db")),
        policy=Policy(idle_timeout=86400, absolute_timeout=7 * 86400),
        clock=clock,
        events=EventBus([]),
        risk=RiskAssessor(),
    )
    token = manager.issue("alice", context=_context(OWNER)).token
    assert token is not None
    clock.advance(5 * HOURS)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        handle: SessionHandle = environ["sessionward"]
        if environ["PATH_INFO"] == "/login/confirm" and handle.challenge is not None:
            handle.confirm()  # the application checked the password first
        user = handle.user_id or (handle.challenge.user_id if handle.challenge else None)
        start_response("200 OK", [("content-type", "text/plain")])
        return [f"{environ['PATH_INFO']} {user} {handle.challenge is not None}".encode()]

    def make(base: str) -> object:
        return WsgiMiddleware(
            app, manager, csrf=False, trusted_proxies=["127.0.0.1"], step_up_paths=["/login"]
        )

    with wsgi_server(make) as base:
        client = Browserish(base)
        assert client.request("GET", "/", token=token, headers=ABROAD).status_code == 401
        page = client.request("GET", "/", token=token, headers={**ABROAD, "accept": "text/html"})
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login?next=%2F")
        login = client.request("GET", "/login", token=token, headers=ABROAD)
        assert login.text == "/login alice True"
        confirmed = client.request("POST", "/login/confirm", token=token, headers=ABROAD)
        assert confirmed.text == "/login/confirm alice False"
        assert client.token is not None
        assert client.token != token
        clock.advance(60)
        assert client.request("GET", "/", headers=ABROAD).text == "/ alice False"
        client.client.close()


def _context(headers: dict[str, str]) -> RequestContext:
    return RequestContext(
        ip=headers["x-forwarded-for"],
        user_agent=headers["user-agent"],
        accept_language=headers["accept-language"],
    )


def test_the_flask_extension_lets_the_sign_in_page_run(tmp_path: Path) -> None:
    from flask import Flask, jsonify, request

    from sessionward import SessionManager, SQLiteStore
    from sessionward.web.flask import Sessionward, handle

    from ._servers import wsgi_server

    clock = FakeClock()
    manager = SessionManager(
        SQLiteStore(str(tmp_path / "f.db")),
        policy=Policy(idle_timeout=86400, absolute_timeout=7 * 86400),
        clock=clock,
        risk=RiskAssessor(),
    )
    token = manager.issue("alice", context=_context(OWNER)).token
    assert token is not None
    clock.advance(5 * HOURS)
    app = Flask(__name__)

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        current = handle()
        if request.method == "POST" and current.challenge is not None:
            current.confirm()  # after the application checked the password
        challenge = current.challenge
        return jsonify(
            user=current.user_id,
            challenged=challenge is not None,
            codes=list(challenge.codes) if challenge else [],
        )

    @app.route("/me")
    def me() -> Any:
        return jsonify(user=handle().user_id)

    Sessionward(app, manager, csrf=False, trusted_proxies=["127.0.0.1"], step_up_paths=["/login"])
    with wsgi_server(lambda base: app) as base:
        client = Browserish(base, cookie_name="__Host-session")
        assert client.request("GET", "/me", token=token, headers=ABROAD).status_code == 401
        page = client.request("GET", "/login", token=token, headers=ABROAD).json()
        assert page["challenged"] is True
        assert "network.new_country" in page["codes"]
        confirmed = client.request("POST", "/login", token=token, headers=ABROAD).json()
        assert confirmed == {"user": "alice", "challenged": False, "codes": []}
        assert client.token is not None
        assert client.token != token
        clock.advance(60)
        assert client.request("GET", "/me", headers=ABROAD).json() == {"user": "alice"}
        client.client.close()
