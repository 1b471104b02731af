"""The admin page and the demo shop over real HTTP without a browser: CSRF, the one-time setup
code, step-up with TOTP, and the security headers."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from sessionward.service import ServiceConfig, create_app
from sessionward.service.passwords import totp_now
from sessionward.service.runtime import Runtime
from sessionward.service.setup import new_setup_code
from sessionward.service.state import UserRow
from sessionward.testing import FakeClock

from ._server import serve

_OPEN: list[Client] = []
ADMIN_TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


class Client:
    """Keeps the two ``__Host-`` cookies by hand (httpx never sends Secure cookies over http)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=10)
        self.cookies: dict[str, str] = {}
        _OPEN.append(self)

    def request(
        self, method: str, path: str, *, origin: str | None = None, **kw: object
    ) -> httpx.Response:
        headers = {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if method == "POST":  # what a browser sends (Fetch Metadata)
            headers["sec-fetch-site"] = "same-origin" if origin is None else "cross-site"
            headers["origin"] = origin or self.base
        response = self.http.request(method, path, headers=headers, **kw)  # type: ignore[arg-type]
        for value in response.headers.get_list("set-cookie"):
            name, _, rest = value.partition("=")
            token = rest.split(";")[0]
            if token:
                self.cookies[name] = token
            else:
                self.cookies.pop(name, None)
        return response

    def csrf(self, path: str) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', self.request("GET", path).text)
        assert match
        return match.group(1)

    def post_form(
        self, path: str, form: dict[str, str], *, csrf_from: str, origin: str | None = None
    ) -> httpx.Response:
        data = {"csrf_token": self.csrf(csrf_from), **form}
        return self.request("POST", path, data=data, origin=origin)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Runtime]]:
    """The service, on a fake clock (``runtime.manager.clock``) that one-time codes follow."""
    app = create_app(ServiceConfig(store=str(tmp_path / "pages.db")), clock=FakeClock())
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base:
            yield base, runtime
    finally:
        while _OPEN:
            _OPEN.pop().http.close()
        asyncio.run(runtime.close())


def test_setup_code_works_once_and_wrong_codes_fail(site: tuple[str, Runtime]) -> None:
    base, runtime = site
    code = new_setup_code(runtime.state, time.time())
    first = Client(base)
    form = {"username": "root", "password": "a long admin password"}
    wrong = first.post_form("/admin/setup", {**form, "code": "nope"}, csrf_from="/admin/setup")
    assert wrong.status_code == 400
    assert runtime.state.count_users("admin") == 0
    done = first.post_form("/admin/setup", {**form, "code": code}, csrf_from="/admin/setup")
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/enrol"  # the password alone opens nothing else
    assert first.request("GET", "/admin/").headers["location"] == "/admin/enrol"
    assert "Signed in as root" in first.request("GET", "/admin/enrol").text
    second = Client(base)
    again = second.request("GET", "/admin/setup")
    assert again.status_code == 303
    assert again.headers["location"] == "/admin/login"


def test_admin_forms_refuse_cross_site_posts(site: tuple[str, Runtime]) -> None:
    base, runtime = site
    runtime.state.add_user(
        UserRow("admin", "root", PasswordHasher().hash("admin password 1"), ADMIN_TOTP, 0)
    )
    admin = Client(base)
    login = admin.post_form(
        "/admin/login",
        {"username": "root", "password": "admin password 1"},
        csrf_from="/admin/login",
    )
    assert login.headers["location"] == "/admin/login/code"
    code = totp_now(ADMIN_TOTP, runtime.manager.clock.now())
    second = admin.post_form("/admin/login/code", {"code": code}, csrf_from="/admin/login/code")
    assert second.headers["location"] == "/admin/"
    token = admin.csrf("/admin/")
    forged = admin.request(
        "POST",
        "/admin/users/revoke",
        data={"csrf_token": token, "user": "x"},
        origin="https://evil.example",
    )
    assert forged.status_code == 403
    no_token = admin.request("POST", "/admin/users/revoke", data={"user": "x"})
    assert no_token.status_code == 403
    ok = admin.request("POST", "/admin/users/revoke", data={"csrf_token": token, "user": "x"})
    assert ok.status_code == 303
    bad_login = Client(base).post_form(
        "/admin/login", {"username": "root", "password": "wrong"}, csrf_from="/admin/login"
    )
    assert bad_login.status_code == 401
    assert Client(base).request("GET", "/admin/stream").status_code == 401


def test_pages_send_security_headers(site: tuple[str, Runtime]) -> None:
    base, _ = site
    response = Client(base).request("GET", "/demo/")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    cookie = response.headers["set-cookie"]  # a guest gets the form token's nonce, no session
    assert cookie.startswith("__Host-shop-csrf=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_checkout_needs_step_up_once_totp_is_on(site: tuple[str, Runtime]) -> None:
    base, runtime = site
    shopper = Client(base)
    created = shopper.post_form(
        "/demo/register",
        {"username": "tess", "password": "tess-password"},
        csrf_from="/demo/register",
    )
    assert created.headers["location"] == "/demo/login?msg=registered"
    shopper.post_form(
        "/demo/login", {"username": "tess", "password": "tess-password"}, csrf_from="/demo/login"
    )
    page = shopper.request("GET", "/demo/account").text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)
    assert secret
    form = {"action": "on", "password_on": "tess-password", "new_code_on": "000000"}
    wrong = shopper.post_form("/demo/account/totp", form, csrf_from="/demo/account")
    assert wrong.headers["location"].endswith("msg=bad-code")
    clock = runtime.manager.clock
    assert isinstance(clock, FakeClock)
    code = totp_now(secret.group(1), clock.now())
    on = shopper.post_form(
        "/demo/account/totp", {**form, "new_code_on": code}, csrf_from="/demo/account"
    )
    assert "msg=totp-on" in on.headers["location"]
    assert runtime.state.get_user("demo", "tess").totp_secret == secret.group(1)  # type: ignore[union-attr]
    # A fresh sign-in (level 1) must step up before checkout.
    shopper.post_form("/demo/logout", {}, csrf_from="/demo/")
    shopper.post_form(
        "/demo/login", {"username": "tess", "password": "tess-password"}, csrf_from="/demo/login"
    )
    shopper.post_form("/demo/cart/add", {"item": "tea"}, csrf_from="/demo/")
    blocked = shopper.post_form("/demo/checkout", {}, csrf_from="/demo/cart")
    assert blocked.headers["location"] == "/demo/step-up?next=checkout"
    # The code that turned TOTP on is used up (RFC 6238 5.2); the next step's code works.
    reused = shopper.post_form("/demo/step-up", {"code": code}, csrf_from="/demo/step-up")
    assert reused.status_code == 200
    assert "used already" in reused.text
    later = totp_now(secret.group(1), clock.advance(30))
    stepped = shopper.post_form("/demo/step-up", {"code": later}, csrf_from="/demo/step-up")
    assert stepped.headers["location"] == "/demo/cart"
    placed = shopper.post_form("/demo/checkout", {}, csrf_from="/demo/cart")
    assert placed.headers["location"] == "/demo/?msg=ordered"


def test_a_user_cannot_sign_out_someone_elses_device(site: tuple[str, Runtime]) -> None:
    base, runtime = site
    for name in ("ann", "ben"):
        runtime.state.add_user(
            UserRow("demo", name, PasswordHasher().hash(f"{name}-password"), None, 0)
        )
    ann, ben = Client(base), Client(base)
    for client, name in ((ann, "ann"), (ben, "ben")):
        client.post_form(
            "/demo/login",
            {"username": name, "password": f"{name}-password"},
            csrf_from="/demo/login",
        )
    ben_session = asyncio.run(runtime.manager.list_user("ben"))[0].id
    # ann's password is right, but the session is not hers.
    target = f"/demo/devices/{ben_session}/sign-out"
    ann.post_form(target, {"password": "ann-password"}, csrf_from="/demo/devices")
    assert asyncio.run(runtime.manager.get(ben_session)) is not None
    assert "ben" in ben.request("GET", "/demo/account").text
