"""The JWT mode of the service over real HTTP (uvicorn on loopback, a real SQLite file, a key
file on disk): JWKS, login, refresh rotation, theft on replay, scopes, and 404 when off."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from sessionward import Policy
from sessionward.errors import InvalidToken
from sessionward.jwt import KeySet, save_keyset_file
from sessionward.service import ServiceConfig, create_app
from sessionward.service.config import load_config
from sessionward.service.runtime import Runtime
from sessionward.testing import FakeClock

from ._server import serve
from .conftest import Service, make_keys

ORIGIN = "http://127.0.0.1:8000"  # the default config's origin: the tokens' iss and aud
INVALID = {"error": {"code": "invalid_token", "message": "invalid"}}


def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwt-keys.json"
    save_keyset_file(path, KeySet.generate("ES256", now=time.time()))
    return path


@pytest.fixture
def jwt_service(tmp_path: Path) -> Iterator[Service]:
    yield from _jwt_service(tmp_path, rotate_after=None)


@pytest.fixture
def renewing_jwt_service(tmp_path: Path) -> Iterator[Service]:
    """Sessions renew (rotate) on validate after 60 s."""
    yield from _jwt_service(tmp_path, rotate_after=60)


def _jwt_service(tmp_path: Path, rotate_after: float | None) -> Iterator[Service]:
    # PyJWT checks exp/iat against the real clock: the fake one starts at the real time.
    clock = FakeClock(time.time())
    path = tmp_path / "service.db"
    config = ServiceConfig(
        store=str(path),
        admin=False,
        demo=False,
        policy=Policy(
            idle_timeout=600, absolute_timeout=3600, rotation_grace=30, rotate_after=rotate_after
        ),
        key_cache_seconds=0,
        jwt_keys=str(key_file(tmp_path)),
    )
    app = create_app(config, clock=clock)
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base, httpx.Client(base_url=base, timeout=10) as client:
            yield Service(app, runtime, clock, client, make_keys(runtime), path)
    finally:
        asyncio.run(runtime.close())


def login(service: Service, user_id: str = "alice", **body: Any) -> dict[str, Any]:
    response = service.client.post(
        "/v1/tokens", json={"user_id": user_id, **body}, headers=service.auth("issue")
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    result: dict[str, Any] = response.json()
    return result


def refresh(service: Service, refresh_token: str) -> httpx.Response:
    return service.client.post(
        "/v1/tokens/refresh", json={"refresh_token": refresh_token}, headers=service.auth("issue")
    )


def test_jwks_is_public_and_verifies_a_minted_access_token(jwt_service: Service) -> None:
    response = jwt_service.client.get("/.well-known/jwks.json")  # no API key
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    jwks = response.json()
    assert len(jwks["keys"]) == 1
    assert all("d" not in jwk for jwk in jwks["keys"])  # never a private member

    pair = login(jwt_service, "alice", scopes=["orders:read"], auth_level=2)
    assert pair["token_type"] == "Bearer"  # noqa: S105 - the RFC 6750 scheme name
    assert 0 < pair["expires_in"] <= 900
    header = pyjwt.get_unverified_header(pair["access_token"])
    key = pyjwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = pyjwt.decode(
        pair["access_token"], key, algorithms=["ES256"], audience=ORIGIN, issuer=ORIGIN
    )
    assert claims["sub"] == "default/alice"  # the key's application names the user
    assert claims["sid"] == pair["session_id"]
    assert pair["refresh_token"].startswith("sw1_")
    # A different key set's JWKS does not verify it.
    other = pyjwt.PyJWKSet.from_dict(KeySet.generate("ES256", now=time.time()).jwks())
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(
            pair["access_token"],
            other.keys[0],
            algorithms=["ES256"],
            audience=ORIGIN,
            issuer=ORIGIN,
        )


def test_refresh_rotates_and_replay_after_grace_kills_the_family(
    jwt_service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    first = login(jwt_service, "bob")
    response = refresh(jwt_service, first["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["session_id"] == first["session_id"]

    # Inside the grace window the old refresh token yields the very same pair (another tab).
    jwt_service.clock.advance(5)
    again = refresh(jwt_service, first["refresh_token"])
    assert again.status_code == 200
    assert again.json()["refresh_token"] == second["refresh_token"]

    # The new one works and rotates in turn.
    third = refresh(jwt_service, second["refresh_token"])
    assert third.status_code == 200
    third_pair = third.json()

    # Replaying a rotated refresh token after the grace window is theft: opaque 401 ...
    jwt_service.clock.advance(31)
    stolen = refresh(jwt_service, first["refresh_token"])
    assert stolen.status_code == 401
    assert stolen.json() == INVALID
    # ... and the whole family is dead: the latest refresh token and access token too.
    latest = refresh(jwt_service, third_pair["refresh_token"])
    assert latest.status_code == 401
    assert latest.json() == INVALID
    tokens = jwt_service.runtime.tokens
    assert tokens is not None
    with pytest.raises(InvalidToken):
        tokens.verifier.verify(third_pair["access_token"])
    kinds = [e["kind"] for e in jwt_service.runtime.activity.recent]
    assert "theft-suspected" in kinds  # the reason goes to the event log only
    revoked = [e for e in jwt_service.runtime.activity.recent if e["kind"] == "revoked"]
    assert any(e.get("reason") == "theft" for e in revoked)
    for pair in (first, second, third_pair):  # no raw token in any log line
        for value in (pair["refresh_token"], pair["access_token"]):
            assert value not in caplog.text


def test_bad_refresh_tokens_get_the_same_opaque_401(jwt_service: Service) -> None:
    session = jwt_service.client.post(
        "/v1/sessions", json={"user_id": "carol"}, headers=jwt_service.auth("issue")
    ).json()
    pair = login(jwt_service, "carol")
    answers = [
        refresh(jwt_service, "garbage"),
        refresh(jwt_service, session["token"]),  # a session token, not a refresh token
        refresh(jwt_service, pair["access_token"][:200]),
    ]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert all(a.json() == INVALID for a in answers)
    assert refresh(jwt_service, pair["refresh_token"]).status_code == 200  # untouched


def test_scopes_and_input_checks(jwt_service: Service) -> None:
    pair = login(jwt_service, "dave")
    client = jwt_service.client
    for path, body in (
        ("/v1/tokens", {"user_id": "dave"}),
        ("/v1/tokens/refresh", {"refresh_token": pair["refresh_token"]}),
    ):
        forbidden = client.post(path, json=body, headers=jwt_service.auth("validate"))
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["code"] == "forbidden"
        assert client.post(path, json=body).status_code == 401
    # The refused calls did not consume the refresh token.
    assert refresh(jwt_service, pair["refresh_token"]).status_code == 200
    issue = jwt_service.auth("issue")
    assert client.post("/v1/tokens", json={}, headers=issue).status_code == 400
    reserved = client.post("/v1/tokens", json={"user_id": "sessionward:admin:x"}, headers=issue)
    assert reserved.status_code == 403
    unknown = client.post("/v1/tokens/refresh", json={"token": "x"}, headers=issue)
    assert unknown.status_code == 400


def test_without_jwt_keys_the_jwt_routes_answer_404(service: Service) -> None:
    assert service.runtime.tokens is None
    jwks = service.client.get("/.well-known/jwks.json")
    assert jwks.status_code == 404
    assert jwks.json()["error"]["code"] == "not_found"
    for path, body in (
        ("/v1/tokens", {"user_id": "erin"}),
        ("/v1/tokens/refresh", {"refresh_token": "sw1_x"}),
    ):
        response = service.client.post(path, json=body, headers=service.auth("issue"))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_jwt_keys_from_environment_path_or_text(tmp_path: Path) -> None:
    path = key_file(tmp_path)
    config = load_config(environ={"SESSIONWARD_JWT_KEYS": str(path)})
    assert config.jwt_keys == str(path)
    assert load_config({"jwt_keys": "flag"}, environ={"SESSIONWARD_JWT_KEYS": "env"}).jwt_keys == (
        "flag"
    )
    text = path.read_text()
    for spec in (str(path), text):
        app = create_app(
            ServiceConfig(
                store=str(tmp_path / "t.db"),
                admin=False,
                demo=False,
                jwt_keys=spec,
                jwt_audience="https://api.example",
            )
        )
        runtime: Runtime = app.state.runtime
        assert runtime.tokens is not None
        assert (
            runtime.tokens.verifier.keyset.jwks() == KeySet.from_document(json.loads(text)).jwks()
        )
        asyncio.run(runtime.close())


def test_refresh_tokens_are_not_session_tokens(renewing_jwt_service: Service) -> None:
    """A refresh token presented to the session endpoints is refused and left untouched, even
    when the session policy's renewal is due (it would rotate it outside the family)."""
    from sessionward.jwt.refresh import FAMILY_KEY
    from sessionward.service.runtime import _FAMILY_MARK

    assert json.dumps({FAMILY_KEY: 1}, separators=(",", ":")).startswith("{" + _FAMILY_MARK)
    service = renewing_jwt_service
    pair = login(service, "dora")
    service.clock.advance(120)  # renewal is due
    for path in ("/v1/sessions/validate", "/v1/sessions/rotate"):
        answer = service.client.post(
            path, json={"token": pair["refresh_token"]}, headers=service.auth("issue")
        )
        assert answer.status_code in (200, 401)
        assert "session" not in answer.json()
        assert "token" not in answer.json()
    service.clock.advance(60)  # past the rotation grace window a stray rotation would open
    assert refresh(service, pair["refresh_token"]).status_code == 200


def test_a_login_can_end_the_users_other_families(jwt_service: Service) -> None:
    def login(**extra: Any) -> httpx.Response:
        return jwt_service.client.post(
            "/v1/tokens", json={"user_id": "alice", **extra}, headers=jwt_service.auth("issue")
        )

    first, second = login().json(), login().json()
    jwt_service.clock.advance(1.5)
    assert login(end_other_sessions="yes").status_code == 400
    only = login(end_other_sessions=True)
    assert only.status_code == 201
    tokens = jwt_service.runtime.tokens
    assert tokens is not None
    for old in (first, second):
        refused = jwt_service.client.post(
            "/v1/tokens/refresh",
            json={"refresh_token": old["refresh_token"]},
            headers=jwt_service.auth("issue"),
        )
        assert refused.json() == INVALID
        with pytest.raises(InvalidToken):
            asyncio.run(tokens.authenticate(old["access_token"]))
    claims = asyncio.run(tokens.authenticate(only.json()["access_token"]))
    assert claims.sub == "default/alice"
