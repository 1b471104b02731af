"""DPoP for the JWT carrier over real HTTP: a WSGI app around ``TokenService(dpop=...)`` and
``TokenEndpoints``. A login with a proof binds the refresh family; its access tokens carry
``cnf.jkt`` and need a proof of that key, and so does its refresh."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from joserfc import jwk as jose_jwk
from joserfc import jws as jose_jws
from joserfc.jws import JWSRegistry
from proofs import Device, b64
from web._servers import wsgi_server

from sessionward import AsyncSessionManager, Policy, SessionManager
from sessionward.core.dpop import DpopPolicy, access_token_hash
from sessionward.errors import InvalidProof, InvalidToken
from sessionward.jwt import AsyncTokenService, KeySet, TokenService
from sessionward.jwt.web import (
    UNAUTHORIZED,
    Reply,
    TokenEndpoints,
    authenticate,
    dpop_unauthorized,
)
from sessionward.stores import AsyncMemoryStore, MemoryStore
from sessionward.testing import FakeClock
from sessionward.web._http import environ_headers
from sessionward.web.csrf import CsrfPolicy

ISS, AUD = "https://issuer.example", "https://api.example"
POLICY = Policy(idle_timeout=3600, absolute_timeout=86400, rotation_grace=30)


class Api:
    def __init__(self, base: str, clock: FakeClock, service: TokenService) -> None:
        self.base, self.clock, self.service = base, clock, service
        self.http = httpx.Client(base_url=base, timeout=10)
        self.nonce: str | None = None
        self.refresh_cookie: str | None = None

    def call(
        self,
        method: str,
        path: str,
        device: Device | None,
        token: str | None = None,
        *,
        scheme: str = "DPoP",
        url: str | None = None,
        proof: str | None = None,
    ) -> httpx.Response:
        headers = {"sec-fetch-site": "same-origin"}
        if token is not None:
            headers["authorization"] = f"{scheme} {token}"
        if self.refresh_cookie is not None and path.startswith("/auth/"):
            headers["cookie"] = self.refresh_cookie
        if proof is None and device is not None:
            at = self.clock.now()
            proof = device.dpop(
                method, url or self.base + path, iat=at, token=token, nonce=self.nonce
            )
        if proof is not None:
            headers["dpop"] = proof
        response = self.http.request(method, path, headers=headers)
        self.nonce = response.headers.get("dpop-nonce", self.nonce)
        for value in response.headers.get_list("set-cookie"):
            self.refresh_cookie = value.split(";", 1)[0]
        return response

    def login(self, device: Device) -> dict[str, Any]:
        response = self.call("POST", "/auth/login", device)
        if response.status_code == 401:  # first contact: the server's nonce
            response = self.call("POST", "/auth/login", device)
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def api() -> Iterator[Api]:
    clock = FakeClock(time.time())
    manager = SessionManager(MemoryStore(), policy=POLICY, clock=clock)
    dpop = DpopPolicy(nonce_key=secrets.token_bytes(32), nonce_lifetime=60)
    keys = KeySet.generate("ES256", now=clock.now())
    service = TokenService(manager, keys, issuer=ISS, audience=AUD, dpop=dpop)

    def make(base: str) -> Any:
        endpoints = TokenEndpoints(csrf=CsrfPolicy([base], keys=[secrets.token_bytes(32)]))

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            headers = environ_headers(environ)
            method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
            url = base + path
            reply: Reply
            try:
                if path == "/auth/login":
                    proof = headers.get("dpop")
                    jkt = service.check_proof(proof, method=method, url=url).jkt
                    reply = endpoints.login(service.login("alice", dpop_jkt=jkt), now=clock.now())
                elif path == "/auth/refresh":
                    reply = endpoints.refresh(service, method, headers, url=url)
                else:
                    claims = authenticate(service, headers, method=method, url=url)
                    body = json.dumps({"sub": claims.sub}).encode()
                    reply = Reply(200, [("content-type", "application/json")], body)
            except InvalidProof as exc:
                reply = dpop_unauthorized(service, exc)
            except InvalidToken:
                reply = UNAUTHORIZED
            start_response(f"{reply.status} X", reply.headers)
            return [reply.body]

        return app

    with wsgi_server(make) as base:
        client = Api(base, clock, service)
        yield client
        client.http.close()
    manager.close()


def _error(response: httpx.Response) -> str:
    assert response.status_code == 401
    return response.headers["www-authenticate"].split('error="')[1].split('"')[0]


def _cnf(token: str) -> Any:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("cnf")


def test_a_bound_access_token_needs_a_proof_of_its_key(api: Api) -> None:
    device, thief = Device(), Device()
    body = api.login(device)
    token = body["access_token"]
    assert body["token_type"] == "DPoP"  # noqa: S105 - a scheme name
    assert _cnf(token) == {"jkt": device.thumbprint}
    assert api.call("GET", "/api/me", device, token).json() == {"sub": "alice"}
    assert _error(api.call("GET", "/api/me", None, token)) == "invalid_dpop_proof"
    assert _error(api.call("GET", "/api/me", device, token, scheme="Bearer")) == "invalid_token"
    assert _error(api.call("GET", "/api/me", thief, token)) == "invalid_dpop_proof"
    other = api.call("GET", "/api/me", device, token, url=api.base + "/api/other")
    assert _error(other) == "invalid_dpop_proof"
    for_get = device.dpop(
        "GET", api.base + "/api/me", iat=api.clock.now(), token=token, nonce=api.nonce
    )
    assert _error(api.call("POST", "/api/me", None, token, proof=for_get)) == "invalid_dpop_proof"
    once = device.dpop(
        "GET", api.base + "/api/me", iat=api.clock.now(), token=token, nonce=api.nonce
    )
    assert api.call("GET", "/api/me", None, token, proof=once).status_code == 200
    assert _error(api.call("GET", "/api/me", None, token, proof=once)) == "invalid_dpop_proof"
    api.clock.advance(121)
    stale = api.call("GET", "/api/me", device, token)
    assert _error(stale) == "use_dpop_nonce"
    assert "dpop-nonce" in stale.headers


def test_a_bound_refresh_token_needs_a_proof_of_its_key(api: Api) -> None:
    device, thief = Device(), Device()
    api.login(device)
    assert _error(api.call("POST", "/auth/refresh", None)) == "invalid_dpop_proof"
    assert _error(api.call("POST", "/auth/refresh", thief)) == "invalid_dpop_proof"
    fresh = api.call("POST", "/auth/refresh", device)
    assert fresh.status_code == 200
    token = fresh.json()["access_token"]
    assert _cnf(token) == {"jkt": device.thumbprint}
    assert api.call("GET", "/api/me", device, token).status_code == 200


def test_a_bound_family_steps_up_only_with_a_proof_of_its_key(api: Api) -> None:
    service, clock = api.service, api.clock
    device, thief = Device(), Device()
    url = "https://api.example/auth/step-up"
    pair = service.login("alice", dpop_jkt=device.thumbprint, auth_level=1)

    def proven(by: Device) -> str:
        proof = by.dpop("POST", url, iat=clock.now(), nonce=service.dpop_nonce())
        return service.check_proof(proof, method="POST", url=url).jkt

    for presented in (None, proven(thief)):
        with pytest.raises(InvalidProof) as refused:
            service.step_up(pair.refresh_token, auth_level=2, dpop_jkt=presented)
        assert refused.value.reason == "jkt"
    # Nothing changed: the refresh token is still the family's current one, at level 1.
    record = service.manager.store.get(pair.session_id)
    assert record is not None
    assert (record.auth_level, record.generation) == (1, 0)
    stepped = service.step_up(pair.refresh_token, auth_level=2, dpop_jkt=proven(device))
    assert stepped.token_type == "DPoP"  # noqa: S105 - a scheme name
    assert _cnf(stepped.access_token) == {"jkt": device.thumbprint}
    after = service.manager.store.get(pair.session_id)
    assert after is not None
    assert (after.auth_level, after.generation) == (2, 1)
    with pytest.raises(InvalidProof):  # the stepped-up family is still bound to the key
        service.refresh(stepped.refresh_token, dpop_jkt=proven(thief))


def test_joserfc_proofs_are_accepted(api: Api) -> None:
    key = jose_jwk.ECKey.generate_key("P-256")
    registry = JWSRegistry(algorithms=["ES256"])

    def proof(method: str, path: str, token: str | None = None) -> str:
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
        claims: dict[str, Any] = {
            "jti": b64(secrets.token_bytes(16)),
            "htm": method,
            "htu": api.base + path,
            "iat": int(api.clock.now()),
            "nonce": api.nonce,
        }
        if token is not None:
            claims["ath"] = access_token_hash(token)
        return jose_jws.serialize_compact(header, json.dumps(claims), key, registry=registry)

    api.call("POST", "/auth/login", None, proof=proof("POST", "/auth/login"))  # the nonce
    login = api.call("POST", "/auth/login", None, proof=proof("POST", "/auth/login"))
    token = login.json()["access_token"]
    assert _cnf(token) == {"jkt": key.thumbprint()}
    me = api.call("GET", "/api/me", None, token, proof=proof("GET", "/api/me", token))
    assert me.json() == {"sub": "alice"}
    # and our DPoP-bound access token verifies under another library (PyJWT), with the JWKS
    # we publish, naming the thumbprint joserfc computes for its own key
    jwks = api.service.issuer.keyset.jwks()
    decoded = pyjwt.decode(
        token,
        pyjwt.PyJWK(jwks["keys"][0]).key,
        algorithms=["ES256"],
        audience=AUD,
        issuer=ISS,
    )
    assert decoded["cnf"] == {"jkt": key.thumbprint()}
    assert decoded["sub"] == "alice"


def test_async_service_binds_the_same_way() -> None:
    async def run() -> None:
        clock = FakeClock(time.time())
        manager = AsyncSessionManager(AsyncMemoryStore(), policy=POLICY, clock=clock)
        service = AsyncTokenService(
            manager,
            KeySet.generate("ES256", now=clock.now()),
            issuer=ISS,
            audience=AUD,
            dpop=DpopPolicy(),
        )
        device, url = Device(), "https://api.example/me"
        pair = await service.login("alice", dpop_jkt=device.thumbprint)
        proof = device.dpop("GET", url, iat=clock.now(), token=pair.access_token)
        claims = await service.authenticate(pair.access_token, proof=proof, url=url, scheme="DPoP")
        assert claims.sub == "alice"
        with pytest.raises(InvalidProof):
            await service.authenticate(pair.access_token, proof=proof, url=url, scheme="DPoP")
        with pytest.raises(InvalidProof):
            await service.refresh(pair.refresh_token)
        again = await service.refresh(pair.refresh_token, dpop_jkt=device.thumbprint)
        assert again.token_type == "DPoP"  # noqa: S105 - a scheme name
        with pytest.raises(InvalidProof):
            await service.step_up(again.refresh_token, auth_level=2)
        with pytest.raises(InvalidProof):
            await service.step_up(again.refresh_token, auth_level=2, dpop_jkt=Device().thumbprint)
        up = await service.step_up(again.refresh_token, auth_level=2, dpop_jkt=device.thumbprint)
        assert up.token_type == "DPoP"  # noqa: S105 - a scheme name
        await manager.close()

    asyncio.run(run())
