"""The audit log outlives the process and is shared by every node: a restarted service (a new
runtime on the same SQLite file) and two services on one PostgreSQL or one Redis show the same
history, on the API, the admin page and the demo's account page. No stored entry holds a
token."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers import WAIT, PostgresServer, RedisServer
from servers import postgres_server as postgres_server  # a fixture
from servers import redis_server as redis_server  # a fixture
from test_no_secrets_in_logs import leaks

from sessionward.core import token as tokens
from sessionward.service import ServiceConfig, create_app
from sessionward.service.keys import create_key
from sessionward.service.runtime import Runtime
from sessionward.testing import FakeClock

from ._forms import TOTP, site_at
from ._server import serve
from .test_shared_store import _key, _node

ANN = "ann-password"
ROOT_PASSWORD = "root-password-long-enough"  # noqa: S105 - a test account


def shop_session(client: Any) -> str:
    return tokens.parse(client.cookies["__Host-shop"]).session_id


def test_history_survives_a_restart_on_the_admin_page_the_api_and_the_account_page(
    tmp_path: Path,
) -> None:
    with site_at(tmp_path) as site:
        site.add_user("demo", "ann", ANN)
        site.add_user("admin", "root", ROOT_PASSWORD, TOTP)
        key = create_key(site.runtime.state, "admin", "audit", time.time())[0]
        tablet = site.browser()
        tablet.shop_login("ann", ANN)
        idle = shop_session(tablet)
        site.clock.advance(31 * 60)  # past the 30-minute idle timeout
        tablet.get("/demo/account")
        laptop, phone = site.browser(), site.browser()
        laptop.shop_login("ann", ANN)
        phone.shop_login("ann", ANN)
        ended = shop_session(phone)
        done = laptop.post(
            "/demo/devices/sign-out-others", {"password": ANN}, csrf_from="/demo/devices"
        )
        assert done.headers["location"] == "/demo/devices?msg=signed-out-1"
        issued = httpx.post(
            site.base + "/v1/sessions",
            json={"user_id": "carol"},
            headers={"authorization": f"Bearer {key}"},
        ).json()["session"]["id"]

    with site_at(tmp_path) as again:  # a new process on the same file
        api = httpx.get(
            again.base + "/v1/events", headers={"authorization": f"Bearer {key}"}
        ).json()
        assert [(e["kind"], e["session_id"]) for e in api["events"]] == [("created", issued)]

        laptop = again.browser()
        laptop.shop_login("ann", ANN)
        account = laptop.get("/demo/account").text
        notices = account[account.index('id="notices"') :]
        assert "Recent security activity" in account
        assert "Signed out on another device" in notices
        assert "Ended after 30 minutes without activity" in notices

        admin = again.browser()
        admin.admin_login(again, "root", ROOT_PASSWORD)
        feed = admin.get("/admin/").text
        assert f"session {ended}" in feed
        assert f"session {idle}" in feed
        detail = admin.get(f"/admin/sessions/{ended}").text
        assert "revoked" in detail
        assert "logout-everywhere" in detail


@pytest.fixture(params=["postgres", "redis"])
def shared_store(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return server.url
    redis: RedisServer = request.getfixturevalue("redis_server")
    return f"redis://127.0.0.1:{redis.port}/10"


def test_two_service_processes_on_one_store_see_the_same_log(
    shared_store: str, tmp_path: Path
) -> None:
    states = (tmp_path / "a.db", tmp_path / "b.db")
    with _node(shared_store, states[0]) as one, _node(shared_store, states[1]) as two:
        admin = {"a": _key(states[0], "admin"), "b": _key(states[1], "admin")}
        user = f"dana-{uuid.uuid4().hex[:8]}"
        made = one.call("/v1/sessions", "issue", {"user_id": user}).json()
        session = made["session"]["id"]
        revoked = two.call("/v1/sessions/revoke", "issue", {"token": made["token"]})
        assert revoked.json() == {"revoked": True}
        for node, key in ((one, admin["a"]), (two, admin["b"])):
            # The recorder writes in the background: wait (with a deadline) for its batch.
            deadline = time.monotonic() + WAIT
            while True:
                seen = httpx.get(
                    node.base + "/v1/events",
                    params={"session": session},
                    headers={"authorization": f"Bearer {key}"},
                    timeout=10,
                ).json()
                if len(seen["events"]) >= 2 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert [e["kind"] for e in seen["events"]] == ["revoked", "created"], node.base
            assert [e["user_id"] for e in seen["events"]] == [user, user]


def test_no_stored_entry_holds_a_token(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    app = create_app(ServiceConfig(store=str(path), admin=False, demo=False), clock=FakeClock())
    runtime: Runtime = app.state.runtime
    key = create_key(runtime.state, "admin", "k", time.time())[0]
    auth = {"authorization": f"Bearer {key}"}
    seen: list[str] = []
    ids: list[str] = []
    with serve(app) as base, httpx.Client(base_url=base, headers=auth) as client:
        for user in ("erin", None):
            made = client.post("/v1/sessions", json={} if user is None else {"user_id": user})
            seen.append(made.json()["token"])
            ids.append(made.json()["session"]["id"])
        rotated = client.post("/v1/sessions/rotate", json={"token": seen[0]}).json()
        seen.append(rotated["token"])
        client.post("/v1/sessions/validate", json={"token": seen[0]})  # the rotated-out one
        client.post("/v1/sessions/validate", json={"token": seen[1][:-4] + "AAAA"})
        client.post("/v1/sessions/revoke", json={"token": seen[-1]})
        client.post("/v1/users/erin/revoke", json={})
        assert runtime.recorder is not None
        assert runtime.recorder.flush(WAIT)
    asyncio.run(runtime.close())
    with sqlite3.connect(path) as conn:
        rows = [" ".join(map(str, r)) for r in conn.execute("SELECT * FROM sessionward_events")]
    assert len(rows) >= 4
    assert all(any(i in row for row in rows) for i in ids)  # the capture works
    assert leaks(rows, seen) == []
    assert not any("sw1_" in row for row in rows)
