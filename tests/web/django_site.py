"""A tiny Django site (URLconf and views) for the end-to-end tests of ``sessionward.django``."""

from __future__ import annotations

import json

from django.contrib import auth
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.urls import path

from sessionward.django import get_manager


def public(request: HttpRequest) -> HttpResponse:
    return HttpResponse("public")


def csrf(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"csrf": get_token(request)})


def login(request: HttpRequest) -> HttpResponse:
    user, _ = User.objects.get_or_create(username=request.POST["user"])
    auth.login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return JsonResponse({"ok": True})


def me(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"error": "login required"}, status=401)
    return JsonResponse(
        {"user": request.user.get_username(), "cart": request.session.get("cart", [])}
    )


def cart(request: HttpRequest) -> HttpResponse:
    request.session["cart"] = [*request.session.get("cart", []), request.POST["item"]]
    return JsonResponse({"ok": True})


def logout(request: HttpRequest) -> HttpResponse:
    auth.logout(request)
    return JsonResponse({"ok": True})


def logout_everywhere(request: HttpRequest) -> HttpResponse:
    ended = get_manager().revoke_user(str(request.user.pk)) if request.user.is_authenticated else 0
    auth.logout(request)
    return HttpResponse(json.dumps({"ended": ended}), content_type="application/json")


urlpatterns = [
    path("public", public),
    path("csrf", csrf),
    path("login", login),
    path("me", me),
    path("cart", cart),
    path("logout", logout),
    path("logout-everywhere", logout_everywhere),
]
