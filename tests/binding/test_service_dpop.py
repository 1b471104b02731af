"""DPoP through the service's REST API, over real HTTP: the backend passes on its client's
``DPoP`` header (with the method and URL of the client's request).

* Opaque sessions: ``/v1/sessions`` binds the new session to the proof's key, and
  ``/v1/sessions/validate`` then allows the token only with a fresh proof of that key made for
  that token, method and URL.
* The JWT mode: ``/v1/tokens`` binds the refresh family, ``/v1/tokens/refresh`` refreshes only
  with a fresh proof of that key; the access tokens name the key (``cnf.jkt``) and verify
  under an independent library with the service's JWKS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from proofs import Device
from service.conftest import Service
from service.test_jwt_api import ORIGIN, _jwt_service

from sessionward import SQLiteStore

APP = "https://app.example"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Service]:
    yield from _jwt_service(tmp_path, rotate_after=None)


def _call(api: Service, path: str, body: dict[str, Any]) -> httpx.Response:
    return api.client.post(path, json=body, headers=api.auth("issue"))


def _dpop(api: Service, device: Device, path: str, **extra: Any) -> dict[str, str]:
    url = APP + path
    proof = device.dpop("POST", url, iat=api.clock.now(), **extra)
    return {"proof": proof, "method": "POST", "url": url}


def _claims(api: Service, token: str) -> dict[str, Any]:
    jwks = api.client.get("/.well-known/jwks.json").json()
    key = pyjwt.PyJWK(jwks["keys"][0]).key
    claims: dict[str, Any] = pyjwt.decode(
        token, key, algorithms=["ES256"], audience=ORIGIN, issuer=ORIGIN
    )
    return claims


def test_a_login_with_a_proof_binds_the_family_to_the_key(api: Service) -> None:
    device, thief = Device(), Device()
    login = _call(api, "/v1/tokens", {"user_id": "ann", "dpop": _dpop(api, device, "/login")})
    assert login.status_code == 201, login.text
    pair = login.json()
    assert pair["token_type"] == "DPoP"  # noqa: S105 - a scheme name
    assert _claims(api, pair["access_token"])["cnf"] == {"jkt": device.thumbprint}
    refresh_token = pair["refresh_token"]
    refused = [
        {"refresh_token": refresh_token},  # no proof
        {"refresh_token": refresh_token, "dpop": _dpop(api, thief, "/refresh")},  # another key
        {"refresh_token": refresh_token, "dpop": _dpop(api, device, "/other") | {"url": APP}},
    ]
    for body in refused:
        response = _call(api, "/v1/tokens/refresh", body)
        assert response.status_code == 401, body
        assert response.json() == {"error": {"code": "invalid_token", "message": "invalid"}}
    once = _dpop(api, device, "/refresh")
    fresh = _call(api, "/v1/tokens/refresh", {"refresh_token": refresh_token, "dpop": once})
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["token_type"] == "DPoP"  # noqa: S105 - a scheme name
    assert _claims(api, fresh.json()["access_token"])["cnf"] == {"jkt": device.thumbprint}
    replayed = {"refresh_token": fresh.json()["refresh_token"], "dpop": once}
    assert _call(api, "/v1/tokens/refresh", replayed).status_code == 401  # jti spent


def test_without_a_proof_the_family_stays_a_bearer_one(api: Service) -> None:
    pair = _call(api, "/v1/tokens", {"user_id": "bo"}).json()
    assert pair["token_type"] == "Bearer"  # noqa: S105 - a scheme name
    assert "cnf" not in _claims(api, pair["access_token"])
    fresh = _call(api, "/v1/tokens/refresh", {"refresh_token": pair["refresh_token"]})
    assert fresh.status_code == 200
    bad = _dpop(api, Device(), "/login", typ="JWT")
    refused = _call(api, "/v1/tokens", {"user_id": "bo", "dpop": bad})
    assert refused.status_code == 401
    unknown = {"user_id": "bo", "dpop": {"proof": "x", "method": "POST", "url": APP, "k": 1}}
    assert _call(api, "/v1/tokens", unknown).status_code == 400


def _validate(api: Service, token: str, dpop: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"token": token}
    if dpop is not None:
        body["dpop"] = dpop
    response = api.client.post("/v1/sessions/validate", json=body, headers=api.auth("validate"))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_an_opaque_session_issued_with_a_proof_validates_only_with_one(api: Service) -> None:
    device, thief = Device(), Device()
    issued = _call(api, "/v1/sessions", {"user_id": "cy", "dpop": _dpop(api, device, "/login")})
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    binding = issued.json()["session"]["binding"]
    assert (binding["state"], binding["method"], binding["jkt"]) == (
        "bound",
        "dpop",
        device.thumbprint,
    )
    deny = {"decision": "deny", "reason": "invalid"}
    assert _validate(api, token) == deny  # no proof
    assert _validate(api, token, _dpop(api, thief, "/orders", token=token)) == deny
    assert _validate(api, token, _dpop(api, device, "/orders")) == deny  # no ath: another token
    other_url = _dpop(api, device, "/orders", token=token) | {"url": APP + "/admin"}
    assert _validate(api, token, other_url) == deny
    other_method = _dpop(api, device, "/orders", token=token) | {"method": "DELETE"}
    assert _validate(api, token, other_method) == deny
    stale = _dpop(api, device, "/orders", token=token)
    api.clock.advance(120)  # older than the proof window
    assert _validate(api, token, stale) == deny
    once = _dpop(api, device, "/orders", token=token)
    assert _validate(api, token, once)["decision"] == "allow"
    assert _validate(api, token, once) == deny  # its jti is spent
    session_id = issued.json()["session"]["id"]
    seen = [
        e.get("detail") or e.get("reason")
        for e in api.runtime.activity.for_session(session_id)
        if e["kind"] in ("theft-suspected", "rejected")
    ]
    assert seen == [
        "binding-proof-dpop-missing",
        "binding-proof-jkt",
        "binding-ath",
        "binding-htu",
        "binding-htm",
        "binding-iat",
        "binding-replayed",
    ]  # the first two as suspected theft
    plain = _call(api, "/v1/sessions", {"user_id": "cy"}).json()
    assert plain["session"]["binding"]["state"] == "unbound"
    assert _validate(api, plain["token"])["decision"] == "allow"  # unbound: a bearer token


@pytest.fixture
def renewing(tmp_path: Path) -> Iterator[Service]:
    yield from _jwt_service(tmp_path, rotate_after=60)


def test_a_refused_validation_leaves_the_session_as_it_was(
    renewing: Service, tmp_path: Path
) -> None:
    api, device, thief = renewing, Device(), Device()
    issued = _call(api, "/v1/sessions", {"user_id": "cy", "dpop": _dpop(api, device, "/login")})
    token, session_id = issued.json()["token"], issued.json()["session"]["id"]
    store = SQLiteStore(str(tmp_path / "service.db"))  # the service's own store, read directly
    api.clock.advance(61)  # a renewal and a touch are due
    before = store.get(session_id)
    context = {"ip": "203.0.113.9", "user_agent": "thief/1.0"}
    deny = {"decision": "deny", "reason": "invalid"}
    for dpop in (None, _dpop(api, thief, "/orders", token=token)):
        body: dict[str, Any] = {"token": token, "context": context}
        if dpop is not None:
            body["dpop"] = dpop
        answer = api.client.post("/v1/sessions/validate", json=body, headers=api.auth("validate"))
        assert answer.json() == deny
    # a call that acts on the session without a proof is refused and renews nothing either
    data = {"token": token, "set": {"cart": 1}}
    refused = api.client.post("/v1/sessions/data", json=data, headers=api.auth("issue"))
    assert refused.status_code == 401
    changed = store.get(session_id)
    assert changed is not None
    assert before is not None
    assert (changed.generation, changed.secret_hash) == (before.generation, before.secret_hash)
    before = changed
    assert _validate(api, token) == deny
    assert store.get(session_id) == before  # no renewal, no last-seen, no context learned
    owner = _validate(api, token, _dpop(api, device, "/orders", token=token))
    assert owner["decision"] == "rotate"  # the owner's proven request renews
    after = store.get(session_id)
    assert after is not None
    assert after.generation == before.generation + 1
    store.close()
