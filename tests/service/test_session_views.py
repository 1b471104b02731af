"""What people see about a session: the device as people name it, the network's owner and
country instead of a bare address, and the risk decisions with their reasons, on the demo's
"Your devices" page and the admin's session page (real HTTP, risk scoring on), and the
labels themselves with fixed values."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from agents import IPHONE, SAFARI

from sessionward import MemoryStore, Policy, RequestContext, SessionManager
from sessionward.core.risk_types import Browser, Network
from sessionward.manager.risk import RiskAssessor
from sessionward.manager.risk_view import device_label, network_label, view_of
from sessionward.testing import FakeClock

from ._forms import TOTP, Site, site_at

WINDOWS_FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
OWNER = {"x-forwarded-for": "81.2.69.160", "user-agent": SAFARI, "accept-language": "en-GB"}
THIEF = {**OWNER, "x-forwarded-for": "73.1.2.3"}  # Comcast (US), the owner's browser copied
ADMIN_PASSWORD = "staple battery horse"  # noqa: S105 - a test account's
HOURS = 3600.0


@pytest.mark.parametrize(
    ("browser", "label"),
    [
        (Browser("Firefox", 133, "Windows", 10, "desktop"), "Firefox 133 on Windows"),
        (Browser("Mobile Safari", 17, "iOS", 17, "mobile"), "Safari on iPhone"),
        (Browser("Mobile Safari", 17, "iOS", 17, "tablet"), "Safari on iPad"),
        (Browser("Safari", 17, "Mac OS X", 10, "desktop"), "Safari 17 on macOS"),
        (Browser("Chrome Mobile", 131, "Android", 14, "mobile"), "Chrome 131 on Android"),
        (Browser("Chrome", 131, "Android", 14, "tablet"), "Chrome 131 on an Android tablet"),
        (Browser("curl", 8, "", None, "tool"), "curl 8 (a tool, not a browser)"),
        (Browser("Googlebot", 2, "", None, "bot"), "Googlebot 2 (a bot)"),
        (Browser(), ""),
    ],
)
def test_devices_are_named_as_people_name_them(browser: Browser, label: str) -> None:
    assert device_label(browser) == label


@pytest.mark.parametrize(
    ("network", "label"),
    [
        (Network("73.1.2.0/24", "COMCAST-7922", "US", ""), "COMCAST-7922 (US)"),
        (Network("5.6.7.0/24", "M247 Europe SRL", "RO", "vpn"), "M247 Europe SRL (RO), a VPN"),
        (Network("185.220.101.0/24", "", "DE", "tor"), "an unknown network (DE), a Tor exit"),
        (Network(), ""),
    ],
)
def test_networks_are_named_by_owner_and_country(network: Network, label: str) -> None:
    assert network_label(network) == label


def test_the_view_reads_scored_and_plain_histories() -> None:
    for risk in (RiskAssessor(), None):
        manager = SessionManager(MemoryStore(), clock=FakeClock(), risk=risk)
        context = RequestContext(ip="81.2.69.160", user_agent=WINDOWS_FIREFOX)
        session = manager.issue("alice", context=context)
        view = view_of(session.record)
        assert view.device == "Firefox 133 on Windows"
        assert view.network == "Andrews & Arnold Ltd (GB)"
        assert view.country == "GB"
        assert view.decisions == ()
    manager = SessionManager(MemoryStore(), clock=FakeClock(), risk=RiskAssessor())
    phone = manager.issue("bob", context=RequestContext(ip="73.1.2.3", user_agent=IPHONE))
    assert view_of(phone.record).device == "Safari on iPhone"
    garbage = phone.record._replace(context="{not json")
    assert view_of(garbage).device == ""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    policy = Policy(idle_timeout=24 * HOURS, absolute_timeout=7 * 24 * HOURS)
    options = {"risk": True, "trusted_proxies": ("127.0.0.1",), "policy": policy}
    with site_at(tmp_path, **options) as site:
        site.add_user("demo", "ann", "ann-password")
        site.add_user("admin", "root", ADMIN_PASSWORD, TOTP)
        yield site


def test_your_devices_shows_device_network_and_the_challenge_with_reasons(site: Site) -> None:
    owner = site.browser(**OWNER)
    assert owner.shop_login("ann", "ann-password").status_code == 303
    site.clock.advance(5 * HOURS)
    thief = site.browser(**THIEF)
    thief.cookies = dict(owner.cookies)
    assert thief.get("/demo/devices").status_code == 401
    reader = site.browser(**THIEF, accept="text/html")
    reader.cookies = dict(owner.cookies)
    page = reader.get("/demo/devices")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/demo/login?next=%2Fdemo%2Fdevices")
    login = thief.get("/demo/login")
    assert login.status_code == 200  # the sign-in page stays reachable
    assert "Please sign in again" in login.text
    assert "network: new country" in login.text
    assert "COMCAST" not in login.text  # the sentences are for the owner's pages

    devices = owner.get("/demo/devices")
    assert devices.status_code == 200
    text = devices.text
    assert "Safari 17 on macOS" in text
    assert "Andrews &amp; Arnold Ltd (GB)" in text
    assert "81.2.69.160" not in text  # the network, not a bare address
    assert "asked to sign in again" in text
    assert "new country" in text
    assert "COMCAST" in text
    assert re.search(r"network\.new_country, weight \d", text)


def test_the_owner_signing_in_again_confirms_and_keeps_the_session(site: Site) -> None:
    owner = site.browser(**OWNER)
    assert owner.shop_login("ann", "ann-password").status_code == 303
    site.clock.advance(5 * HOURS)
    travelling = site.browser(**THIEF)  # the owner's own browser, abroad
    travelling.cookies = dict(owner.cookies)
    assert travelling.get("/demo/devices").status_code == 401
    before = travelling.cookies["__Host-shop"]
    again = travelling.shop_login("ann", "ann-password")
    assert again.status_code == 303
    assert travelling.cookies["__Host-shop"] != before  # rotated: the copy is cut off
    site.clock.advance(60)
    devices = travelling.get("/demo/devices")
    assert devices.status_code == 200
    assert "confirmed by its owner, who signed in again" in devices.text
    assert "asked to sign in again" in devices.text
    dead = owner.get("/demo/devices")  # the old token no longer signs anyone in
    assert (dead.status_code, dead.headers["location"]) == (303, "/demo/login")


def test_the_admin_session_page_shows_device_network_and_decisions(site: Site) -> None:
    owner = site.browser(**OWNER)
    assert owner.shop_login("ann", "ann-password").status_code == 303
    site.clock.advance(5 * HOURS)
    thief = site.browser(**THIEF)
    thief.cookies = dict(owner.cookies)
    assert thief.get("/demo/devices").status_code == 401
    session_id = next(e["session_id"] for e in site.runtime.activity.recent if e["kind"] == "risk")
    admin = site.browser()
    admin.admin_login(site, "root", ADMIN_PASSWORD)
    detail = admin.get(f"/admin/sessions/{session_id}").text
    assert "Safari 17 on macOS" in detail
    assert "Andrews &amp; Arnold Ltd (GB)" in detail
    assert "asked to sign in again" in detail
    assert "network.new_country" in detail
    listing = admin.get("/admin/sessions").text
    assert "Safari 17 on macOS" in listing
    assert "Andrews &amp; Arnold Ltd (GB)" in listing
