"""A real browser (Debian's chromium, driven by Playwright) against the ASGI middleware.

* the session cookie is invisible to ``document.cookie`` (HttpOnly) but sent back;
* a same-origin form POST works;
* a form on another site (127.0.0.2, while the app is visited as ``localhost``) that
  auto-submits to the app is refused, even carrying a valid form token.

Skipped with the reason when chromium or Playwright is missing, unless
``SESSIONWARD_REQUIRE_SERVICES=1``. Never runs ``playwright install``: the browser is Debian's.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from sessionward import AsyncSessionManager, AsyncSQLiteStore
from sessionward.web import CsrfPolicy

from ._servers import uvicorn_server
from .test_asgi import POLICY, build_app

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("SESSIONWARD_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        _unavailable(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def attacker_app(target: str, csrf_token: str) -> Starlette:
    async def page(request: Request) -> Response:
        return HTMLResponse(
            f'<form id="f" method="post" action="{target}/cart">'
            f'<input name="item" value="stolen"><input name="csrf_token" value="{csrf_token}">'
            "</form><script>document.getElementById('f').submit()</script>"
        )

    return Starlette(routes=[Route("/", page)])


def test_cookie_httponly_sent_back_and_cross_site_post_refused(
    browser: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sessionward.web")
    manager = AsyncSessionManager(AsyncSQLiteStore(str(tmp_path / "b.db")), policy=POLICY)

    def make_app(base: str) -> Starlette:
        origin = base.replace("127.0.0.1", "localhost")
        return build_app(manager, csrf=CsrfPolicy([origin], keys=[secrets.token_bytes(32)]))

    with uvicorn_server(make_app) as served:
        app = served.replace("127.0.0.1", "localhost")
        context = browser.new_context()
        page = context.new_page()
        token = page.goto(app + "/csrf").json()["csrf"]
        login = page.evaluate(
            """async ([token]) => {
                const r = await fetch('/login', {method: 'POST', body: new URLSearchParams(
                    {user: 'alice', csrf_token: token})});
                return r.status;
            }""",
            [token],
        )
        assert login == 200
        cookies = {cookie["name"]: cookie for cookie in context.cookies()}
        assert set(cookies) == {"__Host-id", "__Host-id-csrf"}  # session, form-token nonce
        for cookie in cookies.values():
            assert cookie["httpOnly"] is True
            assert cookie["secure"] is True
            assert cookie["sameSite"] == "Lax"
        assert page.evaluate("document.cookie") == ""
        assert page.goto(app + "/me").json() == {"user": "alice", "cart": []}  # sent back

        # same-origin HTML form: allowed
        page.goto(app + "/form")
        with page.expect_navigation():
            page.click("button")
        assert page.evaluate("document.body.innerText").strip() == '{"ok":true}'

        # a form on another site posting to the app, with a (leaked) valid form token
        fresh_token = page.goto(app + "/csrf").json()["csrf"]
        with uvicorn_server(lambda base: attacker_app(app, fresh_token), host="127.0.0.2") as evil:
            with page.expect_response(f"{app}/cart") as refused:
                page.goto(evil + "/")
            assert refused.value.status == 403
        assert page.goto(app + "/me").json()["cart"] == ["book"]
        context.close()
    assert any("sec-fetch-site-cross-site" in r.getMessage() for r in caplog.records)
