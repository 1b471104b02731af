"""The examples run and do what the README says, over real HTTP."""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx

from ._servers import Browserish, uvicorn_server, wsgi_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hidden(html: str, name: str = "csrf_token") -> str:
    found = re.search(rf'name="{name}"\s+value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


def test_fastapi_shop_cart_survives_login_and_logout_everywhere(tmp_path: Path) -> None:
    shop = load("fastapi_shop")
    db = str(tmp_path / "shop.db")
    with uvicorn_server(lambda base: shop.create_app(db=db, origins=(base,))) as base:
        laptop, phone = Browserish(base), Browserish(base)
        token = hidden(laptop.get("/").text)
        laptop.post("/cart", data={"product": "book", "csrf_token": token})
        anonymous = laptop.token
        assert "Cart: book" in laptop.get("/").text
        token = hidden(laptop.get("/login").text)
        bad = laptop.post(
            "/login", data={"username": "alice", "password": "x", "csrf_token": token}
        )
        assert "Wrong" in bad.text
        laptop.post(
            "/login", data={"username": "alice", "password": "wonderland", "csrf_token": token}
        )
        assert laptop.token != anonymous
        account = laptop.get("/account").text
        assert "Hello alice. Cart: book" in account
        token = hidden(phone.get("/login").text)
        phone.post(
            "/login", data={"username": "alice", "password": "wonderland", "csrf_token": token}
        )
        assert laptop.get("/account").text.count("<li>") == 2
        old_phone = phone.token
        laptop.post("/logout-everywhere", data={"csrf_token": hidden(laptop.get("/account").text)})
        assert "Sign in" in phone.get("/", token=old_phone).text
        assert phone.get("/account", token=old_phone).status_code == 303
        assert laptop.get("/account").status_code == 303
        laptop.close()
        phone.close()


def test_flask_app_cart_survives_login_and_logout(tmp_path: Path) -> None:
    example = load("flask_app")
    db = str(tmp_path / "flask.db")
    with wsgi_server(lambda base: example.create_app(db=db, origins=(base,))) as base:
        client = Browserish(base, cookie_name="__Host-session")
        assert "Cart: empty" in client.get("/").text
        assert client.token is None  # a page view starts no session
        client.post("/cart", data={"product": "book", "csrf_token": hidden(client.get("/").text)})
        anonymous = client.token
        assert anonymous is not None
        assert "Cart: book" in client.get("/").text
        token = hidden(client.get("/login").text)
        bad = client.post("/login", data={"username": "bob", "password": "x", "csrf_token": token})
        assert "Wrong" in bad.text
        client.post("/login", data={"username": "bob", "password": "builder", "csrf_token": token})
        assert client.token not in (None, anonymous)
        page = client.get("/account").text
        assert "Hello bob. Cart: book. Visits this session: 1" in page
        cookie = client.token
        assert cookie is not None
        stranger = Browserish(base, cookie_name="__Host-session")
        assert "Cart: empty" in stranger.get("/", token=anonymous).text  # pre-login token dead
        client.post("/logout", data={"csrf_token": hidden(page)})
        assert client.token is None
        assert stranger.get("/account", token=cookie).status_code == 401
        stranger.close()
        client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_django_project_runs_with_one_command(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "EXAMPLE_PORT": str(port), "EXAMPLE_DATA_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "django_project" / "run.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/login", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "the example did not start"
                time.sleep(0.2)
        client = Browserish(base)
        token = hidden(client.get("/login").text, "csrfmiddlewaretoken")
        client.post(
            "/login",
            data={"username": "alice", "password": "wonderland", "csrfmiddlewaretoken": token},
        )
        page = client.get("/account").text
        assert "Hello alice" in page
        cookie = client.token
        client.post(
            "/logout-everywhere", data={"csrfmiddlewaretoken": hidden(page, "csrfmiddlewaretoken")}
        )
        assert client.get("/account", token=cookie).status_code == 302
        client.close()
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr:
            process.stderr.close()
