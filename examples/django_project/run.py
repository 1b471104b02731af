"""A Django project on ``SESSION_ENGINE = "sessionward.django"`` in one file.

    python examples/django_project/run.py            # migrates, then serves http://localhost:8002

Demo users (created on start): alice / wonderland, bob / builder. ``auth.login`` cycles the
key (a new sessionward token), ``auth.logout`` flushes it, "log out everywhere" calls
``revoke_user``. Uses Django's development server: not for production.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import django
from django.conf import settings

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("EXAMPLE_DATA_DIR", HERE))
PORT = int(os.environ.get("EXAMPLE_PORT", "8002"))
ORIGINS = [f"http://localhost:{PORT}", f"http://127.0.0.1:{PORT}"]

settings.configure(
    DEBUG=False,
    SECRET_KEY="example-only-" + "x" * 40,
    ALLOWED_HOSTS=["localhost", "127.0.0.1"],
    ROOT_URLCONF=__name__,
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
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA / "django.db"}},
    SESSION_ENGINE="sessionward.django",
    SESSIONWARD_SQLITE_PATH=DATA / "sessions.db",
    SESSIONWARD_ALLOWED_ORIGINS=ORIGINS,
    SESSION_COOKIE_NAME="__Host-id",
    SESSION_COOKIE_SECURE=True,
    SESSION_COOKIE_HTTPONLY=True,
    SESSION_COOKIE_SAMESITE="Lax",
    SESSION_EXPIRE_AT_BROWSER_CLOSE=True,
    CSRF_USE_SESSIONS=True,
    CSRF_TRUSTED_ORIGINS=ORIGINS,
    USE_TZ=True,
)
django.setup()

from django.contrib import auth  # noqa: E402 - after settings
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.middleware.csrf import get_token  # noqa: E402
from django.shortcuts import redirect  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils.html import escape  # noqa: E402

from sessionward.django import get_manager  # noqa: E402


def _form(request: HttpRequest, action: str, fields: str, button: str) -> str:
    token = get_token(request)
    return (
        f'<form method="post" action="{action}">{fields}<input type="hidden" '
        f'name="csrfmiddlewaretoken" value="{token}"><button>{button}</button></form>'
    )


def login(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        user = auth.authenticate(
            request, username=request.POST.get("username"), password=request.POST.get("password")
        )
        if user is not None:
            auth.login(request, user)
            return redirect("/account")
    fields = '<input name="username"> <input name="password" type="password">'
    return HttpResponse("<h1>Sign in</h1>" + _form(request, "/login", fields, "Sign in"))


def account(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("/login")
    request.session["visits"] = request.session.get("visits", 0) + 1
    sessions = get_manager().list_user(str(request.user.pk))
    return HttpResponse(
        f"<h1>Account</h1><p>Hello {escape(request.user.get_username())}; visits this session:"
        f" {request.session['visits']}; live sessions: {len(sessions)}</p>"
        + _form(request, "/logout", "", "Log out")
        + _form(request, "/logout-everywhere", "", "Log out everywhere")
    )


def logout(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        auth.logout(request)
    return redirect("/login")


def logout_everywhere(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and request.user.is_authenticated:
        get_manager().revoke_user(str(request.user.pk))
        auth.logout(request)
    return redirect("/login")


urlpatterns = [
    path("", lambda request: redirect("/account")),
    path("login", login),
    path("account", account),
    path("logout", logout),
    path("logout-everywhere", logout_everywhere),
]


def prepare() -> None:
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    for name, password in (("alice", "wonderland"), ("bob", "builder")):
        if not User.objects.filter(username=name).exists():
            User.objects.create_user(name, password=password)


if __name__ == "__main__":
    from django.core.management import call_command

    prepare()
    call_command("runserver", f"127.0.0.1:{PORT}", "--noreload", *sys.argv[1:])
