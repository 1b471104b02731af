""" "This was me" on a DBSC-bound session through the adapters, over real HTTP (Starlette on
uvicorn, Flask on wsgiref): the owner, challenged abroad with a live bound cookie, signs in
again on a step-up path and ``handle.confirm()`` goes through, proven by the cookie its
request's validation checked; the long-lived cookie alone proves nothing and is never
scored, so a thief holding it is neither challenged nor able to confirm."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from proofs import Device

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from _shared import ABROAD, OWNER, serving_confirm
from test_web_dbsc import BOUND, _challenge, _offer, _refresh
from web._servers import Browserish

from sessionward.core import dbsc
from sessionward.core.binding import BindingPolicy
from sessionward.testing import FakeClock
from sessionward.web import CookiePolicy, CsrfPolicy
from sessionward.web.binding import DeviceBinding


def _options(base: str) -> dict[str, Any]:
    return {
        "cookie": CookiePolicy(),
        "csrf": CsrfPolicy([base], keys=[secrets.token_bytes(32)], require_token=False),
        "binding": DeviceBinding(BindingPolicy(cookie_lifetime=300)),
        "trusted_proxies": ["127.0.0.1"],
        "step_up_paths": ["/login"],
    }


@pytest.fixture(params=["asgi", "wsgi"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, FakeClock]]:
    clock = FakeClock()
    with serving_confirm(request.param, str(tmp_path / "s.db"), clock, _options) as base:
        yield base, clock


def test_the_owner_confirms_with_a_live_bound_cookie(served: tuple[str, FakeClock]) -> None:
    base, clock = served
    device, alice = Device(), Browserish(base)
    signed_in = alice.post("/login", headers=OWNER)
    assert signed_in.json() == {"confirmed": False}
    path, challenge, authorization = _offer(signed_in.headers[dbsc.REGISTRATION])
    registered = alice.post(
        path,
        headers={**OWNER, "secure-session-response": device.registration(challenge, authorization)},
    )
    assert registered.status_code == 200
    sid = registered.json()["session_identifier"]
    clock.advance(5 * 3600)  # later: no impossible travel; the bound cookie has died
    asked = _refresh(alice, sid)
    assert _refresh(alice, sid, device.refresh(_challenge(asked))).status_code == 200
    token = alice.token
    # the long-lived cookie alone: pending, so never scored, challenged or confirmed
    thief = Browserish(base)
    thief.token = token
    probe = thief.get("/me", headers=ABROAD)  # no challenge, and no session served
    assert probe.status_code == 200
    assert probe.json() == {"user": None}
    # the owner abroad, with a live bound cookie: challenged, then "this was me"
    assert alice.get("/me", headers=ABROAD).status_code == 401
    confirmed = alice.post("/login", headers=ABROAD)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json() == {"confirmed": True}
    assert alice.token != token
    assert BOUND in alice.others
    assert alice.get("/me", headers=ABROAD).json() == {"user": "alice"}
    for client in (alice, thief):
        client.close()
