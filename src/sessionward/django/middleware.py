"""What Django's own middleware does not do, kept thin.

Add ``"sessionward.django.middleware.SessionwardMiddleware"`` to ``MIDDLEWARE`` *before*
``django.contrib.sessions.middleware.SessionMiddleware``. It

* refuses unsafe requests whose ``Sec-Fetch-Site`` / ``Origin`` / ``Referer`` show another
  origin, or show nothing at all (``SESSIONWARD_ALLOWED_ORIGINS``; Django's
  ``CsrfViewMiddleware`` keeps doing the token part);
* adds ``Cache-Control: no-store`` to responses that set the session cookie;
* adds ``Clear-Site-Data`` to responses that delete it (logout).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden

from sessionward.web._core import CLEAR_SITE_DATA
from sessionward.web.csrf import CsrfPolicy

__all__ = ["SessionwardMiddleware"]

_log = logging.getLogger("sessionward.web")


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
        response = self.get_response(request)
        cookie = response.cookies.get(settings.SESSION_COOKIE_NAME)
        if cookie is not None:
            response["Cache-Control"] = "no-store"
            if cookie.value == "" and str(cookie["max-age"]) == "0":
                response["Clear-Site-Data"] = CLEAR_SITE_DATA
        return response
