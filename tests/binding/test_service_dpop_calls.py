"""Every service call that acts on a DPoP-bound session needs a proof of the bound key, over
real HTTP (uvicorn on a loopback port, the service's SQLite file read back directly): a thief
holding the token but not the key cannot rotate it, elevate it, change its data or confirm it
("this was me") through the backend that forwards it. Without a proof, with another key's or
with a replayed one the call is refused (``401 invalid_token``) and the stored record is as it
was; the owner's proof works; an unbound session needs none."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from _shared import running_service, service_config
from agents import SAFARI
from proofs import Device
from service.conftest import Service

from sessionward import SQLiteStore
from sessionward.core.record import SessionRecord
from sessionward.service.openapi import openapi_document
from sessionward.testing import FakeClock

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")  # for confirm
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

APP = "https://app.example"
REFUSED = {"error": {"code": "invalid_token", "message": "invalid"}}
OWNER = {"ip": "81.2.69.160", "user_agent": SAFARI, "accept_language": "en-GB,en;q=0.9"}
#: Each call's body past the token, and the path the client's request went to.
CALLS: dict[str, dict[str, Any]] = {
    "rotate": {},
    "elevate": {"auth_level": 2, "scopes": ["admin"]},
    "data": {"set": {"cart": 3}},
    "confirm": {"context": OWNER},
}


def _service(tmp_path: Path, **extra: Any) -> AbstractContextManager[Service]:
    config = service_config(tmp_path, risk=True, **extra)
    return running_service(config, FakeClock(time.time()))


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Service]:
    with _service(tmp_path) as service:
        yield service


@pytest.fixture
def store(api: Service) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(str(api.path))  # the service's own store, read directly
    yield opened
    opened.close()


def _dpop(api: Service, device: Device, path: str, **extra: Any) -> dict[str, str]:
    url = APP + path
    return {
        "proof": device.dpop("POST", url, iat=api.clock.now(), **extra),
        "method": "POST",
        "url": url,
    }


def _post(api: Service, path: str, body: dict[str, Any], scope: str = "issue") -> httpx.Response:
    return api.client.post(path, json=body, headers=api.auth(scope))


def _issue(api: Service, device: Device | None) -> tuple[str, str]:
    body: dict[str, Any] = {"user_id": "ann", "context": OWNER}
    if device is not None:
        body["dpop"] = _dpop(api, device, "/login")
    issued = _post(api, "/v1/sessions", body)
    assert issued.status_code == 201, issued.text
    expected = "unbound" if device is None else "bound"
    assert issued.json()["session"]["binding"]["state"] == expected
    return issued.json()["token"], issued.json()["session"]["id"]


def _record(store: SQLiteStore, session_id: str) -> SessionRecord:
    record = store.get(session_id)
    assert record is not None
    return record


def _call(
    api: Service, call: str, token: str, dpop: dict[str, str] | None = None
) -> httpx.Response:
    body = {"token": token, **CALLS[call]}
    if dpop is not None:
        body["dpop"] = dpop
    return _post(api, f"/v1/sessions/{call}", body)


@pytest.mark.parametrize("call", list(CALLS))
def test_a_bound_session_is_changed_only_with_a_proof_of_its_key(
    api: Service, store: SQLiteStore, call: str
) -> None:
    device, thief = Device(), Device()
    token, session_id = _issue(api, device)
    api.clock.advance(30)  # a touch would show in last_seen
    before = _record(store, session_id)
    attempts = {
        "no proof": None,
        "another key": _dpop(api, thief, f"/{call}", token=token),
        "another token": _dpop(api, device, f"/{call}"),  # no ath
    }
    for name, dpop in attempts.items():
        refused = _call(api, call, token, dpop)
        assert (refused.status_code, refused.json()) == (401, REFUSED), name
        assert _record(store, session_id) == before, name
    once = _dpop(api, device, "/orders", token=token)
    validated = _post(api, "/v1/sessions/validate", {"token": token, "dpop": once}, "validate")
    assert validated.json()["decision"] == "allow"
    before = _record(store, session_id)
    replayed = _call(api, call, token, once)  # its jti was spent by the validation
    assert (replayed.status_code, replayed.json()) == (401, REFUSED)
    assert _record(store, session_id) == before
    seen = [
        (e["kind"], e.get("detail") or e.get("reason"))
        for e in api.runtime.activity.for_session(session_id)
        if e["kind"] in ("theft-suspected", "rejected")
    ]
    assert seen == [
        ("theft-suspected", "binding-proof-dpop-missing"),
        ("theft-suspected", "binding-proof-jkt"),
        ("rejected", "binding-ath"),
        ("rejected", "binding-replayed"),
    ]

    done = _call(api, call, token, _dpop(api, device, f"/{call}", token=token))
    assert done.status_code == 200, done.text
    after = _record(store, session_id)
    session = done.json()["session"]
    if call == "data":
        assert session["data"] == {"cart": 3}
        assert after.version > before.version
    else:  # a new secret: the old token is dead or in its grace window
        assert done.json()["token"] not in (None, token)
        assert after.generation == before.generation + 1
    if call == "elevate":
        assert (session["auth_level"], session["scopes"]) == (2, ["admin"])
    assert session["binding"]["jkt"] == device.thumbprint  # still bound to the same key


@pytest.mark.parametrize("call", list(CALLS))
def test_an_unbound_session_needs_no_proof(api: Service, store: SQLiteStore, call: str) -> None:
    token, session_id = _issue(api, None)
    before = _record(store, session_id)
    done = _call(api, call, token)
    assert done.status_code == 200, done.text
    assert "dpop-nonce" not in done.headers
    assert _record(store, session_id).version > before.version


def test_with_nonces_a_bound_call_asks_for_the_current_nonce(tmp_path: Path) -> None:
    device = Device()
    with _service(tmp_path, dpop_nonces=True) as api:
        store = SQLiteStore(str(api.path))
        try:
            asked = _post(api, "/v1/sessions", {"user_id": "ann", "dpop": _dpop(api, device, "/")})
            nonce = asked.headers["dpop-nonce"]
            issued = _post(
                api,
                "/v1/sessions",
                {"user_id": "ann", "dpop": _dpop(api, device, "/", nonce=nonce)},
            )
            assert issued.status_code == 201, issued.text
            token, session_id = issued.json()["token"], issued.json()["session"]["id"]
            before = _record(store, session_id)
            stale = _call(api, "rotate", token, _dpop(api, device, "/r", token=token, nonce=None))
            assert stale.status_code == 400
            assert stale.json()["error"]["code"] == "use_dpop_nonce"
            assert stale.headers["dpop-nonce"] == nonce
            assert _record(store, session_id) == before
            proof = _dpop(api, device, "/r", token=token, nonce=nonce)
            rotated = _call(api, "rotate", token, proof)
            assert rotated.status_code == 200, rotated.text
            assert rotated.headers["dpop-nonce"] == nonce
        finally:
            store.close()


def test_the_openapi_document_says_which_calls_take_a_proof() -> None:
    paths = openapi_document()["paths"]
    for call in CALLS:
        operation = paths[f"/v1/sessions/{call}"]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema["properties"]["dpop"] == {"$ref": "#/components/schemas/DpopProof"}
        assert "needs `dpop`" in operation["description"]
        assert "DPoP-Nonce" in operation["responses"]["200"]["headers"]
        assert "use_dpop_nonce" in operation["responses"]["400"]["description"]
