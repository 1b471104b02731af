"""Flask extension: the WSGI middleware around ``app.wsgi_app``, ``flask.session`` backed by
sessionward, and view decorators.

    sw = Sessionward(app, manager, csrf=CsrfPolicy(["https://shop.example"], keys=[key]))

    @app.post("/cart")
    def add():
        session["cart"] = [*session.get("cart", []), request.form["product"]]  # flask.session

    @app.post("/login")
    def login():
        ...check the password...
        handle().login(user_id)     # new token, the cart carried over, the old token dead

    @app.get("/account")
    @require_user
    def account():
        return {"user": current_session().user_id}

Templates get ``csrf_token()``. ``flask.session`` is a :class:`FlaskSession` (see
:mod:`sessionward.web.flask_session`): Flask's own session API, stored server-side.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, ParamSpec, TypeVar

from flask import Flask, abort, make_response, request

from sessionward.core.record import Session
from sessionward.errors import StepUpRequired
from sessionward.manager._sync.manager import SessionManager
from sessionward.web._core import Transport
from sessionward.web._sync.handle import SessionHandle
from sessionward.web.cookies import CookiePolicy
from sessionward.web.csrf import CsrfPolicy
from sessionward.web.flask_session import FlaskSession, SessionInterface, flask_cookie
from sessionward.web.wsgi import SessionMiddleware

__all__ = [
    "FlaskSession",
    "SessionInterface",
    "Sessionward",
    "current_session",
    "handle",
    "require_recent_auth",
    "require_scope",
    "require_session",
    "require_user",
]

P = ParamSpec("P")
R = TypeVar("R")


class Sessionward:
    """The extension; keyword arguments are those of the WSGI ``SessionMiddleware``.

    Without ``cookie=``, the cookie follows the app's ``SESSION_COOKIE_NAME``,
    ``SESSION_COOKIE_SAMESITE``, ``SESSION_COOKIE_PARTITIONED`` and
    ``PERMANENT_SESSION_LIFETIME`` (read here, once); settings that would weaken it are refused
    either way (see :func:`~sessionward.web.flask_session.flask_cookie`).
    ``remember_by_default`` defaults to Flask-Session's ``SESSION_PERMANENT`` (else off).
    """

    def __init__(
        self,
        app: Flask | None = None,
        manager: SessionManager | None = None,
        *,
        transport: Transport = "cookie",
        cookie: CookiePolicy | None = None,
        csrf: CsrfPolicy | Literal[False] | None = None,
        **options: Any,
    ) -> None:
        self.manager = manager
        self.options: dict[str, Any] = {
            "transport": transport,
            "cookie": cookie,
            "csrf": csrf,
            **options,
        }
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, manager: SessionManager | None = None) -> None:
        manager = manager or self.manager
        if manager is None:
            raise TypeError("Sessionward needs a SessionManager")
        options = dict(self.options)
        options["cookie"] = cookie = flask_cookie(app.config, options.get("cookie"))
        remember = options.get("remember_by_default")
        if remember is None:
            options["remember_by_default"] = remember = bool(app.config.get("SESSION_PERMANENT"))
        app.wsgi_app = SessionMiddleware(app.wsgi_app, manager, **options)  # type: ignore[method-assign]
        # Behind the middleware the interface only bridges flask.session to the request's
        # handle; it validates on its own only where no request went through the middleware
        # (app.test_request_context()).
        app.session_interface = SessionInterface(
            manager,
            csrf=False,
            cookie=cookie,
            remember_by_default=remember,
            trusted_proxies=options.get("trusted_proxies", ()),
            device_signal=options.get("device_signal"),
        )
        app.extensions["sessionward"] = self
        app.jinja_env.globals["csrf_token"] = lambda: handle().csrf_token()


def handle() -> SessionHandle:
    """This request's session handle."""
    found = request.environ.get("sessionward")
    if not isinstance(found, SessionHandle):
        raise RuntimeError("Sessionward is not installed on this app")
    return found


def current_session() -> Session | None:
    return handle().session


def _deny(status: int, error: str | None = None, **params: str) -> None:
    headers = handle().config.challenge(error, **params)
    text = "authentication required" if status == 401 else "forbidden"
    abort(make_response(text, status, headers))


def _session() -> Session:
    session = handle().session
    if session is None:
        _deny(401, "invalid_token" if handle().presented else None)
        raise AssertionError("unreachable")  # pragma: no cover - abort raises
    return session


def _user() -> Session:
    session = _session()
    if session.is_anonymous:
        _deny(401)
    return session


def _guard(check: Callable[[], object]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            check()
            return view(*args, **kwargs)

        return wrapped

    return decorator


def require_session(view: Callable[P, R]) -> Callable[P, R]:
    """401 unless the request carries a valid session (anonymous included)."""
    return _guard(_session)(view)


def require_user(view: Callable[P, R]) -> Callable[P, R]:
    """401 unless the request carries a valid, authenticated session."""
    return _guard(_user)(view)


def require_scope(*scopes: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """401 without a user, 403 unless the session holds every one of ``scopes``."""
    wanted = frozenset(scopes)

    def check() -> None:
        if not wanted <= _user().scopes:
            _deny(403, "insufficient_scope", scope=" ".join(sorted(wanted)))

    return _guard(check)


def require_recent_auth(
    *, max_age: float, min_level: int = 1
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """401 unless the user authenticated within ``max_age`` seconds (step-up, ASVS 7.5.1)."""

    def check() -> None:
        session = _user()
        try:
            handle().manager.require_recent_auth(session, max_age=max_age, min_level=min_level)
        except StepUpRequired:
            _deny(
                401,
                "insufficient_user_authentication",
                error_description="a more recent authentication is required",
                max_age=str(int(max_age)),
            )

    return _guard(check)
