"""A Django view for a (synchronous) receiver::

    # urls.py
    from sessionward.signals.django import receiver_view
    urlpatterns = [path("oidc/backchannel-logout", receiver_view(logout_receiver))]

``POST`` only; exempt from CSRF checks (the signed token is the authentication, and the
provider sends no cookie).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.csrf import csrf_exempt

from sessionward.signals._sync.receiver import MAX_BODY, BackchannelLogout, SsfReceiver

__all__ = ["receiver_view"]


def receiver_view(receiver: BackchannelLogout | SsfReceiver) -> Callable[[HttpRequest], Any]:
    """A view that hands each ``POST`` to ``receiver``."""

    def view(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > MAX_BODY:
            return HttpResponse(status=413)
        content_type = request.META.get("CONTENT_TYPE")
        if isinstance(receiver, BackchannelLogout):
            reply = receiver.handle(request.body, content_type)
        else:
            authorization = request.META.get("HTTP_AUTHORIZATION")
            reply = receiver.handle(request.body, content_type, authorization)
        return HttpResponse(reply.body, status=reply.status, headers=dict(reply.headers))

    exempt: Callable[[HttpRequest], Any] = csrf_exempt(view)
    return exempt
