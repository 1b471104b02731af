"""DBSC under ``SESSION_ENGINE = "sessionward.django"`` over real HTTP (wsgiref serving Django),
with ``SESSIONWARD_DEVICE_BINDING`` set: ``auth.login`` offers a binding, the endpoints answer
through ``SessionwardMiddleware``, and a bound session without a live bound cookie is
anonymous to the views (and keeps its cookie)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from proofs import Device
from test_web_dbsc import _offer, _refresh
from web._servers import Browserish, wsgi_server
from web.test_django import COOKIE, POLICY

from sessionward import Policy, SessionManager, SQLiteStore
from sessionward.core import dbsc
from sessionward.core.binding import BindingPolicy, binding_of
from sessionward.testing import FakeClock
from sessionward.web.binding import DeviceBinding

LIFETIME = 90
BOUND = COOKIE + "-bound"


CLOCK = FakeClock()


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[SessionManager]:
    with SessionManager(SQLiteStore(str(tmp_path / "s.db")), policy=POLICY, clock=CLOCK) as m:
        yield m


@pytest.fixture
def served(manager: SessionManager) -> Iterator[str]:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    overrides: list[override_settings] = []

    def make_app(base: str) -> WSGIHandler:
        override = override_settings(
            SESSIONWARD_ALLOWED_ORIGINS=[base],
            CSRF_TRUSTED_ORIGINS=[base],
            SESSIONWARD_DEVICE_BINDING=DeviceBinding(BindingPolicy(cookie_lifetime=LIFETIME)),
            SESSIONWARD_MANAGER=manager,
        )
        override.enable()
        overrides.append(override)
        return WSGIHandler()

    try:
        with wsgi_server(make_app) as base:
            yield base
    finally:
        for override in overrides:
            override.disable()


def _login(browser: Browserish) -> httpx.Response:
    token = browser.get("/csrf").json()["csrf"]
    return browser.post("/login", data={"user": "alice", "csrfmiddlewaretoken": token})


def _register(browser: Browserish, device: Device) -> httpx.Response:
    """Log in, then register ``device``'s key as the login's offer asks."""
    path, challenge, authorization = _offer(_login(browser).headers[dbsc.REGISTRATION])
    jwt = device.registration(challenge, authorization)
    return browser.post(path, headers={"secure-session-response": jwt})


def test_django_login_register_refresh_and_logout(served: str, manager: SessionManager) -> None:
    device, browser = Device(), Browserish(served, cookie_name=COOKIE)
    try:
        registered = _register(browser, device)
        assert registered.status_code == 200
        sid = registered.json()["session_identifier"]
        assert BOUND in browser.others
        assert browser.token is not None
        session = manager.get(browser.token[4:20])
        assert session is not None
        assert binding_of(session.data).jkt == device.thumbprint
        assert browser.get("/me").json()["user"] == "alice"
        # the bound key is the engine's own: views never see it in request.session
        assert "sessionward.binding" not in browser.get("/me").text
        kept = browser.token
        bound = browser.others.pop(BOUND)
        assert browser.get("/me").status_code == 401
        assert browser.token == kept  # the session cookie survives a missing bound cookie
        browser.others[BOUND] = bound
        CLOCK.advance(LIFETIME)
        assert browser.get("/me").status_code == 401  # the bound cookie's lifetime is over
        asked = _refresh(browser, sid)
        assert asked.status_code == 403
        proof = device.refresh(dbsc.item_text(asked.headers[dbsc.CHALLENGE]) or "")
        answered = _refresh(browser, sid, proof)
        assert answered.status_code == 200
        assert browser.others[BOUND] != bound
        assert browser.get("/me").json()["user"] == "alice"
        out = browser.get("/logout")
        expired = [v for v in out.headers.get_list("set-cookie") if v.startswith(BOUND + "=;")]
        assert expired
        assert "Max-Age=0" in expired[0]
        ended = _refresh(browser, sid)
        assert ended.json() == {"continue": False}
    finally:
        browser.close()


def test_django_an_unproven_request_writes_nothing(served: str, manager: SessionManager) -> None:
    device, browser = Device(), Browserish(served, cookie_name=COOKIE)
    thief = Browserish(served, cookie_name=COOKIE)
    try:
        registered = _register(browser, device)
        sid = registered.json()["session_identifier"]
        assert browser.token is not None
        session_id = browser.token[4:20]
        CLOCK.advance(LIFETIME + 1)  # the bound cookie is dead, a touch is due
        before = manager.store.get(session_id)
        thief.token = browser.token  # the session cookie, copied
        assert thief.get("/me").status_code == 401
        assert browser.get("/me").status_code == 401  # the owner's expired bound cookie
        assert manager.store.get(session_id) == before  # no touch, no context learned
        asked = _refresh(browser, sid)
        proof = device.refresh(dbsc.item_text(asked.headers[dbsc.CHALLENGE]) or "")
        answered = _refresh(browser, sid, proof)
        assert answered.status_code == 200
        assert browser.get("/me").json()["user"] == "alice"
        after = manager.store.get(session_id)
        assert after is not None
        assert after.last_seen == CLOCK.now()
    finally:
        browser.close()
        thief.close()


def test_django_risk_check_learns_nothing_without_the_bound_cookie(tmp_path: Path) -> None:
    pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
    from django.test import RequestFactory, override_settings

    from sessionward.core import binding as states
    from sessionward.core.jwk import client_key
    from sessionward.django import risk
    from sessionward.manager.risk import RiskAssessor

    clock = FakeClock()
    policy = Policy(idle_timeout=3600, absolute_timeout=86400, rotate_after=600)
    store = SQLiteStore(str(tmp_path / "r.db"))
    with SessionManager(store, policy=policy, clock=clock, risk=RiskAssessor()) as manager:
        now = clock.now()
        bound = states.bound_state(client_key(Device().jwk, "ES256"), "dbsc", now)
        bound, cookie = states.new_cookie(bound, now, BindingPolicy(cookie_lifetime=LIFETIME))
        session = manager.issue("alice", data={states.BINDING_KEY: states.encode(bound)})
        assert session.token is not None
        clock.advance(601)  # the bound cookie dead, a renewal due
        before = manager.store.get(session.id)
        binding = DeviceBinding(BindingPolicy(cookie_lifetime=LIFETIME))
        with override_settings(SESSIONWARD_DEVICE_BINDING=binding, SESSIONWARD_MANAGER=manager):
            for bound_cookie in (None, cookie):
                request = RequestFactory().get(
                    "/me", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="Thief/2.0"
                )
                request.COOKIES[COOKIE] = session.token
                if bound_cookie is not None:
                    request.COOKIES[BOUND] = bound_cookie
                cookies = "; ".join(f"{k}={v}" for k, v in request.COOKIES.items())
                headers = {"cookie": cookies, "user-agent": "Thief/2.0"}
                checked = risk.check(manager, request, headers)
                assert checked.session is not None
                assert checked.session.token is None  # read, not renewed
        assert manager.store.get(session.id) == before  # no renewal, no context learned
