"""The thin mounts, each over its real server: the ASGI app under uvicorn, the WSGI app
under wsgiref, the Django view through Django's request handling (in a process of its own)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
from servers import uvicorn_thread

from sessionward.signals import asgi, wsgi
from sessionward.signals.claims import SESSION_REVOKED
from sessionward.signals.links import IdpLink
from sessionward.signals.receivers import (
    AsyncBackchannelLogout,
    AsyncIdpLinks,
    AsyncKeySource,
    AsyncSsfReceiver,
)
from sessionward.stores import AsyncSQLiteStore, SQLiteStore
from sessionward.testing import async_memory_manager

from .conftest import AUDIENCE, Node, make_node
from .idp import CLIENT_ID, TestIdp

FORM = {"content-type": "application/x-www-form-urlencoded"}


def test_the_asgi_app_under_uvicorn(idp: TestIdp, tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    node = make_node(SQLiteStore(path), idp)  # the app's own (sync) view of the same file
    session = node.login("alice", idp, "sid-A")
    other = node.login("bob", idp, "sid-B")

    def app(base: str) -> Any:
        from sessionward import AsyncSessionManager

        manager = AsyncSessionManager(AsyncSQLiteStore(path), clock=node.clock)
        links = AsyncIdpLinks(manager)
        keys = AsyncKeySource(idp.issuer, jwks_url=f"{idp.issuer}/jwks.json", clock=node.clock)
        logout = asgi.receiver_app(AsyncBackchannelLogout(links, keys, client_id=CLIENT_ID))
        ssf = asgi.receiver_app(AsyncSsfReceiver(links, keys, audience=AUDIENCE))

        async def route(scope: Any, receive: Any, send: Any) -> None:
            await (logout if scope["path"] == "/bcl" else ssf)(scope, receive, send)

        return route

    with uvicorn_thread(app) as base:
        assert httpx.get(f"{base}/bcl").status_code == 405
        token = idp.logout_token(node.clock.now(), sid="sid-A")
        answer = httpx.post(f"{base}/bcl", content=f"logout_token={token}", headers=FORM)
        assert (answer.status_code, answer.headers["cache-control"]) == (200, "no-store")
        assert not node.alive(session)
        subject = {"format": "opaque", "id": "sid-B"}
        event = idp.set_token(
            node.clock.now(), {SESSION_REVOKED: {}}, audience=AUDIENCE, sub_id=subject
        )
        headers = {"content-type": "application/secevent+jwt"}
        assert httpx.post(f"{base}/ssf", content=event, headers=headers).status_code == 202
        assert not node.alive(other)
        big = httpx.post(f"{base}/bcl", content=b"x" * 40_000, headers=FORM)
        assert big.status_code == 413


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _wsgi(app: Any) -> Iterator[str]:
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_the_wsgi_app_under_wsgiref(node: Node, idp: TestIdp) -> None:
    session = node.login("alice", idp, "sid-A")
    with _wsgi(wsgi.receiver_app(node.logout)) as base:
        assert httpx.get(base).status_code == 405
        bad = httpx.post(base, content="logout_token=x.y.z", headers=FORM)
        assert (bad.status_code, bad.json()["error"]) == (400, "invalid_request")
        token = idp.logout_token(node.clock.now(), sid="sid-A")
        assert httpx.post(base, content=f"logout_token={token}", headers=FORM).status_code == 200
    assert not node.alive(session)


def test_the_django_view() -> None:
    script = Path(__file__).with_name("django_view_run.py")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_the_async_links_find_and_end_the_sessions_of_a_sid(idp: TestIdp) -> None:
    async def run() -> None:
        manager, _, recorder = async_memory_manager()
        links = AsyncIdpLinks(manager)
        ids = []
        for sid in ("sid-A", "sid-A", "sid-B"):
            session = await manager.issue("alice", data=IdpLink(idp.issuer, sid).data())
            await links.remember(session)
            ids.append(session.id)
        found = await links.sessions_of(idp.issuer, "sid-A")
        assert sorted(s.id for s in found) == sorted(ids[:2])
        assert await links.end_sid(idp.issuer, "sid-A") == 2
        assert [s.id for s in await manager.list_user("alice")] == [ids[2]]
        assert [e.kind for e in recorder.events].count("revoked") == 2

    asyncio.run(run())
