"""docs/web.md's "JSON and single-page clients" application, run as the docs print it: the
token from the endpoint, a stale one refused with a reload message after sign-in, the new one
from the login answer, and the manager closed at shutdown."""

from __future__ import annotations

import asyncio
import importlib.util
import secrets
import sys
import threading
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import uvicorn
from servers import START_TIMEOUT, wait_until

from sessionward.errors import StoreError

from ._servers import _free_socket

DOC = Path(__file__).resolve().parents[2] / "docs" / "web.md"
BROWSER = {"sec-fetch-site": "same-origin"}  # what a browser's fetch() adds


def _doc_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, origin: str) -> ModuleType:
    text = DOC.read_text(encoding="utf-8").split("### JSON and single-page clients", 1)[1]
    source = text.split("```python\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "spa_doc_app.py"
    path.write_text(source, encoding="utf-8")
    monkeypatch.setenv("SHOP_CSRF_KEY", secrets.token_hex(32))
    monkeypatch.setenv("SHOP_DB", str(tmp_path / "spa.db"))
    monkeypatch.setenv("SHOP_ORIGIN", origin)
    spec = importlib.util.spec_from_file_location("spa_doc_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "spa_doc_app", module)
    spec.loader.exec_module(module)
    return module


def test_the_spa_section_of_the_web_docs_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = _free_socket("127.0.0.1")
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    module = _doc_app(tmp_path, monkeypatch, base)
    # uvicorn with its lifespan on, as in production: shutdown runs the app's lifespan exit.
    server = uvicorn.Server(uvicorn.Config(module.app, lifespan="on", log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "uvicorn to start", START_TIMEOUT, interval=0.01)
    # httpx keeps no Secure cookie over plain http: carry the cookies by hand, as a browser
    # does for http://localhost.
    client = _Client(base)
    try:
        first = client.get("/api/csrf").json()["csrf_token"]
        headers = {**BROWSER, "x-csrf-token": first}
        assert client.post("/api/cart", json={"name": "tea"}, headers=BROWSER).status_code == 403
        assert client.post("/api/cart", json={"name": "tea"}, headers=headers).json() == {
            "cart": ["tea"]
        }
        # Once a session exists, the token the endpoint gives is bound to it.
        bound = client.get("/api/csrf").json()["csrf_token"]
        assert bound != first
        headers = {**BROWSER, "x-csrf-token": bound}
        wrong = {"user": "alice", "password": "nope"}
        assert client.post("/api/login", json=wrong, headers=headers).status_code == 401
        good = {"user": "alice", "password": "wonderland"}
        signed_in = client.post("/api/login", json=good, headers=headers).json()
        assert signed_in["user"] == "alice"
        fresh = signed_in["csrf_token"]
        assert fresh not in (first, bound)
        stale = client.post("/api/cart", json={"name": "cups"}, headers=headers)
        assert stale.status_code == 403
        assert "reload the page" in stale.text
        assert "cross-site" not in stale.text
        renewed = {**BROWSER, "x-csrf-token": fresh}
        cart = client.post("/api/cart", json={"name": "cups"}, headers=renewed).json()
        assert cart == {"cart": ["tea", "cups"]}  # the anonymous cart carried into the login
        crossed = {"sec-fetch-site": "cross-site", "x-csrf-token": fresh}
        refused = client.post("/api/cart", json={"name": "x"}, headers=crossed)
        assert (refused.status_code, refused.text) == (403, "cross-site request refused")
    finally:
        server.should_exit = True
        thread.join(10)
        client.close()
    # The lifespan closed the manager at shutdown: its store takes no more work.
    with pytest.raises(StoreError):
        asyncio.run(module.manager.store.get("AAAAAAAAAAAAAAAA"))


class _Client(httpx.Client):
    def __init__(self, base: str) -> None:
        super().__init__(base_url=base, timeout=10)
        self.jar: dict[str, str] = {}

    def send(self, request: httpx.Request, **kwargs: object) -> httpx.Response:
        if self.jar:
            request.headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        response = super().send(request, **kwargs)  # type: ignore[arg-type]
        for value in response.headers.get_list("set-cookie"):
            name, _, rest = value.partition("=")
            cookie = rest.split(";")[0]
            if cookie:
                self.jar[name] = cookie
            else:
                self.jar.pop(name, None)
        return response
