"""``flask.session`` backed by sessionward: a Flask ``SessionInterface``.

:class:`~sessionward.web.flask.Sessionward` installs it; on its own,
``app.session_interface = SessionInterface(manager, csrf=False)`` gives ``flask.session``
without the rest (and without a CSRF check, like Flask's own cookie session)::

    session["cart"] = ["book"]           # stored server-side; the cookie holds only the token
    session.permanent = True             # "remember me": a persistent cookie
    app.session_interface.regenerate(session)   # at login: new token, old one dead at once
    session.clear()                      # logout: the session ends server-side

Values go through Flask's tagged JSON (tuples, bytes, ``Markup``, ``UUID``, ``datetime``
come back as they went in), as with Flask's own session. ``modified`` and ``accessed`` are
tracked, ``Vary: Cookie`` follows ``accessed``, and nothing is written for an untouched
session. Flask's cookie settings are honoured where they do not weaken the cookie and refused
where they would (:func:`flask_cookie`); ``SESSION_COOKIE_SECURE = False`` (Flask's default)
and ``SESSION_REFRESH_EACH_REQUEST`` change nothing: the cookie is always ``Secure`` (except
in ``CookiePolicy(insecure_http_localhost=True)``), and a remember-me cookie already lasts as
long as the session can.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from flask.sessions import SessionInterface as _FlaskInterface
from flask.sessions import SessionMixin, session_json_serializer

from sessionward.core.record import Session
from sessionward.errors import ConfigError, StoreError
from sessionward.manager._sync.manager import SessionManager
from sessionward.web._core import AdapterConfig, log_refusal
from sessionward.web._sync.handle import SessionHandle
from sessionward.web.context import ContextCapture
from sessionward.web.cookies import CookiePolicy
from sessionward.web.device import DeviceSignal
from sessionward.web.mapping import SessionMapping
from sessionward.web.wsgi import open_handle

if TYPE_CHECKING:
    from flask import Flask
    from flask.json.tag import TaggedJSONSerializer
    from flask.wrappers import Request, Response

__all__ = ["FlaskSession", "SessionInterface", "flask_cookie"]

#: The Flask settings a standalone interface's configuration depends on.
_SETTINGS = (
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_DOMAIN",
    "SESSION_COOKIE_PATH",
    "APPLICATION_ROOT",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_PARTITIONED",
    "PERMANENT_SESSION_LIFETIME",
    "SESSION_PERMANENT",
)


def flask_cookie(config: Mapping[str, Any], base: CookiePolicy | None = None) -> CookiePolicy:
    """The session cookie for a Flask app's ``config``; ``base``, when given, wins.

    Honoured: ``SESSION_COOKIE_NAME`` (sent as ``__Host-<name>``), ``SESSION_COOKIE_SAMESITE``
    ``"Lax"``/``"Strict"`` (``None``, Flask's default, means Lax), ``SESSION_COOKIE_PARTITIONED``,
    ``PERMANENT_SESSION_LIFETIME`` (the longest a "remember me" cookie may last). Refused with
    ``ConfigError``: a ``SESSION_COOKIE_DOMAIN`` (other hosts would receive the cookie),
    ``SESSION_COOKIE_HTTPONLY = False`` (scripts could read it), ``SameSite=None`` (cross-site
    requests would carry it), and a cookie path other than ``/`` (``__Host-`` requires it; an
    app under ``APPLICATION_ROOT`` sets ``SESSION_COOKIE_PATH = "/"`` and a name of its own).
    """
    if config.get("SESSION_COOKIE_DOMAIN"):
        raise ConfigError(
            "SESSION_COOKIE_DOMAIN would send the session cookie to other hosts; sessionward's "
            "cookie is host-only (__Host-): remove the setting"
        )
    if config.get("SESSION_COOKIE_HTTPONLY", True) is False:
        raise ConfigError("SESSION_COOKIE_HTTPONLY = False would let scripts read the token")
    path = config.get("SESSION_COOKIE_PATH") or config.get("APPLICATION_ROOT") or "/"
    if path != "/":
        raise ConfigError(
            f"the session cookie path would be {path!r}; sessionward's cookie is always Path=/ "
            "(the __Host- prefix requires it): set SESSION_COOKIE_PATH = '/' and give each app "
            "under a path prefix its own SESSION_COOKIE_NAME"
        )
    same_site = _same_site(config.get("SESSION_COOKIE_SAMESITE"))
    if base is not None:
        return base
    return CookiePolicy(
        name=config.get("SESSION_COOKIE_NAME") or "session",
        same_site=same_site,
        remember_max_age=_seconds(config.get("PERMANENT_SESSION_LIFETIME", 31 * 86400)),
        partitioned=bool(config.get("SESSION_COOKIE_PARTITIONED")),
    )


def _same_site(value: object) -> Literal["Lax", "Strict"]:
    if value is None or (isinstance(value, str) and value.lower() == "lax"):
        return "Lax"
    if isinstance(value, str) and value.lower() == "strict":
        return "Strict"
    if isinstance(value, str) and value.lower() == "none":
        raise ConfigError("SESSION_COOKIE_SAMESITE = 'None' would send the token cross-site")
    raise ConfigError(f"SESSION_COOKIE_SAMESITE must be 'Lax' or 'Strict', not {value!r}")


def _seconds(lifetime: object) -> int:
    seconds = lifetime.total_seconds() if isinstance(lifetime, timedelta) else lifetime
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 1:
        raise ConfigError("PERMANENT_SESSION_LIFETIME must be at least one second")
    return int(seconds)


class FlaskSession(SessionMapping, SessionMixin):
    """``flask.session``: a :class:`~sessionward.web.mapping.SessionMapping` with Flask's
    tagged JSON and ``SessionMixin``. Reading a key marks it accessed, as Flask's does."""

    def __init__(self, serializer: TaggedJSONSerializer, handle: SessionHandle) -> None:
        super().__init__()
        self.serializer = serializer
        self.handle = handle
        #: The configuration whose headers ``save_session`` adds itself (no middleware).
        self.standalone: AdapterConfig | None = None
        handle.attach(self)

    def _decode(self, session: Session) -> dict[str, Any]:
        data = self.serializer.loads(session.record.data)
        return data if isinstance(data, dict) else {}

    def _encode(self, value: Any) -> Any:
        return self.serializer.tag(value)

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.accessed = True
        return super().get(key, default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self.accessed = True
        return super().setdefault(key, default)


class SessionInterface(_FlaskInterface):
    """See the module docstring. ``csrf=False`` acknowledges that this interface alone checks
    no cross-site requests (``Sessionward(app, manager, csrf=...)`` does); ``cookie`` and
    ``remember_by_default`` default to what the app's configuration says, read per request."""

    serializer = session_json_serializer

    def __init__(
        self,
        manager: SessionManager,
        *,
        csrf: Literal[False],
        cookie: CookiePolicy | None = None,
        remember_by_default: bool | None = None,
        trusted_proxies: tuple[str, ...] | list[str] = (),
        device_signal: DeviceSignal | None = None,
    ) -> None:
        if csrf is not False:
            raise ConfigError(
                "a session interface cannot refuse cross-site requests: use "
                "Sessionward(app, manager, csrf=CsrfPolicy(...)), which installs this interface"
            )
        self.manager = manager
        self.cookie = cookie
        self.remember_by_default = remember_by_default
        self._context = ContextCapture(trusted_proxies, device_signal)
        self._configs: dict[tuple[Any, ...], AdapterConfig] = {}

    def _config(self, app: Flask) -> AdapterConfig:
        key = tuple(repr(app.config.get(name)) for name in _SETTINGS)
        config = self._configs.get(key)
        if config is None:
            remember = self.remember_by_default
            if remember is None:
                remember = bool(app.config.get("SESSION_PERMANENT"))
            config = AdapterConfig(
                cookie=flask_cookie(app.config, self.cookie),
                csrf=False,
                context=self._context,
                remember_by_default=remember,
            )
            if len(self._configs) >= 16:  # configuration changing at run time: keep it bounded
                self._configs.clear()
            self._configs[key] = config
        return config

    def open_session(self, app: Flask, request: Request) -> FlaskSession:
        handle = request.environ.get("sessionward")
        standalone = None
        if not isinstance(handle, SessionHandle):
            standalone = self._config(app)
            # Flask cannot answer from here: a request the risk engine challenged runs without
            # the session, so the application's sign-in page stays reachable.
            handle = open_handle(
                self.manager, standalone, request.environ, challenged_runs_without=True
            )
            request.environ["sessionward"] = handle
        session = FlaskSession(self.serializer, handle)
        session.standalone = standalone
        return session

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, FlaskSession):
            raise TypeError("this session was not opened by sessionward's SessionInterface")
        try:
            session.handle.commit()
        except StoreError:
            # The view's answer claims a change the store did not take: fail closed, as the
            # middleware does for an outage before the view.
            log_refusal("store", "write-back failed")
            response.status_code = session.handle.config.unavailable_status
            response.set_data(b"session store unavailable")
            response.mimetype = "text/plain"
            response.headers["Cache-Control"] = "no-store"
        if session.standalone is None:
            return  # the middleware adds the headers when the response starts
        for name, value in session.standalone.response_headers(session.handle.outcome):
            if name == "vary":
                response.vary.add(value)
            elif name == "set-cookie":
                response.headers.add("Set-Cookie", value)
            else:
                response.headers[name] = value

    def regenerate(self, session: SessionMixin) -> None:
        """New session id and token, same data; the old token dies at once. Call it at login
        when the application records the user in ``flask.session`` itself
        (``handle().login(user_id)`` does it for you)."""
        if not isinstance(session, FlaskSession):
            raise TypeError("this session was not opened by sessionward's SessionInterface")
        session.handle.regenerate()
