"""The optional device signal: ``device.js`` in a real browser (Debian's chromium through
Playwright) gives the same value on every page load, the value reaches the risk engine's
session history, and a changed value alone challenges at most: it never revokes.

The browser tests skip with the reason when chromium or Playwright is missing, unless
``SESSIONWARD_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sessionward import AsyncSessionManager, AsyncSQLiteStore, EventBus, Policy
from sessionward.core.events import RiskAssessed
from sessionward.errors import ConfigError
from sessionward.manager.risk import RiskAssessor
from sessionward.testing import EventRecorder
from sessionward.web import DeviceSignal
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.context import ContextCapture
from sessionward.web.device import DEVICE_COOKIE
from sessionward.web.starlette import get_handle, require_user

from ._servers import uvicorn_server, wsgi_server
from .test_browser import browser  # noqa: F401 - the module's chromium fixture

SECRET = secrets.token_bytes(32)
PAGE = '<!doctype html><title>shop</title><script src="/sessionward/device.js"></script>'


def build_app(manager: AsyncSessionManager, device: DeviceSignal | None) -> Starlette:
    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def login(request: Request) -> Response:
        await get_handle(request).login("alice")
        return JSONResponse({"ok": True})

    async def me(request: Request) -> Response:  # 401 with the reasons on a step-up
        session = await require_user(request)
        verdict = session.risk  # the engine's verdict when it scored this request
        if verdict is None:
            return JSONResponse({"user": session.user_id})
        codes = [str(reason.signal) for reason in verdict.reasons]
        return JSONResponse(
            {"user": session.user_id, "decision": str(verdict.decision), "reasons": codes}
        )

    async def seen(request: Request) -> Response:
        return JSONResponse({"device": get_handle(request).context.device_key})

    routes = [
        Route("/", page),
        Route("/login", login, methods=["POST"]),
        Route("/me", me),
        Route("/seen", seen),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(
        SessionMiddleware, manager=manager, csrf=False, device_signal=device
    )  # csrf is not this test's subject
    return app


def _device_cookie(context: Any, page: Any) -> str:
    """The value device.js wrote, once it has (the digest is asynchronous)."""
    page.wait_for_function(f"document.cookie.includes('{DEVICE_COOKIE}=')")
    cookies = {c["name"]: c for c in context.cookies()}
    cookie = cookies[DEVICE_COOKIE]
    assert cookie["secure"] is True
    assert cookie["path"] == "/"
    assert cookie["sameSite"] == "Lax"
    return str(cookie["value"])


def test_device_js_is_stable_reaches_the_engine_and_a_change_never_revokes(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    recorder = EventRecorder()
    manager = AsyncSessionManager(
        AsyncSQLiteStore(str(tmp_path / "d.db")),
        policy=Policy(idle_timeout=86400, absolute_timeout=7 * 86400),
        events=EventBus([recorder]),
        risk=RiskAssessor(),
    )
    device = DeviceSignal(secret=SECRET)
    with uvicorn_server(lambda base: build_app(manager, device)) as served:
        app = served.replace("127.0.0.1", "localhost")
        context = browser.new_context()
        page = context.new_page()
        page.goto(app + "/")
        first = _device_cookie(context, page)
        assert len(first) == 22

        # a second load computes it again from scratch: the same value
        page.evaluate(f"document.cookie = '{DEVICE_COOKIE}=; Path=/; Secure; Max-Age=0'")
        assert DEVICE_COOKIE not in {c["name"] for c in context.cookies()}
        page.reload()
        assert _device_cookie(context, page) == first

        # the adapter keys it with the server secret: the raw cookie is never the signal
        key = page.goto(app + "/seen").json()["device"]
        assert key == device.key(f"{DEVICE_COOKIE}={first}")
        assert key != first

        login = page.evaluate("fetch('/login', {method: 'POST'}).then((r) => r.status)")
        assert login == 200
        assert page.goto(app + "/me").json()["user"] == "alice"
        history = _history(tmp_path / "d.db")
        assert history["session"]["device"] == key  # the engine's reference for the session

        # another device value alone (same browser, address, language): a challenge at most,
        # never a revoke; the page's fetch() sends it, device.js does not run for a fetch
        answer = page.evaluate(
            f"""async () => {{
                document.cookie = '{DEVICE_COOKIE}={"A" * 22}; Path=/; Secure; SameSite=Lax';
                const r = await fetch('/me', {{headers: {{accept: 'application/json'}}}});
                return [r.status, await r.json()];
            }}"""
        )
        status, body = answer
        assert status in (200, 401)  # allowed, logged or stepped up: the session survives
        assert "device.changed" in body["reasons"]
        assert body.get("decision", "step_up") != "revoke"
        assert not [
            e for e in recorder.events if isinstance(e, RiskAssessed) and e.decision == "revoke"
        ]
        page.goto(app + "/")  # device.js writes the real value back
        assert _device_cookie(context, page) == first
        assert page.goto(app + "/me").json()["user"] == "alice"  # the session survived
        context.close()


def _history(db: Path) -> Any:
    """alice's session's risk history as the store holds it (read with a second handle)."""
    from sessionward import SQLiteStore

    store = SQLiteStore(str(db))
    try:
        (record,) = store.list_user("alice")
        return json.loads(record.context)
    finally:
        store.close()


def test_off_by_default_no_script_and_no_signal(tmp_path: Path) -> None:
    manager = AsyncSessionManager(AsyncSQLiteStore(str(tmp_path / "o.db")))
    with uvicorn_server(lambda base: build_app(manager, None)) as base:
        cookies = {DEVICE_COOKIE: "B" * 22}
        assert httpx.get(base + "/sessionward/device.js", timeout=10).status_code == 404
        assert httpx.get(base + "/seen", cookies=cookies, timeout=10).json() == {"device": None}


def test_the_wsgi_middleware_serves_the_script_and_reads_the_cookie() -> None:
    from sessionward import SessionManager, SQLiteStore
    from sessionward.web.wsgi import SessionMiddleware as WsgiMiddleware

    seen: list[str | None] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["sessionward"].context.device_key)
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"served"]

    device = DeviceSignal(secret=SECRET, path="/static/dev.js")
    manager = SessionManager(SQLiteStore(":memory:"))
    with wsgi_server(
        lambda base: WsgiMiddleware(app, manager, csrf=False, device_signal=device)
    ) as base:
        script = httpx.get(base + "/static/dev.js", timeout=10)
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert script.headers["x-content-type-options"] == "nosniff"
        assert b"crypto.subtle.digest" in script.content
        assert DEVICE_COOKIE.encode() in script.content
        httpx.get(base + "/", cookies={DEVICE_COOKIE: "C" * 22}, timeout=10)
        httpx.get(base + "/", timeout=10)
    assert seen == [device.key(f"{DEVICE_COOKIE}={'C' * 22}"), None]


def test_the_key_is_per_secret_and_only_well_formed_values_count() -> None:
    value = "D" * 22
    header = f"a=1; {DEVICE_COOKIE}={value}; b=2"
    one, two = DeviceSignal(secret=b"1" * 16), DeviceSignal(secret=b"2" * 16)
    assert one.key(header) == one.key(f"{DEVICE_COOKIE}={value}")
    assert one.key(header) != two.key(header)  # not joinable across applications
    assert value not in (one.key(header) or "")
    for bad in ("", "short", "D" * 23, "D" * 21 + "!", "D" * 21 + "="):
        assert one.key(f"{DEVICE_COOKIE}={bad}") is None
    assert one.key("other=1") is None
    assert one.key(None) is None
    assert "1111" not in repr(one)
    capture = ContextCapture(device=one)
    assert capture.capture("192.0.2.1", {"cookie": header}).device_key == one.key(header)
    assert ContextCapture().capture("192.0.2.1", {"cookie": header}).device_key is None
    with pytest.raises(ConfigError):
        DeviceSignal(secret=b"short")
    with pytest.raises(ConfigError):
        DeviceSignal(secret=SECRET, path="device.js")


def test_the_flask_extension_takes_the_setting() -> None:
    from flask import Flask, jsonify

    from sessionward import SessionManager, SQLiteStore
    from sessionward.web.flask import Sessionward, handle

    app = Flask(__name__)
    device = DeviceSignal(secret=SECRET)
    Sessionward(app, SessionManager(SQLiteStore(":memory:")), csrf=False, device_signal=device)

    @app.get("/seen")
    def seen() -> Any:
        return jsonify(device=handle().context.device_key)

    value = "F" * 22
    with wsgi_server(lambda base: app) as base:
        assert httpx.get(base + device.path, timeout=10).content.startswith(b"// sessionward")
        answer = httpx.get(base + "/seen", cookies={DEVICE_COOKIE: value}, timeout=10)
    assert answer.json() == {"device": device.key(f"{DEVICE_COOKIE}={value}")}
