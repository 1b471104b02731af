"""End to end over real HTTP: Flask + the WSGI middleware on a wsgiref server, cookie and
bearer transport, through the sync SessionManager on a real SQLite file and a fake clock."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, jsonify, request

from sessionward import Policy, SessionManager, SQLiteStore
from sessionward.testing import FakeClock
from sessionward.web import CsrfPolicy
from sessionward.web.flask import (
    Sessionward,
    current_session,
    handle,
    require_recent_auth,
    require_scope,
    require_user,
)

from ._servers import Browserish, wsgi_server

POLICY = Policy(idle_timeout=600, absolute_timeout=3600)


def build_app(manager: SessionManager, **options: Any) -> Flask:
    app = Flask(__name__)
    Sessionward(app, manager, **options)

    @app.get("/public")
    def public() -> str:
        return "public"

    @app.get("/csrf")
    def csrf() -> Any:
        return jsonify(csrf=handle().csrf_token())

    @app.post("/login")
    def login() -> Any:
        user = request.form.get("user") or (request.get_json(silent=True) or {})["user"]
        handle().login(user, scopes=request.form.get("scopes", "").split())
        return jsonify(ok=True)

    @app.get("/me")
    @require_user
    def me() -> Any:
        session = current_session()
        assert session is not None
        return jsonify(user=session.user_id, cart=session.data.get("cart", []))

    @app.post("/cart")
    def cart() -> Any:
        item = request.form["item"]
        handle().update_data(lambda d: d.setdefault("cart", []).append(item))
        return jsonify(ok=True)

    @app.post("/logout")
    def logout() -> Any:
        handle().logout()
        return jsonify(ok=True)

    @app.post("/logout-everywhere")
    @require_user
    def logout_everywhere() -> Any:
        return jsonify(ended=handle().logout_everywhere())

    @app.get("/admin")
    @require_scope("admin")
    def admin() -> Any:
        return jsonify(admin=True)

    @app.get("/sensitive")
    @require_recent_auth(max_age=300)
    def sensitive() -> Any:
        return jsonify(sensitive=True)

    @app.get("/form")
    def form() -> Any:
        from flask import render_template_string

        return render_template_string('<input name="csrf_token" value="{{ csrf_token() }}">')

    return app


class Served:
    def __init__(self, base: str, clock: FakeClock, manager: SessionManager) -> None:
        self.base, self.clock, self.manager = base, clock, manager
        self.clients: list[Browserish] = []

    def client(self) -> Browserish:
        self.clients.append(client := Browserish(self.base))
        return client

    def login(self, client: Browserish, user: str = "alice", **form: str) -> httpx.Response:
        token = client.get("/csrf").json()["csrf"]
        return client.post("/login", data={"user": user, "csrf_token": token, **form})


@pytest.fixture
def served(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[Served]:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    manager = SessionManager(SQLiteStore(str(tmp_path / "f.db")), policy=POLICY, clock=clock)

    def make_app(base: str) -> Flask:
        return build_app(manager, csrf=CsrfPolicy([base], keys=[secrets.token_bytes(32)]))

    with wsgi_server(make_app) as base:
        served = Served(base, clock, manager)
        yield served
        for client in served.clients:
            client.close()
    minted = {
        value.partition("=")[2].split(";")[0]
        for client in served.clients
        for response in client.responses
        for value in response.headers.get_list("set-cookie")
    } - {""}
    assert minted
    server_logs = " ".join(
        r.getMessage()
        for phase in ("setup", "call")
        for r in caplog.get_records(phase)
        if not r.name.startswith(("httpx", "httpcore"))
    )
    assert 'HTTP/1.1" 200' in server_logs  # the access log was captured
    for client in served.clients:
        for response in client.responses:
            assert not any(t in response.text or t in str(response.url) for t in minted)
    assert not any(t in server_logs for t in minted)


def test_untouched_response_sets_no_cookie(served: Served) -> None:
    client = served.client()
    served.login(client)
    for path in ("/public", "/me"):
        response = client.get(path)
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
    assert "vary" not in client.get("/public").headers
    assert client.get("/me").headers["vary"] == "Cookie"


def test_login_rotates_and_kills_pre_login_token_cart_survives(served: Served) -> None:
    client = served.client()
    csrf = client.get("/csrf").json()["csrf"]
    assert [client.token] == [None]  # a form token alone stores nothing
    assert client.post("/cart", data={"item": "pen", "csrf_token": csrf}).status_code == 200
    anonymous = client.token
    assert anonymous is not None
    response = client.post("/login", data={"user": "alice", "csrf_token": csrf})
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["set-cookie"].endswith("; Path=/; Secure; HttpOnly; SameSite=Lax")
    assert client.token not in (None, anonymous)
    assert client.get("/me").json() == {"user": "alice", "cart": ["pen"]}
    assert client.get("/me", token=anonymous).status_code == 401


def test_logout_and_logout_everywhere(served: Served) -> None:
    one, two = served.client(), served.client()
    served.login(one)
    served.login(two)
    old_one, old_two = one.token, two.token
    csrf = {"x-csrf-token": one.get("/csrf").json()["csrf"]}
    response = one.post("/logout-everywhere", headers=csrf)
    assert response.json() == {"ended": 2}
    assert response.headers["clear-site-data"] == '"cache", "cookies", "storage"'
    assert one.get("/me", token=old_one).status_code == 401
    assert two.get("/me", token=old_two).status_code == 401
    three = served.client()
    served.login(three)
    old_three = three.token
    response = three.post("/logout", headers={"x-csrf-token": three.get("/csrf").json()["csrf"]})
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert three.get("/me", token=old_three).status_code == 401


def test_idle_and_absolute_expiry(served: Served) -> None:
    client = served.client()
    served.login(client)
    served.clock.advance(POLICY.idle_timeout + 1)
    assert client.get("/me").status_code == 401
    served.login(client)
    for _ in range(int(POLICY.absolute_timeout // 300) - 1):
        served.clock.advance(300)
        assert client.get("/me").status_code == 200
    served.clock.advance(300)
    assert client.get("/me").status_code == 401


def test_csrf(served: Served) -> None:
    client = served.client()
    served.login(client)
    token = client.get("/csrf").json()["csrf"]
    form = {"item": "x", "csrf_token": token}
    assert (
        client.post("/cart", data=form, headers={"origin": "http://evil.example"}).status_code
        == 403
    )
    cross = {"sec-fetch-site": "cross-site"}
    assert client.post("/cart", data=form, headers=cross).status_code == 403
    assert client.request("POST", "/cart", data=form, same_origin=False).status_code == 403
    assert client.post("/cart", data={"item": "x"}).status_code == 403
    assert client.post("/cart", data=form).status_code == 200
    assert client.get("/me").json()["cart"] == ["x"]
    assert f'value="{token}"' in client.get("/form").text


def test_scopes_and_step_up(served: Served) -> None:
    client = served.client()
    served.login(client, scopes="admin")
    assert client.get("/admin").status_code == 200
    assert client.get("/sensitive").status_code == 200
    served.clock.advance(301)
    assert client.get("/sensitive").status_code == 401
    other = served.client()
    served.login(other, user="bob")
    assert other.get("/admin").status_code == 403


def test_store_outage_answers_503(served: Served) -> None:
    client = served.client()
    served.login(client)
    served.manager.close()
    assert client.get("/me").status_code == 503


def test_bearer_transport(tmp_path: Path) -> None:
    clock = FakeClock()
    manager = SessionManager(SQLiteStore(str(tmp_path / "b.db")), policy=POLICY, clock=clock)
    app = build_app(manager, transport="bearer", realm="api")
    with wsgi_server(lambda base: app) as base, httpx.Client(base_url=base) as client:
        response = client.post("/login", json={"user": "alice"})  # no CSRF in bearer mode
        token = response.headers["session-token"]
        assert "set-cookie" not in response.headers
        assert token not in response.text
        auth = {"authorization": f"Bearer {token}"}
        assert client.get("/me", headers=auth).json()["user"] == "alice"
        assert client.get("/me").headers["www-authenticate"] == 'Bearer realm="api"'
        assert client.get("/admin", headers=auth).headers["www-authenticate"] == (
            'Bearer realm="api", error="insufficient_scope", scope="admin"'
        )
        client.post("/logout", headers=auth)
        denied = client.get("/me", headers=auth)
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"] == 'Bearer realm="api", error="invalid_token"'
