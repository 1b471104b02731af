"""``flask.session`` under ``Sessionward`` over real HTTP (wsgiref, a SQLite file, a fake clock):
server-side data, rotation at login (``handle().login``, ``regenerate``, or Flask's
``clear()``-then-set idiom), ``clear()`` as logout, ``permanent`` as remember-me, Flask's tagged
types, and the ``SESSION_COOKIE_*`` settings honoured or refused."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, jsonify, request, session

from sessionward import MemoryStore, Policy, SessionManager, SQLiteStore
from sessionward.errors import ConfigError
from sessionward.testing import EventRecorder, FakeClock
from sessionward.web import CsrfPolicy
from sessionward.web.flask import SessionInterface, Sessionward, current_session, handle

from ._servers import Browserish, wsgi_server

POLICY = Policy(idle_timeout=600, absolute_timeout=3600)
WHEN = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def build_app(manager: SessionManager, base: str, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    csrf = CsrfPolicy([base], keys=[secrets.token_bytes(32)], require_token=False)
    Sessionward(app, manager, csrf=csrf)

    @app.get("/view")
    def view() -> Any:
        return jsonify(dict(session))

    @app.get("/whoami")
    def whoami() -> Any:
        current = current_session()
        return jsonify(user=current.user_id if current else None)

    @app.post("/cart")
    def cart() -> Any:
        session["cart"] = [*session.get("cart", []), request.form["item"]]
        return jsonify(ok=True)

    @app.post("/login")
    def login() -> Any:
        handle().login(request.form["user"])
        return jsonify(ok=True)

    @app.post("/tutorial-login")
    def tutorial_login() -> Any:
        session.clear()  # Flask's tutorial does this before recording the user
        session["user_id"] = request.form["user"]
        return jsonify(ok=True)

    @app.post("/regenerate")
    def regenerate() -> Any:
        session["user_id"] = request.form["user"]
        app.session_interface.regenerate(session)  # type: ignore[attr-defined]
        return jsonify(ok=True)

    @app.post("/logout")
    def logout() -> Any:
        session.clear()
        return jsonify(ok=True)

    @app.post("/remember")
    def remember() -> Any:
        session.permanent = request.form["on"] == "1"
        return jsonify(permanent=session.permanent)

    @app.post("/types")
    def store_types() -> Any:
        session.update(t=(1, 2), b=b"\xff", d=WHEN)
        return jsonify(ok=True)

    @app.get("/types")
    def read_types() -> Any:
        return jsonify(t=repr(session["t"]), b=repr(session["b"]), d=session["d"] == WHEN)

    @app.post("/write-then-outage")
    def write_then_outage() -> Any:
        session["lost"] = True
        manager.close()
        return jsonify(ok=True)

    return app


class Served:
    def __init__(self, base: str, manager: SessionManager, events: EventRecorder) -> None:
        self.base, self.manager, self.events = base, manager, events
        self.clients: list[Browserish] = []

    def client(self) -> Browserish:
        self.clients.append(client := Browserish(self.base, cookie_name="__Host-session"))
        return client


def serve(tmp_path: Path, **config: Any) -> Iterator[Served]:
    manager = SessionManager(SQLiteStore(str(tmp_path / "f.db")), policy=POLICY, clock=FakeClock())
    manager.events.subscribe(events := EventRecorder())
    with wsgi_server(lambda base: build_app(manager, base, **config)) as base:
        served = Served(base, manager, events)
        yield served
        for client in served.clients:
            client.close()
    manager.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(tmp_path)


def cookie_of(response: httpx.Response) -> str:
    [value] = response.headers.get_list("set-cookie")
    return value


def test_cart_in_flask_session_survives_login(served: Served) -> None:
    client = served.client()
    assert client.get("/view").json() == {}
    assert served.events.kinds() == []  # reading creates nothing
    client.post("/cart", data={"item": "book"})
    anonymous = client.token
    assert anonymous is not None
    client.post("/login", data={"user": "alice"})
    assert client.token not in (None, anonymous)
    assert client.get("/view").json() == {"cart": ["book"]}
    assert client.get("/whoami").json() == {"user": "alice"}
    assert client.get("/view", token=anonymous).json() == {}  # the pre-login token is dead
    assert client.get("/whoami", token=anonymous).json() == {"user": None}


@pytest.mark.parametrize("path", ["/tutorial-login", "/regenerate"])
def test_login_recorded_in_flask_session_rotates(served: Served, path: str) -> None:
    client = served.client()
    client.post("/cart", data={"item": "pen"})
    before = client.token
    client.post(path, data={"user": "bob"})
    assert client.token not in (None, before)
    expected = (
        {"user_id": "bob"} if path == "/tutorial-login" else {"cart": ["pen"], "user_id": "bob"}
    )
    assert client.get("/view").json() == expected
    assert client.get("/view", token=before).json() == {}


def test_clear_is_logout(served: Served) -> None:
    client = served.client()
    client.post("/login", data={"user": "alice"})
    token = client.token
    response = client.post("/logout")
    assert "Max-Age=0" in cookie_of(response)
    assert response.headers["clear-site-data"] == '"cache", "cookies", "storage"'
    assert client.get("/whoami", token=token).json() == {"user": None}


def test_permanent_is_remember_me_capped_by_the_lifetime(served: Served) -> None:
    client = served.client()
    client.post("/cart", data={"item": "book"})
    response = client.post("/remember", data={"on": "1"})
    assert response.json() == {"permanent": True}
    assert f"Max-Age={int(POLICY.absolute_timeout)}" in cookie_of(response)  # < 31 days
    response = client.post("/remember", data={"on": "0"})
    assert "Max-Age" not in cookie_of(response)
    assert client.get("/view").json() == {"cart": ["book"]}


def test_flask_types_survive_the_store(served: Served) -> None:
    client = served.client()
    client.post("/types")
    assert client.get("/types").json() == {"t": "(1, 2)", "b": "b'\\xff'", "d": True}


def test_store_outage_at_write_back_is_503(served: Served) -> None:
    response = served.client().post("/write-then-outage")
    assert response.status_code == 503
    assert response.text == "session store unavailable"
    assert "set-cookie" not in response.headers


def test_cookie_settings_are_honoured(tmp_path: Path) -> None:
    config = {
        "SESSION_COOKIE_NAME": "sid",
        "SESSION_COOKIE_SAMESITE": "Strict",
        "SESSION_COOKIE_PARTITIONED": True,
        "SESSION_PERMANENT": True,  # Flask-Session's: remembered unless the app says otherwise
        "PERMANENT_SESSION_LIFETIME": 600,
        "SESSION_COOKIE_PATH": "/",
        "APPLICATION_ROOT": "/shop",  # fine once the cookie path is said to be /
    }
    for served in serve(tmp_path, **config):
        client = Browserish(served.base, cookie_name="__Host-sid")
        served.clients.append(client)
        cookie = cookie_of(client.post("/cart", data={"item": "book"}))
        assert cookie.startswith("__Host-sid=sw1_")
        assert "; SameSite=Strict; Partitioned; Max-Age=600; Expires=" in cookie


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("SESSION_COOKIE_DOMAIN", ".example.com", "other hosts"),
        ("SESSION_COOKIE_HTTPONLY", False, "scripts"),
        ("SESSION_COOKIE_SAMESITE", "None", "cross-site"),
        ("SESSION_COOKIE_SAMESITE", "sometimes", "'Lax' or 'Strict'"),
        ("SESSION_COOKIE_PATH", "/shop", "Path=/"),
        ("APPLICATION_ROOT", "/shop", "SESSION_COOKIE_PATH = '/'"),
        ("PERMANENT_SESSION_LIFETIME", 0, "at least one second"),
    ],
)
def test_weakening_settings_are_refused(setting: str, value: object, message: str) -> None:
    app = Flask(__name__)
    app.config[setting] = value
    with pytest.raises(ConfigError, match=message):
        Sessionward(app, SessionManager(MemoryStore()), csrf=False)


def test_the_bare_interface_says_it_checks_no_csrf() -> None:
    manager = SessionManager(MemoryStore())
    policy = CsrfPolicy(["https://shop.example"], keys=[secrets.token_bytes(32)])
    with pytest.raises(ConfigError, match="Sessionward"):
        SessionInterface(manager, csrf=policy)  # type: ignore[arg-type]
    app = Flask(__name__)
    app.session_interface = SessionInterface(manager, csrf=False)

    @app.post("/")
    def write() -> str:
        session["n"] = 1
        return ""

    response = app.test_client().post("/")  # no Origin, no token: nothing checks them here
    assert response.headers["set-cookie"].startswith("__Host-session=sw1_")
    assert response.headers["vary"] == "Cookie"


def test_permanent_reads_back_after_the_session_is_saved() -> None:
    app = Flask(__name__)
    app.session_interface = SessionInterface(SessionManager(MemoryStore()), csrf=False)

    @app.post("/")
    def remember() -> str:
        session["n"] = 1
        session.permanent = True
        return ""

    client = app.test_client()
    with client:
        response = client.post("/")
        assert "Max-Age=" in response.headers["set-cookie"]
        assert session.permanent is True  # the request's session, after save_session


def test_a_challenged_request_runs_without_the_session_which_survives(tmp_path: Path) -> None:
    pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
    from sessionward.errors import RiskChallenge
    from sessionward.manager.risk import RiskAssessor

    safari = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like"
        " Gecko) Version/17.4 Safari/605.1.15"
    )
    owner = {"User-Agent": safari, "Accept-Language": "en-GB"}
    thief = {**owner, "User-Agent": safari.replace("Version/17.4", "Version/18.1")}
    manager = SessionManager(SQLiteStore(tmp_path / "s.db"), clock=FakeClock(), risk=RiskAssessor())
    app = Flask(__name__)
    app.session_interface = SessionInterface(manager, csrf=False)

    @app.post("/login")
    def login() -> str:
        session["who"] = "alice"
        handle().login("alice")
        return ""

    @app.get("/me")
    def me() -> Any:
        challenge = request.environ.get("sessionward.challenge")
        codes = list(challenge.codes) if isinstance(challenge, RiskChallenge) else []
        return jsonify(user=session.get("who"), challenge=codes)

    client = app.test_client()
    home = {"REMOTE_ADDR": "81.2.69.160"}
    assert client.post("/login", headers=owner, environ_base=home).status_code == 200
    assert client.get("/me", headers=owner, environ_base=home).json == {
        "user": "alice",
        "challenge": [],
    }
    stolen = client.get("/me", headers=thief, environ_base={"REMOTE_ADDR": "73.1.2.3"})
    assert stolen.status_code == 200
    assert stolen.json is not None
    assert stolen.json["user"] is None
    assert stolen.json["challenge"]
    assert "set-cookie" not in stolen.headers  # the owner's cookie is left alone
    again = client.get("/me", headers=owner, environ_base=home)
    assert again.json == {"user": "alice", "challenge": []}
