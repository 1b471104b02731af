"""A Flask app with sessionward: sign in, account page, logout, logout everywhere.

    python examples/flask_app.py               # http://localhost:8001
    python examples/flask_app.py --dev-http    # plain-http cookie, loud warning

Demo users: alice / wonderland, bob / builder.
"""

from __future__ import annotations

import argparse
import hmac
import secrets

from flask import Flask, redirect, render_template_string, request
from werkzeug.wrappers import Response

from sessionward import SessionManager, SQLiteStore
from sessionward.web import CookiePolicy, CsrfPolicy
from sessionward.web.flask import Sessionward, current_session, handle, require_user

USERS = {"alice": "wonderland", "bob": "builder"}  # demo only; use a password hasher

LOGIN = """<form method="post"><input name="username"> <input name="password" type="password">
<input type="hidden" name="csrf_token" value="{{ csrf_token() }}"><button>Sign in</button></form>"""
ACCOUNT = """<p>Hello {{ user }}. Visits this session: {{ visits }}</p>
<form method="post" action="/logout"><input type="hidden" name="csrf_token"
 value="{{ csrf_token() }}"><button>Log out</button></form>
<form method="post" action="/logout-everywhere"><input type="hidden" name="csrf_token"
 value="{{ csrf_token() }}"><button>Log out everywhere</button></form>"""


def create_app(
    db: str = "flask-sessions.db",
    origins: tuple[str, ...] = ("http://localhost:8001", "http://127.0.0.1:8001"),
    dev_http: bool = False,
) -> Flask:
    app = Flask(__name__)
    Sessionward(
        app,
        SessionManager(SQLiteStore(db)),
        cookie=CookiePolicy(insecure_http_localhost=dev_http),
        csrf=CsrfPolicy(origins, keys=[secrets.token_bytes(32)]),
    )

    @app.get("/")
    def home() -> Response | str:
        session = current_session()
        if session is None or session.user_id is None:
            return redirect("/login", 303)
        return redirect("/account", 303)

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Response | str:
        if request.method == "POST":
            username = request.form.get("username", "")
            expected = USERS.get(username, secrets.token_hex(16))
            if hmac.compare_digest(expected.encode(), request.form.get("password", "").encode()):
                handle().login(username)
                return redirect("/account", 303)
        return render_template_string(LOGIN)

    @app.get("/account")
    @require_user
    def account() -> str:
        session = handle().update_data(lambda d: d.update(visits=d.get("visits", 0) + 1))
        return render_template_string(ACCOUNT, user=session.user_id, visits=session.data["visits"])

    @app.post("/logout")
    def logout() -> Response:
        handle().logout()
        return redirect("/login", 303)

    @app.post("/logout-everywhere")
    @require_user
    def logout_everywhere() -> Response:
        handle().logout_everywhere()
        return redirect("/login", 303)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--dev-http", action="store_true")
    args = parser.parse_args()
    origins = (f"http://localhost:{args.port}", f"http://127.0.0.1:{args.port}")
    create_app(origins=origins, dev_http=args.dev_http).run("127.0.0.1", args.port)


if __name__ == "__main__":
    main()
