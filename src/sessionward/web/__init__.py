"""Thin web adapters: cookies, request context, CSRF, ASGI/WSGI middleware, framework helpers.

Framework modules (``asgi``, ``starlette``, ``wsgi``, ``flask``) import their framework only
when imported themselves; this package imports none.

    from sessionward.web import CookiePolicy, CsrfPolicy, ContextCapture
"""

from sessionward.web.context import ContextCapture
from sessionward.web.cookies import CookiePolicy
from sessionward.web.csrf import CsrfPolicy

__all__ = ["ContextCapture", "CookiePolicy", "CsrfPolicy"]
