"""Real sites on loopback for the profile tests: the sessionward demo shop (with two shop
accounts and an admin API key) and a tiny notes site whose pages set a cookie and a
localStorage entry. uvicorn runs in a thread of the test process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers import uvicorn_thread

CHROMIUM = os.environ.get("SESSIONWARD_CHROMIUM", "/usr/bin/chromium")
# The flags of tests/web/test_browser.py.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORDS = {"alice": "alice-drinks-green-tea", "bob": "bob-prefers-oolong-tea"}


def unavailable(reason: str) -> None:
    if os.environ.get("SESSIONWARD_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required for this run: {reason}")
    pytest.skip(reason)


def need_chromium() -> None:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        unavailable(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("the playwright package is not installed")


def serve(app: Any, host: str = "127.0.0.1") -> AbstractContextManager[str]:
    """``app`` on a real uvicorn, a free port of ``host``; yields the base URL."""
    return uvicorn_thread(lambda base: app, host=host)


@dataclass
class Shop:
    base: str
    admin_key: str


@contextmanager
def demo_shop(tmp_path: Path) -> Iterator[Shop]:
    """The demo shop on loopback with the accounts of :data:`PASSWORDS`."""
    from argon2 import PasswordHasher

    from sessionward.service import ServiceConfig, create_app
    from sessionward.service.keys import create_key
    from sessionward.service.runtime import Runtime
    from sessionward.service.state import UserRow

    app = create_app(ServiceConfig(store=str(tmp_path / "shop.db"), admin=False))
    runtime: Runtime = app.state.runtime
    hasher = PasswordHasher()
    for name, password in PASSWORDS.items():
        runtime.state.add_user(UserRow("demo", name, hasher.hash(password), None, time.time()))
    key = create_key(runtime.state, "admin", "profiles test", time.time())[0]
    try:
        with serve(app) as base:
            yield Shop(base, key)
    finally:
        # Playwright's sync API may own this thread's event loop: close from another thread.
        closer = threading.Thread(target=asyncio.run, args=(runtime.close(),))
        closer.start()
        closer.join(10)


def browser_sign_in(page: Any, base: str, name: str) -> None:
    """Sign in to the demo shop in a Playwright page, through the form."""
    page.goto(f"{base}/demo/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/demo/")


def sign_in(client: httpx.Client, name: str) -> httpx.Response:
    """Sign in to the demo shop with an httpx client (as a browser's form post would)."""
    page = client.get("/demo/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "no form token on the sign-in page"
    return client.post(
        "/demo/login",
        data={"csrf_token": match.group(1), "username": name, "password": PASSWORDS[name]},
        headers={"sec-fetch-site": "same-origin", "origin": str(client.base_url).rstrip("/")},
    )


def notes_app() -> Any:
    """``/login?user=U`` sets a random ``sid`` cookie and a ``user`` cookie and leads to
    ``/``, a page whose script copies the user into localStorage; ``/echo`` answers the
    Cookie header it got, ``/headers`` every header, ``/bounce`` leads to ``/echo``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import (
        HTMLResponse,
        JSONResponse,
        PlainTextResponse,
        RedirectResponse,
        Response,
    )
    from starlette.routing import Route

    async def login(request: Request) -> Response:
        user = request.query_params.get("user", "")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie("sid", secrets.token_urlsafe(24), httponly=True)
        response.set_cookie("user", user)
        return response

    async def page(request: Request) -> Response:
        user = request.cookies.get("user", "")
        return HTMLResponse(
            f"<p id=cookies>{request.headers.get('cookie', '')}</p>"
            f"<script>localStorage.setItem('who', {json.dumps(user)})</script>"
        )

    async def echo(request: Request) -> Response:
        return PlainTextResponse(request.headers.get("cookie", ""))

    async def bounce(request: Request) -> Response:
        return RedirectResponse("/echo", status_code=303)

    async def headers(request: Request) -> Response:
        return JSONResponse(dict(request.headers))

    routes = [Route("/login", login), Route("/", page), Route("/echo", echo)]
    routes += [Route("/headers", headers), Route("/bounce", bounce)]
    return Starlette(routes=[*routes, Route("/admin/echo", echo)])


@contextmanager
def forward_proxy() -> Iterator[tuple[str, list[str]]]:
    """An HTTP proxy that answers every request itself (``proxied <url>``) and records the
    absolute URLs it was asked for: enough to prove a client went through it."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = f"proxied {self.path}".encode()
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
