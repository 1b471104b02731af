"""End to end over real HTTP: Starlette + the ASGI middleware on uvicorn, cookie transport.

The manager (real SQLite file, fake clock) lives in this process; uvicorn serves the app from
a thread on a free loopback port, so advancing the clock drives idle and absolute expiry.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sessionward import AsyncSessionManager, AsyncSQLiteStore, EventBus, Policy
from sessionward.testing import EventRecorder, FakeClock
from sessionward.web import CookiePolicy, CsrfPolicy
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.starlette import (
    get_handle,
    require_recent_auth,
    require_scope,
    require_user,
)

from ._servers import Browserish, uvicorn_server

POLICY = Policy(idle_timeout=600, absolute_timeout=3600, rotate_after=None)


def build_app(manager: AsyncSessionManager, **middleware: Any) -> Starlette:
    async def public(request: Request) -> Response:
        return PlainTextResponse("public")

    async def peek(request: Request) -> Response:
        session = get_handle(request).session
        return JSONResponse({"user": session.user_id if session else None})

    async def csrf(request: Request) -> Response:
        return JSONResponse({"csrf": await get_handle(request).csrf_token()})

    async def login(request: Request) -> Response:
        form = await request.form()
        await get_handle(request).login(
            str(form["user"]),
            scopes=str(form.get("scopes", "")).split(),
            remember=form.get("remember") == "1",
        )
        return JSONResponse({"ok": True})

    async def me(request: Request) -> Response:
        session = await require_user(request)
        return JSONResponse({"user": session.user_id, "cart": session.data.get("cart", [])})

    async def cart_add(request: Request) -> Response:
        item = str((await request.form())["item"])
        await get_handle(request).update_data(lambda d: d.setdefault("cart", []).append(item))
        return JSONResponse({"ok": True})

    async def logout(request: Request) -> Response:
        await get_handle(request).logout()
        return JSONResponse({"ok": True})

    async def logout_everywhere(request: Request) -> Response:
        await require_user(request)
        return JSONResponse({"ended": await get_handle(request).logout_everywhere()})

    async def admin(request: Request) -> Response:
        await require_scope("admin")(request)
        return JSONResponse({"admin": True})

    async def sensitive(request: Request) -> Response:
        await require_recent_auth(max_age=300)(request)
        return JSONResponse({"sensitive": True})

    async def rotate(request: Request) -> Response:
        await require_user(request)
        await get_handle(request).rotate()
        return JSONResponse({"ok": True})

    async def form_page(request: Request) -> Response:
        token = await get_handle(request).csrf_token()
        return HTMLResponse(
            '<form id="f" method="post" action="/cart"><input name="item" value="book">'
            f'<input name="csrf_token" value="{token}"><button>add</button></form>'
        )

    routes = [
        Route("/form", form_page),
        Route("/public", public),
        Route("/peek", peek),
        Route("/csrf", csrf),
        Route("/login", login, methods=["POST"]),
        Route("/me", me),
        Route("/cart", cart_add, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/logout-everywhere", logout_everywhere, methods=["POST"]),
        Route("/admin", admin),
        Route("/sensitive", sensitive),
        Route("/rotate", rotate, methods=["POST"]),
    ]
    return Starlette(
        routes=routes, middleware=[Middleware(SessionMiddleware, manager=manager, **middleware)]
    )


class Harness:
    def __init__(self, base: str, manager: AsyncSessionManager, clock: FakeClock) -> None:
        self.base, self.manager, self.clock = base, manager, clock
        self.clients: list[Browserish] = []

    def client(self) -> Browserish:
        client = Browserish(self.base)
        self.clients.append(client)
        return client

    def login(self, client: Browserish, user: str = "alice", **form: str) -> httpx.Response:
        csrf = client.get("/csrf").json()["csrf"]
        return client.post("/login", data={"user": user, "csrf_token": csrf, **form})

    def csrf(self, client: Browserish) -> dict[str, str]:
        return {"x-csrf-token": client.get("/csrf").json()["csrf"]}


@pytest.fixture
def harness(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[Harness]:
    clock = FakeClock()
    manager = AsyncSessionManager(
        AsyncSQLiteStore(str(tmp_path / "s.db")),
        policy=POLICY,
        clock=clock,
        events=EventBus(),  # the default logging subscriber: logs are checked for tokens
    )
    manager.events.subscribe(recorder := EventRecorder())
    caplog.set_level(logging.DEBUG)

    def make_app(base: str) -> Starlette:
        csrf = CsrfPolicy([base], keys=[secrets.token_bytes(32)])
        return build_app(manager, csrf=csrf, cookie=CookiePolicy(remember_max_age=7 * 86400))

    with uvicorn_server(make_app) as base:
        harness = Harness(base, manager, clock)
        harness.recorder = recorder  # type: ignore[attr-defined]
        yield harness
        for client in harness.clients:
            client.close()
    _assert_no_token_leaked(harness, caplog)


def _assert_no_token_leaked(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    minted: set[str] = set()
    for client in harness.clients:
        for response in client.responses:
            for value in response.headers.get_list("set-cookie"):
                token = value.partition("=")[2].split(";")[0]
                if token:
                    minted.add(token)
    records = [  # the server side's records; the test client's own debug log shows headers
        r
        for phase in ("setup", "call")
        for r in caplog.get_records(phase)
        if not r.name.startswith(("httpx", "httpcore"))
    ]
    logs = "\n".join(record.getMessage() + repr(record.__dict__) for record in records)
    assert "uvicorn.access" in logs, "the server's access log was not captured"
    for client in harness.clients:
        for response in client.responses:
            assert not any(t in response.text for t in minted), "token in a body"
            assert not any(t in str(response.url) for t in minted), "token in a URL"
    assert minted, "the test minted no token"
    assert not any(t in logs for t in minted), "token in a log record"


def flags(response: httpx.Response) -> list[str]:
    [value] = response.headers.get_list("set-cookie")
    return value.split("; ")


def test_untouched_responses_carry_no_set_cookie_and_no_vary(harness: Harness) -> None:
    anonymous = harness.client()
    response = anonymous.get("/public")
    assert response.text == "public"
    assert "set-cookie" not in response.headers
    assert "vary" not in response.headers
    user = harness.client()
    harness.login(user)
    for path in ("/public", "/me", "/peek"):
        response = user.get(path)
        assert response.status_code == 200
        assert "set-cookie" not in response.headers, path
    assert "vary" not in user.get("/public").headers
    assert user.get("/peek").headers["vary"] == "Cookie"


def test_cookie_is_hardened_and_setting_it_disables_caching(harness: Harness) -> None:
    client = harness.client()
    response = client.get("/csrf")  # a form token without a session: only the nonce cookie
    assert [client.token] == [None]  # no narrowing: the token changes below
    nonce = client.others["__Host-id-csrf"]
    hardened = ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"]
    assert flags(response) == [f"__Host-id-csrf={nonce}", *hardened]
    assert response.headers["cache-control"] == "no-store"
    response = client.post("/cart", data={"item": "book"}, headers=harness.csrf(client))
    token = client.token
    assert token is not None
    assert token.startswith("sw1_")
    assert flags(response) == [f"__Host-id={token}", *hardened]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["vary"] == "Cookie"


def test_login_rotates_the_token_and_kills_the_pre_login_one(harness: Harness) -> None:
    client = harness.client()
    headers = harness.csrf(client)  # no session yet: the token binds to the CSRF nonce
    assert [client.token] == [None]
    assert client.post("/cart", data={"item": "book"}, headers=headers).status_code == 200
    anonymous = client.token  # storing the cart item started the anonymous session
    assert anonymous is not None
    response = client.post("/login", data={"user": "alice"}, headers=headers)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert client.token is not None
    assert client.token != anonymous
    assert client.get("/me").json() == {"user": "alice", "cart": ["book"]}  # cart survived
    replay = client.get("/me", token=anonymous)
    assert replay.status_code == 401
    assert client.get("/peek", token=anonymous).json() == {"user": None}
    assert "revoked" in harness.recorder.kinds()  # type: ignore[attr-defined]


def test_logout_expires_cookie_clears_site_data_and_kills_token(harness: Harness) -> None:
    client = harness.client()
    harness.login(client)
    token = client.token
    response = client.post("/logout", headers=harness.csrf(client))
    assert response.status_code == 200
    assert response.headers["clear-site-data"] == '"cache", "cookies", "storage"'
    assert response.headers["cache-control"] == "no-store"
    assert "Max-Age=0" in flags(response)
    assert client.token is None
    assert client.get("/me", token=token).status_code == 401


def test_logout_everywhere_kills_every_session_of_the_user(harness: Harness) -> None:
    laptop, phone, other = harness.client(), harness.client(), harness.client()
    harness.login(laptop)
    harness.login(phone)
    harness.login(other, user="bob")
    phone_token = phone.token
    response = laptop.post("/logout-everywhere", headers=harness.csrf(laptop))
    assert response.json() == {"ended": 2}
    assert "clear-site-data" in response.headers
    assert phone.get("/me", token=phone_token).status_code == 401
    assert other.get("/me").json()["user"] == "bob"


def test_idle_expiry(harness: Harness) -> None:
    client = harness.client()
    harness.login(client)
    harness.clock.advance(POLICY.idle_timeout - 5)
    assert client.get("/me").status_code == 200
    harness.clock.advance(POLICY.idle_timeout - 5)
    assert client.get("/me").status_code == 200  # activity extended the window
    harness.clock.advance(POLICY.idle_timeout + 1)
    response = client.get("/me")
    assert response.status_code == 401
    assert "Max-Age=0" in flags(response)  # the dead cookie is cleared


def test_absolute_expiry_despite_activity(harness: Harness) -> None:
    client = harness.client()
    harness.login(client)
    for _ in range(int(POLICY.absolute_timeout // (POLICY.idle_timeout / 2)) - 1):
        harness.clock.advance(POLICY.idle_timeout / 2)
        assert client.get("/me").status_code == 200
    harness.clock.advance(POLICY.idle_timeout / 2)
    assert client.get("/me").status_code == 401


def test_cross_site_form_post_is_refused(harness: Harness) -> None:
    client = harness.client()
    harness.login(client)
    csrf = client.get("/csrf").json()["csrf"]
    form = {"item": "x", "csrf_token": csrf}
    evil = {"origin": "http://evil.example"}
    assert client.post("/cart", data=form, headers=evil).status_code == 403
    fetch = {"sec-fetch-site": "cross-site", "origin": client.origin}
    assert client.post("/cart", data=form, headers=fetch).status_code == 403
    assert client.request("POST", "/cart", data=form, same_origin=False).status_code == 403
    assert client.get("/me").json()["cart"] == []
    assert client.post("/cart", data=form).status_code == 200  # same origin + token
    same = {"sec-fetch-site": "same-origin"}
    assert (
        client.request("POST", "/cart", data=form, headers=same, same_origin=False).status_code
        == 200
    )
    assert client.post("/cart", data={"item": "y"}).status_code == 403  # no token
    assert client.post("/cart", data={"item": "y", "csrf_token": "A" * 43}).status_code == 403
    assert client.get("/me").json()["cart"] == ["x", "x"]


def test_login_form_needs_csrf_token_bound_to_the_current_session(harness: Harness) -> None:
    attacker, victim = harness.client(), harness.client()
    stolen = attacker.get("/csrf").json()["csrf"]
    victim.get("/csrf")
    response = victim.post("/login", data={"user": "mallory", "csrf_token": stolen})
    assert response.status_code == 403  # login CSRF with the attacker's own token


def test_token_only_from_the_cookie(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    client = harness.client()
    harness.login(client)
    token = client.token
    assert token is not None
    stranger = harness.client()
    assert stranger.get(f"/me?token={token}&id={token}").status_code == 401
    assert stranger.get("/me", headers={"authorization": f"Bearer {token}"}).status_code == 401
    assert stranger.get("/me", headers={"cookie": f"id={token}"}).status_code == 401
    stranger.responses.clear()  # these URLs carry the token on purpose, and so do
    caplog.clear()  # the client's and the server's access logs of them
    harness.client().get("/public")


def test_remember_me_sets_max_age(harness: Harness) -> None:
    client = harness.client()
    response = harness.login(client, remember="1")
    max_age = [f for f in flags(response) if f.startswith("Max-Age=")]
    assert max_age == [f"Max-Age={int(POLICY.absolute_timeout)}"]


def test_explicit_rotation_and_scopes_and_step_up(harness: Harness) -> None:
    client = harness.client()
    harness.login(client, scopes="admin")
    before = client.token
    response = client.post("/rotate", headers=harness.csrf(client))
    assert response.headers["cache-control"] == "no-store"
    assert client.token != before
    assert client.get("/admin").status_code == 200
    assert client.get("/sensitive").status_code == 200
    harness.clock.advance(301)
    response = client.get("/sensitive")
    assert response.status_code == 401
    assert "www-authenticate" not in response.headers  # cookie transport: no Bearer challenge
    plain = harness.client()
    harness.login(plain, user="bob")
    assert plain.get("/admin").status_code == 403


def test_store_outage_is_503_never_a_pass_through(harness: Harness) -> None:
    import asyncio

    client = harness.client()
    harness.login(client)
    asyncio.run(harness.manager.close())
    response = client.get("/me")
    assert response.status_code == 503
    assert "set-cookie" not in response.headers
    assert client.get("/public").status_code == 503  # a token was presented: fail closed
    assert harness.client().get("/public").status_code == 200  # nothing presented, nothing to check
