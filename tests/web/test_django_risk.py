"""Hijack scoring in the Django engine: Django's test client, then a real server (wsgiref
serving Django's WSGI handler) on a loopback port. A step-up becomes Django's sign-in flow
(a redirect to ``LOGIN_URL`` with ``next`` and ``reason=risk``, or a 401 with the reason
codes), the sign-in page runs and sees the challenge, and a revoke is a logout."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from agents import FIREFOX, SAFARI
from django.test import Client, override_settings

from sessionward import Policy, SessionManager, SQLiteStore
from sessionward.core import token as tokens
from sessionward.manager.risk import RiskAssessor
from sessionward.testing import FakeClock

from . import test_django  # noqa: F401 - configures Django's settings once per process
from ._servers import Browserish, wsgi_server

COOKIE = "__Host-id"
ORIGIN = "http://testserver"
HOURS = 3600.0
OWNER = {"REMOTE_ADDR": "81.2.69.160", "HTTP_USER_AGENT": SAFARI, "HTTP_ACCEPT_LANGUAGE": "en-GB"}
ABROAD = {**OWNER, "REMOTE_ADDR": "73.1.2.3"}  # the owner's browser, in the US
THIEF = {**ABROAD, "HTTP_USER_AGENT": SAFARI.replace("Version/17.4", "Version/18.1")}
FOREIGN = {"REMOTE_ADDR": "95.173.136.70", "HTTP_USER_AGENT": FIREFOX, "HTTP_ACCEPT_LANGUAGE": "ru"}


class Site:
    def __init__(self) -> None:
        self.clock = FakeClock()
        path = Path(tempfile.mkdtemp(prefix="sessionward-django-risk-")) / "s.sqlite3"
        self.manager = SessionManager(
            SQLiteStore(str(path)),
            policy=Policy(idle_timeout=24 * HOURS, absolute_timeout=7 * 24 * HOURS),
            clock=self.clock,
            risk=RiskAssessor(),
        )

    def settings(self, **extra: Any) -> override_settings:
        return override_settings(
            ROOT_URLCONF=f"{__package__}.django_risk_site",
            SESSIONWARD_MANAGER=self.manager,
            LOGIN_URL="/accounts/login/",
            **extra,
        )

    def client(self, environ: dict[str, str], cookie: str | None = None) -> Client:
        client = Client(headers={"origin": ORIGIN}, **environ)
        if cookie is not None:
            client.cookies[COOKIE] = cookie
        return client

    def sign_in(self, environ: dict[str, str] = OWNER) -> str:
        client = self.client(environ)
        csrf = client.get("/accounts/login/").json()["csrf"]
        response = client.post("/accounts/login/", {"user": "alice", "csrfmiddlewaretoken": csrf})
        assert response.status_code == 200
        self.clock.advance(5 * HOURS)  # later: no impossible-travel signal
        cookie: str = response.cookies[COOKIE].value
        return cookie


@pytest.fixture
def site() -> Iterator[Site]:
    site = Site()
    with site.settings():
        yield site
    site.manager.close()


def test_a_replayed_cookie_is_sent_to_sign_in_while_the_owner_goes_on(site: Site) -> None:
    cookie = site.sign_in()
    assert site.client(OWNER, cookie).get("/me").json() == {"user": "alice"}

    thief = site.client(THIEF, cookie)
    api = thief.get("/me", HTTP_ACCEPT="application/json")
    assert api.status_code == 401
    assert api.json()["error"] == "step_up_required"
    assert "network.new_country" in api.json()["reasons"]
    assert COOKIE not in api.cookies  # the session survives: its cookie untouched

    page = thief.get("/me?tab=2", HTTP_ACCEPT="text/html")
    assert page.status_code == 302
    assert page["Location"] == "/accounts/login/?next=%2Fme%3Ftab%3D2&reason=risk"

    login = thief.get("/accounts/login/?next=/me")
    assert login.status_code == 200
    shown = login.json()
    assert shown["challenged"] is True
    assert shown["user"] is not None
    assert "network.new_country" in shown["codes"]

    assert site.client(OWNER, cookie).get("/me").json() == {"user": "alice"}


def test_a_revoke_is_a_logout(site: Site) -> None:
    cookie = site.sign_in()
    response = site.client(FOREIGN, cookie).get("/me")
    assert response.status_code == 401
    assert response.json() == {"error": "login required"}
    assert response.cookies[COOKIE].value == ""  # deleted
    assert response["Clear-Site-Data"]
    assert site.manager.get(tokens.parse(cookie).session_id) is None


def test_the_owners_new_sign_in_ends_the_challenged_session_and_is_learned(site: Site) -> None:
    cookie = site.sign_in()
    old_id = tokens.parse(cookie).session_id
    abroad = site.client(ABROAD, cookie)
    assert abroad.get("/me", HTTP_ACCEPT="application/json").status_code == 401
    csrf = abroad.get("/accounts/login/").json()["csrf"]  # an anonymous session for the form
    assert site.manager.get(old_id) is not None  # not ended by the sign-in page
    signed = abroad.post("/accounts/login/", {"user": "alice", "csrfmiddlewaretoken": csrf})
    assert signed.json() == {"signed_in": "alice"}
    assert site.manager.get(old_id) is None
    site.clock.advance(60)
    assert abroad.get("/me").json() == {"user": "alice"}
    # The user's history came along: home is theirs in the new session too.
    site.clock.advance(5 * HOURS)
    home = site.client(OWNER)
    home.cookies[COOKIE] = abroad.cookies[COOKIE].value
    assert home.get("/me", HTTP_ACCEPT="application/json").json() == {"user": "alice"}


def test_another_users_sign_in_leaves_the_challenged_session_alone(site: Site) -> None:
    cookie = site.sign_in()
    old_id = tokens.parse(cookie).session_id
    thief = site.client(THIEF, cookie)
    csrf = thief.get("/accounts/login/").json()["csrf"]
    thief.post("/accounts/login/", {"user": "mallory", "csrfmiddlewaretoken": csrf})
    assert site.manager.get(old_id) is not None
    assert site.client(OWNER, cookie).get("/me").json() == {"user": "alice"}


def test_a_real_server_challenges_a_replay_from_another_address(site: Site) -> None:
    from django.core.handlers.wsgi import WSGIHandler

    cookie = site.sign_in()
    owner = {"x-forwarded-for": "81.2.69.160", "user-agent": SAFARI, "accept-language": "en-GB"}
    thief = {**owner, "x-forwarded-for": "73.1.2.3", "accept": "application/json"}

    def make_app(base: str) -> WSGIHandler:
        return WSGIHandler()

    trusted = site.settings(SESSIONWARD_TRUSTED_PROXIES=["127.0.0.1"], ALLOWED_HOSTS=["*"])
    with trusted, wsgi_server(make_app) as base:
        client = Browserish(base, cookie_name=COOKIE)
        stolen = client.request("GET", "/me", token=cookie, headers=thief)
        assert stolen.status_code == 401
        assert "network.new_country" in stolen.json()["reasons"]
        mine = client.request("GET", "/me", token=cookie, headers=owner)
        assert mine.status_code == 200
        assert mine.json() == {"user": "alice"}
        client.client.close()


def test_the_device_signal_is_served_read_and_a_change_alone_is_not_a_revoke(
    site: Site,
) -> None:
    import json

    from sessionward.django.risk import device_signal
    from sessionward.web.device import DEVICE_COOKIE

    assert device_signal() is None  # off by default
    assert site.client(OWNER).get("/sessionward/device.js").status_code == 404
    with override_settings(SESSIONWARD_DEVICE_SIGNAL=True):
        script = site.client(OWNER).get("/sessionward/device.js")
        assert script.status_code == 200
        assert script["Content-Type"].startswith("text/javascript")
        assert b"crypto.subtle.digest" in script.content
        device = device_signal()
        assert device is not None
        mine, other = "M" * 22, "O" * 22
        environ = {**OWNER, "HTTP_COOKIE": f"{DEVICE_COOKIE}={mine}"}  # at sign-in: no jar yet
        cookie = site.sign_in(environ)
        record = site.manager.store.get(tokens.parse(cookie).session_id)
        assert record is not None
        stored = json.loads(record.context)["session"]["device"]
        assert stored == device.key(f"{DEVICE_COOKIE}={mine}")
        assert mine not in record.context

        def client(value: str) -> Client:
            browser = site.client(OWNER, cookie)
            browser.cookies[DEVICE_COOKIE] = value
            return browser

        assert client(mine).get("/me").json() == {"user": "alice"}
        answer = client(other).get("/me", HTTP_ACCEPT="application/json")
        assert answer.status_code in (200, 401)  # served or challenged: never logged out
        if answer.status_code == 401:
            assert "device.changed" in answer.json()["reasons"]
        assert COOKIE not in answer.cookies
        assert site.manager.get(tokens.parse(cookie).session_id) is not None
        assert client(mine).get("/me").json() == {"user": "alice"}
