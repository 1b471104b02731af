"""The demo shop's account flows, the reference for applications, over real HTTP with a fake
clock: registration that reveals no names (ASVS 6.3.8), the password rules (6.2.1, 6.2.4,
6.2.5, 6.2.8, 6.2.9, 6.2.11, 6.2.12), masked fields (6.2.6, 6.2.7), TOTP and password changes
behind full re-authentication with notices and an offer to sign out elsewhere (7.5.1, 6.3.7,
6.5.6, 7.4.3, 6.2.2, 6.2.3), one-time codes by the server's clock (6.5.5, 6.5.8), device
sign-out behind the password (7.5.2), and failed attempts as security events (16.3.1)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionward.core import token as tokens
from sessionward.service.password_policy import CONTEXT_WORDS
from sessionward.service.passwords import STEP, TOTP_DRIFT, totp_now, verify_totp

from ._forms import TOTP, Browser, Site, site_at

ANN = "ann-password"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with site_at(tmp_path) as site:
        site.add_user("demo", "ann", ANN)
        yield site


def _without_tokens(text: str) -> str:
    return re.sub(r"(nonce-|nonce=\"|value=\")[A-Za-z0-9_-]{16,}", r"\1…", text)


def _signed_in(site: Site, client: Browser) -> bool:
    token = client.cookies.get("__Host-shop", "")
    response = httpx.get(site.base + "/demo/account", headers={"cookie": f"__Host-shop={token}"})
    return response.status_code == 200


def _secret(page: str) -> str:
    match = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)
    assert match
    return match.group(1)


def test_registration_tells_nobody_which_names_exist(site: Site) -> None:
    client = site.browser()
    form = {"password": "a-different-secret-9"}
    taken = client.post("/demo/register", {**form, "username": "ann"}, csrf_from="/demo/register")
    free = client.post("/demo/register", {**form, "username": "zed"}, csrf_from="/demo/register")
    assert (taken.status_code, taken.headers["location"]) == (303, "/demo/login?msg=registered")
    assert (free.status_code, free.headers["location"]) == (
        taken.status_code,
        "/demo/login?msg=registered",
    )
    assert _without_tokens(taken.text) == _without_tokens(free.text)
    assert client.shop_login("ann", ANN).status_code == 303  # ann's account is untouched
    other = site.browser()
    assert other.shop_login("ann", form["password"]).status_code == 401
    assert site.browser().shop_login("zed", form["password"]).status_code == 303


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("seven77", "at least 8"),
        ("password123", "most common"),
        ("Iloveyou1", "most common"),
        ("Demo-2024!", "'demo'"),
        ("sessionward", "'sessionward'"),
        ("kim-1234", "'kim'"),
        ("x" * 1025, "at most 1024"),
    ],
)
def test_weak_new_passwords_are_refused(site: Site, password: str, why: str) -> None:
    client = site.browser()
    form = {"username": "kim", "password": password}
    refused = client.post("/demo/register", form, csrf_from="/demo/register")
    assert refused.status_code == 400
    assert why in refused.text.replace("&#x27;", "'")
    assert site.runtime.state.get_user("demo", "kim") is None


@pytest.mark.parametrize(
    "password",
    [
        "Xq7!Lm2#",  # 8 characters, the minimum
        "tea & biscuits, or 🍵 with ünïcödé — any characters at all, spaces too, 64+ long",
        "w" * 200 + " long pass phrase",
    ],
)
def test_any_password_of_8_to_1024_characters_works(site: Site, password: str) -> None:
    client = site.browser()
    form = {"username": "kim", "password": password}
    assert client.post("/demo/register", form, csrf_from="/demo/register").status_code == 303
    assert client.shop_login("kim", password).status_code == 303


def test_passwords_are_verified_exactly_as_typed(site: Site) -> None:
    password = "Mixed Case Phrase 42"  # noqa: S105
    client = site.browser()
    form = {"username": "kim", "password": password}
    client.post("/demo/register", form, csrf_from="/demo/register")
    for variant in (
        password.lower(),
        password.upper(),
        password + " ",
        " " + password,
        password[:16],
        password.replace(" ", ""),
    ):
        site.clock.advance(60)  # apart: five wrong guesses a minute are the most (throttling)
        assert site.browser().shop_login("kim", variant).status_code == 401, variant
    assert site.browser().shop_login("kim", password).status_code == 303


def test_password_fields_are_masked_and_password_managers_welcome(site: Site) -> None:
    client = site.browser()
    pages = ["/demo/login", "/demo/register", "/admin/setup"]
    for path in pages:
        client.get(path)
    client.shop_login("ann", ANN)
    site.browser().shop_login("ann", ANN)  # a second device, so the sign-out form shows
    signed_in = ["/demo/account", "/demo/devices"]
    seen = 0
    for path in pages + signed_in:
        html = client.get(path).text
        for tag in re.findall(r"<input [^>]*>", html):
            if 'name="password' in tag or 'name="new_password' in tag:
                seen += 1
                assert 'type="password"' in tag, (path, tag)
                assert re.search(r'autocomplete="(current|new)-password"', tag), (path, tag)
        assert "onpaste" not in html
        assert "oncopy" not in html
    assert seen == 7  # login, register, setup, three on the account page, devices


def test_totp_on_replace_off_needs_every_factor_and_tells_the_user(site: Site) -> None:
    laptop, phone = site.browser(), site.browser()
    laptop.shop_login("ann", ANN)
    phone.shop_login("ann", ANN)
    first = _secret(laptop.get("/demo/account").text)
    on = {"action": "on", "password_on": "wrong password", "new_code_on": site.code(first)}
    assert (
        "reauth-failed"
        in laptop.post("/demo/account/totp", on, csrf_from="/demo/account").headers["location"]
    )
    assert site.runtime.state.get_user("demo", "ann").totp_secret is None  # type: ignore[union-attr]
    before = laptop.cookies["__Host-shop"]
    done = laptop.post("/demo/account/totp", {**on, "password_on": ANN}, csrf_from="/demo/account")
    assert done.headers["location"] == "/demo/account?msg=totp-on&others=0"
    assert laptop.cookies["__Host-shop"] != before  # re-authenticated: a new token
    assert _signed_in(site, phone)  # not asked to: the page offers it instead
    offer = laptop.get(done.headers["location"]).text
    assert "Your other devices stay signed in" in offer
    assert site.runtime.state.get_user("demo", "ann").totp_secret == first  # type: ignore[union-attr]

    site.clock.advance(STEP)
    second = _secret(laptop.get("/demo/account").text)
    assert second != first
    replace = {
        "action": "replace",
        "password_replace": ANN,
        "code": "000000",  # the current app's code is needed too
        "new_code_replace": site.code(second),
        "sign_out_others": "on",
    }
    refused = laptop.post("/demo/account/totp", replace, csrf_from="/demo/account")
    assert "reauth-failed" in refused.headers["location"]
    replaced = laptop.post(
        "/demo/account/totp", {**replace, "code": site.code(first)}, csrf_from="/demo/account"
    )
    assert replaced.headers["location"] == "/demo/account?msg=totp-replaced&others=1"
    assert not _signed_in(site, phone)
    assert site.runtime.state.get_user("demo", "ann").totp_secret == second  # type: ignore[union-attr]

    site.clock.advance(STEP)
    off = {"action": "off", "password_off": ANN}
    assert (
        "reauth-failed"
        in laptop.post("/demo/account/totp", off, csrf_from="/demo/account").headers["location"]
    )
    gone = laptop.post(
        "/demo/account/totp", {**off, "code": site.code(second)}, csrf_from="/demo/account"
    )
    assert gone.headers["location"].startswith("/demo/account?msg=totp-off")
    assert site.runtime.state.get_user("demo", "ann").totp_secret is None  # type: ignore[union-attr]
    changes = [(e["factor"], e["change"]) for e in site.kinds("factor-changed")]
    assert changes == [("totp", "enrolled"), ("totp", "replaced"), ("totp", "removed")]
    notices = laptop.get("/demo/account").text
    notices = notices[notices.index('id="notices"') :]
    for line in (
        "Two-step verification turned on",
        "Two-step verification changed",
        "Two-step verification turned off",
        "Failed sign-in attempt (password)",
    ):
        assert line in notices, line


def test_changing_the_password(site: Site) -> None:
    site.runtime.state.set_totp("demo", "ann", TOTP)
    laptop, phone = site.browser(), site.browser()
    laptop.shop_login("ann", ANN)
    phone.shop_login("ann", ANN)
    new = "ann's brand new phrase"
    form = {"password": ANN, "code": site.code(), "new_password": new, "sign_out_others": "on"}
    for bad in ({"password": "not mine"}, {"code": "000000"}):
        refused = laptop.post("/demo/account/password", {**form, **bad}, csrf_from="/demo/account")
        assert refused.headers["location"] == "/demo/account?msg=reauth-failed"
    common = laptop.post(
        "/demo/account/password", {**form, "new_password": "sunshine1"}, csrf_from="/demo/account"
    )
    assert common.status_code == 400
    done = laptop.post("/demo/account/password", form, csrf_from="/demo/account")
    assert done.headers["location"] == "/demo/account?msg=password-changed&others=1"
    assert not _signed_in(site, phone)
    assert _signed_in(site, laptop)
    assert site.browser().shop_login("ann", ANN).status_code == 401
    assert site.browser().shop_login("ann", new).status_code == 303
    [notice] = site.kinds("factor-changed")
    assert (notice["user_id"], notice["factor"], notice["change"]) == (
        "ann",
        "password",
        "replaced",
    )


def test_totp_codes_live_for_their_step_and_five_seconds() -> None:
    start = 1_800_000_000 - 1_800_000_000 % STEP  # a step boundary
    code = totp_now(TOTP, start)
    assert verify_totp(TOTP, code, start)
    assert verify_totp(TOTP, code, start + STEP - 0.001)
    assert verify_totp(TOTP, code, start + STEP + TOTP_DRIFT - 0.001)  # the drift allowance
    assert not verify_totp(TOTP, code, start + STEP + TOTP_DRIFT)
    assert not verify_totp(TOTP, code, start - 0.001)  # never before its step
    assert not verify_totp(TOTP, totp_now(TOTP, start + STEP), start + STEP - 0.001)


def test_one_time_codes_follow_the_servers_clock(site: Site) -> None:
    site.runtime.state.set_totp("demo", "ann", TOTP)
    client = site.browser()
    client.shop_login("ann", ANN)
    client.post("/demo/cart/add", {"item": "tea"}, csrf_from="/demo/")
    assert client.post("/demo/checkout", {}, csrf_from="/demo/cart").headers["location"] == (
        "/demo/step-up?next=checkout"
    )
    real = time.time()  # the client's idea of the time, far from the server's (fake) clock
    client_code = totp_now(TOTP, real)
    assert client_code != site.code()
    sent = {"code": client_code, "time": str(int(real)), "now": str(int(real))}
    refused = client.post("/demo/step-up", sent, csrf_from="/demo/step-up")
    assert refused.status_code == 200
    assert "not right" in refused.text
    site.clock.advance(STEP + TOTP_DRIFT)
    stale = client.post(
        "/demo/step-up",
        {"code": totp_now(TOTP, site.clock.now() - STEP)},
        csrf_from="/demo/step-up",
    )
    assert "not right" in stale.text
    ok = client.post("/demo/step-up", {"code": site.code()}, csrf_from="/demo/step-up")
    assert ok.headers["location"] == "/demo/cart"


def test_signing_out_devices_needs_the_password(site: Site) -> None:
    laptop, phone, tablet = site.browser(), site.browser(), site.browser()
    for client in (laptop, phone, tablet):
        client.shop_login("ann", ANN)
    page = laptop.get("/demo/devices").text
    assert "Sign out other devices (2)" in page
    for form in ({}, {"password": "not mine"}):
        refused = laptop.post("/demo/devices/sign-out-others", form, csrf_from="/demo/devices")
        assert refused.headers["location"] == "/demo/devices?msg=reauth-failed"
    assert _signed_in(site, phone)
    assert _signed_in(site, tablet)
    # One device: a confirmation page, then the password.
    mine = tokens.parse(laptop.cookies["__Host-shop"]).session_id
    target = next(i for i in re.findall(r'data-session="([^"]+)"', page) if i != mine)
    confirm = laptop.get(f"/demo/devices/{target}/sign-out")
    assert confirm.status_code == 200
    assert 'type="password"' in confirm.text
    wrong = laptop.post(
        f"/demo/devices/{target}/sign-out", {"password": "nope"}, csrf_from="/demo/devices"
    )
    assert wrong.headers["location"] == "/demo/devices?msg=reauth-failed"
    assert len([c for c in (phone, tablet) if _signed_in(site, c)]) == 2
    before = laptop.cookies["__Host-shop"]
    one = laptop.post(
        f"/demo/devices/{target}/sign-out", {"password": ANN}, csrf_from="/demo/devices"
    )
    assert one.headers["location"] == "/demo/devices?msg=signed-out-1"
    assert laptop.cookies["__Host-shop"] != before  # re-authenticated: a new token
    assert len([c for c in (phone, tablet) if _signed_in(site, c)]) == 1
    rest = laptop.post(
        "/demo/devices/sign-out-others", {"password": ANN}, csrf_from="/demo/devices"
    )
    assert rest.headers["location"] == "/demo/devices?msg=signed-out-1"
    assert not any(_signed_in(site, c) for c in (phone, tablet))
    assert _signed_in(site, laptop)


def test_failed_shop_sign_ins_are_security_events(site: Site) -> None:
    site.runtime.state.set_totp("demo", "ann", TOTP)
    client = site.browser()
    client.shop_login("ann", "guess")
    client.shop_login("ann", ANN)
    client.post("/demo/step-up", {"code": "000000"}, csrf_from="/demo/step-up")
    client.post("/demo/step-up", {"code": site.code()}, csrf_from="/demo/step-up")
    attempts = [
        (e["user_id"], e["realm"], e["factor"], e["succeeded"])
        for e in site.kinds("authentication")
    ]
    assert attempts == [
        ("ann", "demo", "password", False),
        ("ann", "demo", "password", True),
        ("ann", "demo", "totp", False),
        ("ann", "demo", "totp", True),
    ]


def test_the_documented_context_words_are_the_ones_checked() -> None:
    """docs/service.md lists the words a password may not be built on (ASVS 6.1.2)."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "service.md").read_text("utf-8")
    block = text[text.index("<!-- context-words -->") : text.index("<!-- /context-words -->")]
    assert tuple(re.findall(r"`([^`]+)`", block)) == CONTEXT_WORDS
    assert "the account's own user name" in block


def test_every_signed_in_page_has_a_sign_out_control(site: Site) -> None:
    client = site.browser()
    client.shop_login("ann", ANN)
    for path in ("/demo/", "/demo/cart", "/demo/account", "/demo/devices"):
        page = client.get(path).text
        nav = page[page.index("<nav") : page.index("</nav>")]
        assert 'action="/demo/logout"' in nav, path
        assert ">Sign out</button>" in nav, path


def test_a_correct_step_up_code_places_the_order(site: Site) -> None:
    site.runtime.state.set_totp("demo", "ann", TOTP)
    client = site.browser()
    client.shop_login("ann", ANN)
    client.post("/demo/cart/add", {"item": "tea"}, csrf_from="/demo/")
    asked = client.post("/demo/checkout", {}, csrf_from="/demo/cart").headers["location"]
    wrong = client.post(asked, {"code": "000000"}, csrf_from=asked)
    assert "not right" in wrong.text
    assert "Cart (1)" in client.get("/demo/").text  # nothing ordered on a wrong code
    done = client.post(asked, {"code": site.code()}, csrf_from=asked)
    assert done.headers["location"] == "/demo/?msg=ordered"
    assert "Thank you: your order is placed." in client.get("/demo/?msg=ordered").text
    assert "Cart (0)" in client.get("/demo/").text
    account = client.get("/demo/account").text
    assert "<dt>Orders placed</dt><dd>1</dd>" in account


def test_registration_states_the_password_rule_first_and_keeps_the_name(site: Site) -> None:
    client = site.browser()
    form = client.get("/demo/register").text
    assert "At least 8 characters" in form
    assert 'aria-describedby="password-rule"' in form
    short = client.post(
        "/demo/register", {"username": "newbie", "password": "short"}, csrf_from="/demo/register"
    )
    assert short.status_code == 400
    assert "at least 8 characters" in short.text
    assert 'name="username" autocomplete="username" value="newbie"' in short.text


def test_the_site_has_an_icon_and_a_styled_index(site: Site) -> None:
    client = site.browser()
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert client.get("/favicon.svg").content == icon.content
    for path in ("/", "/v1/", "/demo/", "/demo/login", "/demo/register"):
        assert '<link rel="icon" href="/favicon.svg"' in client.get(path).text, path
    index = client.get("/").text
    assert '<link rel="stylesheet" href="/v1/docs.css">' in index
    assert client.get("/v1/docs.css").headers["content-type"].startswith("text/css")
