"""The SPA pattern over real HTTP: access token as Bearer, refresh token in an HttpOnly cookie
scoped to the token endpoints, provenance-checked refresh and logout (a threaded WSGI server on
127.0.0.1, requests with http.client)."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from jwt_forge import AUD, ISS
from jwt_reference import cross_checked

from sessionward import AsyncSessionManager, EventBus, Policy, SessionManager
from sessionward.errors import ConfigError, InvalidToken
from sessionward.jwt import AsyncTokenService, KeySet, TokenService
from sessionward.jwt.web import (
    UNAUTHORIZED,
    RefreshCookie,
    Reply,
    TokenEndpoints,
    authenticate,
    authenticate_async,
)
from sessionward.stores import AsyncMemoryStore, MemoryStore
from sessionward.testing import EventRecorder, FakeClock
from sessionward.web._http import environ_headers
from sessionward.web.csrf import CsrfPolicy

ORIGIN = "https://app.example.test"
POLICY = Policy(idle_timeout=3600, absolute_timeout=86400, rotation_grace=30)
SAME_ORIGIN = {"sec-fetch-site": "same-origin"}


def _csrf() -> CsrfPolicy:
    return CsrfPolicy([ORIGIN], keys=[b"k" * 32])


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Site:
    port: int
    clock: FakeClock
    service: TokenService
    events: EventRecorder

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, list[str]], dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(
                method, path, body=b"" if method == "POST" else None, headers=headers or {}
            )
            response = conn.getresponse()
            raw = response.read()
            out: dict[str, list[str]] = {}
            for name, value in response.getheaders():
                out.setdefault(name.lower(), []).append(value)
            return response.status, out, json.loads(raw) if raw else {}
        finally:
            conn.close()


def _cookie_value(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0]


@pytest.fixture
def site() -> Iterator[Site]:
    clock = FakeClock(1_800_000_000)
    recorder = EventRecorder()
    manager = SessionManager(MemoryStore(), policy=POLICY, clock=clock, events=EventBus([recorder]))
    service = TokenService(
        manager, KeySet.generate("ES256", now=clock.now()), issuer=ISS, audience=AUD
    )
    service.verifier = cross_checked(service.verifier)
    endpoints = TokenEndpoints(csrf=_csrf())

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        headers = environ_headers(environ)
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        if path == "/auth/login" and method == "POST":
            reply = endpoints.login(service.login("alice", scopes=["read"]), now=clock.now())
        elif path == "/auth/refresh":
            reply = endpoints.refresh(service, method, headers)
        elif path == "/auth/logout":
            reply = endpoints.logout(service, method, headers)
        elif path == "/api/me":
            try:
                claims = authenticate(service, headers)
            except InvalidToken:
                reply = UNAUTHORIZED
            else:
                body = json.dumps({"sub": claims.sub, "sid": claims.sid}).encode()
                reply = Reply(200, [("content-type", "application/json")], body)
        else:
            reply = Reply(404)
        start_response(f"{reply.status} -", reply.headers)
        return [reply.body]

    server = make_server("127.0.0.1", 0, app, server_class=_Server, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Site(server.server_port, clock, service, recorder)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def _login(site: Site) -> tuple[str, str]:
    status, headers, body = site.request("POST", "/auth/login")
    assert status == 200
    return body["access_token"], _cookie_value(headers["set-cookie"][0])


def test_login_sets_a_scoped_httponly_cookie_and_returns_only_the_access_token(site: Site) -> None:
    status, headers, body = site.request("POST", "/auth/login")
    assert status == 200
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["expires_in"] == 300
    (cookie,) = headers["set-cookie"]
    name_value, *attributes = [p.strip() for p in cookie.split(";")]
    assert name_value.startswith("__Secure-rt=sw1_")
    assert attributes == ["Path=/auth", "Secure", "HttpOnly", "SameSite=Strict", "Max-Age=3600"]
    assert "sw1_" not in json.dumps(body)  # the refresh token never travels in a body
    assert headers["cache-control"] == ["no-store"]


def test_access_token_only_as_bearer(site: Site) -> None:
    access, _cookie = _login(site)
    status, _, body = site.request("GET", "/api/me", {"Authorization": f"Bearer {access}"})
    assert (status, body["sub"]) == (200, "alice")
    for headers, path in (
        ({}, "/api/me"),
        ({"Cookie": f"access_token={access}"}, "/api/me"),
        ({}, f"/api/me?access_token={access}"),
        ({"Authorization": f"Basic {access}"}, "/api/me"),
    ):
        status, response_headers, _ = site.request("GET", path, headers)
        assert status == 401
        assert response_headers["www-authenticate"] == ['Bearer error="invalid_token"']


def test_refresh_rotates_the_cookie_and_checks_provenance(site: Site) -> None:
    _, cookie = _login(site)
    assert site.request("GET", "/auth/refresh", {"Cookie": cookie, **SAME_ORIGIN})[0] == 405
    for refused in (
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example.test"},
        {},  # no provenance at all: fail closed
    ):
        assert site.request("POST", "/auth/refresh", {"Cookie": cookie, **refused})[0] == 403
    status, headers, body = site.request(
        "POST", "/auth/refresh", {"Cookie": cookie, "Origin": ORIGIN}
    )
    assert status == 200
    new_cookie = _cookie_value(headers["set-cookie"][0])
    assert new_cookie != cookie
    assert (
        site.request("GET", "/api/me", {"Authorization": f"Bearer {body['access_token']}"})[0]
        == 200
    )
    assert site.request("POST", "/auth/refresh", {**SAME_ORIGIN})[0] == 401  # no cookie


def test_ten_tabs_refreshing_over_http_get_one_pair_and_a_replay_later_is_theft(
    site: Site,
) -> None:
    _, cookie = _login(site)

    def tab(_: int) -> tuple[int, str, str]:
        status, headers, body = site.request(
            "POST", "/auth/refresh", {"Cookie": cookie, **SAME_ORIGIN}
        )
        return status, body.get("access_token", ""), _cookie_value(headers["set-cookie"][0])

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(tab, range(10)))
    assert {r[0] for r in results} == {200}
    assert len(set(results)) == 1  # the same access token and the same new cookie for all
    _, access, new_cookie = results[0]
    site.clock.advance(31)
    status, headers, body = site.request("POST", "/auth/refresh", {"Cookie": cookie, **SAME_ORIGIN})
    assert (status, body) == (401, {"error": "invalid_grant"})
    assert "Max-Age=0" in headers["set-cookie"][0]
    assert "theft-suspected" in site.events.kinds()
    assert site.request("GET", "/api/me", {"Authorization": f"Bearer {access}"})[0] == 401
    assert site.request("POST", "/auth/refresh", {"Cookie": new_cookie, **SAME_ORIGIN})[0] == 401


def test_logout_clears_the_cookie_and_kills_the_family(site: Site) -> None:
    access, cookie = _login(site)
    status, headers, _ = site.request("POST", "/auth/logout", {"Cookie": cookie, **SAME_ORIGIN})
    assert status == 200
    assert "Max-Age=0" in headers["set-cookie"][0]
    assert headers["clear-site-data"] == ['"cookies", "storage"']
    assert site.request("POST", "/auth/refresh", {"Cookie": cookie, **SAME_ORIGIN})[0] == 401
    assert site.request("GET", "/api/me", {"Authorization": f"Bearer {access}"})[0] == 401
    # Logging out twice, or without a cookie, still answers 200 and clears the cookie.
    assert site.request("POST", "/auth/logout", {"Cookie": cookie, **SAME_ORIGIN})[0] == 200
    assert site.request("POST", "/auth/logout", {"Sec-Fetch-Site": "cross-site"})[0] == 403


def test_async_endpoints() -> None:
    async def scenario() -> None:
        clock = FakeClock(1_800_000_000)
        manager = AsyncSessionManager(AsyncMemoryStore(), policy=POLICY, clock=clock)
        service = AsyncTokenService(
            manager, KeySet.generate("EdDSA", now=clock.now()), issuer=ISS, audience=AUD
        )
        endpoints = TokenEndpoints(csrf=_csrf(), cookie=RefreshCookie(path="/api/auth"))
        login = endpoints.login(await service.login("bob"), now=clock.now())
        cookie = _cookie_value(login.header("set-cookie") or "")
        headers = {"cookie": cookie, "sec-fetch-site": "same-origin"}
        refreshed = await endpoints.refresh_async(service, "POST", headers)
        assert refreshed.status == 200
        access = json.loads(refreshed.body)["access_token"]
        claims = await authenticate_async(service, {"authorization": f"Bearer {access}"})
        assert claims.sub == "bob"
        assert (
            await endpoints.refresh_async(service, "POST", {"sec-fetch-site": "cross-site"})
        ).status == 403
        out = await endpoints.logout_async(service, "POST", headers)
        assert out.status == 200
        with pytest.raises(InvalidToken):
            await authenticate_async(service, {"authorization": f"Bearer {access}"})
        with pytest.raises(InvalidToken):
            await authenticate_async(service, {})

    asyncio.run(scenario())


def test_cookie_policy_is_validated() -> None:
    for bad in ({"path": "/"}, {"path": "auth"}, {"name": "r t"}, {"same_site": "None"}):
        with pytest.raises(ConfigError):
            RefreshCookie(**bad)  # type: ignore[arg-type]
    dev = RefreshCookie(insecure_http_localhost=True)
    assert dev.cookie_name == "rt"
    assert "Secure" not in dev.header("sw1_x", max_age=5)
