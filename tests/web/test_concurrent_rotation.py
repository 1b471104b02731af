"""Many requests carrying one token at once, through each adapter over real HTTP: ASGI
(Starlette on uvicorn, async manager) and WSGI (Flask on a threaded wsgiref server, sync
manager), bearer transport, a real SQLite file and a fake clock that stands still.

Whether the renewal is due on every request or the application rotates explicitly, every
client ends with a token that works, no theft is reported, one rotation happens for all of
them, and the old token replayed after the grace window is still caught.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, jsonify
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import (
    AsyncSessionManager,
    AsyncSQLiteStore,
    EventBus,
    Policy,
    SessionManager,
    SQLiteStore,
)
from sessionward.core.events import SessionRevoked, SessionRotated, TheftSuspected
from sessionward.testing import EventRecorder, FakeClock
from sessionward.web import asgi
from sessionward.web.flask import Sessionward, handle
from sessionward.web.starlette import get_handle

from ._servers import uvicorn_server, wsgi_server

GRACE = 30.0
CLIENTS = 24
POLICIES = {
    "due": Policy(idle_timeout=3600, absolute_timeout=7200, rotate_after=60, rotation_grace=GRACE),
    "explicit": Policy(idle_timeout=3600, absolute_timeout=7200, rotation_grace=GRACE),
}


def starlette_app(manager: AsyncSessionManager) -> Starlette:
    async def login(request: Request) -> Response:
        await get_handle(request).login("alice")
        return JSONResponse({"ok": True})

    async def me(request: Request) -> Response:
        session = get_handle(request).session
        return JSONResponse({"user": None if session is None else session.user_id})

    async def rotate(request: Request) -> Response:
        await get_handle(request).rotate()
        return JSONResponse({"ok": True})

    routes = [
        Route("/login", login, methods=["POST"]),
        Route("/me", me),
        Route("/rotate", rotate, methods=["POST"]),
    ]
    middleware = Middleware(asgi.SessionMiddleware, manager=manager, transport="bearer")
    return Starlette(routes=routes, middleware=[middleware])


def flask_app(manager: SessionManager) -> Flask:
    app = Flask(__name__)
    Sessionward(app, manager, transport="bearer")

    @app.post("/login")
    def login() -> Any:
        handle().login("alice")
        return jsonify(ok=True)

    @app.get("/me")
    def me() -> Any:
        session = handle().session
        return jsonify(user=None if session is None else session.user_id)

    @app.post("/rotate")
    def rotate() -> Any:
        handle().rotate()
        return jsonify(ok=True)

    return app


Served = tuple[str, SessionManager | AsyncSessionManager, FakeClock, EventRecorder]


@pytest.fixture(params=["asgi", "wsgi"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], Any]]:
    """``served(mode)`` starts the adapter's app for the policy ``mode``; yields its parts."""
    stack: list[AbstractContextManager[str]] = []

    def start(mode: str) -> Served:
        clock, recorder = FakeClock(), EventRecorder()
        bus, policy = EventBus([recorder]), POLICIES[mode]
        manager: SessionManager | AsyncSessionManager
        server: AbstractContextManager[str]
        if request.param == "asgi":
            async_manager = AsyncSessionManager(
                AsyncSQLiteStore(tmp_path / "asgi.db"), policy=policy, clock=clock, events=bus
            )
            manager = async_manager
            server = uvicorn_server(lambda _: starlette_app(async_manager))
        else:
            sync_manager = SessionManager(
                SQLiteStore(tmp_path / "wsgi.db"), policy=policy, clock=clock, events=bus
            )
            manager = sync_manager
            server = wsgi_server(lambda _: flask_app(sync_manager))
        stack.append(server)
        return server.__enter__(), manager, clock, recorder

    yield start
    for server in stack:
        server.__exit__(None, None, None)


def _call(base: str, method: str, path: str, token: str | None = None) -> httpx.Response:
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=30) as client:
        return client.request(method, path, headers=headers)


def _at_once(base: str, method: str, path: str, token: str) -> list[str]:
    """``CLIENTS`` requests with ``token`` at once; each client's token afterwards."""

    def one(_: int) -> str:
        response = _call(base, method, path, token)
        assert response.status_code == 200, response.text
        return response.headers.get("session-token") or token

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(one, range(CLIENTS)))


@pytest.mark.parametrize(
    ("mode", "method", "path"), [("due", "GET", "/me"), ("explicit", "POST", "/rotate")]
)
def test_many_requests_with_one_token_log_nobody_out(
    served: Callable[[str], Served], mode: str, method: str, path: str
) -> None:
    base, _, clock, recorder = served(mode)
    login = _call(base, "POST", "/login")
    old = login.headers["session-token"]
    if mode == "due":
        clock.advance(60)
    held = _at_once(base, method, path, old)
    new = held[0]
    assert new != old
    assert held == [new] * CLIENTS  # one new token, handed to every client
    for token in (old, new):  # the old one still works inside its window, and leads on
        response = _call(base, "GET", "/me", token)
        assert response.json() == {"user": "alice"}
        assert response.headers.get("session-token") in (None, new)
    rotations = [e for e in recorder.events if isinstance(e, SessionRotated)]
    assert len(rotations) == (1 if mode == "explicit" else 0)
    assert not [e for e in recorder.events if isinstance(e, TheftSuspected | SessionRevoked)]
    clock.advance(GRACE)
    assert _call(base, "GET", "/me", old).json() == {"user": None}  # replayed after the window
    assert [e.kind for e in recorder.events if isinstance(e, TheftSuspected)] == ["theft-suspected"]
    assert _call(base, "GET", "/me", new).json() == {"user": None}  # the session is gone
