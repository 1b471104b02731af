"""What the service logs as security events beyond the factor checks (ASVS 16.3.2-16.3.4), and
how sensitive operations are reached (3.5.3, 3.5.5-3.5.7, 6.3.2, 6.4.2, 6.2.10), over real
HTTP."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionward.service.passwords import DUMMY_HASH

from ._forms import TOTP, Site, site_at
from .conftest import Service


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with site_at(tmp_path) as site:
        yield site


def test_refused_api_keys_and_scopes_are_logged(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sessionward.service"):
        service.client.post("/v1/sessions", json={})
        service.client.post("/v1/sessions", json={}, headers={"authorization": "Bearer swk_x"})
        service.client.post("/v1/sessions", json={}, headers=service.auth("validate"))
        service.client.post("/v1/sessions", json={}, headers=service.auth("issue"))
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if "refused" in r.getMessage()]
    assert lines == [
        (logging.WARNING, "API issue refused: unauthenticated, client 127.0.0.1"),
        (logging.WARNING, "API issue refused: unauthenticated, client 127.0.0.1"),
        (logging.WARNING, "API issue refused: forbidden, client 127.0.0.1"),
    ]


def test_bypass_attempts_and_unexpected_errors_are_logged(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        service.client.post(
            "/v1/sessions/validate", json={"token": "sw1_forged"}, headers=service.auth("validate")
        )
        asyncio.run(service.runtime.manager.store.close())  # the store fails under the API
        service.client.post("/v1/sessions", json={}, headers=service.auth("issue"))
    messages = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert any(
        name == "sessionward.events" and "kind=rejected" in text and "reason=malformed" in text
        for name, _, text in messages
    )
    outage = "session store unavailable: StoreUnavailable"
    assert ("sessionward.service", logging.ERROR, outage) in messages


def test_cross_site_form_posts_are_refused_and_logged(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    shopper = site.browser()
    token = shopper.csrf("/demo/")
    with caplog.at_level(logging.INFO, logger="sessionward.web"):
        forged = shopper.http.post(
            "/demo/cart/add",
            data={"csrf_token": token, "item": "tea"},
            headers={
                # A guest's form token is bound to a nonce cookie (no session yet).
                "cookie": "; ".join(f"{k}={v}" for k, v in shopper.cookies.items()),
                "origin": "https://evil.example",
                "sec-fetch-site": "cross-site",
            },
        )
    assert forged.status_code == 403
    assert any("refused request: csrf" in r.getMessage() for r in caplog.records)


SENSITIVE_POSTS = [
    "/admin/logout",
    "/demo/logout",
    "/demo/cart/add",
    "/demo/checkout",
    "/demo/account/totp",
    "/demo/account/password",
    "/demo/devices/sign-out-others",
]


def test_sensitive_operations_take_post_only(site: Site) -> None:
    """GET, HEAD and OPTIONS never change anything; the pages that ask before a sensitive
    operation (ending every session, a user's or one, signing out a device) only show a form
    on GET."""
    site.add_user("admin", "root", "staple battery horse", TOTP)
    site.add_user("demo", "ann", "ann-password")
    admin = site.browser()
    admin.admin_login(site, "root", "staple battery horse")
    shopper = site.browser()
    shopper.shop_login("ann", "ann-password")
    other = site.browser()
    other.shop_login("ann", "ann-password")
    for path in SENSITIVE_POSTS:
        client = admin if path.startswith("/admin") else shopper
        for method in ("GET", "HEAD", "OPTIONS"):
            assert client.request(method, path).status_code == 405, (method, path)
    assert admin.get("/admin/revoke-all").status_code == 200
    assert not site.kinds("all-revoked")
    sessions = asyncio.run(site.runtime.manager.list_user("ann"))
    assert len(sessions) == 2
    assert shopper.get(f"/demo/devices/{sessions[0].id}/sign-out").status_code == 200
    assert admin.get("/admin/users/revoke?user=ann").status_code == 200
    assert admin.get(f"/admin/sessions/{sessions[1].id}/revoke").status_code == 200
    for path in ("/admin/users/revoke", f"/admin/sessions/{sessions[1].id}/revoke"):
        assert admin.request("OPTIONS", path).status_code == 405, path
    assert len(asyncio.run(site.runtime.manager.list_user("ann"))) == 2
    assert admin.get("/admin/").status_code == 200
    assert shopper.get("/demo/account").status_code == 200


def test_no_default_accounts(site: Site) -> None:
    assert site.runtime.state.count_users("admin") == 0
    assert site.runtime.state.count_users("demo") == 0
    client = site.browser()
    assert client.get("/admin/login").headers["location"] == "/admin/setup"  # a one-time code
    for name, password in (("admin", "admin"), ("root", "root"), ("demo", "demo")):
        assert client.shop_login(name, password).status_code == 401


def test_forms_ask_for_nothing_but_names_passwords_and_codes(site: Site) -> None:
    """No password hints, no secret questions: every field of every form is known."""
    site.add_user("demo", "ann", "ann-password")
    client = site.browser()
    paths = ["/demo/", "/demo/login", "/demo/register", "/admin/setup"]
    for path in paths:
        client.get(path)
    client.shop_login("ann", "ann-password")
    site.browser().shop_login("ann", "ann-password")
    fields: set[str] = set()
    for path in [*paths, "/demo/account", "/demo/devices", "/demo/cart"]:
        fields |= set(re.findall(r'<input [^>]*name="([^"]+)"', client.get(path).text))
    known = {"csrf_token", "username", "password", "new_password", "code", "item", "action"}
    known |= {f"{p}_{a}" for p in ("password", "new_code") for a in ("on", "replace", "off")}
    known |= {"sign_out_others", "user"}
    assert fields <= known, fields - known


def test_a_password_does_not_age(site: Site) -> None:
    site.add_user("demo", "ann", "ann-password")
    site.clock.advance(3 * 365 * 24 * 3600)
    assert site.browser().shop_login("ann", "ann-password").headers["location"] == "/demo/"


def test_no_cross_window_messages_jsonp_or_script_resources(site: Site) -> None:
    """No page listens for postMessage, nothing answers JSONP, and no script is served as a
    resource of its own (every script is inline, under the page's nonce)."""
    site.add_user("demo", "ann", "ann-password")
    site.add_user("admin", "root", "staple battery horse", TOTP)
    admin = site.browser()
    admin.admin_login(site, "root", "staple battery horse")
    pages = [admin.get(p).text for p in ("/admin/", "/admin/account", "/admin/setup")]
    shopper = site.browser()
    shopper.shop_login("ann", "ann-password")
    pages += [shopper.get(p).text for p in ("/demo/", "/demo/account", "/demo/devices")]
    for html in pages:
        assert "message" not in " ".join(re.findall(r"<script[^>]*>(.*?)</script>", html, re.S))
        assert not re.search(r"<script[^>]*\bsrc=", html)
    jsonp = httpx.get(site.base + "/healthz?callback=alert")
    assert jsonp.headers["content-type"] == "application/json"
    assert jsonp.text == '{"status":"ok"}'


def test_passwords_are_stored_with_argon2id_at_current_parameters(site: Site) -> None:
    """RFC 9106's second recommended profile (argon2-cffi's default), above OWASP's minimum
    (19 MiB, 2 passes); the one-password-fits-all dummy hash has the same cost."""
    client = site.browser()
    form = {"username": "kim", "password": "kim's own pass phrase"}
    client.post("/demo/register", form, csrf_from="/demo/register")
    row = site.runtime.state.get_user("demo", "kim")
    assert row is not None
    for stored in (row.password_hash, DUMMY_HASH):
        match = re.fullmatch(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[^$]+\$[^$]+", stored)
        assert match, stored
        memory_kib, passes, lanes = map(int, match.groups())
        assert memory_kib >= 64 * 1024
        assert passes >= 3
        assert lanes >= 1
    assert "pass phrase" not in row.password_hash


DOCS = Path(__file__).resolve().parents[2] / "docs" / "service.md"


def _section(title: str) -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def _forms_with_factors(html: str) -> set[str]:
    actions = set()
    for form in re.findall(r"<form [^>]*method=\"post\".*?</form>", html, re.S):
        fields = re.findall(r'<input [^>]*name="([^"]+)"', form)
        if any(f.startswith(("password", "code", "new_code")) for f in fields):
            actions.add(
                re.sub(r"/[A-Za-z0-9_-]{16}/", "/{id}/", re.findall(r'action="([^"]+)"', form)[0])
            )
    return actions


def test_every_way_to_prove_a_factor_is_a_documented_pathway(site: Site) -> None:
    """Every form that takes a password or a code, found by walking the pages as an admin
    and as a shopper, is a route of the documented table (ASVS 6.1.3, 6.3.4)."""
    table = _section("Authentication pathways")
    documented = set(re.findall(r"`POST (/[^`]+)`", table))
    found: set[str] = set()
    fresh = site.browser()
    found |= _forms_with_factors(fresh.get("/admin/setup").text)  # while no admin exists
    site.add_user("demo", "ann", "ann-password", TOTP)
    site.add_user("admin", "root", "staple battery horse", TOTP)
    site.add_user("admin", "newbie", "another staple battery")
    for path in ("/admin/login", "/demo/login"):
        found |= _forms_with_factors(fresh.get(path).text)
    newbie = site.browser()
    newbie.post(
        "/admin/login",
        {"username": "newbie", "password": "another staple battery"},
        csrf_from="/admin/login",
    )
    found |= _forms_with_factors(newbie.get("/admin/enrol").text)
    admin = site.browser()
    admin.post(
        "/admin/login",
        {"username": "root", "password": "staple battery horse"},
        csrf_from="/admin/login",
    )
    found |= _forms_with_factors(admin.get("/admin/login/code").text)
    admin.post("/admin/login/code", {"code": site.code()}, csrf_from="/admin/login/code")
    for path in ("/admin/account", "/admin/revoke-all"):
        found |= _forms_with_factors(admin.get(path).text)
    shopper, phone = site.browser(), site.browser()
    shopper.shop_login("ann", "ann-password")
    phone.shop_login("ann", "ann-password")
    for path in ("/demo/step-up", "/demo/account", "/demo/devices"):
        found |= _forms_with_factors(shopper.get(path).text)
    other = next(
        s.id
        for s in asyncio.run(site.runtime.manager.list_user("ann"))
        if s.id not in shopper.cookies["__Host-shop"]
    )
    found |= _forms_with_factors(shopper.get(f"/demo/devices/{other}/sign-out").text)
    assert len(found) >= 12
    undocumented = {a for a in found if a not in documented and a != "/admin/enrol"}
    assert not undocumented, undocumented
    assert "/admin/enrol" in table


def test_refused_validate_calls_are_logged_too(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sessionward.service"):
        service.client.post("/v1/sessions/validate", json={"token": "x"})
    assert [r.getMessage() for r in caplog.records if "refused" in r.getMessage()] == [
        "API validate refused: unauthenticated, client 127.0.0.1"
    ]
