"""A real browser (Debian's chromium, driven by Playwright) against the ASGI middleware.

* the session cookie is invisible to ``document.cookie`` (HttpOnly) but sent back;
* a same-origin form POST works;
* a form on another site (127.0.0.2, while the app is visited as ``localhost``) that
  auto-submits to the app is refused, even carrying a valid form token;
* in the FastAPI and Flask examples, the cart kept in ``request.session`` / ``flask.session``
  survives sign-in, and the pre-login cookie is dead afterwards.

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
from service._browser import screenshots_dir
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from sessionward import AsyncSessionManager, AsyncSQLiteStore
from sessionward.web import CsrfPolicy

from ._servers import uvicorn_server, wsgi_server
from .test_asgi import POLICY, build_app
from .test_examples import load

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _shoot(page: Any, name: str) -> None:
    """Screenshots of the page as it stands, at a desktop and a phone width, kept with the
    service's (``screenshots/<width>/``)."""
    for width, size in {"desktop": (1280, 800), "phone": (390, 844)}.items():
        page.set_viewport_size({"width": size[0], "height": size[1]})
        target = screenshots_dir() / width / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


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


@pytest.mark.parametrize(
    ("example", "cookie"), [("fastapi_shop", "__Host-id"), ("flask_app", "__Host-session")]
)
def test_example_cart_in_framework_session_survives_login(
    browser: Any, tmp_path: Path, example: str, cookie: str
) -> None:
    """The cart the example keeps in ``request.session`` / ``flask.session`` survives sign-in;
    the pre-login cookie is dead afterwards; ``clear()`` (logout) removes the cookie."""
    module = load(example)
    db = str(tmp_path / "example.db")
    server = uvicorn_server if example == "fastapi_shop" else wsgi_server

    def make_app(base: str) -> Any:
        return module.create_app(db=db, origins=(base.replace("127.0.0.1", "localhost"),))

    with server(make_app) as served:
        app = served.replace("127.0.0.1", "localhost")
        context = browser.new_context()
        page = context.new_page()
        page.goto(app + "/")
        with page.expect_navigation():
            page.click("button:has-text('Add book')")
        assert "Cart: book" in page.inner_text("body")
        _shoot(page, f"301-{example}-home")
        before = {c["name"]: c["value"] for c in context.cookies()}[cookie]

        page.goto(app + "/login")
        _shoot(page, f"302-{example}-login")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "wonderland")
        with page.expect_navigation():
            page.click("button:text-is('Sign in')")
        assert page.url == app + "/account"
        assert "Hello alice. Cart: book" in page.inner_text("body")
        _shoot(page, f"303-{example}-account")
        after = {c["name"]: c["value"] for c in context.cookies()}[cookie]
        assert after != before

        # Another browser presenting the pre-login cookie (as a thief who copied it would).
        replay = browser.new_context(extra_http_headers={"cookie": f"{cookie}={before}"})
        stale = replay.new_page()
        response = stale.goto(app + "/")
        assert "Cart: empty" in stale.inner_text("body")  # the pre-login cookie is dead
        assert "Sign in" in stale.inner_text("body")
        assert "Max-Age=0" in (response.header_value("set-cookie") or "")  # and told to go
        replay.close()

        with page.expect_navigation():
            page.click("button:text-is('Log out')")
        assert cookie not in {c["name"] for c in context.cookies()}
        assert "Cart: empty" in page.inner_text("body")
        context.close()
