"""A cookie-session shop with planted flaws, for the auditor's tests. Do not copy any of it.

Users: ``alice`` / ``wonderland``. Routes: ``/`` (products, a pre-login session starts
here), ``/login``, ``/account`` (authenticated: "Account of <name>"), ``/cart/add``,
``/logout``.

Planted flaws (each is what the test expects the auditor to find; the finding id follows):

1. Predictable tokens, from ``TOKENS[generator]``: ``md5-time`` is ``md5(str(time.time()))``,
   ``seeded-random`` is ``random.Random(milliseconds).getrandbits(128)``, ``counter`` a hex
   counter (``token-predictable``).
2. The session cookie is ``SID=<token>; Path=/``: no ``Secure``, ``HttpOnly``, ``SameSite``
   or prefix (``cookie-no-secure``, ``cookie-no-httponly``, ``cookie-no-samesite``,
   ``cookie-no-prefix``).
3. No new token at login: the pre-login session becomes the signed-in one
   (``fixation-no-rotation``).
4. Unknown session ids sent by the client are adopted (``fixation-adopted-id``).
5. Login redirects to ``/account?sid=<token>`` and ``/account`` accepts the id from the
   query string (``token-in-url``, ``token-accepted-from-url``).
6. ``/account`` prints the token in an HTML comment and sends no ``Cache-Control``
   (``token-in-body``, ``cache-missing``).
7. Logout only deletes the cookie; the session lives on (``logout-replay``).
8. No CSRF defence on ``/cart/add`` (POST and GET) or on ``/login`` (``csrf-cross-site``,
   ``csrf-get``, ``csrf-login``).
9. No idle timeout and no session cap, against a stated 2 s idle timeout and one session
   per user (``timeout-idle-exceeded``, ``concurrent-over-limit``).
"""

from __future__ import annotations

import hashlib
import itertools
import random
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

USERS = {"alice": "wonderland"}
_counter = itertools.count(0x5EED0000)


def _md5_time() -> str:
    return hashlib.md5(str(time.time()).encode()).hexdigest()  # noqa: S324 - planted flaw


def _seeded_random() -> str:
    generator = random.Random(time.time_ns() // 1_000_000)
    return format(generator.getrandbits(128), "032x")


def _counter_token() -> str:
    return format(next(_counter), "032x")


TOKENS: dict[str, Callable[[], str]] = {
    "md5-time": _md5_time,
    "seeded-random": _seeded_random,
    "counter": _counter_token,
}


def create_app(generator: str = "md5-time") -> Starlette:
    new_token = TOKENS[generator]
    sessions: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def session(request: Request, *, create: bool) -> tuple[str | None, dict[str, Any] | None]:
        sid = request.cookies.get("SID") or request.query_params.get("sid")
        with lock:
            if sid and sid not in sessions and create:
                sessions[sid] = {"user": None, "cart": []}  # adopts a client-chosen id
            if (not sid or sid not in sessions) and create:
                sid = new_token()
                sessions[sid] = {"user": None, "cart": []}
            return sid, sessions.get(sid or "")

    def with_cookie(response: Response, sid: str | None) -> Response:
        if sid:
            response.headers.append("set-cookie", f"SID={sid}; Path=/")
        return response

    async def home(request: Request) -> Response:
        sid, _ = session(request, create=True)
        page = (
            "<h1>Weak shop</h1><form method='post' action='/cart/add'>"
            "<input type='hidden' name='item' value='tea'><button>Add tea</button></form>"
        )
        return with_cookie(HTMLResponse(page), sid if "SID" not in request.cookies else None)

    async def login(request: Request) -> Response:
        sid, data = session(request, create=True)
        assert data is not None
        if request.method == "POST":
            form = parse_qs((await request.body()).decode())
            name = form.get("username", [""])[0]
            if USERS.get(name) == form.get("password", [""])[0]:
                data["user"] = name  # same token before and after login
                response = RedirectResponse(f"/account?sid={sid}", status_code=303)
                return with_cookie(response, sid)
        page = (
            "<form method='post' action='/login'><input name='username'>"
            "<input type='password' name='password'><button>Sign in</button></form>"
        )
        return with_cookie(HTMLResponse(page), sid)

    async def account(request: Request) -> Response:
        sid, data = session(request, create=False)
        if not data or not data["user"]:
            return RedirectResponse("/login", status_code=303)
        page = (
            f"<h1>Account of {data['user']}</h1><!-- debug: session {sid} -->"
            f"<p>{len(data['cart'])} items</p>"
        )
        return HTMLResponse(page)

    async def cart_add(request: Request) -> Response:
        _, data = session(request, create=False)
        if not data or not data["user"]:
            return RedirectResponse("/login", status_code=303)
        if request.method == "POST":
            item = parse_qs((await request.body()).decode()).get("item", ["?"])[0]
        else:
            item = request.query_params.get("item", "?")
        data["cart"].append(item)
        return RedirectResponse("/account", status_code=303)

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/", status_code=303)
        response.headers.append("set-cookie", "SID=; Path=/; Max-Age=0")
        return response  # the server-side session is left alone

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/account", account),
            Route("/cart/add", cart_add, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST"]),
        ]
    )
    app.state.sessions = sessions  # the tests check that no token reaches a report
    return app


#: Flaw number -> the findings that must report it.
EXPECTED = {
    1: {"token-predictable"},
    2: {"cookie-no-secure", "cookie-no-httponly", "cookie-no-samesite", "cookie-no-prefix"},
    3: {"fixation-no-rotation"},
    4: {"fixation-adopted-id"},
    5: {"token-in-url", "token-accepted-from-url"},
    6: {"token-in-body", "cache-missing"},
    7: {"logout-replay"},
    8: {"csrf-cross-site", "csrf-get", "csrf-login"},
    9: {"timeout-idle-exceeded", "concurrent-over-limit"},
}

SCENARIO = """
[session]
cookie = "SID"

[login]
form = "/login"
username_env = "WEAK_USER"
password_env = "WEAK_PASSWORD"

[authenticated]
path = "/account"
contains = "Account of"

[logout]
path = "/logout"

[harvest]
path = "/"

[[action]]
name = "add to cart"
path = "/cart/add"
form = { item = "tea" }
expect = { status = [303], location = "/account" }

[timeouts]
idle = 2

[sessions]
max_per_user = 1
"""
