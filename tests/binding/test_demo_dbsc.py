"""The service's demo shop binds its sessions: the sign-in offers DBSC, a registration binds
the session, the account pages then need the bound cookie, and "Your devices", the admin
console and the REST API say which sessions are key-bound, by what, with which key and when
the key was last proven (over real HTTP, the service's own app)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from proofs import Device
from service._forms import TOTP, Site, site_at
from service.conftest import make_keys

from sessionward import SessionManager, SQLiteStore
from sessionward.core import dbsc
from sessionward.manager._sync.binding import Binder

BOUND = "__Host-shop-bound"
ADMIN_PASSWORD = "staple battery horse"  # noqa: S105 - a test account's


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with site_at(tmp_path) as site:
        site.add_user("demo", "ann", "ann-password")
        site.add_user("admin", "root", ADMIN_PASSWORD, TOTP)
        yield site


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="seconds")


def _times(html: str) -> list[str]:
    return re.findall(r'<time datetime="([^"]+)">', html)


def test_demo_sign_in_offers_dbsc_and_the_devices_page_shows_the_binding(site: Site) -> None:
    laptop, phone = site.browser(), site.browser()
    offer = laptop.shop_login("ann", "ann-password").headers[dbsc.REGISTRATION]
    phone.shop_login("ann", "ann-password")
    params = dict(p.split("=", 1) for p in offer.split(";")[1:])
    path, challenge, authorization = (
        dbsc.item_text(params[k]) or "" for k in ("path", "challenge", "authorization")
    )
    assert path == "/demo/dbsc/register"
    device = Device()
    proven = _iso(site.clock.now())
    jwt = device.registration(challenge, authorization)
    cookies = "; ".join(f"{k}={v}" for k, v in laptop.cookies.items())
    headers = {"cookie": cookies, "sec-fetch-site": "same-origin", dbsc.RESPONSE: jwt}
    registered = laptop.http.post(path, headers=headers)
    assert registered.status_code == 200
    assert registered.json()["credentials"][0]["name"] == BOUND
    laptop.cookies[BOUND] = registered.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    devices = laptop.get("/demo/devices").text
    assert devices.count('data-binding="bound"') == 1
    assert devices.count('data-binding="offered"') == 1  # the phone never registered
    assert "key-bound (dbsc)" in devices
    shown = devices.split('data-binding="bound"')[1].split("</td>")[0]
    assert f"<code>{device.thumbprint[:8]}…</code>" in shown
    assert _times(shown) == [proven]  # the last proof: the registration
    bound = laptop.cookies.pop(BOUND)
    assert laptop.get("/demo/account").status_code == 303  # no bound cookie: not signed in
    laptop.cookies[BOUND] = bound
    assert laptop.get("/demo/account").status_code == 200
    assert phone.get("/demo/account").status_code == 200  # unbound sessions work as before
    # the admin console: the binding on each session's own page
    admin = site.browser()
    admin.admin_login(site, "root", ADMIN_PASSWORD)
    ids = dict(
        re.findall(
            r'<tr data-session="([^"]+)"><td>[^<]*<span class="tag" '
            r'data-binding="([a-z]+)"',
            devices,
        )
    )
    assert sorted(ids.values()) == ["bound", "offered"]
    for session_id, state in ids.items():
        page = admin.get(f"/admin/sessions/{session_id}").text
        shown = page.split("<dt>Key binding</dt>")[1].split("</dd>")[0]
        assert f'data-binding="{state}"' in shown
        if state == "offered":
            assert "never registered" in shown
    bound_id = next(i for i, state in ids.items() if state == "bound")
    detail = admin.get(f"/admin/sessions/{bound_id}").text
    binding = detail.split("<dt>Key binding</dt>")[1].split("</dd>")[0]
    assert "bound by dbsc" in binding
    assert f"{device.thumbprint[:12]}…</code>" in binding
    assert _times(binding) == [proven, proven]  # bound, last proof


def test_the_api_session_listing_carries_the_binding(site: Site, tmp_path: Path) -> None:
    keys = make_keys(site.runtime)
    auth = {"authorization": f"Bearer {keys['issue']}"}
    client = site.browser()
    issued = [
        client.http.post("/v1/sessions", json={"user_id": "jo"}, headers=auth).json()["token"]
        for _ in range(2)
    ]
    device = Device()
    with SessionManager(SQLiteStore(str(tmp_path / "site.db")), clock=site.clock) as manager:
        binder = Binder(manager)
        offered = binder.reoffer(manager.validate(issued[0]))
        assert offered is not None
        site.clock.advance(5)
        binder.register(manager.validate(issued[0]), device.registration(*offered))
    listed = client.http.get("/v1/users/jo/sessions", headers=auth).json()["sessions"]
    bindings = {s["id"]: s["binding"] for s in listed}
    assert bindings[issued[0][4:20]] == {
        "state": "bound",
        "method": "dbsc",
        "jkt": device.thumbprint,
        "bound_at": site.clock.now(),
        "last_proof_at": site.clock.now(),
    }
    assert bindings[issued[1][4:20]] == {
        "state": "unbound",
        "method": None,
        "jkt": None,
        "bound_at": None,
        "last_proof_at": None,
    }
    assert all("sessionward.binding" not in s["data"] for s in listed)  # only the view above
    schemas = client.http.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["Session"]["properties"]["binding"] == {"$ref": "#/components/schemas/Binding"}
    assert set(schemas["Binding"]["required"]) == set(bindings[issued[0][4:20]])
