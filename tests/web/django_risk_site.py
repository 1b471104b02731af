"""A tiny Django site for the hijack-scoring tests of ``sessionward.django``: a sign-in page
under ``LOGIN_URL`` that shows the risk challenge, and a page that needs a user."""

from __future__ import annotations

from django.contrib import auth
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.urls import path


def sign_in(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        user, _ = User.objects.get_or_create(username=request.POST["user"])
        auth.login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return JsonResponse({"signed_in": user.get_username()})
    challenge = getattr(request, "sessionward_challenge", None)
    return JsonResponse(
        {
            "csrf": get_token(request),
            "challenged": challenge is not None,
            "user": None if challenge is None else challenge.user_id,
            "codes": [] if challenge is None else list(challenge.codes),
            "next": request.GET.get("next"),
        }
    )


def me(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"error": "login required"}, status=401)
    return JsonResponse({"user": request.user.get_username()})


urlpatterns = [path("accounts/login/", sign_in), path("me", me)]
