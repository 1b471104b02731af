"""End to end over real HTTP: a stolen cookie replayed from another address and browser is
challenged (401 with the reason) while the owner goes on. Starlette + the ASGI middleware on
uvicorn; the client address comes from X-Forwarded-For, trusted from the loopback proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from agents import SAFARI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import AsyncSessionManager, AsyncSQLiteStore, EventBus, Policy, RequestContext
from sessionward.core.events import RiskAssessed
from sessionward.manager.risk import RiskAssessor
from sessionward.testing import EventRecorder, FakeClock
from sessionward.web import CookiePolicy
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.starlette import get_handle, require_user

from ._servers import Browserish, uvicorn_server

OWNER = {"x-forwarded-for": "81.2.69.160", "user-agent": SAFARI, "accept-language": "en-GB"}
# Another address (Comcast, US) and another user agent: the thief's Safari is a version on.
THIEF = {
    "x-forwarded-for": "73.1.2.3",
    "user-agent": SAFARI.replace("Version/17.4", "Version/18.1"),
    "accept-language": "en-GB",
}


def build_app(manager: AsyncSessionManager) -> Starlette:
    async def login(request: Request) -> Response:
        await get_handle(request).login("alice")
        return JSONResponse({"ok": True})

    async def me(request: Request) -> Response:
        session = await require_user(request)
        return JSONResponse({"user": session.user_id})

    app = Starlette(routes=[Route("/login", login, methods=["POST"]), Route("/me", me)])
    app.add_middleware(
        SessionMiddleware,
        manager=manager,
        cookie=CookiePolicy(),
        csrf=False,  # this test is about the context, not cross-site forms
        trusted_proxies=["127.0.0.1"],
    )
    return app


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, AsyncSessionManager, EventRecorder]]:
    recorder = EventRecorder()
    manager = AsyncSessionManager(
        AsyncSQLiteStore(str(tmp_path / "s.db")),
        policy=Policy(idle_timeout=86400, absolute_timeout=7 * 86400),
        clock=(clock := FakeClock()),
        events=EventBus([recorder]),
        risk=RiskAssessor(),
    )
    with uvicorn_server(lambda base: build_app(manager)) as base:
        clock.advance(0)
        yield base, manager, recorder


def test_a_replayed_cookie_is_challenged_and_the_owner_goes_on(
    served: tuple[str, AsyncSessionManager, EventRecorder],
) -> None:
    base, _manager, recorder = served
    owner = Browserish(base)
    assert owner.request("POST", "/login", headers=OWNER).status_code == 200
    assert owner.token is not None
    assert owner.request("GET", "/me", headers=OWNER).json() == {"user": "alice"}

    thief = Browserish(base)
    stolen = thief.request(
        "GET", "/me", token=owner.token, headers={**THIEF, "accept": "application/json"}
    )
    assert stolen.status_code == 401
    body = stolen.json()
    assert body["error"] == "step_up_required"
    assert "network.new_country" in body["reasons"]
    assert "set-cookie" not in stolen.headers  # the session survives: nothing cleared
    assert "COMCAST" not in stolen.text  # the sentences stay on the server

    text = thief.request("GET", "/me", token=owner.token, headers=THIEF)
    assert text.status_code == 401
    assert text.headers["content-type"].startswith("text/plain")
    assert "network: new country" in text.text

    again = owner.request("GET", "/me", headers=OWNER)
    assert again.status_code == 200
    assert again.json() == {"user": "alice"}

    assessed = [e for e in recorder.events if isinstance(e, RiskAssessed)]
    assert [e.decision for e in assessed] == ["step_up", "step_up"]
    assert any("COMCAST" in detail for _, _, detail in assessed[0].reasons)
    for client in (owner, thief):
        client.client.close()


def test_the_wsgi_middleware_challenges_a_replayed_cookie_too(tmp_path: Path) -> None:
    from sessionward import SessionManager, SQLiteStore
    from sessionward.web.wsgi import SessionMiddleware as WsgiMiddleware

    from ._servers import wsgi_server

    manager = SessionManager(
        SQLiteStore(str(tmp_path / "w.db")),
        policy=Policy(idle_timeout=86400, absolute_timeout=7 * 86400),
        clock=FakeClock(),
        events=EventBus([]),
        risk=RiskAssessor(),
    )
    token = manager.issue("alice", context=_context(OWNER)).token
    assert token is not None

    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])  # type: ignore[operator]
        return [b"served"]

    def make(base: str) -> object:
        return WsgiMiddleware(app, manager, csrf=False, trusted_proxies=["127.0.0.1"])

    with wsgi_server(make) as base:
        client = Browserish(base)
        owner = client.request("GET", "/", token=token, headers=OWNER)
        assert owner.text == "served"
        stolen = client.request(
            "GET", "/", token=token, headers={**THIEF, "accept": "application/json"}
        )
        assert stolen.status_code == 401
        assert "network.new_country" in stolen.json()["reasons"]
        assert client.request("GET", "/", token=token, headers=OWNER).text == "served"
        client.client.close()


def _context(headers: dict[str, str]) -> RequestContext:
    return RequestContext(
        ip=headers["x-forwarded-for"],
        user_agent=headers["user-agent"],
        accept_language=headers["accept-language"],
    )
