"""A small Flask shop with sessionward: a cart in ``flask.session`` that survives sign-in, an
account page, logout (``session.clear()``) and logout everywhere.

    python examples/flask_app.py               # http://localhost:8001
    python examples/flask_app.py --dev-http    # plain-http cookie, loud warning

Demo users: alice / wonderland, bob / builder. Pages that need a user send a visitor to sign
in (and back after); ``require_user`` (a 401 answer) is for JSON endpoints.
"""

from __future__ import annotations

import argparse
import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar
from urllib.parse import quote

from flask import Flask, redirect, render_template_string, request, session
from werkzeug.wrappers import Response

from sessionward import SessionManager, SQLiteStore
from sessionward.web import CookiePolicy, CsrfPolicy
from sessionward.web.flask import Sessionward, current_session, handle, require_user

PRODUCTS = {"book": 12, "pen": 2, "mug": 8}
USERS = {"alice": "wonderland", "bob": "builder"}  # demo only; use a password hasher

CSRF = '<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">'
SHOP = (
    "<h1>Shop</h1><p>{% if user %}Signed in as {{ user }}. <a href='/account'>Account</a>"
    "{% else %}<a href='/login'>Sign in</a>{% endif %}</p>"
    "{% for product, price in products.items() %}<form method='post' action='/cart'>"
    f"<input type='hidden' name='product' value='{{{{ product }}}}'>{CSRF}"
    "<button>Add {{ product }} (${{ price }})</button></form>{% endfor %}"
    "<p>Cart: {{ cart | join(', ') or 'empty' }}</p>"
)
LOGIN = (
    "<h1>Sign in</h1>"
    "{% if wrong %}<p role='alert'><strong>Wrong username or password.</strong> Try again."
    "</p>{% elif next %}<p>Please sign in to continue.</p>{% endif %}"
    '<form method="post">'
    "<label>Username <input name='username' value='{{ username }}' autocomplete='username'"
    " required></label> <label>Password <input name='password' type='password'"
    f" autocomplete='current-password' required></label>{CSRF}"
    "<input type='hidden' name='next' value='{{ next }}'>"
    "<button>Sign in</button></form>"
)

P = ParamSpec("P")
R = TypeVar("R")


def sign_in_first(view: Callable[P, R]) -> Callable[P, R | Response]:
    """For pages: a visitor without a signed-in session is sent to sign in, then back."""

    @wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        current = current_session()
        if current is None or current.user_id is None:
            return redirect(f"/login?next={quote(request.path)}", 303)
        return view(*args, **kwargs)

    return guarded


def _safe_next(target: str) -> str:
    """Only a path of this site (never ``//elsewhere`` or a full URL): no open redirect."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/account"


ACCOUNT = (
    "<h1>Account</h1><p>Hello {{ user }}. Cart: {{ cart | join(', ') or 'empty' }}."
    " Visits this session: {{ visits }}</p>"
    f'<form method="post" action="/logout">{CSRF}<button>Log out</button></form>'
    f'<form method="post" action="/logout-everywhere">{CSRF}'
    "<button>Log out everywhere</button></form><p><a href='/'>Shop</a></p>"
)


def create_app(
    db: str = "flask-sessions.db",
    origins: tuple[str, ...] = ("http://localhost:8001", "http://127.0.0.1:8001"),
    dev_http: bool = False,
) -> Flask:
    app = Flask(__name__)
    Sessionward(
        app,
        SessionManager(SQLiteStore(db)),
        cookie=CookiePolicy(name="session", insecure_http_localhost=dev_http),
        csrf=CsrfPolicy(origins, keys=[secrets.token_bytes(32)]),
    )

    def user() -> str | None:
        current = current_session()
        return current.user_id if current else None

    @app.get("/")
    def home() -> str:
        cart = session.get("cart", [])
        return render_template_string(SHOP, user=user(), products=PRODUCTS, cart=cart)

    @app.post("/cart")
    def add() -> Response:
        product = request.form.get("product", "")
        if product in PRODUCTS:  # the first write starts an (anonymous) session
            session["cart"] = [*session.get("cart", []), product]
        return redirect("/", 303)

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Response | str | tuple[str, int]:
        if request.method == "POST":
            username = request.form.get("username", "")
            target = _safe_next(request.form.get("next", ""))
            expected = USERS.get(username, secrets.token_hex(16))
            if hmac.compare_digest(expected.encode(), request.form.get("password", "").encode()):
                handle().login(username)  # new token; the cart carries over, the old one dies
                return redirect(target, 303)
            page = render_template_string(LOGIN, wrong=True, username=username, next=target)
            return page, 401
        target = request.args.get("next", "")
        return render_template_string(LOGIN, wrong=False, username="", next=target)

    @app.get("/account")
    @sign_in_first
    def account() -> str:
        session["visits"] = session.get("visits", 0) + 1
        return render_template_string(
            ACCOUNT, user=user(), cart=session.get("cart", []), visits=session["visits"]
        )

    @app.post("/logout")
    def logout() -> Response:
        session.clear()  # ends the session server-side and expires the cookie
        return redirect("/", 303)

    @app.post("/logout-everywhere")
    @require_user
    def logout_everywhere() -> Response:
        handle().logout_everywhere()
        return redirect("/login", 303)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8001, help="default 8001")
    parser.add_argument("--dev-http", action="store_true", help="insecure cookie for plain http")
    args = parser.parse_args()
    origins = (f"http://localhost:{args.port}", f"http://127.0.0.1:{args.port}")
    create_app(origins=origins, dev_http=args.dev_http).run("127.0.0.1", args.port)


if __name__ == "__main__":
    main()
