"""DPoP through the service's JWT mode, over real HTTP: the backend passes on its client's
``DPoP`` header (with the method and URL of the client's request) to ``/v1/tokens``, which
binds the refresh family to that key, and to ``/v1/tokens/refresh``, which then refreshes only
with a fresh proof of that key. The access tokens name the key (``cnf.jkt``) and verify under
an independent library with the service's JWKS."""

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
