"""The demo shop's account flows in Debian's chromium: a password change that ends the other
sessions, TOTP enrolment by scanning the QR code (a screenshot of the rendered code read by
ZXing, an independent decoder, and the key it holds used to enrol), and a checkout that
finishes after the step-up code."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from sessionward.service.passwords import new_totp_secret, totp_uri

from ._browser import code_to_type
from ._qr_read import read_qr
from .test_browser import FIREFOX_UA, PHONE_UA, Live, sign_in
from .test_browser import browser as browser  # a fixture
from .test_browser import live as live  # a fixture


def test_totp_enrolment_by_qr_code(browser: Any, live: Live) -> None:
    live.add_user("demo", "carol", "carol-password-1")
    context = browser.new_context(user_agent=FIREFOX_UA)
    page = context.new_page()
    sign_in(page, live.base, "carol", "carol-password-1")
    page.goto(f"{live.base}/demo/account")
    qr = page.get_by_role("img", name="QR code of the new key for your authenticator app")
    assert qr.is_visible()
    live.shot(page, "totp-qr")
    # What a phone's camera would do: read the code as drawn on screen.
    (uri,) = read_qr(qr.screenshot())
    scanned = urlsplit(uri)
    assert (scanned.scheme, scanned.netloc) == ("otpauth", "totp")
    (secret,) = parse_qs(scanned.query)["secret"]
    assert page.locator("#totp-secret").inner_text() == secret  # the key shown for typing
    assert uri == totp_uri(secret, "carol")
    page.set_viewport_size({"width": 390, "height": 844})
    live.shot(page, "totp-qr-phone")
    assert read_qr(qr.screenshot()) == [uri]  # still readable on a phone's width
    # The app that scanned it produces codes the shop accepts.
    page.get_by_label("Code the new key shows").fill(code_to_type(secret))
    page.get_by_label("Your password").fill("carol-password-1")
    page.get_by_role("button", name="Turn on").click()
    page.wait_for_url(f"{live.base}/demo/account?**")
    assert page.get_by_role("status").inner_text().startswith("Two-step verification is on.")
    assert live.runtime.state.get_user("demo", "carol").totp_secret == secret  # type: ignore[union-attr]
    context.close()


def test_a_password_change_ends_the_other_sessions(browser: Any, live: Live) -> None:
    live.add_user("demo", "dave", "dave-password-1")
    laptop = browser.new_context(user_agent=FIREFOX_UA)
    phone = browser.new_context(user_agent=PHONE_UA)
    laptop_page, phone_page = laptop.new_page(), phone.new_page()
    for page in (laptop_page, phone_page):
        sign_in(page, live.base, "dave", "dave-password-1")
        page.wait_for_url(f"{live.base}/demo/")
    laptop_page.goto(f"{live.base}/demo/account")
    form = laptop_page.locator("#password-change")
    form.get_by_label("Current password").fill("dave-password-1")
    form.get_by_label("New password (8 characters or more)").fill("a brand new pass phrase")
    assert form.get_by_label("Also sign out every other device").is_checked()
    form.get_by_role("button", name="Change password").click()
    laptop_page.wait_for_url(f"{live.base}/demo/account?**")
    live.shot(laptop_page, "password-changed")
    # The phone's session is over; the laptop's goes on.
    phone_page.goto(f"{live.base}/demo/account")
    phone_page.wait_for_url(f"{live.base}/demo/login")
    laptop_page.goto(f"{live.base}/demo/account")
    assert laptop_page.url == f"{live.base}/demo/account"
    sign_in(phone_page, live.base, "dave", "a brand new pass phrase")
    phone_page.wait_for_url(f"{live.base}/demo/")
    laptop.close()
    phone.close()


def test_checkout_finishes_after_the_step_up_code(browser: Any, live: Live) -> None:
    live.add_user("demo", "erin", "erin-password-1")
    secret = new_totp_secret()
    live.runtime.state.set_totp("demo", "erin", secret)
    context = browser.new_context(user_agent=FIREFOX_UA)
    page = context.new_page()
    sign_in(page, live.base, "erin", "erin-password-1")
    page.wait_for_url(f"{live.base}/demo/")
    page.get_by_role("button", name="Add to cart (Kettle)").click()
    page.wait_for_url(f"{live.base}/demo/cart")
    page.get_by_role("button", name="Place order").click()
    page.wait_for_url(f"{live.base}/demo/step-up?next=checkout")
    live.shot(page, "step-up")
    page.get_by_label("Code").fill(code_to_type(secret))
    page.get_by_role("button", name="Verify and place the order").click()
    page.wait_for_url(f"{live.base}/demo/?msg=ordered")  # no second "Place order"
    assert page.get_by_text("Thank you: your order is placed.").is_visible()
    assert page.get_by_role("link", name="Cart (0)").is_visible()
    context.close()
