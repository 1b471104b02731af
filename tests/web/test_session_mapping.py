"""``request.session`` under the ASGI middleware, over real HTTP (uvicorn, a SQLite file, a fake
clock): decoded lazily, written back key by key only when modified, a session only on the first
write, ``clear()`` ends it, ``permanent`` is remember-me, and the handle's login rotates."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import AsyncMemoryStore, AsyncSessionManager, AsyncSQLiteStore, Policy
from sessionward.errors import ConfigError, InvalidArgument
from sessionward.testing import EventRecorder, FakeClock
from sessionward.web import CookiePolicy, CsrfPolicy
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.mapping import SessionMapping
from sessionward.web.starlette import get_handle

from ._servers import Browserish, uvicorn_server

POLICY = Policy(idle_timeout=600, absolute_timeout=3600)


def build_app(manager: AsyncSessionManager, **options: Any) -> Starlette:
    async def raw(request: Request) -> Response:
        mapping = request.scope["session"]
        return JSONResponse({"decoded": dict.__len__(mapping), "type": type(mapping).__name__})

    async def view(request: Request) -> Response:
        return JSONResponse({"session": request.session})

    async def update(request: Request) -> Response:
        request.session.update(await request.json())
        return JSONResponse({"session": request.session})

    async def delete(request: Request) -> Response:
        del request.session[(await request.json())["key"]]
        return JSONResponse({"session": request.session})

    async def clear(request: Request) -> Response:
        request.session.clear()
        return JSONResponse({"session": request.session})

    async def clear_then_set(request: Request) -> Response:
        request.session.clear()
        request.session["fresh"] = True
        return JSONResponse({"session": request.session})

    async def login(request: Request) -> Response:
        user = (await request.json())["user"]
        await get_handle(request).login(user)
        request.session["welcome"] = user  # written into the new session
        return JSONResponse({"session": request.session})

    async def whoami(request: Request) -> Response:
        session = get_handle(request).session
        return JSONResponse({"user": session.user_id if session else None})

    async def permanent(request: Request) -> Response:
        mapping: SessionMapping = request.scope["session"]
        mapping.permanent = (await request.json())["permanent"]
        return JSONResponse({"permanent": mapping.permanent})

    async def race(request: Request) -> Response:
        assert request.session.get("mine") is None  # decoded before the other write
        handle = get_handle(request)
        assert handle.session is not None
        # Another request of the same visitor changes a different key meanwhile.
        await handle.manager.update_data(handle.session.id, lambda d: d.update(other="theirs"))
        request.session["mine"] = "ours"
        return JSONResponse({"ok": True})

    async def reserved(request: Request) -> Response:
        try:
            request.session["sessionward.remember"] = True
        except InvalidArgument:
            return JSONResponse({"refused": True, "keys": list(request.session)})
        return JSONResponse({"refused": False})

    async def in_place(request: Request) -> Response:
        request.session["cart"].append("pen")  # not assigned again: not seen as a change
        handle = get_handle(request)
        assert handle.session is not None
        return JSONResponse({"handle": handle.session.data, "mapping": request.session})

    async def logout_then_write(request: Request) -> Response:
        await get_handle(request).logout()
        request.session["bye"] = 1
        return JSONResponse({"session": request.session})

    async def write_then_outage(request: Request) -> Response:
        request.session["lost"] = True
        await get_handle(request).manager.close()
        return JSONResponse({"ok": True})

    post = ["POST"]
    routes = [
        Route("/raw", raw),
        Route("/view", view),
        Route("/update", update, methods=post),
        Route("/delete", delete, methods=post),
        Route("/clear", clear, methods=post),
        Route("/clear-then-set", clear_then_set, methods=post),
        Route("/login", login, methods=post),
        Route("/whoami", whoami),
        Route("/permanent", permanent, methods=post),
        Route("/race", race, methods=post),
        Route("/reserved", reserved, methods=post),
        Route("/in-place", in_place, methods=post),
        Route("/logout-then-write", logout_then_write, methods=post),
        Route("/write-then-outage", write_then_outage, methods=post),
    ]
    return Starlette(
        routes=routes, middleware=[Middleware(SessionMiddleware, manager=manager, **options)]
    )


class Served:
    def __init__(self, base: str, manager: AsyncSessionManager, events: EventRecorder) -> None:
        self.base, self.manager, self.events = base, manager, events
        self.clients: list[Browserish] = []

    def client(self) -> Browserish:
        self.clients.append(client := Browserish(self.base))
        return client

    def stored(self, client: Browserish) -> dict[str, Any]:
        """The data the store holds for the client's session (read past the web layer)."""
        assert client.token is not None
        session = asyncio.run(self.manager.validate(client.token))
        return dict(session.data)


def serve(tmp_path: Path, **options: Any) -> Iterator[Served]:
    manager = AsyncSessionManager(
        AsyncSQLiteStore(str(tmp_path / "m.db")), policy=POLICY, clock=FakeClock()
    )
    manager.events.subscribe(events := EventRecorder())

    def make_app(base: str) -> Starlette:
        csrf = CsrfPolicy([base], keys=[secrets.token_bytes(32)], require_token=False)
        return build_app(manager, csrf=csrf, **options)

    with uvicorn_server(make_app) as base:
        served = Served(base, manager, events)
        yield served
        for client in served.clients:
            client.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(tmp_path, cookie=CookiePolicy(remember_max_age=7 * 86400))


def cookie_of(response: httpx.Response) -> str:
    [value] = response.headers.get_list("set-cookie")
    return value


def test_no_session_until_the_first_write(served: Served) -> None:
    client = served.client()
    response = client.get("/view")
    assert response.json() == {"session": {}}
    assert "set-cookie" not in response.headers
    assert response.headers["vary"] == "Cookie"  # read: the answer depends on the cookie
    assert served.events.kinds() == []
    response = client.post("/update", json={"cart": ["book"]})
    assert served.events.kinds() == ["created"]
    assert "Max-Age" not in cookie_of(response)  # a browser-session cookie by default
    assert response.headers["cache-control"] == "no-store"
    assert client.get("/view").json() == {"session": {"cart": ["book"]}}
    assert served.stored(client) == {"cart": ["book"]}


def test_decoded_lazily_and_written_back_only_when_modified(served: Served) -> None:
    client = served.client()
    client.post("/update", json={"cart": ["book"]})
    version = asyncio.run(served.manager.validate(client.token)).version
    untouched = client.get("/raw")
    assert untouched.json() == {"decoded": 0, "type": "SessionMapping"}  # nothing decoded
    assert "vary" not in untouched.headers
    read = client.get("/view")
    assert read.json() == {"session": {"cart": ["book"]}}
    assert "set-cookie" not in read.headers
    assert asyncio.run(served.manager.validate(client.token)).version == version  # no write
    client.post("/update", json={"cart": ["book", "pen"]})
    assert asyncio.run(served.manager.validate(client.token)).version == version + 1


def test_written_back_key_by_key(served: Served) -> None:
    client = served.client()
    client.post("/update", json={"cart": ["book"]})
    assert client.post("/race").json() == {"ok": True}
    assert served.stored(client) == {"cart": ["book"], "other": "theirs", "mine": "ours"}
    client.post("/delete", json={"key": "cart"})
    assert served.stored(client) == {"other": "theirs", "mine": "ours"}


def test_a_change_in_place_is_neither_written_nor_shared(served: Served) -> None:
    client = served.client()
    client.post("/update", json={"cart": ["book"]})
    response = client.post("/in-place")
    assert response.json() == {
        "handle": {"cart": ["book"]},  # the handle's Session is not the mapping's data
        "mapping": {"cart": ["book", "pen"]},
    }
    assert "set-cookie" not in response.headers
    assert served.stored(client) == {"cart": ["book"]}


def test_clear_ends_the_session(served: Served) -> None:
    client = served.client()
    client.post("/update", json={"cart": ["book"]})
    token = client.token
    response = client.post("/clear")
    assert response.json() == {"session": {}}
    assert "Max-Age=0" in cookie_of(response)
    assert response.headers["clear-site-data"] == '"cache", "cookies", "storage"'
    assert client.token is None
    assert "revoked" in served.events.kinds()
    replay = client.get("/view", token=token)
    assert replay.json() == {"session": {}}  # the old token finds nothing
    assert "Max-Age=0" in cookie_of(replay)  # and is told to go


def test_clear_of_no_session_sends_nothing(served: Served) -> None:
    response = served.client().post("/clear")
    assert "set-cookie" not in response.headers
    assert "clear-site-data" not in response.headers


def test_clear_then_write_is_a_new_session(served: Served) -> None:
    client = served.client()
    client.post("/update", json={"cart": ["book"], "user_id": "alice"})
    old = client.token
    response = client.post("/clear-then-set")
    assert "clear-site-data" not in response.headers  # it would delete the new cookie
    assert client.token not in (None, old)
    assert served.stored(client) == {"fresh": True}
    assert client.get("/view", token=old).json() == {"session": {}}


def test_login_rotates_and_keeps_the_cart(served: Served) -> None:
    client = served.client()
    client.post("/update", json={"cart": ["book"]})
    anonymous = client.token
    response = client.post("/login", json={"user": "alice"})
    assert response.json() == {"session": {"cart": ["book"], "welcome": "alice"}}
    assert client.token not in (None, anonymous)
    assert client.get("/whoami").json() == {"user": "alice"}
    assert client.get("/view").json() == {"session": {"cart": ["book"], "welcome": "alice"}}
    assert client.get("/whoami", token=anonymous).json() == {"user": None}
    assert client.get("/view", token=anonymous).json() == {"session": {}}


def test_logout_then_write_starts_afresh(served: Served) -> None:
    client = served.client()
    client.post("/update", json={"cart": ["book"]})
    old = client.token
    assert client.post("/logout-then-write").json() == {"session": {"bye": 1}}
    assert client.token not in (None, old)
    assert served.stored(client) == {"bye": 1}


def test_permanent_is_remember_me(served: Served) -> None:
    client = served.client()
    client.post("/update", json={"cart": ["book"]})
    before = client.token
    response = client.post("/permanent", json={"permanent": True})
    assert response.json() == {"permanent": True}
    persistent = cookie_of(response)
    assert f"Max-Age={int(POLICY.absolute_timeout)}" in persistent
    assert "Expires=" in persistent
    assert client.token != before  # the cookie changed, so the token did (rotation)
    assert client.post("/permanent", json={"permanent": True}).headers.get("set-cookie") is None
    response = client.post("/permanent", json={"permanent": False})
    assert "Max-Age" not in cookie_of(response)
    assert client.get("/view").json() == {"session": {"cart": ["book"]}}  # key stays hidden


def test_reserved_keys_are_hidden_and_refused(served: Served) -> None:
    client = served.client()
    client.post("/update", json={"cart": []})
    client.post("/permanent", json={"permanent": True})
    assert client.post("/reserved").json() == {"refused": True, "keys": ["cart"]}
    assert served.stored(client) == {"cart": [], "sessionward.remember": True}


def test_store_outage_at_write_back_is_503(served: Served) -> None:
    client = served.client()
    response = client.post("/write-then-outage")
    assert response.status_code == 503
    assert "set-cookie" not in response.headers


def test_remember_by_default(tmp_path: Path) -> None:
    for served in serve(
        tmp_path, cookie=CookiePolicy(remember_max_age=600), remember_by_default=True
    ):
        client = served.client()
        assert "Max-Age=600" in cookie_of(client.post("/update", json={"cart": []}))
        assert client.post("/permanent", json={"permanent": False}).json() == {"permanent": False}
    manager = AsyncSessionManager(AsyncMemoryStore())
    with pytest.raises(ConfigError, match="remember_max_age"):
        SessionMiddleware(Starlette(), manager, csrf=False, remember_by_default=True)


def test_a_detached_mapping_tracks_like_starlettes() -> None:
    mapping = SessionMapping({"a": 1})
    assert not mapping.modified
    assert not mapping.accessed
    assert mapping.pop("missing", None) is None
    assert not mapping.modified
    mapping |= {"b": 2}
    assert mapping.modified
    assert mapping == {"a": 1, "b": 2}
    assert repr(mapping) == "SessionMapping({'a': 1, 'b': 2})"
