"""Starlette's own session tests (``tests/middleware/test_session.py`` of the installed
release), run with only the middleware swapped for sessionward's.

The upstream module is fetched at test time (see ``_upstream.py``) and its two session names
are replaced: ``SessionMiddleware`` by :func:`swapped_middleware`, which maps Starlette's
keyword arguments onto sessionward's middleware, and ``Session`` by
:class:`~sessionward.web.mapping.SessionMapping` (so the mutation-tracking test checks our
mapping, not Starlette's). Every test passes except those in ``EXCEPTIONS``, each with its
reason; a refused option must fail with our ``ConfigError`` (strict xfail), and an option
sessionward has no counterpart for is skipped.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sessionward import AsyncMemoryStore, AsyncSessionManager, Policy
from sessionward.errors import ConfigError
from sessionward.testing import EventRecorder
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.cookies import CookiePolicy
from sessionward.web.mapping import SessionMapping

from . import _upstream

ROOT = _upstream.sdist("starlette")
# Its type helpers import httpx2; starlette.testclient itself falls back to httpx, as here.
types = _upstream.load(
    "upstream_starlette_types", ROOT / "tests" / "types.py", aliases={"httpx2": httpx}
)
conftest = _upstream.load(
    "upstream_starlette_conftest", ROOT / "tests" / "conftest.py", aliases={"tests.types": types}
)
upstream = _upstream.load(
    "upstream_starlette_test_session",
    ROOT / "tests" / "middleware" / "test_session.py",
    aliases={"tests.types": types},
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:Using `httpx` with `starlette.testclient` is deprecated"
)


def swapped_middleware(
    app: Any,
    secret_key: object,
    session_cookie: str = "session",
    max_age: int | None = 14 * 24 * 60 * 60,
    path: str = "/",
    same_site: str = "lax",
    https_only: bool = False,
    domain: str | None = None,
    partitioned: bool = False,
) -> SessionMiddleware:
    """Starlette's ``SessionMiddleware`` signature, answered by sessionward's middleware.

    ``secret_key`` signs nothing here (the cookie holds a random token, not the data).
    ``max_age`` becomes a persistent (remember-me) cookie of that many seconds, with a
    server-side lifetime to match; ``None`` a browser-session cookie. ``https_only=False``
    (Starlette's default: no ``Secure`` flag) is sessionward's development mode, which also
    drops the ``__Host-`` prefix. CSRF is off (``csrf=False``): Starlette's middleware has
    none, and these tests post without an ``Origin``; tests/web/test_csrf.py covers it.
    ``path`` and ``domain`` have no counterpart (the cookie is always ``Path=/``, host-only).
    """
    assert path == "/"
    assert domain is None
    cookie = CookiePolicy(
        name=session_cookie,
        same_site=same_site.capitalize(),  # type: ignore[arg-type]
        remember_max_age=max_age,
        partitioned=partitioned,
        insecure_http_localhost=not https_only,
    )
    lifetime = max_age or Policy().absolute_timeout
    policy = Policy(idle_timeout=min(Policy().idle_timeout, lifetime), absolute_timeout=lifetime)
    manager = AsyncSessionManager(AsyncMemoryStore(), policy=policy)
    manager.events.subscribe(EVENTS)
    return SessionMiddleware(
        app, manager, cookie=cookie, csrf=False, remember_by_default=max_age is not None
    )


EVENTS = EventRecorder()
vars(upstream).update(SessionMiddleware=swapped_middleware, Session=SessionMapping)

REFUSED = "refused by sessionward with ConfigError: "
EXCEPTIONS: dict[str, Any] = {
    "test_partitioned_session": pytest.mark.xfail(
        strict=True,
        raises=ConfigError,
        reason=REFUSED + "same_site='none' would send the session cookie on cross-site "
        "requests (Partitioned itself is supported: CookiePolicy(partitioned=True))",
    ),
    "test_session_expires": pytest.mark.xfail(
        strict=True,
        raises=ConfigError,
        reason=REFUSED + "max_age=-1 expires a signed cookie through its timestamp; "
        "sessionward expires sessions server-side (Policy) and refuses a lifetime below 1 s",
    ),
    "test_session_zero_max_age": pytest.mark.xfail(
        strict=True,
        raises=ConfigError,
        reason=REFUSED + "max_age=0 makes every signed cookie die at once; a remember-me "
        "lifetime must be positive",
    ),
    "test_session_cookie_subpath": pytest.mark.skip(
        reason="path= has no counterpart: the cookie is always Path=/ (the __Host- prefix "
        "requires it); apps mounted side by side use distinct cookie names"
    ),
    "test_domain_cookie": pytest.mark.skip(
        reason="domain= has no counterpart: a Domain attribute would let sibling hosts read "
        "and plant the cookie; sessionward's is host-only (__Host-)"
    ),
}

test_client_factory = conftest.test_client_factory
for _name, _test in _upstream.tests_of(upstream, lambda name: True):
    globals()[_name] = EXCEPTIONS[_name](_test) if _name in EXCEPTIONS else _test


def test_every_exception_names_an_upstream_test() -> None:
    names = {name for name, _ in _upstream.tests_of(upstream, lambda name: True)}
    assert set(EXCEPTIONS) <= names
    assert len(names - set(EXCEPTIONS)) >= 8  # the rest runs as is


def test_the_upstream_tests_run_on_sessionward(test_client_factory: Any) -> None:
    """The swap took: the upstream flow creates and revokes sessionward sessions."""
    EVENTS.events.clear()
    upstream.test_session(test_client_factory)
    assert EVENTS.kinds() == ["created", "revoked"]  # update_session, then clear_session
