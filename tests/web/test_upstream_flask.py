"""Flask's own session tests (the session and flashing tests of ``tests/test_basic.py`` of the
installed release), run with ``app.session_interface`` set to sessionward's.

The upstream module and its conftest are fetched at test time (see ``_upstream.py``). The
one change: every Flask app the tests create gets :class:`SessionInterface` (set on the
``Flask`` class for the duration of each test), on a memory store whose absolute lifetime is
Flask's ``PERMANENT_SESSION_LIFETIME`` (31 days) so a permanent session can last as long as
Flask's. Every selected test passes except those in ``EXCEPTIONS``, each with its reason; a
refused setting must fail with our ``ConfigError`` (strict xfail), and a test of a signed
cookie's own mechanics must fail as its assertion says (strict xfail).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import flask
import pytest
from _pytest.outcomes import Failed

from sessionward import MemoryStore, Policy, SessionManager
from sessionward.errors import ConfigError
from sessionward.testing import EventRecorder
from sessionward.web.flask_session import SessionInterface

from . import _upstream

ROOT = _upstream.sdist("flask")
conftest = _upstream.load("upstream_flask_conftest", ROOT / "tests" / "conftest.py")
upstream = _upstream.load("upstream_flask_test_basic", ROOT / "tests" / "test_basic.py")

FLASK_LIFETIME = 31 * 86400
EVENTS = EventRecorder()


@pytest.fixture(autouse=True)
def sessionward_sessions(monkeypatch: pytest.MonkeyPatch) -> Iterator[SessionManager]:
    manager = SessionManager(
        MemoryStore(), policy=Policy(idle_timeout=3600, absolute_timeout=FLASK_LIFETIME)
    )
    manager.events.subscribe(EVENTS)
    monkeypatch.setattr(flask.Flask, "session_interface", SessionInterface(manager, csrf=False))
    yield manager
    manager.close()


REFUSED = "refused by sessionward with ConfigError: "
COOKIE_PATH = pytest.mark.xfail(
    strict=True,
    raises=ConfigError,
    reason=REFUSED + "the cookie path follows APPLICATION_ROOT in Flask; sessionward's cookie "
    "is always Path=/ (__Host- requires it), so an app under a prefix must say "
    "SESSION_COOKIE_PATH='/' (and use a cookie name of its own)",
)
REFRESH = pytest.mark.xfail(
    strict=True,
    raises=(AssertionError, KeyError),
    reason="SESSION_REFRESH_EACH_REQUEST re-sends a signed cookie to slide its expiry; "
    "sessionward slides the idle window on the server, and a remember-me cookie already lasts "
    "the session's whole absolute lifetime, so an unchanged session sends no cookie",
)
EXCEPTIONS: dict[str, Any] = {
    "test_session_path": COOKIE_PATH,
    "test_session_using_application_root": COOKIE_PATH,
    "test_session_using_session_settings": pytest.mark.xfail(
        strict=True,
        raises=ConfigError,
        reason=REFUSED + "SESSION_COOKIE_DOMAIN would send the cookie to other hosts, and "
        "SESSION_COOKIE_HTTPONLY=False would let scripts read the token",
    ),
    "test_session_using_samesite_attribute": pytest.mark.xfail(
        strict=True,
        raises=AssertionError,
        reason="SESSION_COOKIE_SAMESITE=None leaves SameSite out in Flask; sessionward always "
        "sends it (Lax unless Strict is asked for). 'invalid' is refused, as upstream expects",
    ),
    "test_missing_session": pytest.mark.xfail(
        strict=True,
        raises=Failed,
        reason="without a secret_key Flask has no session; sessionward signs nothing (the "
        "cookie holds a random token), so the session works without one",
    ),
    "test_session_secret_key_fallbacks": pytest.mark.xfail(
        strict=True,
        raises=AssertionError,
        reason="changing secret_key invalidates signed cookies; a sessionward session does not "
        "depend on it (and ends by revocation or expiry instead)",
    ),
    "test_session_cookie_setting": REFRESH,
    "test_session_refresh_vary": REFRESH,
}


def _selected(name: str) -> bool:
    return "session" in name or "flash" in name


# The conftest's fixtures these tests use. Its os.environ guards for the CLI tests are left
# out: they read a private pytest attribute that the installed pytest no longer has.
FIXTURES = {"app", "app_ctx", "req_ctx", "client", "leak_detector"}
for _name, _fixture in _upstream.fixtures_of(conftest):
    if _name in FIXTURES:
        globals()[_name] = _fixture
for _name, _test in _upstream.tests_of(upstream, _selected):
    globals()[_name] = EXCEPTIONS[_name](_test) if _name in EXCEPTIONS else _test


def test_every_exception_names_an_upstream_test() -> None:
    names = {name for name, _ in _upstream.tests_of(upstream, _selected)}
    assert set(EXCEPTIONS) <= names
    assert len(names - set(EXCEPTIONS)) >= 7  # the rest runs as is


def test_the_upstream_tests_run_on_sessionward(app: flask.Flask, client: Any) -> None:
    """The swap took: an upstream flow creates sessionward sessions."""
    EVENTS.events.clear()
    upstream.test_session_expiration(app, client)
    assert EVENTS.kinds()[0] == "created"
    assert isinstance(app.session_interface, SessionInterface)
