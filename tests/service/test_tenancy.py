"""Applications over real HTTP: a key of one application neither sees nor touches another's
sessions, and none reaches the demo shop's or the admin console's."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from sessionward.core import token as tokens
from sessionward.errors import InvalidArgument
from sessionward.service import ServiceConfig, create_app
from sessionward.service.keys import create_key
from sessionward.service.runtime import Runtime
from sessionward.service.state import ServiceState, UserRow

from ._server import serve
from .conftest import POLICY
from .test_pages import _OPEN, Client

DENY = {"decision": "deny", "reason": "invalid"}


class Tenants:
    def __init__(self, base: str, runtime: Runtime) -> None:
        self.base, self.runtime = base, runtime
        self.http = httpx.Client(base_url=base, timeout=10)
        now = time.time()
        self.keys = {
            (app, scope): create_key(runtime.state, scope, f"{app} {scope}", now, app)[0]
            for app in ("shop", "blog")
            for scope in ("issue", "admin")
        }

    def call(self, app: str, method: str, path: str, body: Any = None, scope: str = "admin") -> Any:
        auth = {"authorization": f"Bearer {self.keys[(app, scope)]}"}
        return self.http.request(method, path, json=body, headers=auth)

    def issue(self, app: str, **body: Any) -> dict[str, Any]:
        response = self.call(app, "POST", "/v1/sessions", body, "issue")
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture
def tenants(tmp_path: Path) -> Iterator[Tenants]:
    app = create_app(ServiceConfig(store=str(tmp_path / "t.db"), policy=POLICY))
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base:
            tenants = Tenants(base, runtime)
            yield tenants
            tenants.http.close()
    finally:
        while _OPEN:
            _OPEN.pop().http.close()
        asyncio.run(runtime.close())


def test_a_key_neither_sees_nor_touches_another_applications_sessions(tenants: Tenants) -> None:
    theirs = tenants.issue("blog", user_id="alice", data={"n": 1})
    token, session_id = theirs["token"], theirs["session"]["id"]
    ours = tenants.issue("shop", user_id="alice")
    call = tenants.call
    # The same answers as for a token, id or user nobody issued.
    assert call("shop", "POST", "/v1/sessions/validate", {"token": token}).json() == DENY
    for path, body in (
        ("/v1/sessions/rotate", {"token": token}),
        ("/v1/sessions/elevate", {"token": token, "auth_level": 2}),
        ("/v1/sessions/data", {"token": token, "set": {"n": 2}}),
    ):
        refused = call("shop", "POST", path, body)
        assert refused.status_code == 401, path
        assert refused.json()["error"] == {"code": "invalid_token", "message": "invalid"}
    assert call("shop", "POST", "/v1/sessions/revoke", {"token": token}).json() == {
        "revoked": False
    }
    assert call("shop", "GET", f"/v1/sessions/{session_id}").status_code == 404
    assert call("shop", "DELETE", f"/v1/sessions/{session_id}").json() == {"revoked": False}
    listed = call("shop", "GET", "/v1/users/alice/sessions").json()["sessions"]
    assert [s["id"] for s in listed] == [ours["session"]["id"]]
    assert call("shop", "POST", "/v1/users/alice/revoke").json() == {"revoked": 1}
    # The blog's session came through all of it unchanged, and its own key still sees it.
    seen = call("blog", "POST", "/v1/sessions/validate", {"token": token}).json()
    assert seen["decision"] == "allow"
    assert seen["session"]["user_id"] == "alice"
    assert seen["session"]["data"] == {"n": 1}  # no application stamp in the answer
    assert seen["session"]["generation"] == 0
    assert seen["session"]["auth_level"] == 1
    detail = call("blog", "GET", f"/v1/sessions/{session_id}").json()["session"]
    assert detail["user_id"] == "alice"
    assert call("shop", "POST", "/v1/sessions/validate", {"token": ours["token"]}).json() == DENY


def test_anonymous_sessions_belong_to_their_application_too(tenants: Tenants) -> None:
    guest = tenants.issue("blog", data={"cart": ["tea"]})["token"]
    # Another application cannot carry it into a login of its own...
    login = tenants.issue("shop", user_id="bob", previous_token=guest)
    assert login["session"]["data"] == {}
    assert (
        tenants.call("blog", "POST", "/v1/sessions/validate", {"token": guest}).json()["decision"]
        == "allow"
    )
    # ...while its own application can.
    own = tenants.issue("blog", user_id="bob", previous_token=guest)
    assert own["session"]["data"] == {"cart": ["tea"]}


def test_the_application_stamp_cannot_be_set_or_removed(tenants: Tenants) -> None:
    for body in ({"data": {"_sessionward_app": "blog"}}, {"data": {"_sessionward_x": 1}}):
        refused = tenants.call("shop", "POST", "/v1/sessions", body, "issue")
        assert refused.status_code == 400, body
    token = tenants.issue("shop")["token"]
    for change in ({"set": {"_sessionward_app": "blog"}}, {"unset": ["_sessionward_app"]}):
        refused = tenants.call("shop", "POST", "/v1/sessions/data", {"token": token, **change})
        assert refused.status_code == 400, change
        assert refused.json()["error"]["code"] == "invalid_request"


def test_no_key_mints_a_session_the_demo_shop_or_admin_console_accepts(tenants: Tenants) -> None:
    runtime = tenants.runtime
    runtime.state.add_user(UserRow("demo", "gil", PasswordHasher().hash("gil-password"), None, 0))
    for user in ("gil", "sessionward:admin:root"):
        minted = tenants.call("shop", "POST", "/v1/sessions", {"user_id": user}, "admin")
        if minted.status_code != 201:  # reserved user ids are refused outright
            assert minted.status_code == 403
            continue
        token = minted.json()["token"]
        for cookie, page in (("__Host-shop", "/demo/account"), ("__Host-admin", "/admin/")):
            visitor = httpx.Client(base_url=tenants.base, cookies={cookie: token}, timeout=10)
            with visitor:
                answer = visitor.get(page, follow_redirects=False)
            assert answer.status_code == 303, (user, page)  # to the sign-in page
            assert "gil" not in answer.text
    # The shop's own signed-in session is out of every key's reach.
    shopper = Client(tenants.base)
    shopper.post_form(
        "/demo/login", {"username": "gil", "password": "gil-password"}, csrf_from="/demo/login"
    )
    assert shopper.request("GET", "/demo/account").status_code == 200
    token = shopper.cookies["__Host-shop"]
    for app in ("shop", "blog"):
        answer = tenants.call(app, "POST", "/v1/sessions/validate", {"token": token})
        assert answer.json() == DENY
        listed = tenants.call(app, "GET", "/v1/users/gil/sessions").json()["sessions"]
        assert all(s["id"] != tokens.parse(token).session_id for s in listed)
        assert all(s["user_id"] == "gil" for s in listed)  # the shop key's own "gil" only
        tenants.call(app, "POST", "/v1/users/gil/revoke")
    assert shopper.request("GET", "/demo/account").status_code == 200


def test_revoke_all_is_not_an_application_keys_to_give(tenants: Tenants) -> None:
    kept = tenants.issue("blog", user_id="carol")["token"]
    body = {"confirm": "revoke-all"}
    refused = tenants.call("shop", "POST", "/v1/sessions/revoke-all", body)
    assert refused.status_code == 403
    assert (
        tenants.call("blog", "POST", "/v1/sessions/validate", {"token": kept}).json()["decision"]
        == "allow"
    )


def test_metrics_and_events_carry_the_application(tenants: Tenants) -> None:
    tenants.issue("blog")  # anonymous: only its manager knows the application
    tenants.issue("shop", user_id="dan")
    tenants.call("shop", "POST", "/v1/sessions/validate", {"token": "nonsense"})
    text = tenants.call("shop", "GET", "/metrics").text
    assert (
        'sessionward_application_requests_total{application="shop",route="issue",status="201"} 1'
        in text
    )
    assert 'sessionward_application_events_total{application="shop",kind="created"} 1' in text
    assert 'sessionward_application_decisions_total{application="shop",decision="deny"} 1' in text
    assert 'application="blog"' not in text  # a key sees its own application's series
    created = [e for e in tenants.runtime.activity.recent if e["kind"] == "created"]
    assert [(e["application"], e["user_id"]) for e in created] == [
        ("blog", None),
        ("shop", "shop/dan"),
    ]


def test_key_applications_are_named_plainly_and_kept(tmp_path: Path) -> None:
    state = ServiceState(tmp_path / "state.db")
    try:
        for bad in ("", "Shop", "a/b", "sessionward", "sessionward:demo", "x" * 64):
            with pytest.raises(InvalidArgument):
                create_key(state, "issue", "", 0.0, bad)
        _raw, row = create_key(state, "issue", "", 0.0)
        assert row.application == "default"
        assert state.get_key(row.id) == row
        assert create_key(state, "issue", "", 0.0, "blog")[1].application == "blog"
    finally:
        state.close()


def test_the_command_line_creates_and_lists_keys_of_an_application(tmp_path: Path) -> None:
    from .test_serve import run_cli

    base = ("--store", "k.db")
    made = run_cli(
        "api-keys", "create", "--scope", "issue", "--application", "blog", *base, cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    assert "application blog" in made.stdout
    refused = run_cli(
        "api-keys",
        "create",
        "--scope",
        "issue",
        "--application",
        "sessionward-x",
        *base,
        cwd=tmp_path,
    )
    assert refused.returncode != 0
    assert "reserved" in refused.stderr
    listed = run_cli("api-keys", "list", "--json", *base, cwd=tmp_path)
    assert [k["application"] for k in json.loads(listed.stdout)] == ["blog"]


def test_the_admin_page_filters_users_by_application(tmp_path: Path) -> None:
    from ._forms import TOTP, site_at

    with site_at(tmp_path) as site:
        site.add_user("admin", "root", "staple battery horse", TOTP)
        now = time.time()
        keys = {app: create_key(site.runtime.state, "issue", "", now, app)[0] for app in ("a", "b")}
        ids = {}
        for app, key in keys.items():
            issued = httpx.post(
                site.base + "/v1/sessions",
                json={"user_id": "ann"},
                headers={"authorization": f"Bearer {key}"},
            )
            ids[app] = issued.json()["session"]["id"]
        admin = site.browser()
        admin.admin_login(site, "root", "staple battery horse")
        for app, other in (("a", "b"), ("b", "a")):
            page = admin.get(f"/admin/users?application={app}&user=ann").text
            assert ids[app] in page
            assert ids[other] not in page
        assert ids["a"] not in admin.get("/admin/users?user=ann").text
        both = admin.get("/admin/users?user=a/ann").text  # the stored id, as the page shows it
        assert ids["a"] in both
