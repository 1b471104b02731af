""" "This was me" on a DPoP-bound session through the adapters, over real HTTP (Starlette on
uvicorn, Flask on wsgiref): the owner, challenged abroad, signs in again on a step-up path and
``handle.confirm()`` goes through with the request's proof (checked once, by the validation);
a thief holding the token without the key cannot even reach the confirmation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from proofs import Device

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from _shared import ABROAD, OWNER, serving_confirm

from sessionward import SQLiteStore
from sessionward.core.dpop import DpopPolicy
from sessionward.testing import FakeClock

OPTIONS: dict[str, Any] = {
    "transport": "bearer",
    "dpop": DpopPolicy(),
    "trusted_proxies": ["127.0.0.1"],
    "step_up_paths": ["/login"],
}


@pytest.fixture(params=["asgi", "wsgi"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, FakeClock, SQLiteStore]]:
    clock = FakeClock(time.time())
    path = str(tmp_path / "s.db")
    mirror = SQLiteStore(path)
    with serving_confirm(request.param, path, clock, lambda base: OPTIONS) as base:
        yield base, clock, mirror
    mirror.close()


def _call(
    base: str,
    clock: FakeClock,
    path: str,
    headers: dict[str, str],
    device: Device | None,
    token: str | None,
) -> httpx.Response:
    sent = dict(headers)
    method = "POST" if path == "/login" else "GET"
    if token is not None:
        sent["authorization"] = f"DPoP {token}"
    if device is not None:
        sent["dpop"] = device.dpop(method, base + path, iat=clock.now(), token=token)
    return httpx.request(method, base + path, headers=sent, timeout=10)


def test_the_owner_confirms_with_the_proof_a_thief_cannot(
    served: tuple[str, FakeClock, SQLiteStore],
) -> None:
    base, clock, store = served
    owner, thief = Device(), Device()
    signed_in = _call(base, clock, "/login", OWNER, owner, None)
    assert signed_in.json() == {"confirmed": False}
    token = signed_in.headers["session-token"]
    clock.advance(5 * 3600)  # later: no impossible travel
    before = store.get(token[4:20])
    for device in (None, thief):  # the token without the key: refused before any confirmation
        refused = _call(base, clock, "/login", ABROAD, device, token)
        assert refused.status_code == 401
    assert store.get(token[4:20]) == before
    # the owner abroad: challenged on a page, then "this was me" on the sign-in path
    assert _call(base, clock, "/me", ABROAD, owner, token).status_code == 401
    confirmed = _call(base, clock, "/login", ABROAD, owner, token)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json() == {"confirmed": True}
    fresh = confirmed.headers["session-token"]
    assert fresh != token
    assert _call(base, clock, "/me", ABROAD, owner, fresh).json() == {"user": "alice"}
