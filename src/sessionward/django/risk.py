"""Hijack scoring in the Django engine: the request's context is scored, a step-up becomes
Django's sign-in flow and a revoke a logout.

With a ``SESSIONWARD_MANAGER`` that scores requests (``SessionManager(..., risk=
RiskAssessor())``), ``SessionwardMiddleware`` validates the session cookie once per request,
with the request's context (client address, read from ``X-Forwarded-For`` only behind
``SESSIONWARD_TRUSTED_PROXIES``; user agent; Accept-Language; ``Sec-CH-UA-*`` hints), and
``SessionStore.load`` takes that result instead of validating again:

* allow / log: the session is served as usual;
* step-up (``RiskChallenge``): the session survives, but this request does not get it. Under
  ``SESSIONWARD_STEP_UP_PATHS`` (default: ``settings.LOGIN_URL``) the view runs as for an
  anonymous visitor, with the challenge in ``request.sessionward_challenge`` (``reasons``,
  ``codes``, ``user_id``) for the sign-in page to show; elsewhere a page request (a ``GET``
  that accepts HTML) is redirected to ``LOGIN_URL?next=...&reason=risk``, as
  ``login_required`` does, and any other request gets a 401 with the reason codes. When the
  owner signs in again (``auth.login``), the challenged session is ended and the new one
  starts from this request's context, which becomes the user's own;
* revoke: the session is ended and the cookie deleted, as at a logout.

``SESSIONWARD_DEVICE_SIGNAL = True`` (off by default) adds the optional device signal: the
middleware serves ``/sessionward/device.js`` and reads its cookie into the context, keyed
with a secret derived from ``SECRET_KEY`` (see docs/risk.md, "Device signal").
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url

from sessionward.core.context import RequestContext
from sessionward.core.record import Session
from sessionward.errors import InvalidToken, RiskChallenge
from sessionward.manager._sync.manager import SessionManager
from sessionward.web._challenge import challenge_body
from sessionward.web.context import ContextCapture
from sessionward.web.device import SCRIPT_HEADERS, DeviceSignal, device_script

__all__ = ["CURRENT", "Checked", "check", "device_script_response", "device_signal", "refusal"]


@dataclass(slots=True)
class Checked:
    """One request's context and, when it carried a session cookie, what validating it gave."""

    context: RequestContext
    key: str | None = None
    session: Session | None = None
    error: InvalidToken | None = None
    challenge: RiskChallenge | None = None


#: The current request's check (set by the middleware for the length of the request).
CURRENT: ContextVar[Checked | None] = ContextVar("sessionward_django_risk", default=None)


@functools.cache
def _capture(proxies: tuple[str, ...], device: DeviceSignal | None) -> ContextCapture:
    return ContextCapture(proxies, device)


def device_signal() -> DeviceSignal | None:
    """The device signal of ``SESSIONWARD_DEVICE_SIGNAL = True``, or ``None`` (the default)."""
    if getattr(settings, "SESSIONWARD_DEVICE_SIGNAL", False) is not True:
        return None
    return _device(str(settings.SECRET_KEY))


@functools.cache
def _device(secret_key: str) -> DeviceSignal:
    # Its own key, derived from SECRET_KEY: the device values never reuse Django's secret.
    derived = hmac.new(secret_key.encode(), b"sessionward device signal", hashlib.sha256)
    return DeviceSignal(secret=derived.digest())


def device_script_response(method: str) -> HttpResponse:
    """``device.js``, as the other adapters serve it."""
    response = HttpResponse(device_script() if method == "GET" else b"")
    for name, value in SCRIPT_HEADERS:
        response[name] = value
    return response


def check(manager: SessionManager, request: HttpRequest, headers: dict[str, str]) -> Checked:
    """Capture the request's context and validate its session cookie with it
    (``StoreError`` propagates: the caller fails closed)."""
    proxies = tuple(getattr(settings, "SESSIONWARD_TRUSTED_PROXIES", ()))
    capture = _capture(proxies, device_signal())
    context = capture.capture(request.META.get("REMOTE_ADDR"), headers)
    key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    checked = Checked(context, key or None)
    if not key:
        return checked
    try:
        checked.session = manager.validate(key, context=context)
    except RiskChallenge as challenge:
        checked.challenge = challenge
    except InvalidToken as error:
        checked.error = error
    return checked


def step_up_paths() -> tuple[str, ...]:
    configured = getattr(settings, "SESSIONWARD_STEP_UP_PATHS", None)
    if configured is None:
        return (str(resolve_url(settings.LOGIN_URL)),)
    return tuple(str(p) for p in configured)


def _reaches(path: str, paths: tuple[str, ...]) -> bool:
    for allowed in paths:
        base = allowed.rstrip("/")
        if path in (allowed, base) or path.startswith(base + "/"):
            return True
    return False


def refusal(
    request: HttpRequest, challenge: RiskChallenge, headers: dict[str, str]
) -> HttpResponse | None:
    """The answer to a challenged request, or ``None`` when its view runs (a sign-in page)."""
    paths = step_up_paths()
    if _reaches(request.path, paths):
        request.sessionward_challenge = challenge
        return None
    page = request.method in ("GET", "HEAD") and "text/html" in headers.get("accept", "")
    if page:
        query = urlencode({"next": request.get_full_path(), "reason": "risk"})
        response: HttpResponse = HttpResponseRedirect(f"{paths[0]}?{query}")
    else:
        kind, body = challenge_body(challenge, headers)
        response = HttpResponse(body, status=401, content_type=kind)
    response["Cache-Control"] = "no-store"
    return response
