"""DPoP for the opaque Bearer carrier over real HTTP: Starlette on uvicorn and Flask on
wsgiref in bearer transport with ``dpop=DpopPolicy(...)``. A login carrying a proof binds the
session to that key; from then on every request needs ``Authorization: DPoP`` and a fresh
proof of that key for that method, URL and token, with the server's current nonce."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from _shared import (
    SERVERS,
    DpopClient,
    add_login_and_me,
    flavour_manager,
    joserfc_proof,
    login_and_me_routes,
)
from flask import Flask, jsonify
from joserfc import jwk as jose_jwk
from proofs import Device
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import AsyncSessionManager, EventBus, Policy, SessionManager, SQLiteStore
from sessionward.core.binding import binding_of
from sessionward.core.dpop import DpopPolicy
from sessionward.core.events import TheftSuspected, TokenRejected
from sessionward.core.record import Session
from sessionward.testing import EventRecorder, FakeClock
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.flask import Sessionward, handle
from sessionward.web.starlette import get_handle

POLICY = Policy(idle_timeout=3600, absolute_timeout=8 * 3600, rotate_after=1000)
DPOP = DpopPolicy(nonce_key=secrets.token_bytes(32), nonce_lifetime=60)


def asgi_app(manager: AsyncSessionManager) -> Callable[[str], Any]:
    async def act(request: Request) -> Response:
        h = get_handle(request)
        if h.session is None:
            return JSONResponse({"acted": False}, status_code=401)
        await h.update_data(lambda data: data.update(cart=3))
        await h.elevate(auth_level=2)
        await h.rotate()
        return JSONResponse({"acted": True})

    def make(base: str) -> Starlette:
        routes = [*login_and_me_routes(["GET", "POST"]), Route("/act", act, methods=["POST"])]
        options: dict[str, Any] = {"manager": manager, "transport": "bearer", "dpop": DPOP}
        return Starlette(routes=routes, middleware=[Middleware(SessionMiddleware, **options)])

    return make


def flask_app(manager: SessionManager) -> Callable[[str], Any]:
    def make(base: str) -> Flask:
        app = Flask(__name__)
        Sessionward(app, manager, transport="bearer", dpop=DPOP)
        add_login_and_me(app, ["GET", "POST"])

        @app.post("/act")
        def act() -> Any:
            h = handle()
            if h.session is None:
                return jsonify(acted=False), 401
            h.update_data(lambda data: data.update(cart=3))
            h.elevate(auth_level=2)
            h.rotate()
            return jsonify(acted=True)

        return app

    return make


class Api(DpopClient):
    def __init__(self, base: str, clock: FakeClock, recorder: EventRecorder, record: Any) -> None:
        super().__init__(base, clock)
        self.recorder, self.record = recorder, record

    def login(self, device: Device | None) -> str:
        response = self.call("POST", "/login", device)
        if response.status_code == 401 and device is not None:  # first contact: get a nonce
            assert 'error="use_dpop_nonce"' in response.headers["www-authenticate"]
            response = self.call("POST", "/login", device)
        assert response.status_code == 200
        return response.headers["session-token"]


@pytest.fixture(params=["asgi", "wsgi"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    clock = FakeClock(time.time())
    recorder = EventRecorder()
    path = str(tmp_path / "s.db")
    mirror = SessionManager(SQLiteStore(path), policy=POLICY, clock=clock)
    kind = request.param
    manager = flavour_manager(kind, path, clock, policy=POLICY, events=EventBus([recorder]))
    make = asgi_app(manager) if kind == "asgi" else flask_app(manager)
    with SERVERS[kind](make) as base:
        api = Api(base, clock, recorder, lambda token: _record(mirror, token))
        yield api
        api.http.close()
    mirror.close()


def _record(mirror: SessionManager, token: str) -> Session:
    record = mirror.store.get(token[4:20])
    assert record is not None
    return Session(record)


def _error(response: httpx.Response) -> str:
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("DPoP ")
    assert 'algs="ES256 RS256"' in challenge
    return challenge.split('error="')[1].split('"')[0]


def test_login_with_a_proof_binds_the_token(api: Api) -> None:
    device = Device()
    token = api.login(device)
    assert tuple(binding_of(api.record(token).data))[:3] == ("bound", "dpop", device.thumbprint)
    assert api.call("GET", "/me", device, token).json() == {"user": "alice", "proven": True}
    assert api.call("POST", "/me", device, token).status_code == 200


def _signals(api: Api, session_id: str) -> list[str]:
    """What the session's refused proofs said in events, oldest first."""
    out = []
    for event in api.recorder.events:
        if event.session_id != session_id:
            continue
        if isinstance(event, TheftSuspected):
            out.append(f"theft:{event.detail}")
        elif isinstance(event, TokenRejected):
            out.append(f"rejected:{event.reason}")
    return out


def test_a_bound_token_is_refused_without_the_key(api: Api) -> None:
    device, thief = Device(), Device()
    token = api.login(device)
    assert _error(api.call("GET", "/me", None, token)) == "invalid_dpop_proof"
    assert _error(api.call("GET", "/me", device, token, scheme="Bearer")) == "invalid_token"
    assert _error(api.call("GET", "/me", thief, token)) == "invalid_dpop_proof"
    assert _error(api.call("GET", "/me", device, token, url=api.base + "/other")) == (
        "invalid_dpop_proof"
    )
    assert _error(api.call("GET", "/me", device, token, htm="POST")) == "invalid_dpop_proof"
    proof = device.dpop("GET", api.base + "/me", iat=api.clock.now(), token=token, nonce=api.nonce)
    assert api.call("GET", "/me", None, token, proof=proof).status_code == 200
    assert _error(api.call("GET", "/me", None, token, proof=proof)) == "invalid_dpop_proof"
    # a missing proof or another key's is the theft signal; the rest are rejections
    assert _signals(api, token[4:20]) == [
        "theft:binding-proof-dpop-missing",
        "theft:binding-proof-jkt",
        "rejected:binding-htu",
        "rejected:binding-htm",
        "rejected:binding-replayed",
    ]


def test_a_refused_request_leaves_the_session_as_it_was(api: Api) -> None:
    device, thief = Device(), Device()
    token = api.login(device)
    api.clock.advance(1001)  # a renewal and a touch are due
    before = api.record(token).record
    assert _error(api.call("GET", "/me", device, token)) == "use_dpop_nonce"  # a stale nonce
    assert _error(api.call("GET", "/me", None, token)) == "invalid_dpop_proof"
    assert _error(api.call("GET", "/me", thief, token)) == "invalid_dpop_proof"
    assert _error(api.call("GET", "/me", device, token, scheme="Bearer")) == "invalid_token"
    assert _error(api.call("GET", "/me", None, token, scheme="Bearer")) == "invalid_token"
    # no renewal, no last-seen, no context learned: the record is exactly as it was
    assert api.record(token).record == before
    owner = api.call("GET", "/me", device, token)
    assert owner.json() == {"user": "alice", "proven": True}
    renewed = owner.headers["session-token"]  # the owner's proven request renews the token
    assert renewed != token
    after = api.record(renewed).record
    assert (after.generation, after.last_seen) == (before.generation + 1, api.clock.now())
    assert api.call("GET", "/me", device, renewed).status_code == 200


def test_the_handle_changes_a_bound_session_only_in_a_proven_request(api: Api) -> None:
    """Data changes, elevation and rotation through the handle: the application never runs
    for a bound token without its key's proof, so a copied token changes nothing."""
    device, thief = Device(), Device()
    token = api.login(device)
    before = api.record(token).record
    assert _error(api.call("POST", "/act", None, token)) == "invalid_dpop_proof"
    assert _error(api.call("POST", "/act", thief, token)) == "invalid_dpop_proof"
    assert _error(api.call("POST", "/act", device, token, scheme="Bearer")) == "invalid_token"
    assert api.record(token).record == before
    acted = api.call("POST", "/act", device, token)
    assert acted.json() == {"acted": True}
    after = api.record(acted.headers["session-token"])
    assert (after.auth_level, after.data["cart"]) == (2, 3)
    assert after.generation > before.generation


def test_a_stale_nonce_is_refused_with_a_fresh_one(api: Api) -> None:
    device = Device()
    token = api.login(device)
    old = api.nonce
    api.clock.advance(121)  # two nonce windows later
    stale = api.call("GET", "/me", device, token)
    assert _error(stale) == "use_dpop_nonce"
    assert stale.headers["dpop-nonce"] != old
    assert api.call("GET", "/me", device, token).status_code == 200  # retried with the new one


def test_an_unbound_token_stays_a_bearer_token(api: Api) -> None:
    token = api.login(None)
    assert binding_of(api.record(token).data).state == "unbound"
    assert api.call("GET", "/me", None, token, scheme="Bearer").json()["proven"] is False


def test_proofs_made_by_joserfc_are_accepted(api: Api) -> None:
    key = jose_jwk.ECKey.generate_key("P-256")
    proof = partial(joserfc_proof, key, api)
    first = api.call("POST", "/login", None, proof=proof("POST", "/login", None))
    assert _error(first) == "use_dpop_nonce"
    login = api.call("POST", "/login", None, proof=proof("POST", "/login", None))
    token = login.headers["session-token"]
    assert binding_of(api.record(token).data).jkt == key.thumbprint()
    me = api.call("GET", "/me", None, token, proof=proof("GET", "/me", token))
    assert me.json() == {"user": "alice", "proven": True}


def test_a_missing_forged_or_foreign_nonce_is_asked_again(api: Api) -> None:
    """Each answer carries the current nonce; a proof without it, with a made-up one, or with
    one under another key is refused with ``use_dpop_nonce`` and the current nonce, and the
    session is left as it was."""
    device = Device()
    token = api.login(device)
    ok = api.call("GET", "/me", device, token)
    assert ok.status_code == 200
    current = DPOP.nonce(api.clock.now())
    assert ok.headers["dpop-nonce"] == current
    token = ok.headers.get("session-token", token)
    before = api.record(token).record
    foreign = DpopPolicy(nonce_key=secrets.token_bytes(32), nonce_lifetime=60)
    for nonce in (None, "A" * 32, foreign.nonce(api.clock.now())):
        proof = device.dpop("GET", api.base + "/me", iat=api.clock.now(), token=token, nonce=nonce)
        asked = api.call("GET", "/me", None, token, proof=proof)
        assert _error(asked) == "use_dpop_nonce"
        assert asked.headers["dpop-nonce"] == current
    assert api.record(token).record == before
    assert api.call("GET", "/me", device, token).json() == {"user": "alice", "proven": True}
