"""The scenario: how to log in, log out and recognise an authenticated page (TOML).

A minimal cookie-session scenario::

    [session]
    cookie = "__Host-shop"             # the session cookie's name

    [login]
    form = "/demo/login"               # GET this page, fill its password form, submit it
    username_env = "AUDIT_USER"        # credentials come from the environment
    password_env = "AUDIT_PASSWORD"

    [authenticated]
    path = "/demo/account"
    contains = "Your account"          # text only an authenticated page shows

See docs/audit.md for every table (``logout``, ``harvest``, ``action``, ``timeouts``,
``sessions``, ``jwt``, ``network``). Unknown keys are errors, so a typo never silently turns a
probe off.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sessionward.audit.errors import ScenarioError

__all__ = [
    "Action",
    "Credentials",
    "Expect",
    "Login",
    "RequestSpec",
    "Scenario",
    "load_scenario",
    "parse_scenario",
]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True, slots=True)
class Expect:
    """How to recognise success: any of ``status``; ``contains`` in the body; ``location``
    in the ``Location`` header."""

    status: tuple[int, ...] = (200,)
    contains: str | None = None
    location: str | None = None


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """A request template. ``fields_from`` names a page whose form for ``path`` supplies
    hidden fields (anti-CSRF tokens); ``form`` and ``json`` are the fields the scenario sets."""

    method: str
    path: str
    form: Mapping[str, str] | None = None
    json: Any = None
    fields_from: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Action:
    """A state-changing request for the CSRF probe, with how to tell that it worked."""

    name: str
    request: RequestSpec
    expect: Expect


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***)"


@dataclass(frozen=True, slots=True)
class Login:
    """``kind="form"``: GET ``page``, fill its form with a password field, submit it.
    ``kind="json"``: POST a JSON object to ``url``. ``token`` is the dotted path of the token
    in a JSON answer (bearer transport)."""

    kind: Literal["form", "json"]
    url: str
    page: str | None
    username_field: str
    password_field: str
    extra: Mapping[str, Any]
    username_env: str
    password_env: str
    token: str | None

    def credentials(self) -> Credentials:
        missing = [n for n in (self.username_env, self.password_env) if not os.environ.get(n)]
        if missing:
            raise ScenarioError(
                "credentials come from the environment: set " + " and ".join(missing)
            )
        return Credentials(os.environ[self.username_env], os.environ[self.password_env])


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    transport: Literal["cookie", "bearer"]
    cookie: str | None
    login: Login
    authenticated: RequestSpec
    recognise: Expect
    logout: RequestSpec | None = None
    harvest: RequestSpec | None = None
    actions: tuple[Action, ...] = ()
    idle_timeout: float | None = None
    absolute_timeout: float | None = None
    max_sessions: int | None = None
    jwks: str | None = None
    trusts_forwarded_for: bool = False
    paths: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        specs = [self.authenticated, self.logout, self.harvest, *(a.request for a in self.actions)]
        paths = [self.login.url, self.login.page, self.jwks]
        paths += [p for s in specs if s is not None for p in (s.path, s.fields_from)]
        object.__setattr__(self, "paths", tuple(p for p in paths if p))


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    return parse_scenario(data, name=Path(path).stem)


def parse_scenario(data: Mapping[str, Any], *, name: str = "scenario") -> Scenario:
    _keys(
        data,
        "",
        {
            "session",
            "login",
            "authenticated",
            "logout",
            "harvest",
            "action",
            "timeouts",
            "sessions",
            "jwt",
            "network",
            "name",
        },
    )
    session = _table(data, "session", required=True)
    _keys(session, "session", {"cookie", "transport"})
    transport = session.get("transport", "cookie" if "cookie" in session else "bearer")
    if transport not in ("cookie", "bearer"):
        raise ScenarioError("session.transport must be 'cookie' or 'bearer'")
    cookie = _opt_str(session, "cookie", "session")
    if transport == "cookie" and not cookie:
        raise ScenarioError("session.cookie (the session cookie's name) is required")
    login = _login(_table(data, "login", required=True))
    if transport == "bearer" and not login.token:
        raise ScenarioError("bearer transport needs login.token (where the token is in the answer)")
    auth = _table(data, "authenticated", required=True)
    _keys(auth, "authenticated", {"path", "method", "status", "contains", "headers"})
    recognise = _expect(auth, "authenticated")
    harvest = _table(data, "harvest")
    _keys(harvest, "harvest", {"path", "method", "form", "json", "fields_from", "headers", "login"})
    timeouts = _table(data, "timeouts")
    _keys(timeouts, "timeouts", {"idle", "absolute"})
    sessions = _table(data, "sessions")
    _keys(sessions, "sessions", {"max_per_user"})
    jwt = _table(data, "jwt")
    _keys(jwt, "jwt", {"jwks"})
    network = _table(data, "network")
    _keys(network, "network", {"trusts_forwarded_for"})
    max_sessions = sessions.get("max_per_user")
    if max_sessions is not None and (not isinstance(max_sessions, int) or max_sessions < 1):
        raise ScenarioError("sessions.max_per_user must be a positive integer")
    actions = data.get("action", [])
    if not isinstance(actions, list):
        raise ScenarioError("action must be an array of tables ([[action]])")
    return Scenario(
        name=str(data.get("name", name)),
        transport=transport,
        cookie=cookie,
        login=login,
        authenticated=_request(auth, "authenticated", default_method="GET"),
        recognise=recognise,
        logout=_request(_table(data, "logout"), "logout", "POST") if "logout" in data else None,
        harvest=None if harvest.get("login") or not harvest else _request(harvest, "harvest"),
        actions=tuple(_action(a, i) for i, a in enumerate(actions)),
        idle_timeout=_duration(timeouts.get("idle"), "timeouts.idle"),
        absolute_timeout=_duration(timeouts.get("absolute"), "timeouts.absolute"),
        max_sessions=max_sessions,
        jwks=_opt_str(jwt, "jwks", "jwt"),
        trusts_forwarded_for=bool(network.get("trusts_forwarded_for", False)),
    )


def _login(table: Mapping[str, Any]) -> Login:
    _keys(
        table,
        "login",
        {
            "form",
            "json",
            "page",
            "username_field",
            "password_field",
            "extra",
            "username_env",
            "password_env",
            "token",
        },
    )
    if ("form" in table) == ("json" in table):
        raise ScenarioError("login needs exactly one of form = PAGE or json = URL")
    kind: Literal["form", "json"] = "form" if "form" in table else "json"
    url = _path(table[kind], f"login.{kind}")
    page = _opt_str(table, "page", "login")
    extra = table.get("extra", {})
    if not isinstance(extra, dict):
        raise ScenarioError("login.extra must be a table")
    return Login(
        kind=kind,
        url=url,
        page=_path(page, "login.page") if page else (url if kind == "form" else None),
        username_field=_opt_str(table, "username_field", "login") or "username",
        password_field=_opt_str(table, "password_field", "login") or "password",
        extra=extra,
        username_env=_opt_str(table, "username_env", "login") or "SESSIONWARD_AUDIT_USER",
        password_env=_opt_str(table, "password_env", "login") or "SESSIONWARD_AUDIT_PASSWORD",
        token=_opt_str(table, "token", "login"),
    )


def _action(table: Any, index: int) -> Action:
    where = f"action[{index}]"
    if not isinstance(table, dict):
        raise ScenarioError(f"{where} must be a table")
    _keys(
        table, where, {"name", "method", "path", "form", "json", "fields_from", "headers", "expect"}
    )
    expect = table.get("expect", {})
    if not isinstance(expect, dict):
        raise ScenarioError(f"{where}.expect must be a table")
    _keys(expect, f"{where}.expect", {"status", "contains", "location"})
    request = _request(table, where, default_method="POST")
    if request.method == "GET":
        raise ScenarioError(f"{where}: an action changes state, so its method is not GET")
    return Action(str(table.get("name", request.path)), request, _expect(expect, where))


def _request(table: Mapping[str, Any], where: str, default_method: str = "GET") -> RequestSpec:
    method = str(table.get("method", default_method)).upper()
    if method not in _METHODS:
        raise ScenarioError(f"{where}.method must be one of {sorted(_METHODS)}")
    form, body = table.get("form"), table.get("json")
    if form is not None and body is not None:
        raise ScenarioError(f"{where}: give form or json, not both")
    if form is not None and not (
        isinstance(form, dict) and all(isinstance(v, str) for v in form.values())
    ):
        raise ScenarioError(f"{where}.form must be a table of strings")
    headers = table.get("headers", {})
    if not isinstance(headers, dict):
        raise ScenarioError(f"{where}.headers must be a table")
    fields_from = _opt_str(table, "fields_from", where)
    return RequestSpec(
        method=method,
        path=_path(table.get("path"), f"{where}.path"),
        form=form,
        json=body,
        fields_from=_path(fields_from, f"{where}.fields_from") if fields_from else None,
        headers={str(k).lower(): str(v) for k, v in headers.items()},
    )


def _expect(table: Mapping[str, Any], where: str) -> Expect:
    status = table.get("status", 200)
    statuses = tuple(status) if isinstance(status, list) else (status,)
    if not statuses or not all(isinstance(s, int) and 100 <= s <= 599 for s in statuses):
        raise ScenarioError(f"{where}.status must be an HTTP status or a list of them")
    return Expect(statuses, _opt_str(table, "contains", where), _opt_str(table, "location", where))


def _table(data: Mapping[str, Any], key: str, *, required: bool = False) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        if required:
            raise ScenarioError(f"the [{key}] table is required")
        return {}
    if not isinstance(value, dict):
        raise ScenarioError(f"{key} must be a table")
    return value


def _keys(table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ScenarioError(
            f"unknown key {prefix}{unknown[0]} (allowed: {', '.join(sorted(allowed))})"
        )


def _opt_str(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ScenarioError(f"{where}.{key} must be a non-empty string")
    return value


def _path(value: Any, where: str) -> str:
    """A path on the target (``/...``): the scenario cannot point the auditor elsewhere."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        raise ScenarioError(f"{where} must be a path on the target starting with '/'")
    return value


def _duration(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        if seconds > 0:
            return seconds
    raise ScenarioError(f"{where} must be a positive duration (seconds, or '90s', '15m', '8h')")
