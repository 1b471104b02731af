"""Anonymous traffic stores nothing through the adapters either: 10,000 cookieless views of a
page that renders a CSRF form token leave the store empty and set only the token's nonce
cookie. Storing something (a cart item) is what starts an anonymous session, and the form
token rendered before it is still accepted, with its nonce cookie only."""

from __future__ import annotations

import asyncio
import re
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, jsonify
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from sessionward import AsyncSessionManager, AsyncSQLiteStore, SessionManager, SQLiteStore
from sessionward.web import CsrfPolicy
from sessionward.web.asgi import SessionMiddleware as AsgiSessions
from sessionward.web.flask import Sessionward, handle
from sessionward.web.starlette import get_handle

VIEWS = 10_000
ORIGIN = "http://testserver"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')

pytestmark = pytest.mark.slow


async def _views(app: Any, path: str) -> set[str]:
    """``VIEWS`` cookieless GETs of ``path``; the names of every cookie set."""
    names: set[str] = set()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
        for _ in range(VIEWS):
            response = await client.get(path)
            assert response.status_code == 200
            names |= {c.partition("=")[0] for c in response.headers.get_list("set-cookie")}
            client.cookies.clear()  # every view is a new visitor
    return names


def _asgi_app(manager: AsyncSessionManager) -> Starlette:
    async def form(request: Request) -> Response:
        token = await get_handle(request).csrf_token()
        return HTMLResponse(f'<form method="post"><input name="csrf_token" value="{token}">')

    async def add(request: Request) -> Response:
        await get_handle(request).update_data(lambda data: {**data, "cart": ["tea"]})
        return HTMLResponse("added")

    csrf = CsrfPolicy([ORIGIN], keys=[secrets.token_bytes(32)])
    routes = [Route("/form", form), Route("/add", add, methods=["POST"])]
    middleware = [Middleware(AsgiSessions, manager=manager, csrf=csrf)]
    return Starlette(routes=routes, middleware=middleware)


def test_asgi_adapter_stores_nothing_until_something_is_stored(tmp_path: Path) -> None:
    async def run() -> None:
        async with AsyncSessionManager(AsyncSQLiteStore(str(tmp_path / "a.db"))) as manager:
            app = _asgi_app(manager)
            assert await _views(app, "/form") == {"__Host-id-csrf"}
            assert await manager.store.count() == 0  # type: ignore[attr-defined]
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
                page = await client.get("/form")
                match = _TOKEN.search(page.text)
                assert match
                nonce = page.cookies["__Host-id-csrf"]
                headers = {"origin": ORIGIN, "cookie": f"__Host-id-csrf={nonce}"}
                added = await client.post(
                    "/add", data={"csrf_token": match.group(1)}, headers=headers
                )
                assert added.status_code == 200
                forged = await client.post("/add", data={"csrf_token": match.group(1)})
                assert forged.status_code == 403  # the token alone, without its nonce cookie
            assert await manager.store.count() == 1  # type: ignore[attr-defined]

    asyncio.run(run())


def test_wsgi_adapter_stores_nothing_for_anonymous_views(tmp_path: Path) -> None:
    with SessionManager(SQLiteStore(str(tmp_path / "w.db"))) as manager:
        app = Flask(__name__)

        @app.get("/form")
        def form() -> Any:
            return jsonify(csrf=handle().csrf_token())

        Sessionward(app, manager, csrf=CsrfPolicy([ORIGIN], keys=[secrets.token_bytes(32)]))
        client = app.test_client(use_cookies=False)  # every view is a new visitor
        names: set[str] = set()
        for _ in range(VIEWS):
            response = client.get("/form")
            assert response.status_code == 200
            names |= {c.partition("=")[0] for c in response.headers.getlist("set-cookie")}
        assert names == {"__Host-id-csrf"}
        assert manager.store.count() == 0  # type: ignore[attr-defined]
