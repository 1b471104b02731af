"""The demo shop with ``demo_device_signal = true``: its pages load ``device.js`` (same
origin, with the page's CSP nonce), a real browser (Debian's chromium) writes the cookie, and
the signed-in session's risk history holds the keyed value. Off by default."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")

from sessionward import SQLiteStore
from sessionward.service import ServiceConfig, create_app
from sessionward.service.runtime import Runtime
from sessionward.web import DeviceSignal
from sessionward.web.device import DEVICE_COOKIE

from ._server import serve
from .test_browser import Live, sign_in
from .test_browser import browser as browser  # a fixture

SCRIPT = "/demo/sessionward/device.js"


@pytest.fixture
def device_live(tmp_path: Path) -> Iterator[Live]:
    config = ServiceConfig(store=str(tmp_path / "device.db"), demo_device_signal=True)
    app = create_app(config)
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base:
            yield Live(base, runtime, tmp_path)
    finally:
        _close(runtime)


def _close(runtime: Runtime) -> None:
    # Playwright's sync API owns this thread's event loop: close from another thread.
    closer = threading.Thread(target=asyncio.run, args=(runtime.close(),))
    closer.start()
    closer.join(10)


def _device_cookie(context: Any, page: Any) -> str:
    page.wait_for_function(f"document.cookie.includes('{DEVICE_COOKIE}=')")
    return str(next(c["value"] for c in context.cookies() if c["name"] == DEVICE_COOKIE))


def test_the_demo_sends_the_device_signal_to_the_engine(
    browser: Any, device_live: Live, tmp_path: Path
) -> None:
    device_live.add_user("demo", "dora", "a-long-enough-passphrase")
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(device_live.base + "/demo/")
    first = _device_cookie(context, page)
    sign_in(page, device_live.base, "dora", "a-long-enough-passphrase")
    page.goto(device_live.base + "/demo/devices")
    assert _device_cookie(context, page) == first  # computed again on this page: the same
    assert not [e for e in errors if "Content Security Policy" in e]
    context.close()

    secret = device_live.runtime.state.secret("demo-device")
    keyed = DeviceSignal(secret=secret, path=SCRIPT).key(f"{DEVICE_COOKIE}={first}")
    store = SQLiteStore(str(tmp_path / "device.db"))
    try:
        (record,) = store.list_user("dora")
        assert json.loads(record.context)["session"]["device"] == keyed
        assert first not in record.context
    finally:
        store.close()


def test_off_by_default(tmp_path: Path) -> None:
    app = create_app(ServiceConfig(store=str(tmp_path / "off.db")))
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base:
            assert "device.js" not in httpx.get(base + "/demo/", timeout=10).text
            assert httpx.get(base + SCRIPT, timeout=10).status_code == 404
    finally:
        _close(runtime)
