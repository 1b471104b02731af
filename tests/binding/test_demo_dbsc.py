"""The service's demo shop binds its sessions: the sign-in offers DBSC, a registration binds
the session, the account pages then need the bound cookie, and "Your devices" says which
sessions are key-bound (over real HTTP, the service's own app)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from proofs import Device
from service._forms import Site, site_at

from sessionward.core import dbsc

BOUND = "__Host-shop-bound"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with site_at(tmp_path) as site:
        site.add_user("demo", "ann", "ann-password")
        yield site


def test_demo_sign_in_offers_dbsc_and_the_devices_page_shows_the_binding(site: Site) -> None:
    laptop, phone = site.browser(), site.browser()
    offer = laptop.shop_login("ann", "ann-password").headers[dbsc.REGISTRATION]
    phone.shop_login("ann", "ann-password")
    params = dict(p.split("=", 1) for p in offer.split(";")[1:])
    path, challenge, authorization = (
        dbsc.item_text(params[k]) or "" for k in ("path", "challenge", "authorization")
    )
    assert path == "/demo/dbsc/register"
    jwt = Device().registration(challenge, authorization)
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
    bound = laptop.cookies.pop(BOUND)
    assert laptop.get("/demo/account").status_code == 303  # no bound cookie: not signed in
    laptop.cookies[BOUND] = bound
    assert laptop.get("/demo/account").status_code == 200
    assert phone.get("/demo/account").status_code == 200  # unbound sessions work as before
