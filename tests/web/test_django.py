"""``SESSION_ENGINE = "sessionward.django"`` end to end: Django's test client, then a real
server (wsgiref serving Django's WSGI handler) on a loopback port, with a fake clock."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import django
import pytest
from django.conf import settings

from sessionward import Policy, Session, SessionManager, SQLiteStore
from sessionward.testing import FakeClock

from ._servers import Browserish, wsgi_server

POLICY = Policy(idle_timeout=600, absolute_timeout=3600)
CLOCK = FakeClock()
_DIR = Path(tempfile.mkdtemp(prefix="sessionward-django-"))
MANAGER = SessionManager(SQLiteStore(str(_DIR / "sessions.sqlite3")), policy=POLICY, clock=CLOCK)
COOKIE = "__Host-id"
ORIGIN = "http://testserver"

if not settings.configured:
    settings.configure(
        SECRET_KEY="django-e2e-" + "k" * 40,
        DEBUG=False,
        ALLOWED_HOSTS=["testserver", "127.0.0.1"],
        ROOT_URLCONF=f"{__package__}.django_site",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
        ],
        MIDDLEWARE=[
            "sessionward.django.middleware.SessionwardMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(_DIR / "db")}},
        SESSION_ENGINE="sessionward.django",
        SESSIONWARD_MANAGER=f"{__name__}.MANAGER",
        SESSIONWARD_ALLOWED_ORIGINS=[ORIGIN],
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_EXPIRE_AT_BROWSER_CLOSE=True,
        CSRF_USE_SESSIONS=True,
        CSRF_TRUSTED_ORIGINS=[ORIGIN],
        USE_TZ=True,
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)


@pytest.fixture
def client() -> django.test.Client:
    from django.test import Client

    return Client(headers={"origin": ORIGIN})


def cookie_of(response: object) -> str:
    return response.cookies[COOKIE].value  # type: ignore[attr-defined,no-any-return]


def test_login_cycles_key_and_kills_the_pre_login_one(client: django.test.Client) -> None:
    token = client.get("/csrf").json()["csrf"]
    anonymous = cookie_of(client.post("/cart", {"item": "pen", "csrfmiddlewaretoken": token}))
    assert anonymous.startswith("sw1_")
    response = client.post("/login", {"user": "alice", "csrfmiddlewaretoken": token})
    logged_in = cookie_of(response)
    assert logged_in.startswith("sw1_")
    assert logged_in != anonymous
    assert response["Cache-Control"] == "no-store"
    morsel = response.cookies[COOKIE]
    assert morsel["secure"]
    assert morsel["httponly"]
    assert morsel["samesite"] == "Lax"
    assert client.get("/me").json() == {"user": "alice", "cart": ["pen"]}
    assert [s.user_id for s in _all_sessions()] == ["1"]  # bound to the user: revoke_user works
    client.cookies[COOKIE] = anonymous
    assert client.get("/me").status_code == 401


def _all_sessions() -> list[Session]:
    from django.contrib.auth.models import User

    return [s for u in User.objects.all() for s in MANAGER.list_user(str(u.pk))]


def test_logout_flushes_and_sends_clear_site_data(client: django.test.Client) -> None:
    token = client.get("/csrf").json()["csrf"]
    cookie = cookie_of(client.post("/login", {"user": "bob", "csrfmiddlewaretoken": token}))
    token = client.get("/csrf").json()["csrf"]
    response = client.post("/logout", {"csrfmiddlewaretoken": token})
    assert response.cookies[COOKIE].value == ""
    assert response["Clear-Site-Data"] == '"cache", "cookies", "storage"'
    client.cookies[COOKIE] = cookie
    assert client.get("/me").status_code == 401


def test_cross_site_post_is_refused(client: django.test.Client) -> None:
    from django.test import Client

    token = client.get("/csrf").json()["csrf"]
    evil = Client(headers={"origin": "http://evil.example"})
    evil.cookies = client.cookies
    assert evil.post("/cart", {"item": "x", "csrfmiddlewaretoken": token}).status_code == 403
    bare = Client()
    bare.cookies = client.cookies
    assert bare.post("/cart", {"item": "x", "csrfmiddlewaretoken": token}).status_code == 403
    assert client.post("/cart", {"item": "x", "csrfmiddlewaretoken": token}).status_code == 200


@pytest.fixture
def served() -> Iterator[str]:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    overrides: list[override_settings] = []

    def make_app(base: str) -> WSGIHandler:
        overrides.append(
            override_settings(SESSIONWARD_ALLOWED_ORIGINS=[base], CSRF_TRUSTED_ORIGINS=[base])
        )
        overrides[0].enable()
        return WSGIHandler()

    try:
        with wsgi_server(make_app) as base:
            yield base
    finally:
        for override in overrides:
            override.disable()


def test_real_server_login_logout_everywhere_and_expiry(served: str) -> None:
    laptop, phone = Browserish(served), Browserish(served)
    try:
        for browser in (laptop, phone):
            browser.origin = served
            token = browser.get("/csrf").json()["csrf"]
            before = browser.token
            browser.post("/login", data={"user": "carol", "csrfmiddlewaretoken": token})
            assert browser.token not in (None, before)
            assert browser.get("/me").json()["user"] == "carol"
        untouched = laptop.get("/public")
        assert "set-cookie" not in untouched.headers
        old_phone = phone.token
        token = laptop.get("/csrf").json()["csrf"]
        response = laptop.post("/logout-everywhere", data={"csrfmiddlewaretoken": token})
        assert response.json()["ended"] >= 2
        assert phone.get("/me", token=old_phone).status_code == 401
        # idle expiry
        token = laptop.get("/csrf").json()["csrf"]
        laptop.post("/login", data={"user": "carol", "csrfmiddlewaretoken": token})
        assert laptop.get("/me").status_code == 200
        CLOCK.advance(POLICY.idle_timeout + 1)
        assert laptop.get("/me").status_code == 401
        cross = laptop.post("/cart", data={"item": "x"}, headers={"origin": "http://evil.example"})
        assert cross.status_code == 403
    finally:
        laptop.close()
        phone.close()
