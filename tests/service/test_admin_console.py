"""The admin console's own security, over real HTTP with a fake clock: a second factor before
any console page (ASVS 6.3.3), a sign-out control on every page (7.4.4), ending every session
of every user behind both factors (7.4.5), the password change (6.2.2, 6.2.3, 7.4.3), its
own origin (3.5.4), and every factor check logged (16.3.1)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionward.service.setup import new_setup_code

from ._forms import TOTP, Site, site_at

ADMIN_PASSWORD = "staple battery horse"  # noqa: S105 - a test account's


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with site_at(tmp_path) as site:
        site.add_user("admin", "root", ADMIN_PASSWORD, TOTP)
        yield site


CONSOLE = ["/admin/", "/admin/users?user=ann", "/admin/account", "/admin/revoke-all"]


def test_the_password_alone_opens_no_console_page(site: Site) -> None:
    admin = site.browser()
    form = {"username": "root", "password": ADMIN_PASSWORD}
    assert admin.post("/admin/login", form, csrf_from="/admin/login").status_code == 303
    for path in CONSOLE:
        assert admin.get(path).headers["location"] == "/admin/login", path
    assert admin.get("/admin/stream").status_code == 401
    wrong = admin.post("/admin/login/code", {"code": "000000"}, csrf_from="/admin/login/code")
    assert wrong.status_code == 401
    site.clock.advance(301)  # a proven password waits five minutes for its code, no more
    late = admin.post("/admin/login/code", {"code": site.code()}, csrf_from="/admin/login")
    assert late.headers["location"] == "/admin/login"
    admin.admin_login(site, "root", ADMIN_PASSWORD)
    assert all(admin.get(path).status_code == 200 for path in CONSOLE)


def test_a_new_admin_sets_up_the_second_factor_before_anything_else(site: Site) -> None:
    site.runtime.state.set_totp("admin", "root", None)
    admin = site.browser()
    form = {"username": "root", "password": ADMIN_PASSWORD}
    assert admin.post("/admin/login", form, csrf_from="/admin/login").headers["location"] == (
        "/admin/enrol"
    )
    for path in CONSOLE:
        assert admin.get(path).headers["location"] == "/admin/enrol", path
    page = admin.get("/admin/enrol").text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)
    assert secret
    refused = admin.post("/admin/enrol", {"code": "123456"}, csrf_from="/admin/enrol")
    assert refused.status_code == 400
    done = admin.post(
        "/admin/enrol", {"code": site.code(secret.group(1))}, csrf_from="/admin/enrol"
    )
    assert done.headers["location"] == "/admin/"
    assert site.runtime.state.get_user("admin", "root").totp_secret == secret.group(1)  # type: ignore[union-attr]
    assert admin.get("/admin/").status_code == 200
    [notice] = site.kinds("factor-changed")
    assert (notice["user_id"], notice["factor"], notice["change"]) == ("root", "totp", "enrolled")
    # The next sign-in asks for the code.
    again = site.browser()
    first = again.post("/admin/login", form, csrf_from="/admin/login")
    assert first.headers["location"] == "/admin/login/code"


def test_every_console_page_has_a_sign_out_control(site: Site) -> None:
    admin = site.browser()
    admin.admin_login(site, "root", ADMIN_PASSWORD)
    session_id = site.runtime.activity.latest(1)[0]["session_id"]
    for path in [*CONSOLE, f"/admin/sessions/{session_id}"]:
        page = admin.get(path).text
        nav = page[page.index("<nav") : page.index("</nav>")]
        assert 'action="/admin/logout"' in nav, path
        assert ">Sign out</button>" in nav, path
    out = admin.post("/admin/logout", {}, csrf_from="/admin/")
    assert out.headers["location"] == "/admin/login"
    assert admin.get("/admin/").headers["location"] == "/admin/login"


def _shop_session(site: Site, name: str) -> str:
    client = site.browser()
    client.shop_login(name, f"{name}-password")
    return client.cookies["__Host-shop"]


def _signed_in(site: Site, token: str) -> bool:
    response = httpx.get(site.base + "/demo/account", headers={"cookie": f"__Host-shop={token}"})
    return response.status_code == 200


def test_ending_every_session_needs_both_factors_and_spares_the_admin(site: Site) -> None:
    for name in ("ann", "ben"):
        site.add_user("demo", name, f"{name}-password")
    tokens = [_shop_session(site, n) for n in ("ann", "ben", "ann")]
    admin = site.browser()
    admin.admin_login(site, "root", ADMIN_PASSWORD)
    other_admin = site.browser()
    site.clock.advance(30)  # the next code
    other_admin.admin_login(site, "root", ADMIN_PASSWORD)
    assert "End every session" in admin.get("/admin/revoke-all").text  # GET only asks
    assert all(_signed_in(site, t) for t in tokens)
    site.clock.advance(30)  # a code works once: the other sign-in used this step's
    for form in (
        {"password": ADMIN_PASSWORD, "code": "000000"},
        {"password": "not it", "code": site.code()},
    ):
        refused = admin.post("/admin/revoke-all", form, csrf_from="/admin/revoke-all")
        assert refused.status_code == 401
        assert all(_signed_in(site, t) for t in tokens)
    done = admin.post(
        "/admin/revoke-all",
        {"password": ADMIN_PASSWORD, "code": site.code()},
        csrf_from="/admin/revoke-all",
    )
    assert done.status_code == 200
    assert "Ended" in done.text
    assert not any(_signed_in(site, t) for t in tokens)
    assert admin.get("/admin/").status_code == 200  # this admin session stays
    assert other_admin.get("/admin/").headers["location"] == "/admin/login"
    [event] = site.kinds("all-revoked")
    assert event["count"] >= 4  # three shop sessions, the other admin, anonymous ones


def test_changing_the_admin_password(site: Site) -> None:
    admin = site.browser()
    admin.admin_login(site, "root", ADMIN_PASSWORD)
    elsewhere = site.browser()
    site.clock.advance(30)
    elsewhere.admin_login(site, "root", ADMIN_PASSWORD)
    site.clock.advance(30)  # a code works once: that sign-in used this step's
    new = "a quite different admin phrase"
    form = {"password": ADMIN_PASSWORD, "code": site.code(), "new_password": new}
    wrong = admin.post("/admin/account", {**form, "password": "guess"}, csrf_from="/admin/account")
    assert wrong.status_code == 401
    common = admin.post(
        "/admin/account", {**form, "new_password": "password1234"}, csrf_from="/admin/account"
    )
    assert common.status_code == 400
    assert "most common" in common.text
    kept = admin.post(
        "/admin/account", {**form, "sign_out_others": "on"}, csrf_from="/admin/account"
    )
    assert kept.status_code == 200
    assert "Signed out 1 other admin session" in kept.text
    assert elsewhere.get("/admin/").headers["location"] == "/admin/login"
    assert admin.get("/admin/").status_code == 200
    site.clock.advance(30)
    fresh = site.browser()
    old = fresh.post(
        "/admin/login", {"username": "root", "password": ADMIN_PASSWORD}, csrf_from="/admin/login"
    )
    assert old.status_code == 401
    fresh.admin_login(site, "root", new)


def test_failed_attempts_are_security_events(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    code = new_setup_code(site.runtime.state, time.time())
    admin = site.browser()
    with caplog.at_level(logging.INFO, logger="sessionward.events"):
        admin.post(
            "/admin/login", {"username": "root", "password": "guess 1"}, csrf_from="/admin/login"
        )
        admin.post(
            "/admin/login", {"username": "nobody", "password": "x"}, csrf_from="/admin/login"
        )
        admin.admin_login(site, "root", ADMIN_PASSWORD)
    attempts = site.kinds("authentication")
    summary = [(e["user_id"], e["factor"], e["succeeded"]) for e in attempts]
    assert summary == [
        ("root", "password", False),
        ("nobody", "password", False),
        ("root", "password", True),
        ("root", "totp", True),
    ]
    assert all(e["ip"] == "127.0.0.1" and e["realm"] == "admin" for e in attempts)
    failed = [r for r in caplog.records if "kind=authentication" in r.getMessage()]
    assert [r.levelno for r in failed] == [logging.WARNING] * 2 + [logging.INFO] * 2
    assert not any("guess 1" in r.getMessage() or code in r.getMessage() for r in caplog.records)


def test_the_console_on_an_origin_of_its_own(tmp_path: Path) -> None:
    admin_url = "https://admin.sessions.test"
    with site_at(tmp_path, public_url="https://sessions.test", admin_url=admin_url) as site:
        site.add_user("admin", "root", ADMIN_PASSWORD, TOTP)
        main = site.browser(host="sessions.test", origin="https://sessions.test")
        assert main.get("/admin/login").status_code == 404
        assert main.get("/admin").status_code == 404
        assert main.get("/demo/").status_code == 200
        console = site.browser(host="admin.sessions.test", origin=admin_url)
        assert console.get("/").headers["location"] == "/admin/"
        assert console.get("/demo/").status_code == 404
        assert console.get("/healthz").status_code == 404
        page = console.get("/admin/login")
        assert page.status_code == 200
        assert 'href="/demo/"' not in page.text  # no link back to the other application
        console.admin_login(site, "root", ADMIN_PASSWORD)
        assert console.get("/admin/").status_code == 200
        # A form posted from the main origin is cross-origin for the console.
        token = console.csrf("/admin/")
        forged = console.http.post(
            "/admin/users/revoke",
            data={"csrf_token": token, "user": "x"},
            headers={
                "cookie": "; ".join(f"{k}={v}" for k, v in console.cookies.items()),
                "origin": "https://sessions.test",
                "sec-fetch-site": "same-site",
            },
        )
        assert forged.status_code == 403


def test_console_pages_explain_themselves(site: Site) -> None:
    site.add_user("demo", "ann", "ann-password")
    _shop_session(site, "ann")
    admin = site.browser()
    admin.admin_login(site, "root", ADMIN_PASSWORD)
    dashboard = admin.get("/admin/").text
    assert '<ul class="feed" id="feed">' in dashboard  # no numbers that lose digits
    assert "<ol" not in dashboard
    user_page = admin.get("/admin/users?user=ann").text
    assert "End the session of ann (demo shop)…" in user_page
    assert "1 sessions" not in user_page
    session_id = site.runtime.activity.latest(1)[0]["session_id"]
    detail = admin.get(f"/admin/sessions/{session_id}").text
    assert "level 2: password and a one-time code (two factors)" in detail
    assert "will add" not in detail  # nothing about what might come one day
    # A destructive action's link leads to a question, not to the action.
    question = admin.get(f"/admin/sessions/{session_id}/revoke")
    assert question.status_code == 200
    assert "This cannot be undone." in question.text
    assert site.runtime.activity.latest(1)[0]["kind"] != "revoked"
