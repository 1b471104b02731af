"""What Django's own middleware does not do, kept thin.

Add ``"sessionward.django.middleware.SessionwardMiddleware"`` to ``MIDDLEWARE`` *before*
``django.contrib.sessions.middleware.SessionMiddleware``. It

* refuses unsafe requests whose ``Sec-Fetch-Site`` / ``Origin`` / ``Referer`` show another
  origin, or show nothing at all (``SESSIONWARD_ALLOWED_ORIGINS``; Django's
  ``CsrfViewMiddleware`` keeps doing the token part);
* adds ``Cache-Control: no-store`` to responses that set the session cookie;
* adds ``Clear-Site-Data`` to responses that delete it (logout);
* with a manager that scores requests (``risk=RiskAssessor()``), validates the session with
  the request's context: a step-up becomes Django's sign-in flow and a revoke a logout (see
  :mod:`sessionward.django.risk`);
* with ``SESSIONWARD_DEVICE_BINDING`` set, answers the DBSC endpoints, offers a binding with a
  login's response and expires the bound cookie with a logout
  (see :mod:`sessionward.django.binding`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from importlib import import_module

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden

from sessionward.core.dbsc import REGISTRATION
from sessionward.django import binding, get_manager, risk
from sessionward.errors import StoreError
from sessionward.web._core import CLEAR_SITE_DATA
from sessionward.web._http import Reply
from sessionward.web._sync.binding import DeviceGate
from sessionward.web.csrf import CsrfPolicy

__all__ = ["SessionwardMiddleware"]

_log = logging.getLogger("sessionward.web")
_READS = ("GET", "HEAD")


class SessionwardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # The form token is Django's; this policy only judges provenance.
        self.provenance = CsrfPolicy(
            settings.SESSIONWARD_ALLOWED_ORIGINS,
            keys=[secrets.token_bytes(32)],
            allow_same_site=getattr(settings, "SESSIONWARD_CSRF_ALLOW_SAME_SITE", False),
            require_token=False,
        )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        reason = self.provenance.refusal(request.method or "GET", headers)
        if reason is not None:
            _log.info("sessionward refused request: csrf (%s)", reason)
            return HttpResponseForbidden("cross-site request refused")
        manager = get_manager()
        device = risk.device_signal()
        if device is not None and request.path == device.path and request.method in _READS:
            return risk.device_script_response(request.method or "GET")
        if manager.risk is None:
            return self._serve(request, headers)
        try:
            checked = risk.check(manager, request, headers)
        except StoreError:
            return HttpResponse("session store unavailable", status=503)
        if checked.challenge is not None:
            refused = risk.refusal(request, checked.challenge, headers)
            if refused is not None:
                return refused
        token = risk.CURRENT.set(checked)
        try:
            return self._serve(request, headers)
        finally:
            risk.CURRENT.reset(token)

    def _serve(self, request: HttpRequest, headers: dict[str, str]) -> HttpResponse:
        gate = binding.current_gate(get_manager())
        if gate is None:
            return self._finish(self.get_response(request), None)
        current = binding.RequestBinding(gate, headers)
        token = binding.CURRENT.set(current)
        try:
            route = gate.route(request.path)
            if route is not None:
                return _response(self._endpoint(gate, route, request, headers))
            response = self._finish(self.get_response(request), gate)
            if current.offer is not None:
                response[REGISTRATION] = current.offer
            return response
        finally:
            binding.CURRENT.reset(token)

    def _endpoint(
        self, gate: DeviceGate, route: str, request: HttpRequest, headers: dict[str, str]
    ) -> Reply:
        engine = import_module(settings.SESSION_ENGINE)
        store = engine.SessionStore(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
        session = store.authenticated() if hasattr(store, "authenticated") else None
        url = request.build_absolute_uri(request.path)
        return gate.endpoint(route, request.method or "GET", headers, session, url)

    def _finish(self, response: HttpResponse, gate: DeviceGate | None) -> HttpResponse:
        cookie = response.cookies.get(settings.SESSION_COOKIE_NAME)
        if cookie is not None:
            response["Cache-Control"] = "no-store"
            if cookie.value == "" and str(cookie["max-age"]) == "0":
                response["Clear-Site-Data"] = CLEAR_SITE_DATA
                if gate is not None and gate.cookie is not None:
                    response.cookies.load(gate.cookie.expire())
        return response


def _response(reply: Reply) -> HttpResponse:
    response = HttpResponse(reply.body, status=reply.status)
    for name, value in reply.headers:
        if name == "set-cookie":
            response.cookies.load(value)
        else:
            response[name] = value
    return response
