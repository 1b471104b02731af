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
        assert bad.status_code == 401
        assert "Wrong username or password." in bad.text
        assert "value='bob'" in bad.text  # the username is kept
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
        sent = stranger.get("/account", token=cookie)  # after logout: sent to sign in
        assert (sent.status_code, sent.headers["location"]) == (303, "/login?next=/account")
        assert "Please sign in to continue." in client.get("/login?next=/account").text
        # Signing in from there lands where the user meant to go; a foreign target does not.
        form = client.get("/login?next=/account").text
        back = client.post(
            "/login",
            data={
                "username": "bob",
                "password": "builder",
                "next": "/account",
                "csrf_token": hidden(form),
            },
        )
        assert (back.status_code, back.headers["location"]) == (303, "/account")
        form = client.get("/login").text
        away = client.post(
            "/login",
            data={
                "username": "bob",
                "password": "builder",
                "next": "//evil.example/",
                "csrf_token": hidden(form),
            },
        )
        assert away.headers["location"] == "/account"
        stranger.close()
        client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_django_example(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The example on a free port; on a port another process took meanwhile, on another."""
    for _ in range(3):
        port = _free_port()
        env = {**os.environ, "EXAMPLE_PORT": str(port), "EXAMPLE_DATA_DIR": str(tmp_path)}
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "django_project" / "run.py")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while process.poll() is None:
            try:
                httpx.get(base + "/login", timeout=1)
                return process, base
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    process.kill()
                    process.wait(10)
                    raise AssertionError("the example did not start") from None
                time.sleep(0.2)
        error = process.stderr.read().decode() if process.stderr else ""
        if process.stderr:
            process.stderr.close()
        assert "already in use" in error, error
    raise AssertionError("three free ports were taken before the example could bind them")


def test_django_project_runs_with_one_command(tmp_path: Path) -> None:
    process, base = _start_django_example(tmp_path)
    try:
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


def test_examples_listen_on_ports_of_their_own_and_explain_themselves() -> None:
    """Each example's default port differs from the others' and from `sessionward serve`'s,
    and ``--help`` prints the whole description."""
    from sessionward.service.config import ServiceConfig

    ports = {ServiceConfig().port: "sessionward serve"}
    for name in ("fastapi_shop", "flask_app", "django_project/run"):
        text = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
        found = re.search(r"http://localhost:(\d+)", text)
        assert found, name
        port = int(found.group(1))
        assert port not in ports, (name, ports)
        ports[port] = name
    for name in ("fastapi_shop", "flask_app"):
        shown = subprocess.run(
            [sys.executable, str(EXAMPLES / f"{name}.py"), "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        ).stdout
        assert "Demo users: alice / wonderland, bob / builder." in shown, shown
        assert "--dev-http" in shown, shown
        assert "default 800" in shown, shown
