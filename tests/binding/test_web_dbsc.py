"""DBSC over real HTTP, without a browser: Starlette on uvicorn (ASGI) and Flask on wsgiref
(WSGI), each with ``binding=DeviceBinding(...)``, a real SQLite file and a fake clock. The
"device" signs with a key of its own; the thief has the cookies but not that key."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _shared import SERVERS, add_login_and_me, flavour_manager, login_and_me_routes
from flask import Flask, jsonify
from proofs import Device
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from web._servers import Browserish

from sessionward import AsyncSessionManager, EventBus, Policy, SessionManager, SQLiteStore
from sessionward.core import dbsc
from sessionward.core.binding import BindingPolicy, binding_of
from sessionward.core.record import Session
from sessionward.testing import EventRecorder, FakeClock
from sessionward.web import CookiePolicy, CsrfPolicy
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.binding import DeviceBinding
from sessionward.web.flask import Sessionward, handle
from sessionward.web.starlette import get_handle

POLICY = Policy(idle_timeout=3600, absolute_timeout=8 * 3600, rotate_after=1000)
LIFETIME = 120
BOUND = "__Host-id-bound"


def asgi_app(manager: AsyncSessionManager, binding: DeviceBinding) -> Callable[[str], Any]:
    async def logout(request: Request) -> Response:
        await get_handle(request).logout()
        return JSONResponse({"ok": True})

    def make(base: str) -> Starlette:
        csrf = CsrfPolicy([base], keys=[secrets.token_bytes(32)], require_token=False)
        routes = [*login_and_me_routes(["GET"]), Route("/logout", logout, methods=["POST"])]
        options: dict[str, Any] = {"manager": manager, "csrf": csrf, "binding": binding}
        return Starlette(routes=routes, middleware=[Middleware(SessionMiddleware, **options)])

    return make


def flask_app(manager: SessionManager, binding: DeviceBinding) -> Callable[[str], Any]:
    def make(base: str) -> Flask:
        app = Flask(__name__)
        csrf = CsrfPolicy([base], keys=[secrets.token_bytes(32)], require_token=False)
        Sessionward(app, manager, csrf=csrf, binding=binding, cookie=CookiePolicy())
        add_login_and_me(app, ["GET"])

        @app.post("/logout")
        def logout() -> Any:
            handle().logout()
            return jsonify(ok=True)

        return app

    return make


class Site:
    def __init__(self, base: str, clock: FakeClock, recorder: EventRecorder, records: Any) -> None:
        self.base, self.clock, self.recorder, self.records = base, clock, recorder, records
        self.clients: list[Browserish] = []

    def client(self) -> Browserish:
        client = Browserish(self.base)
        self.clients.append(client)
        return client

    def login(self, client: Browserish) -> str:
        """Log in; returns the registration offer header."""
        response = client.post("/login")
        assert response.status_code == 200
        return response.headers[dbsc.REGISTRATION]

    def binding(self, client: Browserish) -> Any:
        assert client.token is not None
        return binding_of(Session(self.records(client.token[4:20])).data)


def _offer(header: str) -> tuple[str, str, str]:
    params = dict(p.split("=", 1) for p in header.split(";")[1:])
    return tuple(dbsc.item_text(params[k]) or "" for k in ("path", "challenge", "authorization"))  # type: ignore[return-value]


@pytest.fixture(params=["asgi", "wsgi"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    clock = FakeClock()
    recorder = EventRecorder()
    binding = DeviceBinding(BindingPolicy(cookie_lifetime=LIFETIME), excludes=("/static",))
    kind = request.param
    path = str(tmp_path / ("a.db" if kind == "asgi" else "w.db"))
    manager = flavour_manager(kind, path, clock, policy=POLICY, events=EventBus([recorder]))
    if kind == "asgi":
        make = asgi_app(manager, binding)
        mirror = SessionManager(SQLiteStore(path), policy=POLICY, clock=clock)
    else:
        make, mirror = flask_app(manager, binding), manager
    with SERVERS[kind](make) as base:
        site = Site(base, clock, recorder, lambda sid: mirror.store.get(sid))
        yield site
        for client in site.clients:
            client.close()
    mirror.close()


def _register(site: Site, client: Browserish, device: Device, **headers: str) -> httpx.Response:
    path, challenge, authorization = _offer(site.login(client))
    jwt = device.registration(challenge, authorization)
    return client.post(path, headers={"secure-session-response": jwt, **headers})


def _refresh(client: Browserish, sid: str, proof: str | None = None) -> httpx.Response:
    headers = {"sec-secure-session-id": sid}
    if proof is not None:
        headers["secure-session-response"] = proof
    return client.post("/sessionward/dbsc/refresh", headers=headers)


def _challenge(response: httpx.Response) -> str:
    value = response.headers[dbsc.CHALLENGE]
    assert value.endswith(f';id="{response.request.headers["sec-secure-session-id"]}"')
    text = dbsc.item_text(value)
    assert text is not None
    return text


def test_full_flow_and_the_stolen_cookie_after_its_lifetime(site: Site) -> None:
    device, alice = Device(), site.client()
    registered = _register(site, alice, device)
    assert registered.status_code == 200
    config = registered.json()
    sid = config["session_identifier"]
    assert config["refresh_url"] == "/sessionward/dbsc/refresh"
    assert config["credentials"] == [
        {"type": "cookie", "name": BOUND, "attributes": "Path=/; Secure; HttpOnly; SameSite=Lax"}
    ]
    assert config["scope"]["scope_specification"][0]["path"] == "/static"
    assert f"Max-Age={LIFETIME}" in registered.headers["set-cookie"]
    now = site.clock.now()
    assert site.binding(alice) == ("bound", "dbsc", device.thumbprint, now, now)
    assert alice.get("/me").json() == {"user": "alice", "proven": True}
    stolen = dict(alice.others)
    # the long-lived session cookie alone is not enough
    thief = site.client()
    thief.token = alice.token
    assert thief.get("/me").status_code == 401
    # the bound cookie dies with its lifetime, on the server's clock
    site.clock.advance(LIFETIME)
    thief.others = stolen
    assert thief.get("/me").status_code == 401
    assert "binding-cookie" in [getattr(e, "reason", "") for e in site.recorder.events]
    # the device refreshes: 403 + challenge, then a signed proof; each one write of the record
    assert alice.token is not None
    before = site.records(alice.token[4:20])
    asked = _refresh(alice, sid)
    assert asked.status_code == 403
    assert "set-cookie" not in asked.headers
    answered = _refresh(alice, sid, device.refresh(_challenge(asked)))
    assert answered.status_code == 200
    after = site.records(alice.token[4:20])
    assert (after.version, after.last_seen) == (before.version + 2, site.clock.now())
    assert answered.json()["session_identifier"] == sid
    assert alice.others[BOUND] != stolen[BOUND]
    assert alice.get("/me").json() == {"user": "alice", "proven": True}
    # the next challenge came with the refresh: no 403 round trip next time
    cached = _challenge(answered)
    assert _refresh(alice, f'"{sid}"', f'"{device.refresh(cached)}"').status_code == 200
    assert thief.get("/me").status_code == 401


def test_refresh_signed_by_another_key_replayed_or_for_another_session(site: Site) -> None:
    device, thief_key = Device(), Device()
    alice, bob = site.client(), site.client()
    sid = _register(site, alice, device).json()["session_identifier"]
    other_sid = _register(site, bob, Device()).json()["session_identifier"]
    challenge = _challenge(_refresh(alice, sid))
    # the thief holds alice's cookies, not her key
    thief = site.client()
    thief.token, thief.others = alice.token, {}
    forged = _refresh(thief, sid, thief_key.refresh(challenge))
    assert forged.status_code == 403
    assert "set-cookie" not in forged.headers
    assert "theft-suspected" in site.recorder.kinds()
    good = device.refresh(challenge)
    assert _refresh(alice, sid, good).status_code == 200
    replayed = _refresh(thief, sid, good)
    assert replayed.status_code == 403
    assert "set-cookie" not in replayed.headers
    # a proof over alice's challenge, sent for bob's session
    challenge = _challenge(_refresh(alice, sid))
    for_bob = _refresh(bob, other_sid, device.refresh(challenge))
    assert for_bob.status_code == 403
    assert "set-cookie" not in for_bob.headers
    # alice's cookie naming bob's DBSC session: the browser is told to drop it
    assert _refresh(alice, other_sid).json() == {"continue": False}


@pytest.mark.parametrize(
    "make",
    [
        lambda d, c, a: d.registration(c, a, typ="jwt"),
        lambda d, c, a: d.registration(c, a, alg="none"),
        lambda d, c, a: d.registration(c, a, alg="RS256"),
        lambda d, c, a: d.registration("guessed", a),
        lambda d, c, a: d.registration(c, "guessed"),
    ],
)
def test_bad_registrations_are_refused(site: Site, make: Callable[[Device, str, str], str]) -> None:
    client = site.client()
    path, challenge, authorization = _offer(site.login(client))
    response = client.post(
        path, headers={"secure-session-response": make(Device(), challenge, authorization)}
    )
    assert response.status_code == 400
    assert "set-cookie" not in response.headers
    assert site.binding(client).state == "offered"
    assert client.get("/me").json() == {"user": "alice", "proven": False}  # unbound, served


def test_skipped_refresh_does_not_fall_back_by_default(site: Site) -> None:
    alice = site.client()
    sid = _register(site, alice, Device()).json()["session_identifier"]
    alice.others.pop(BOUND)
    skipped = {dbsc.SKIPPED: f'quota_exceeded;session_identifier="{sid}"'}
    assert alice.get("/me", headers=skipped).status_code == 401
    assert "binding-skipped" in [getattr(e, "reason", "") for e in site.recorder.events]


def test_logout_ends_the_bound_session(site: Site) -> None:
    device, alice = Device(), site.client()
    sid = _register(site, alice, device).json()["session_identifier"]
    token = alice.token
    out = alice.post("/logout")
    cleared = [v for v in out.headers.get_list("set-cookie") if v.startswith(BOUND + "=;")]
    assert cleared
    assert "Max-Age=0" in cleared[0]
    alice.token = token  # a browser that kept the cookie anyway
    ended = _refresh(alice, sid, device.refresh("anything"))
    assert ended.status_code == 200
    assert ended.json() == {"continue": False}


def test_refresh_needs_post_same_origin_and_the_session_id(site: Site) -> None:
    alice = site.client()
    _register(site, alice, Device())
    assert alice.get("/sessionward/dbsc/refresh").status_code == 405
    assert alice.post("/sessionward/dbsc/refresh").status_code == 400
    cross = alice.post(
        "/sessionward/dbsc/refresh",
        headers={"sec-secure-session-id": "x", "sec-fetch-site": "cross-site"},
    )
    assert cross.status_code == 403
    assert site.client().post("/sessionward/dbsc/register").status_code == 401


def test_fallback_registration_through_the_same_endpoint(site: Site) -> None:
    device, alice = Device(), site.client()
    site.login(alice)
    ask = alice.post("/sessionward/dbsc/register", headers={"sessionward-binding": "webcrypto"})
    assert ask.status_code == 403
    offer = ask.headers["sessionward-registration"]
    assert dbsc.REGISTRATION not in ask.headers  # native DBSC never sees the fallback's offer
    path, challenge, authorization = _offer(offer)
    jwt = device.registration(challenge, authorization)
    done = alice.post(
        path, headers={"secure-session-response": jwt, "sessionward-binding": "webcrypto"}
    )
    assert done.status_code == 200
    assert done.headers["sessionward-bound-lifetime"] == str(LIFETIME)
    assert site.binding(alice).method == "webcrypto"
    again = alice.post("/sessionward/dbsc/register", headers={"sessionward-binding": "webcrypto"})
    assert again.json() == {"bound": True}
    # fetch() cannot send Sec- headers: the script names its session in a header of its own
    sid = done.json()["session_identifier"]
    refresh = "/sessionward/dbsc/refresh"
    asked = alice.post(refresh, headers={"sessionward-session-id": sid})
    assert asked.status_code == 403
    challenge = dbsc.item_text(asked.headers[dbsc.CHALLENGE]) or ""
    proof = {"sessionward-session-id": sid, "secure-session-response": device.refresh(challenge)}
    assert alice.post(refresh, headers=proof).status_code == 200
    script = alice.get("/sessionward/dbsc/fallback.js")
    assert script.status_code == 200
    assert b"crypto.subtle.generateKey" in script.content
    assert script.headers["content-type"].startswith("text/javascript")


def test_a_token_is_renewed_only_after_the_refresh_proved_the_key(site: Site) -> None:
    device, alice = Device(), site.client()
    sid = _register(site, alice, device).json()["session_identifier"]
    before = alice.token
    site.clock.advance(1001)  # the session's secret is due for renewal, the bound cookie dead
    asked = _refresh(alice, sid)
    assert asked.status_code == 403
    assert alice.token == before  # nothing renewed before the key is proven
    assert _refresh(alice, sid, device.refresh(_challenge(asked))).status_code == 200
    assert alice.token == before
    assert alice.get("/me").json() == {"user": "alice", "proven": True}
    assert alice.token != before  # renewed with the live bound cookie


def test_an_unproven_request_of_a_bound_session_writes_nothing(site: Site) -> None:
    device, alice = Device(), site.client()
    sid = _register(site, alice, device).json()["session_identifier"]
    assert alice.token is not None
    session_id = alice.token[4:20]
    site.clock.advance(1001)  # the session's secret is due for renewal, the bound cookie dead
    thief = site.client()
    thief.token = alice.token  # the long-lived cookie, copied
    before = site.records(session_id)
    assert thief.get("/me").status_code == 401
    assert site.records(session_id) == before  # no renewal, no touch, no context learned
    asked = _refresh(thief, sid)
    assert asked.status_code == 403
    forged = _refresh(thief, sid, Device().refresh(_challenge(asked)))
    assert forged.status_code == 403
    assert "set-cookie" not in forged.headers or BOUND not in forged.headers["set-cookie"]
    # the refresh protocol stores its new challenges, and nothing else
    after = site.records(session_id)
    assert after._replace(data=before.data, version=before.version) == before
    assert thief.token == alice.token
    # the owner refreshes with the key and carries on with the same token, renewed then
    asked = _refresh(alice, sid)
    assert _refresh(alice, sid, device.refresh(_challenge(asked))).status_code == 200
    assert alice.get("/me").json() == {"user": "alice", "proven": True}
    assert alice.token != thief.token
    assert site.records(session_id).generation == before.generation + 1


def _bound_cookie(response: httpx.Response) -> list[str]:
    """The attributes of the bound cookie ``response`` sets (lower-cased; the value and the
    ``Expires`` date that repeats ``Max-Age`` left out)."""
    values = [v for v in response.headers.get_list("set-cookie") if v.startswith(BOUND + "=")]
    assert len(values) == 1, values
    parts = (part.strip().lower() for part in values[0].split(";")[1:])
    return sorted(p for p in parts if not p.startswith("expires="))


def test_the_bound_cookie_is_a_host_cookie_and_no_answer_is_cached(site: Site) -> None:
    """SECURITY.md 3.3.1-3.3.4 and the cheat sheet's ``no-store`` on answers that carry a
    credential: the bound cookie is ``__Host-``, ``Secure``, ``HttpOnly``, ``SameSite``, no
    ``Domain``; every binding answer (registration, challenge, refresh) says ``no-store``."""
    device, alice = Device(), site.client()
    registered = _register(site, alice, device)
    sid = registered.json()["session_identifier"]
    asked = _refresh(alice, sid)
    answered = _refresh(alice, sid, device.refresh(_challenge(asked)))
    for response in (registered, asked, answered):
        assert response.headers["cache-control"] == "no-store", response.request.url
    expected = ["httponly", f"max-age={LIFETIME}", "path=/", "samesite=lax", "secure"]
    assert _bound_cookie(registered) == expected
    assert _bound_cookie(answered) == expected


def test_another_sessions_bound_cookie_proves_nothing(site: Site) -> None:
    """The cheat sheet's "validate all session cookies and the binding between them": a live
    bound cookie of one session, sent with another session's token, is no proof."""
    alice, bob = site.client(), site.client()
    _register(site, alice, Device())
    _register(site, bob, Device())
    assert bob.get("/me").json() == {"user": "alice", "proven": True}  # bob's own pair works
    mixed = site.client()
    mixed.token, mixed.others = alice.token, {BOUND: bob.others[BOUND]}
    assert mixed.get("/me").status_code == 401
    assert alice.get("/me").json() == {"user": "alice", "proven": True}
