"""Thin web adapters: cookies, request context, CSRF, ASGI/WSGI middleware, framework helpers.

Framework modules (``asgi``, ``starlette``, ``wsgi``, ``flask``) import their framework only
when imported themselves; this package imports none.

    from sessionward.web import CookiePolicy, CsrfPolicy, ContextCapture, DeviceSignal
"""

from sessionward.web.context import ContextCapture
from sessionward.web.cookies import CookiePolicy
from sessionward.web.csrf import CsrfPolicy
from sessionward.web.device import DeviceSignal

__all__ = ["ContextCapture", "CookiePolicy", "CsrfPolicy", "DeviceSignal"]
