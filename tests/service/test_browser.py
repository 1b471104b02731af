"""The service in a real browser (Debian's chromium via Playwright), over real HTTP.

* The demo story: browse, add to cart, sign in (the cart is kept, the guest token dies),
  "Your devices" lists a second browser, "sign out other devices" ends it on its next request.
* The admin story: one-time setup link, live event feed, search by user, revoke, and the
  revoked user's next request fails.
* Accessibility: axe-core reports no serious or critical issue on the admin and demo pages.

Screenshots are saved under test-artifacts/service/ (see ``_browser.artifacts_dir``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from sessionward.service import ServiceConfig, create_app
from sessionward.service.runtime import Runtime
from sessionward.service.setup import new_setup_code
from sessionward.service.state import UserRow
from sessionward.signals.webhook_endpoints import create_webhook
from sessionward.web import CsrfPolicy

from ._browser import ARGS, CHROMIUM, artifacts_dir, axe_source, code_to_type, unavailable
from ._server import serve

FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        unavailable(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Live:
    base: str
    runtime: Runtime
    shots: Path

    def add_user(self, realm: str, name: str, password: str) -> None:
        hashed = PasswordHasher().hash(password)
        self.runtime.state.add_user(UserRow(realm, name, hashed, None, time.time()))

    def shot(self, page: Any, name: str) -> None:
        page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


@pytest.fixture
def live(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Live]:
    app = create_app(ServiceConfig(store=str(tmp_path / "browser.db")))
    runtime: Runtime = app.state.runtime
    shots = artifacts_dir() / request.node.name
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with serve(app) as base:
            yield Live(base, runtime, shots)
    finally:
        # Playwright's sync API owns this thread's event loop: close from another thread.
        closer = threading.Thread(target=asyncio.run, args=(runtime.close(),))
        closer.start()
        closer.join(10)


def sign_in(page: Any, base: str, name: str, password: str, area: str = "demo") -> None:
    page.goto(f"{base}/{area}/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def shop_cookie(context: Any) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == "__Host-shop"), None)


def test_demo_story(browser: Any, live: Live) -> None:
    base = live.base
    # Register an account (and sign out again) in a first browser.
    setup = browser.new_context(user_agent=FIREFOX_UA)
    page0 = setup.new_page()
    page0.goto(f"{base}/demo/register")
    page0.get_by_label("User name").fill("alice")
    page0.get_by_label("Password").fill("tea-for-two-2024")
    page0.get_by_role("button", name="Create account").click()
    page0.wait_for_url(f"{base}/demo/login?msg=registered")  # the same whether the name was free
    assert page0.get_by_text("If that user name was free").is_visible()
    setup.close()

    # Browse and fill a cart as a guest.
    laptop = browser.new_context(user_agent=FIREFOX_UA)
    page = laptop.new_page()
    page.goto(f"{base}/demo/")
    live.shot(page, "01-shop")
    page.get_by_role("button", name="Add to cart (Green tea)").click()
    page.wait_for_url(f"{base}/demo/cart")
    page.goto(f"{base}/demo/")
    page.get_by_role("button", name="Add to cart (Stoneware mug)").click()
    page.wait_for_url(f"{base}/demo/cart")
    assert "Green tea" in page.locator("#cart").inner_text()
    live.shot(page, "02-guest-cart")
    guest_token = shop_cookie(laptop)
    assert guest_token is not None

    # Sign in: the cart survives, and the guest token is dead.
    sign_in(page, base, "alice", "tea-for-two-2024")
    page.wait_for_url(f"{base}/demo/")
    assert page.get_by_text("Welcome back, alice").is_visible()
    page.goto(f"{base}/demo/cart")
    cart = page.locator("#cart").inner_text()
    assert "Green tea" in cart
    assert "Stoneware mug" in cart
    live.shot(page, "03-cart-kept-after-login")
    signed_in_token = shop_cookie(laptop)
    assert signed_in_token not in (None, guest_token)
    replay = httpx.get(f"{base}/demo/account", headers={"cookie": f"__Host-shop={guest_token}"})
    assert replay.status_code == 303
    assert replay.headers["location"] == "/demo/login"

    # A second device signs in.
    phone = browser.new_context(user_agent=PHONE_UA)
    phone_page = phone.new_page()
    sign_in(phone_page, base, "alice", "tea-for-two-2024")
    phone_page.wait_for_url(f"{base}/demo/")
    phone_page.goto(f"{base}/demo/account")
    assert phone_page.locator("#account-user").inner_text() == "alice"

    # Your devices: both, with device, place and last activity; sign out the other one.
    page.goto(f"{base}/demo/devices")
    rows = page.locator("#devices tbody tr")
    assert rows.count() == 2
    table = page.locator("#devices").inner_text()
    assert "Firefox 128 on Linux" in table  # as people name it, major version included
    assert "Chrome 126 on Android" in table
    # Hijack scoring (on by default) keeps the network's owner, not the address: loopback
    # has none.
    assert "unknown network" in table
    assert "127.0.0.1" not in table
    assert "This device" in table
    live.shot(page, "04-devices")
    page.get_by_label("Your password, to confirm it is you").fill("tea-for-two-2024")
    page.get_by_role("button", name="Sign out other devices (1)").click()
    page.wait_for_url(f"{base}/demo/devices?msg=signed-out-1")
    assert page.locator("#devices tbody tr").count() == 1
    live.shot(page, "05-other-device-signed-out")

    # The phone's next request finds itself signed out.
    phone_page.goto(f"{base}/demo/account")
    phone_page.wait_for_url(f"{base}/demo/login")
    assert phone_page.get_by_role("heading", name="Sign in").is_visible()
    live.shot(phone_page, "06-phone-signed-out")

    # And the laptop signs out; its token is dead server-side.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/demo/?msg=signed-out")
    after = httpx.get(f"{base}/demo/account", headers={"cookie": f"__Host-shop={signed_in_token}"})
    assert after.status_code == 303
    laptop.close()
    phone.close()


def test_admin_story(browser: Any, live: Live) -> None:
    base = live.base
    code = new_setup_code(live.runtime.state, time.time())
    live.add_user("demo", "bob", "biscuits-and-tea")
    admin = browser.new_context()
    page = admin.new_page()
    page.goto(f"{base}/admin/setup#code={code}")
    assert page.get_by_label("Setup code").input_value() == code
    assert "#" not in page.url  # the code left the address bar
    page.get_by_label("Admin user name").fill("root")
    page.get_by_label("Password (12 characters or more)").fill("correct horse battery")
    page.get_by_role("button", name="Create admin account").click()
    page.wait_for_url(f"{base}/admin/enrol")  # no console before a second factor
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Code from your authenticator app").fill(code_to_type(secret))
    page.get_by_role("button", name="Turn on").click()
    page.wait_for_url(f"{base}/admin/")
    assert page.get_by_role("button", name="Sign out").is_visible()
    assert page.get_by_role("heading", name="Sessions", exact=True).is_visible()
    page.wait_for_selector("text=Live: new events appear at the top.")

    # The user signs in; the admin's feed shows it live (server-sent events).
    user = browser.new_context(user_agent=PHONE_UA)
    user_page = user.new_page()
    sign_in(user_page, base, "bob", "biscuits-and-tea")
    user_page.wait_for_url(f"{base}/demo/")
    # Through the recorder's writer thread, the event log and the stream: up to 30 s.
    page.locator("#feed li", has_text="created · bob").first.wait_for(timeout=30_000)
    live.shot(page, "01-dashboard-live-feed")

    # Search, open the session, revoke it.
    page.get_by_label("User id").fill("bob")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"{base}/admin/users?user=bob")
    revoke_links = page.locator("a[aria-label^='End session']")
    assert revoke_links.count() == 1
    live.shot(page, "02-search-bob")
    page.locator("tbody a").first.click()
    assert page.get_by_role("heading", name="Device and network").is_visible()
    assert "Chrome 126 on Android" in page.locator("main").inner_text()
    live.shot(page, "03-session-detail")
    page.get_by_role("link", name="End this session…").click()
    page.get_by_role("button", name="End this session").click()  # after the confirmation
    page.wait_for_url(f"{base}/admin/users?user=bob")
    assert page.get_by_text("No live sessions for").is_visible()
    live.shot(page, "04-revoked")

    # The revoked user's next request fails.
    user_page.goto(f"{base}/demo/account")
    user_page.wait_for_url(f"{base}/demo/login")
    live.shot(user_page, "05-user-signed-out")
    revoked = [e for e in live.runtime.activity.recent if e["kind"] == "revoked"]
    assert revoked[-1]["user_id"] == "bob"
    assert revoked[-1]["reason"] == "admin"

    # The setup code worked once; the page now points to sign-in.
    page.goto(f"{base}/admin/setup#code={code}")
    assert page.url.split("#")[0] == f"{base}/admin/login"
    admin.close()
    user.close()


def test_admin_pages_need_an_admin_session(browser: Any, live: Live) -> None:
    live.add_user("demo", "eve", "eve-password-1")
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, live.base, "eve", "eve-password-1")  # a shop session, not an admin one
    for path in ("/admin/", "/admin/users?user=eve"):
        page.goto(live.base + path)
        assert page.url.endswith("/admin/setup") or page.url.endswith("/admin/login")
    context.close()


AXE_PAGES_DEMO = [
    "/demo/",
    "/demo/cart",
    "/demo/login",
    "/demo/register",
    "/demo/account",
    "/demo/devices",
]
AXE_PAGES_ADMIN = [
    "/admin/",
    "/admin/sessions",
    "/admin/sessions?kind=anonymous",
    "/admin/users?user=carol",
    "/admin/users/revoke?user=carol",
    "/admin/account",
    "/admin/revoke-all",
]


def test_accessibility_axe(browser: Any, live: Live) -> None:
    axe = axe_source()
    live.add_user("demo", "carol", "carol-password-1")
    live.add_user("admin", "root", "root-password-12")
    context = browser.new_context(bypass_csp=True)  # to inject axe.min.js
    page = context.new_page()
    problems: list[str] = []

    def check(path: str) -> None:
        page.goto(live.base + path)
        if path == "/v1/":  # the operations, rendered from the OpenAPI document
            page.wait_for_selector("#operations[aria-busy=false]")
        page.add_script_tag(content=axe)
        result = page.evaluate(
            "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
            "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
        )
        for violation in result["violations"]:
            if violation["impact"] in ("serious", "critical"):
                nodes = [n["target"] for n in violation["nodes"]][:3]
                problems.append(f"{path}: {violation['id']} ({violation['impact']}) {nodes}")
        live.shot(page, "axe" + path.replace("/", "_").replace("?", "_"))

    check("/admin/login")
    for path in ("/", "/v1/", "/demo/login", "/demo/register"):
        check(path)
    page.goto(live.base + "/demo/")
    page.get_by_role("button", name="Add to cart (Kettle)").click()
    sign_in(page, live.base, "carol", "carol-password-1")
    for path in AXE_PAGES_DEMO:
        check(path)
    sign_in(page, live.base, "root", "root-password-12", area="admin")
    page.wait_for_url(live.base + "/admin/enrol")
    check("/admin/enrol")
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Code from your authenticator app").fill(code_to_type(secret))
    page.get_by_role("button", name="Turn on").click()
    page.wait_for_url(live.base + "/admin/")
    for path in AXE_PAGES_ADMIN:
        check(path)
    session_id = live.runtime.activity.latest(1)[0]["session_id"]
    check(f"/admin/sessions/{session_id}")
    check(f"/admin/sessions/{session_id}/revoke")
    hooks = live.runtime.webhooks
    assert hooks is not None
    hook, _ = create_webhook(
        hooks.store, hooks.log, "http://127.0.0.1:9/", application="default", now=time.time()
    )
    hooks.store.set_state(hook.id, "disabled", "repeated_failure", time.time())
    check("/admin/webhooks")  # with its enable form
    check(f"/admin/webhooks/{hook.id}")
    context.close()
    assert not problems, "\n".join(problems)


def test_the_browser_keeps_nothing_but_the_session_and_csrf_cookies(
    browser: Any, live: Live
) -> None:
    """Client storage (ASVS 14.3.1, 14.3.3): the pages store nothing in localStorage,
    sessionStorage or IndexedDB; the only cookies are the HttpOnly session cookie and the
    HttpOnly nonce that a guest's form tokens were bound to (random, nothing else), neither
    kept past the browser session; signing out removes the session cookie and the response
    asks the browser to clear the site's data."""
    live.add_user("demo", "dora", "dora-password-1")
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live.base}/demo/")
    page.get_by_role("button", name="Add to cart (Kettle)").click()
    sign_in(page, live.base, "dora", "dora-password-1")
    page.wait_for_url(f"{live.base}/demo/")
    for path in ("/demo/account", "/demo/devices", "/demo/cart"):
        page.goto(live.base + path)
        stored = page.evaluate(
            "async () => [localStorage.length, sessionStorage.length,"
            " (await indexedDB.databases()).length]"
        )
        assert stored == [0, 0, 0], path
    cookies = {c["name"]: c for c in context.cookies()}
    assert sorted(cookies) == ["__Host-shop", "__Host-shop-csrf"]
    for kept in cookies.values():
        assert (kept["httpOnly"], kept["secure"], kept["expires"]) == (True, True, -1)
    assert CsrfPolicy.is_nonce(cookies["__Host-shop-csrf"]["value"])
    cookie = cookies["__Host-shop"]
    with page.expect_response(f"{live.base}/demo/logout") as answer:
        page.get_by_role("button", name="Sign out").click()
    assert answer.value.all_headers()["clear-site-data"] == '"cache", "cookies", "storage"'
    page.wait_for_url(f"{live.base}/demo/?msg=signed-out")
    assert cookie["value"] not in [c["value"] for c in context.cookies()]
    context.close()
