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
from functools import partial
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from _shared import DpopClient, joserfc_proof
from joserfc import jwk as jose_jwk
from proofs import Device
from web._servers import wsgi_server

from sessionward import AsyncSessionManager, Policy, SessionManager
from sessionward.core.dpop import DpopPolicy
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


class Api(DpopClient):
    """A browser's client of the token endpoints: same-origin, and holding the refresh cookie
    the ``/auth/`` endpoints set."""

    def __init__(self, base: str, clock: FakeClock, service: TokenService) -> None:
        super().__init__(base, clock)
        self.service = service
        self.refresh_cookie: str | None = None

    def headers(self, path: str) -> dict[str, str]:
        headers = {"sec-fetch-site": "same-origin"}
        if self.refresh_cookie is not None and path.startswith("/auth/"):
            headers["cookie"] = self.refresh_cookie
        return headers

    def received(self, response: httpx.Response) -> None:
        for value in response.headers.get_list("set-cookie"):
            self.refresh_cookie = value.split(";", 1)[0]

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
                elif path == "/auth/logout":
                    reply = endpoints.logout(service, method, headers, url=url)
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


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
def service(clock: FakeClock) -> Iterator[TokenService]:
    """A token service with DPoP on (no nonces), its families in memory."""
    manager = SessionManager(MemoryStore(), policy=POLICY, clock=clock)
    keys = KeySet.generate("ES256", now=clock.now())
    yield TokenService(manager, keys, issuer=ISS, audience=AUD, dpop=DpopPolicy())
    manager.close()


@pytest.fixture
def async_service(clock: FakeClock) -> Iterator[AsyncTokenService]:
    """:func:`service`'s async twin (its calls run in the test's ``asyncio.run``)."""
    manager = AsyncSessionManager(AsyncMemoryStore(), policy=POLICY, clock=clock)
    keys = KeySet.generate("ES256", now=clock.now())
    yield AsyncTokenService(manager, keys, issuer=ISS, audience=AUD, dpop=DpopPolicy())
    asyncio.run(manager.close())


def _error(response: httpx.Response) -> str:
    assert response.status_code == 401
    return response.headers["www-authenticate"].split('error="')[1].split('"')[0]


def _token_error(response: httpx.Response) -> str:
    """A token endpoint's refusal (RFC 9449 §5, §8): 400 and the error in the body."""
    assert response.status_code == 400, response.text
    assert "www-authenticate" not in response.headers
    error: str = response.json()["error"]
    return error


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
    assert _token_error(api.call("POST", "/auth/refresh", None)) == "invalid_dpop_proof"
    assert _token_error(api.call("POST", "/auth/refresh", thief)) == "invalid_dpop_proof"
    other_url = api.call("POST", "/auth/refresh", device, url=api.base + "/auth/logout")
    assert _token_error(other_url) == "invalid_dpop_proof"
    for_get = device.dpop("GET", api.base + "/auth/refresh", iat=api.clock.now(), nonce=api.nonce)
    assert _token_error(api.call("POST", "/auth/refresh", None, proof=for_get)) == (
        "invalid_dpop_proof"
    )
    fresh = api.call("POST", "/auth/refresh", device)
    assert fresh.status_code == 200
    assert fresh.headers["dpop-nonce"] == api.service.dpop_nonce()  # a fresh one with success
    token = fresh.json()["access_token"]
    assert _cnf(token) == {"jkt": device.thumbprint}
    assert api.call("GET", "/api/me", device, token).status_code == 200


def test_a_refused_refresh_leaves_the_family_as_it_was(api: Api) -> None:
    device, thief = Device(), Device()
    api.login(device)
    assert api.refresh_cookie is not None
    session_id = api.refresh_cookie.split("=", 1)[1][4:20]
    store = api.service.manager.store
    api.clock.advance(121)  # a touch of the family is due (and the nonce is stale)
    stale = api.call("POST", "/auth/refresh", device)
    assert _token_error(stale) == "use_dpop_nonce"
    assert stale.headers["dpop-nonce"] == api.service.dpop_nonce()
    before = store.get(session_id)
    assert before is not None
    assert _token_error(api.call("POST", "/auth/refresh", None)) == "invalid_dpop_proof"
    assert _token_error(api.call("POST", "/auth/refresh", thief)) == "invalid_dpop_proof"
    assert store.get(session_id) == before  # no rotation, no touch, no context written
    fresh = api.call("POST", "/auth/refresh", device)  # the owner's refresh still works
    assert fresh.status_code == 200
    after = store.get(session_id)
    assert after is not None
    assert (after.generation, after.last_seen) == (before.generation + 1, api.clock.now())


def test_a_bound_family_steps_up_only_with_a_proof_of_its_key(api: Api) -> None:
    service, clock = api.service, api.clock
    device, thief = Device(), Device()
    url = "https://api.example/auth/step-up"
    pair = service.login("alice", dpop_jkt=device.thumbprint, auth_level=1)
    clock.advance(61)  # a touch is due
    before = service.manager.store.get(pair.session_id)

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
    assert record == before
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
    proof = partial(joserfc_proof, key, api)
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


def test_async_service_binds_the_same_way(
    async_service: AsyncTokenService, clock: FakeClock
) -> None:
    service = async_service

    async def run() -> None:
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

    asyncio.run(run())


def test_a_bound_family_logs_out_only_with_a_proof_of_its_key(api: Api) -> None:
    """A stolen refresh token cannot even end its owner's session: logout needs the proof
    that refresh needs, and a refused logout ends nothing and keeps the cookie."""
    device, thief = Device(), Device()
    api.login(device)
    assert api.refresh_cookie is not None
    session_id = api.refresh_cookie.split("=", 1)[1][4:20]
    store = api.service.manager.store
    once = device.dpop("POST", api.base + "/auth/refresh", iat=api.clock.now(), nonce=api.nonce)
    assert api.call("POST", "/auth/refresh", None, proof=once).status_code == 200
    cookie = api.refresh_cookie
    before = store.get(session_id)
    refused = [
        api.call("POST", "/auth/logout", None),  # no proof
        api.call("POST", "/auth/logout", thief),  # another key's
        api.call("POST", "/auth/logout", device, url=api.base + "/auth/refresh"),  # another URL
        api.call("POST", "/auth/logout", None, proof=once),  # spent, and for another URL
    ]
    for response in refused:
        assert _token_error(response) == "invalid_dpop_proof"
        assert "set-cookie" not in response.headers
    assert store.get(session_id) == before  # nothing ended, nothing written
    replayed = device.dpop("POST", api.base + "/auth/logout", iat=api.clock.now(), nonce=api.nonce)
    assert api.call("POST", "/auth/logout", None, proof=replayed).status_code == 200
    assert api.refresh_cookie != cookie  # expired by the owner's logout
    api.refresh_cookie = cookie
    assert _token_error(api.call("POST", "/auth/logout", None, proof=replayed)) == (
        "invalid_dpop_proof"
    )
    assert store.get(session_id) is None  # ended by the owner's proven logout only


def test_a_logout_with_a_stale_nonce_asks_for_the_current_one(api: Api) -> None:
    device = Device()
    api.login(device)
    assert api.refresh_cookie is not None
    session_id = api.refresh_cookie.split("=", 1)[1][4:20]
    api.clock.advance(121)  # two nonce windows of 60 s: the client's nonce is stale
    stale = api.call("POST", "/auth/logout", device)
    assert _token_error(stale) == "use_dpop_nonce"
    assert stale.headers["dpop-nonce"] == api.service.dpop_nonce()
    assert api.service.manager.store.get(session_id) is not None
    assert api.call("POST", "/auth/logout", device).status_code == 200  # with the new nonce
    assert api.service.manager.store.get(session_id) is None


def test_a_logout_with_the_access_token_uses_its_checked_proof(
    service: TokenService, clock: FakeClock
) -> None:
    """``authenticate`` spent the request's proof for the access token; ``logout`` then takes
    the key it proved (the token's ``cnf.jkt``) instead of checking the proof again."""
    endpoints = TokenEndpoints(csrf=CsrfPolicy([AUD], keys=[secrets.token_bytes(32)]))
    device, url = Device(), AUD + "/auth/logout"
    pair = service.login("alice", dpop_jkt=device.thumbprint)
    proof = device.dpop("POST", url, iat=clock.now(), token=pair.access_token)
    headers = {
        "authorization": f"DPoP {pair.access_token}",
        "dpop": proof,
        "cookie": f"__Secure-rt={pair.refresh_token}",
        "sec-fetch-site": "same-origin",
    }
    claims = authenticate(service, headers, method="POST", url=url)
    reply = endpoints.logout(service, "POST", headers, access=claims, url=url)
    assert reply.status == 200
    assert service.manager.store.get(pair.session_id) is None


def test_the_service_logs_out_a_bound_family_only_with_its_key(
    async_service: AsyncTokenService,
) -> None:
    service, store = async_service, async_service.manager.store

    async def run() -> None:
        device = Device()
        pair = await service.login("alice", dpop_jkt=device.thumbprint)
        for presented in (None, Device().thumbprint):
            with pytest.raises(InvalidProof):
                await service.logout(refresh_token=pair.refresh_token, dpop_jkt=presented)
        assert await store.get(pair.session_id) is not None
        assert await service.logout(refresh_token=pair.refresh_token, dpop_jkt=device.thumbprint)
        assert await store.get(pair.session_id) is None
        plain = await service.login("bob")  # an unbound family needs no proof
        assert await service.logout(refresh_token=plain.refresh_token)

    asyncio.run(run())


def test_a_bound_familys_pair_handed_to_a_retry_stays_dpop(service: TokenService) -> None:
    """A refresh retried with the previous refresh token inside the grace window (another
    tab, a lost answer) gets the very same pair, bound and named as such, and only with a
    proof of the family's key."""
    device = Device()
    pair = service.login("alice", dpop_jkt=device.thumbprint)
    first = service.refresh(pair.refresh_token, dpop_jkt=device.thumbprint)
    with pytest.raises(InvalidProof):
        service.refresh(pair.refresh_token, dpop_jkt=Device().thumbprint)
    again = service.refresh(pair.refresh_token, dpop_jkt=device.thumbprint)
    assert (again.access_token, again.refresh_token) == (first.access_token, first.refresh_token)
    assert again.token_type == "DPoP"  # noqa: S105 - a scheme name
