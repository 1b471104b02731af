"""Every page of the service, screenshotted at a desktop and a phone width and checked there.

For each page and width: a full-page screenshot (``screenshots/<width>/NNN-page.png`` under the
artifacts directory, or ``$SESSIONWARD_SCREENSHOTS``; see ``_browser.screenshots_dir``),
axe-core finds no serious or critical violation, and nothing is wider than the window (the
page scrolls down, never sideways; wide tables scroll inside their own box).

Pages come in the order a newcomer meets them: the service's index and API documentation,
the demo shop as a guest and signed in (product, cart, checkout's step-up, account with the
TOTP enrolment QR code and the password change, devices), then the admin console from setup
to a session's page and every confirmation.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from sessionward.service.keys import create_key
from sessionward.service.passwords import new_totp_secret
from sessionward.service.setup import new_setup_code

from ._browser import axe_source, code_to_type, screenshots_dir
from .test_browser import FIREFOX_UA, PHONE_UA, Live, sign_in
from .test_browser import browser as browser  # a fixture
from .test_browser import live as live  # a fixture

WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}
AXE_TAGS = "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']"
# Content wider than the window: what a phone user would have to scroll sideways for.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')].filter((e) => {
    const box = e.getBoundingClientRect();
    if (box.width === 0 || box.right <= width + 1) return false;
    for (let p = e.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (s.overflowX === 'auto' || s.overflowX === 'scroll' || s.overflowX === 'hidden')
        return false;
    }
    return true;
  });
  const named = wide.slice(0, 3).map((e) => e.tagName.toLowerCase() +
    (e.id ? '#' + e.id : '') + (e.className ? '.' + String(e.className).split(' ')[0] : ''));
  const total = document.documentElement.scrollWidth;
  return total > width + 1 ? [`the page is ${total} px wide`, ...named] : named;
}"""


class Camera:
    """Visits a page at each width: screenshot, axe-core, sideways overflow."""

    def __init__(self, live: Live, prefix: str) -> None:
        self.live, self.prefix = live, prefix
        self.axe = axe_source()
        self.out = screenshots_dir()
        self.count = 0
        self.problems: list[str] = []
        self.taken: list[Path] = []
        for width in WIDTHS:  # the last run's shots of these pages
            for old in (self.out / width).glob(f"{prefix}[0-9][0-9]-*.png"):
                old.unlink()

    def take(self, page: Any, name: str, path: str | None = None, ready: str = "") -> None:
        """Screenshot ``path`` (or the page as it stands, ``path=None``) as ``name``."""
        self.count += 1
        for width, (w, h) in WIDTHS.items():
            page.set_viewport_size({"width": w, "height": h})
            if path is not None:
                page.goto(self.live.base + path)
            if ready:
                page.wait_for_selector(ready)
            shot = self.out / width / f"{self.prefix}{self.count:02d}-{name}.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            self.taken.append(shot)
            where = f"{name} ({width}, {page.url.removeprefix(self.live.base)})"
            for wide in page.evaluate(OVERFLOW):
                self.problems.append(f"{where}: wider than the window: {wide}")
            page.add_script_tag(content=self.axe)
            result = page.evaluate(
                f"async () => await axe.run(document, {{runOnly: {{type: 'tag', values: "
                f"{AXE_TAGS}}}}})"
            )
            for violation in result["violations"]:
                if violation["impact"] in ("serious", "critical"):
                    nodes = [n["target"] for n in violation["nodes"]][:3]
                    self.problems.append(f"{where}: {violation['id']} {nodes}")


def _enrol_admin(page: Any, live: Live, camera: Camera) -> None:
    code = new_setup_code(live.runtime.state, time.time())
    page.goto(f"{live.base}/admin/setup#code={code}")
    camera.take(page, "admin-setup")
    page.get_by_label("Admin user name").fill("root")
    page.get_by_label("Password (12 characters or more)").fill("correct horse battery")
    page.get_by_role("button", name="Create admin account").click()
    page.wait_for_url(f"{live.base}/admin/enrol")
    camera.take(page, "admin-enrol-totp")
    secret: str = page.locator("#totp-secret").inner_text()
    page.get_by_label("Code from your authenticator app").fill(code_to_type(secret))
    page.get_by_role("button", name="Turn on").click()
    page.wait_for_url(f"{live.base}/admin/")


def _shop(browser: Any, live: Live, camera: Camera) -> None:
    guest = browser.new_context(user_agent=FIREFOX_UA, bypass_csp=True)  # to inject axe
    page = guest.new_page()
    camera.take(page, "service-index", "/")
    camera.take(page, "api-docs", "/v1/", ready="#operations[aria-busy=false]")
    camera.take(page, "shop-home-guest", "/demo/")
    product = page.locator("a[href^='/demo/products/']").first.get_attribute("href")
    camera.take(page, "shop-product", product)
    camera.take(page, "shop-cart-empty", "/demo/cart")
    camera.take(page, "shop-register", "/demo/register")
    camera.take(page, "shop-login", "/demo/login")
    page.goto(f"{live.base}/demo/")
    page.get_by_role("button", name=re.compile(r"^Add to cart")).first.click()
    page.wait_for_url(f"{live.base}/demo/cart")
    live.add_user("demo", "pat", "pat-password-1")
    sign_in(page, live.base, "pat", "pat-password-1")
    page.wait_for_url(f"{live.base}/demo/")
    camera.take(page, "shop-home-signed-in", "/demo/")
    page.get_by_role("button", name=re.compile(r"^Add to cart")).last.click()
    camera.take(page, "shop-cart", "/demo/cart")
    camera.take(page, "shop-account-totp-qr", "/demo/account", ready="svg.qr")
    phone = browser.new_context(user_agent=PHONE_UA)
    sign_in(phone.new_page(), live.base, "pat", "pat-password-1")
    camera.take(page, "shop-devices", "/demo/devices")
    other = page.locator("a[href$='/sign-out']").first.get_attribute("href")
    camera.take(page, "shop-device-sign-out", other)
    # A password change (the phone is signed out with it).
    page.goto(f"{live.base}/demo/account")
    form = page.locator("#password-change")
    form.get_by_label("Current password").fill("pat-password-1")
    form.get_by_label("New password (8 characters or more)").fill("a new pass phrase for pat")
    form.get_by_role("button", name="Change password").click()
    page.wait_for_url(f"{live.base}/demo/account?**")
    camera.take(page, "shop-password-changed")
    # Checkout with two-step verification on: the step-up page, then the order.
    live.runtime.state.set_totp("demo", "pat", secret := new_totp_secret())
    page.goto(f"{live.base}/demo/cart")
    page.get_by_role("button", name="Place order").click()
    page.wait_for_url(f"{live.base}/demo/step-up?next=checkout")
    camera.take(page, "shop-checkout-step-up")
    page.get_by_label("Code").fill(code_to_type(secret))
    page.get_by_role("button", name="Verify and place the order").click()
    page.wait_for_url(f"{live.base}/demo/?msg=ordered")
    camera.take(page, "shop-order-placed")
    camera.take(page, "shop-account-totp-on", "/demo/account")
    phone.close()
    guest.close()


def _admin(browser: Any, live: Live, camera: Camera) -> None:
    key, _ = create_key(live.runtime.state, "issue", "screens", time.time())
    for user in ("alice", "bob", None):
        body: dict[str, Any] = {"context": {"ip": "203.0.113.9", "user_agent": PHONE_UA}}
        if user:
            body["user_id"] = user
        answer = httpx.post(
            f"{live.base}/v1/sessions", json=body, headers={"authorization": f"Bearer {key}"}
        )
        assert answer.status_code == 201, answer.text
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    _enrol_admin(page, live, camera)
    camera.take(page, "admin-dashboard", "/admin/", ready="text=Live: new events")
    # Signing in again, in another browser: the password page, then the code page.
    again = browser.new_context(bypass_csp=True)
    other = again.new_page()
    camera.take(other, "admin-login", "/admin/login")
    sign_in(other, live.base, "root", "correct horse battery", area="admin")
    other.wait_for_url(f"{live.base}/admin/login/code")
    camera.take(other, "admin-login-code")
    again.close()
    camera.take(page, "admin-sessions", "/admin/sessions")
    camera.take(page, "admin-sessions-filtered", "/admin/sessions?kind=anonymous")
    session_id = page.locator("a[href^='/admin/sessions/']").first.get_attribute("href")
    camera.take(page, "admin-session", session_id)
    camera.take(page, "admin-session-end", f"{session_id}/revoke")
    camera.take(page, "admin-user", "/admin/users?user=default/alice")
    camera.take(page, "admin-user-end-all", "/admin/users/revoke?user=default/alice")
    camera.take(page, "admin-account", "/admin/account")
    camera.take(page, "admin-revoke-all", "/admin/revoke-all")
    context.close()


def _run(
    step: Callable[[Any, Live, Camera], None], browser: Any, live: Live, prefix: str
) -> Camera:
    camera = Camera(live, prefix)
    step(browser, live, camera)
    print(f"\n{len(camera.taken)} screenshots in {camera.out}")
    return camera


def test_every_shop_page_at_desktop_and_phone_width(browser: Any, live: Live) -> None:
    camera = _run(_shop, browser, live, "1")
    assert camera.count >= 16
    assert all(shot.stat().st_size > 0 for shot in camera.taken)
    assert not camera.problems, "\n".join(camera.problems)


def test_every_admin_page_at_desktop_and_phone_width(browser: Any, live: Live) -> None:
    camera = _run(_admin, browser, live, "2")
    assert camera.count >= 12
    assert all(shot.stat().st_size > 0 for shot in camera.taken)
    assert not camera.problems, "\n".join(camera.problems)
