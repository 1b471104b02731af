"""Device Bound Session Credentials with a real browser: Debian's chromium (Playwright, never
``playwright install``) against the ASGI middleware over HTTPS, the test certificate pinned by
its SPKI.

* native DBSC (software keys, headless; offering ES256 and RS256, and RS256 alone):
  registration with a browser-signed JWT, a refresh answered with a 403 + challenge and then
  a signed proof, a proactive refresh with the cached challenge, the protected page served
  with the refreshed cookie, a path the session config excludes never held back for a
  refresh, and ``{"continue": false}`` honoured (no refresh afterwards);
* the WebCrypto fallback script with the native feature off, through the same flow.

Everything is asserted from the server's side: its request log, its stored records, its
events. Every wait has a deadline. Skipped with the reason when chromium or Playwright is
missing, unless ``SESSIONWARD_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _tls import make_certificate, tls_server
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from sessionward import AsyncSessionManager, AsyncSQLiteStore, EventBus, Policy
from sessionward.core import binding as states
from sessionward.core import dbsc
from sessionward.core.binding import BindingPolicy, binding_of
from sessionward.core.record import Session
from sessionward.testing import EventRecorder
from sessionward.web import CsrfPolicy
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.binding import DeviceBinding
from sessionward.web.starlette import get_handle

CHROMIUM = os.environ.get("SESSIONWARD_CHROMIUM", "/usr/bin/chromium")
LIFETIME = 4  # seconds: short, so the test sees cookies expire (RefreshQuota is off)
BOUND = "__Host-id-bound"
BASE_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NATIVE = (
    "--enable-features=DeviceBoundSessions:RefreshQuota/false,"
    "EnableBoundSessionCredentialsSoftwareKeysForManualTesting"
)


def _unavailable(reason: str) -> None:
    if os.environ.get("SESSIONWARD_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Hit:
    """One request as the server saw it (values of the bound cookie, never logged)."""

    at: float
    method: str
    path: str
    status: int = 0
    answered_at: float = 0.0  # when the answer's head went out (a Max-Age counts from there)
    bound_in: str | None = None
    bound_out: str | None = None
    proof: bool = False
    fallback: bool = False
    challenge_out: bool = False
    body: bytes = b""


@dataclass
class Log:
    hits: list[Hit] = field(default_factory=list)

    def refreshes(self, since: float = 0.0) -> list[Hit]:
        return [h for h in self.hits if h.path.endswith("/refresh") and h.at >= since]

    def registered(self) -> list[Hit]:
        return [h for h in self.hits if h.path.endswith("/register") and h.status == 200]


def _cookie(header: str | None, name: str) -> str | None:
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def recording(app: Any, log: Log) -> Any:
    """ASGI middleware outside the session middleware: what came in, what went out."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        hit = Hit(time.time(), scope["method"], scope["path"])
        hit.bound_in = _cookie(headers.get("cookie"), BOUND)
        hit.proof = dbsc.RESPONSE in headers
        hit.fallback = headers.get("sessionward-binding") == "webcrypto"
        log.hits.append(hit)

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                hit.status = message["status"]
                hit.answered_at = time.time()
                for key, value in message.get("headers", []):
                    name, text = key.decode().lower(), value.decode()
                    if name == "set-cookie" and text.startswith(BOUND + "="):
                        hit.bound_out = text.split(";")[0].split("=", 1)[1]
                    hit.challenge_out |= name == dbsc.CHALLENGE
            elif message["type"] == "http.response.body":
                hit.body += message.get("body", b"")
            await send(message)

        await app(scope, receive, watch)

    return wrapped


def build(
    manager: AsyncSessionManager,
    log: Log,
    *,
    fallback: bool,
    algorithms: tuple[str, ...] = ("ES256", "RS256"),
) -> Any:
    script = (
        '<script src="/sessionward/dbsc/fallback.js" data-delay="100" defer></script>'
        if fallback
        else ""
    )

    def page(text: str) -> HTMLResponse:
        return HTMLResponse(f"<!doctype html><title>t</title><p id=t>{text}</p>{script}")

    async def login(request: Request) -> Response:
        await get_handle(request).login("alice")
        return page("signed in")

    async def protected(request: Request) -> Response:
        handle = get_handle(request)
        session = handle.session
        user = session.user_id if session else "nobody"
        return page(f"{user} proven={handle.proven}")

    async def end(request: Request) -> Response:
        handle = get_handle(request)
        if handle.session is not None:  # server-side end, no Clear-Site-Data
            await handle.manager.revoke(handle.session)
        return page("ended")

    async def favicon(request: Request) -> Response:
        return PlainTextResponse("", status_code=404)

    async def public(request: Request) -> Response:
        return page("public")

    def make(base: str) -> Any:
        csrf = CsrfPolicy([base], keys=[b"k" * 32], require_token=False)
        policy = BindingPolicy(cookie_lifetime=LIFETIME, algorithms=algorithms)
        binding = DeviceBinding(policy, excludes=("/public",))
        routes = [
            Route("/login", login),
            Route("/protected", protected),
            Route("/end", end),
            Route("/public/x", public),
            Route("/favicon.ico", favicon),
        ]
        options: dict[str, Any] = {"manager": manager, "csrf": csrf, "binding": binding}
        app = Starlette(routes=routes, middleware=[Middleware(SessionMiddleware, **options)])
        return recording(app, log)

    return make


@dataclass
class Served:
    base: str
    log: Log
    manager: AsyncSessionManager
    events: EventRecorder
    spki: str
    algorithms: tuple[str, ...]


@pytest.fixture(scope="module")
def playwright_browser_type() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        _unavailable(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        yield playwright.chromium


def _serve(
    tmp_path: Path, fallback: bool, algorithms: tuple[str, ...] = ("ES256", "RS256")
) -> Iterator[Served]:
    log, events = Log(), EventRecorder()
    manager = AsyncSessionManager(
        AsyncSQLiteStore(str(tmp_path / "s.db")),
        policy=Policy(idle_timeout=3600, absolute_timeout=8 * 3600),
        events=EventBus([events]),
    )
    cert, key, spki = make_certificate(tmp_path)
    app = build(manager, log, fallback=fallback, algorithms=algorithms)
    holder: dict[str, Any] = {}

    async def lazy(scope: Any, receive: Any, send: Any) -> None:
        await holder["app"](scope, receive, send)

    with tls_server(lazy, cert, key) as base:
        holder["app"] = app(base)
        yield Served(base, log, manager, events, spki, algorithms)


def _wait(what: str, check: Callable[[], Any], seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def _records(tmp_path: Path) -> list[Session]:
    from sessionward import SQLiteStore

    store = SQLiteStore(str(tmp_path / "s.db"))
    try:
        return [Session(record) for record in store.list_user("alice")]
    finally:
        store.close()


def _record(served: Served, tmp_path: Path) -> Session:
    bound = _records(tmp_path)
    assert len(bound) == 1, "one signed-in session"
    return bound[0]


def _launch(kind: Any, served: Served, native: bool) -> Any:
    args = [*BASE_ARGS, f"--ignore-certificate-errors-spki-list={served.spki}"]
    if native:
        args.append(NATIVE)
    return kind.launch(executable_path=CHROMIUM, headless=True, args=args, timeout=60_000)


@contextmanager
def _signed_in(kind: Any, served: Served, native: bool) -> Iterator[tuple[Any, Any]]:
    """Chromium's context and page, the page signed in at ``/login``; the browser is closed
    afterwards (the context too when the test passed)."""
    browser = _launch(kind, served, native)
    try:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(served.base + "/login")
        yield context, page
        context.close()
    finally:
        browser.close()


@pytest.fixture
def native(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    yield from _serve(tmp_path, fallback=False, algorithms=request.param)


@pytest.fixture
def fallback(tmp_path: Path) -> Iterator[Served]:
    yield from _serve(tmp_path, fallback=True)


def _served_with_latest_cookie(log: Log, since: float) -> Hit:
    """The first /protected request after ``since`` that carried the newest bound cookie set
    before it (and that cookie is a refreshed one, not the registration's)."""
    for index, hit in enumerate(log.hits):
        if hit.path != "/protected" or hit.at < since or not hit.status:
            continue
        issued = [h for h in log.hits[:index] if h.bound_out]
        if issued and issued[-1].path.endswith("/refresh") and hit.bound_in == issued[-1].bound_out:
            return hit
    raise AssertionError("no protected page carried the refreshed cookie")


def _challenged(refreshes: list[Hit]) -> bool:
    """A refresh without a proof answered 403 + challenge, then a signed one that succeeded."""
    for i, hit in enumerate(refreshes):
        answered = any(h.proof and h.status == 200 and h.bound_out for h in refreshes[i + 1 :])
        if not hit.proof and hit.status == 403 and hit.challenge_out and answered:
            return True
    return False


def _told_to_stop(log: Log, since: float) -> list[Hit]:
    """Waits for the refreshes since ``since`` answered ``{"continue": false}``."""
    told: list[Hit] = _wait(
        "the refresh told to stop",
        lambda: [
            h for h in log.refreshes(since) if h.status == 200 and b'"continue":false' in h.body
        ],
    )
    return told


def _proactive(log: Log) -> Hit | None:
    """A refresh that succeeded with a cached challenge (no 403 just before it) while the
    bound cookie set before it was still alive."""
    issued = [h for h in log.hits if h.bound_out and h.status == 200]
    for previous, hit in itertools.pairwise(issued):
        before = log.hits[: log.hits.index(hit)]
        last_refresh = [h for h in before if h.path.endswith("/refresh")]
        cached = hit.proof and (not last_refresh or last_refresh[-1].status == 200)
        if hit.path.endswith("/refresh") and cached and hit.at < previous.at + LIFETIME:
            return hit
    return None


@pytest.mark.parametrize(
    "native", [("ES256", "RS256"), ("RS256",)], indirect=True, ids=["offered-both", "RS256-only"]
)
def test_native_dbsc_in_headless_chromium(
    playwright_browser_type: Any, native: Served, tmp_path: Path
) -> None:
    with _signed_in(playwright_browser_type, native, native=True) as (context, page):
        registration = _wait(
            "Chromium to register a key (it does so silently, or not at all)",
            native.log.registered,
        )[0]
        assert registration.proof
        assert not registration.fallback
        session = _record(native, tmp_path)
        binding = binding_of(session.data)
        assert (binding.state, binding.method) == ("bound", "dbsc")
        state = states.state_of(session.data)
        assert state is not None
        assert state["alg"] == native.algorithms[0]  # Chromium takes the first it supports
        jwk = states.jwk_of(state)
        assert jwk is not None
        assert jwk["kty"] in ("EC", "RSA")
        assert "bound" in native.events.kinds()
        # let the registration's cookie expire: a path the config excludes is not held back
        # for a refresh, then a page in scope is
        # (the browser dates the cookie from when it read the answer, which a loaded machine
        # delays past the server's clock: wait until the browser's own jar has dropped it)
        time.sleep(max(0.0, registration.answered_at + LIFETIME + 0.5 - time.time()))
        _wait(
            "the registration's bound cookie to expire in the browser",
            lambda: not [c for c in context.cookies() if c["name"] == BOUND],
        )
        public_at = time.time()
        page.goto(native.base + "/public/x")
        public = _wait(
            "the excluded page",
            lambda: [h for h in native.log.hits if h.path == "/public/x" and h.at >= public_at],
        )
        assert public[0].bound_in is None
        assert native.log.refreshes(public_at) == [], "a refresh for an excluded path"
        asked = time.time()
        page.goto(native.base + "/protected")
        served = _served_with_latest_cookie(native.log, asked)
        assert b"alice proven=True" in served.body
        _wait("a challenged refresh", lambda: _challenged(native.log.refreshes()))
        refreshed = binding_of(_record(native, tmp_path).data)  # the server's record of it
        assert refreshed.jkt == binding.jkt
        assert refreshed.proven_at is not None
        assert binding.proven_at is not None
        assert refreshed.proven_at >= binding.proven_at + LIFETIME
        # more requests while the cookie lives: Chromium refreshes ahead of expiry
        for _ in range(3):
            page.goto(native.base + "/protected")
            time.sleep(0.3)
        _wait("a proactive refresh with the cached challenge", lambda: _proactive(native.log))
        # the server ends the session; the browser's next refresh hears continue:false
        ended_at = time.time()  # a proactive refresh may run beside /end itself
        page.goto(native.base + "/end")
        time.sleep(LIFETIME + 0.5)
        page.goto(native.base + "/protected")
        ended = _told_to_stop(native.log, ended_at)
        assert ended[0].bound_out in ("", None)
        after = ended[-1].at + 0.01
        time.sleep(LIFETIME + 0.5)
        page.goto(native.base + "/protected")
        page.goto(native.base + "/protected")
        assert native.log.refreshes(after) == [], "Chromium kept refreshing an ended session"
        assert _records(tmp_path) == []  # ended on the server too


_KEY_CHECK = """async () => {
  const db = await new Promise((ok, fail) => {
    const r = indexedDB.open("sessionward-binding", 1);
    r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error);
  });
  const state = await new Promise((ok, fail) => {
    const r = db.transaction("state", "readonly").objectStore("state").get("session");
    r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error);
  });
  if (!state) return null;
  let exported = true;
  try { await crypto.subtle.exportKey("pkcs8", state.key); } catch (e) { exported = false; }
  return {extractable: state.key.extractable, type: state.key.type,
          usages: state.key.usages, algorithm: state.key.algorithm.name, exported};
}"""


def test_webcrypto_fallback_with_native_dbsc_off(
    playwright_browser_type: Any, fallback: Served, tmp_path: Path
) -> None:
    with _signed_in(playwright_browser_type, fallback, native=False) as (_, page):
        registration = _wait("the fallback script to register", fallback.log.registered)[0]
        assert registration.fallback
        assert registration.proof
        binding = binding_of(_record(fallback, tmp_path).data)
        assert (binding.state, binding.method) == ("bound", "webcrypto")
        key = _wait("the key in IndexedDB", lambda: page.evaluate(_KEY_CHECK))
        assert key == {
            "extractable": False,
            "type": "private",
            "usages": ["sign"],
            "algorithm": "ECDSA",
            "exported": False,
        }
        _wait("a challenged refresh", lambda: _challenged(fallback.log.refreshes()))
        _wait("a proactive refresh with the cached challenge", lambda: _proactive(fallback.log))
        since = time.time()
        page.goto(fallback.base + "/protected")
        served = _served_with_latest_cookie(fallback.log, since)
        assert b"alice proven=True" in served.body
        page.goto(fallback.base + "/end")
        ended = _told_to_stop(fallback.log, since)
        after = ended[-1].at + 0.01
        time.sleep(LIFETIME + 1)
        assert fallback.log.refreshes(after) == [], "the script kept refreshing"
        assert _records(tmp_path) == []
        assert page.evaluate(_KEY_CHECK) is None  # the script forgot the ended session
