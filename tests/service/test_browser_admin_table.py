"""The admin page's sessions table in Debian's chromium: paging, sorting, the filters (user,
anonymous, application, device, risk), users shown as their application knows them, readable
devices, and the confirmation before a session ends."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionward import Policy, RequestContext, SessionManager, SQLiteStore
from sessionward.service import ServiceConfig, create_app
from sessionward.service.keys import create_key
from sessionward.service.tenancy import APP_KEY
from sessionward.testing import FakeClock

from ._browser import artifacts_dir, code_to_type
from ._server import serve
from .test_browser import FIREFOX_UA, PHONE_UA, Live, sign_in
from .test_browser import browser as browser  # a fixture
from .test_browser import live as live  # a fixture

LONG_UA = PHONE_UA + " " + "x" * 300  # a user agent far wider than any table cell


def _issue(live: Live, key: str, user: str | None, agent: str) -> str:
    body: dict[str, Any] = {"context": {"ip": "198.51.100.7", "user_agent": agent}}
    if user is not None:
        body["user_id"] = user
    answer = httpx.post(
        live.base + "/v1/sessions", json=body, headers={"authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["session"]["id"])


def _admin(browser: Any, live: Live) -> Any:
    live.add_user("admin", "root", "root-password-12")
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, live.base, "root", "root-password-12", area="admin")
    page.wait_for_url(live.base + "/admin/enrol")
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Code from your authenticator app").fill(code_to_type(secret))
    page.get_by_role("button", name="Turn on").click()
    page.wait_for_url(live.base + "/admin/")
    return page


def test_the_sessions_table_pages_sorts_filters_and_confirms(browser: Any, live: Live) -> None:
    key, _ = create_key(live.runtime.state, "issue", "table", time.time())
    for n in range(27):
        _issue(live, key, f"user{n:02d}", FIREFOX_UA)
    phone = _issue(live, key, "zoe", LONG_UA)
    anonymous = [_issue(live, key, None, FIREFOX_UA) for _ in range(3)]
    page = _admin(browser, live)
    header = page.locator("header")
    assert header.get_by_role("button", name="Sign out").is_visible()  # in the header bar
    header.get_by_role("link", name="Sessions", exact=True).click()
    page.wait_for_url(live.base + "/admin/sessions")
    # 27 + zoe + 3 anonymous + the admin's own: two pages of 25.
    assert page.locator("#result-count").inner_text() == "Showing 1 to 25 of 32 live sessions"
    assert page.locator("tbody tr").count() == 25
    page.get_by_role("link", name="Next").click()
    assert page.locator("tbody tr").count() == 7
    assert page.get_by_text("Page 2 of 2").is_visible()
    live.shot(page, "sessions-page-2")

    # Sorting by user, ascending, then reversed. Users show as their application knows
    # them (not the stored "<application>/<user>"), the application in a column of its own.
    page.get_by_role("link", name="User", exact=True).click()
    users = page.locator("tbody tr td:first-child").all_inner_texts()
    assert users[:3] == ["root you", "user00", "user01"]  # this admin's own session, marked
    apps = page.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert apps[:3] == ["admin console", "default", "default"]
    page.locator("th[aria-sort] a").click()
    assert page.locator("th[aria-sort]").get_attribute("aria-sort") == "descending"
    assert page.locator("tbody tr td:first-child").first.inner_text() == "zoe"

    # Filters: anonymous visitors only; a user; a device.
    page.get_by_label("Who").select_option("anonymous")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("#result-count").inner_text() == "Showing 1 to 3 of 3 live sessions"
    assert set(page.locator("tbody td:first-child").all_inner_texts()) == {"anonymous"}
    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Device").fill("Android")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("#result-count").inner_text() == "Showing 1 to 1 of 1 live session"
    device = page.locator("tbody td:nth-child(3)").first
    assert device.inner_text() == "Chrome 126 on Android"
    # The cell stays narrow; hijack scoring (on by default) keeps no user-agent string.
    assert device.bounding_box()["width"] < 400
    assert LONG_UA not in page.content()
    live.shot(page, "sessions-filtered")

    # Ending a session asks first; cancelling keeps it, confirming ends it.
    page.get_by_role("link", name=f"End session {phone}").click()
    page.wait_for_url(f"{live.base}/admin/sessions/{phone}/revoke")
    assert page.get_by_text("This cannot be undone.").is_visible()
    live.shot(page, "confirm-end-session")
    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url(f"{live.base}/admin/sessions/{phone}")
    assert page.get_by_role("link", name="End this session…").is_visible()  # still live
    page.goto(f"{live.base}/admin/sessions/{phone}/revoke")
    page.get_by_role("button", name="End this session").click()
    page.wait_for_url(f"{live.base}/admin/users?user=default/zoe")
    assert page.get_by_text("No live sessions for").is_visible()
    revoked = [e for e in live.runtime.activity.recent if e["kind"] == "revoked"]
    assert revoked[-1]["session_id"] == phone
    assert all(a not in {e.get("session_id") for e in revoked} for a in anonymous)

    # A user's sessions: the plural is right, and ending them all asks first too.
    page.goto(f"{live.base}/admin/users?user=default/user03")
    page.get_by_role("link", name="End the session of user03 (default)…").click()
    page.get_by_role("button", name="End 1 session").click()
    page.wait_for_url(f"{live.base}/admin/users?user=default/user03")
    assert page.get_by_text("No live sessions for").is_visible()


def _scored_session(live: Live, user: str) -> str:
    """A session of the ``default`` application whose manager scores risk (as a service with
    hijack scoring on writes it, into the same store): the user signs in from home, then comes
    back speaking German from another network, which is logged as unusual."""
    pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
    from sessionward.manager.risk import RiskAssessor

    hours = 3600.0
    policy = Policy(idle_timeout=24 * hours, absolute_timeout=7 * 24 * hours)
    clock = FakeClock(time.time() - 5 * hours - policy.effective_touch_interval)
    store = SQLiteStore(str(live.runtime.config.store))
    manager = SessionManager(store, policy=policy, clock=clock, risk=RiskAssessor())
    home = RequestContext(ip="81.2.69.160", user_agent=FIREFOX_UA, accept_language="en-GB")
    away = RequestContext(ip="86.128.9.1", user_agent=FIREFOX_UA, accept_language="de-DE")
    session = manager.issue(f"default/{user}", data={APP_KEY: "default"}, context=home)
    assert session.token is not None
    clock.advance(5 * hours)
    manager.validate(session.token, context=away)
    clock.advance(policy.effective_touch_interval)
    manager.validate(session.token, context=away)  # the periodic write keeps the decision
    store.close()
    return session.id


def test_the_application_and_risk_filters(browser: Any, live: Live) -> None:
    key, _ = create_key(live.runtime.state, "issue", "table", time.time())
    other, _ = create_key(live.runtime.state, "issue", "other", time.time(), application="books")
    _issue(live, key, "sam", FIREFOX_UA)
    _issue(live, other, "sam", PHONE_UA)  # the same name in another application
    _issue(live, other, None, PHONE_UA)
    risky = _scored_session(live, "mallory")
    page = _admin(browser, live)
    page.goto(f"{live.base}/admin/sessions")
    assert page.locator("#result-count").inner_text() == "Showing 1 to 5 of 5 live sessions"
    page.get_by_label("Application").select_option("books")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("#result-count").inner_text() == "Showing 1 to 2 of 2 live sessions"
    assert set(page.locator("tbody td:nth-child(2)").all_inner_texts()) == {"books"}
    assert sorted(page.locator("tbody td:first-child").all_inner_texts()) == ["anonymous", "sam"]
    # The user link opens that application's user, not the namesake in "default".
    page.get_by_role("link", name="sam", exact=True).click()
    assert page.url == f"{live.base}/admin/users?application=books&user=sam"
    assert page.locator("tbody tr").count() == 1

    page.goto(f"{live.base}/admin/sessions")
    page.get_by_label("Risk").select_option("any")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("#result-count").inner_text() == "Showing 1 to 1 of 1 live session"
    row = page.locator("tbody tr")
    assert row.locator("td:first-child").inner_text() == "mallory"
    assert row.get_by_role("link", name=f"End session {risky}").is_visible()
    tag = row.locator(".tag")
    assert tag.inner_text() == "logged"
    assert "en-gb -> de-de" in (tag.get_attribute("title") or "")  # the reasons
    live.shot(page, "sessions-risk-filter")
    page.get_by_label("Risk").select_option("step_up")
    page.get_by_role("button", name="Filter").click()
    assert page.get_by_text("No live session matches these filters.").is_visible()


@pytest.fixture
def scoring(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Live]:
    """The service with hijack scoring on (``risk = true``)."""
    pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
    app = create_app(ServiceConfig(store=str(tmp_path / "scoring.db"), risk=True))
    shots = artifacts_dir() / request.node.name
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with serve(app) as base:
            yield Live(base, app.state.runtime, shots)
    finally:
        closer = threading.Thread(target=asyncio.run, args=(app.state.runtime.close(),))
        closer.start()
        closer.join(10)


def test_the_risk_filter_finds_a_step_up_not_yet_written(browser: Any, scoring: Live) -> None:
    """A step-up the service's scoring asked for moments ago (kept in the process until the
    session's next periodic write) is found by the risk filter."""
    live = scoring
    key, _ = create_key(live.runtime.state, "issue", "scored", time.time())
    auth = {"authorization": f"Bearer {key}"}
    home = {"ip": "81.2.69.160", "user_agent": FIREFOX_UA, "accept_language": "en-GB"}
    abroad = {"ip": "73.1.2.3", "user_agent": FIREFOX_UA, "accept_language": "en-GB"}
    issued = httpx.post(
        f"{live.base}/v1/sessions", json={"user_id": "quinn", "context": home}, headers=auth
    ).json()
    _issue(live, key, "rita", FIREFOX_UA)  # an unremarkable session
    answer = httpx.post(
        f"{live.base}/v1/sessions/validate",
        json={"token": issued["token"], "context": abroad},
        headers=auth,
    ).json()
    assert answer["decision"] == "step-up"
    from sessionward.manager.risk import decisions_of

    store = SQLiteStore(str(live.runtime.config.store))
    record = store.get(issued["session"]["id"])
    store.close()
    assert record is not None
    assert "step_up" not in [d["decision"] for d in decisions_of(record.context)]  # not yet
    page = _admin(browser, live)
    page.goto(f"{live.base}/admin/sessions?risk=step_up")
    assert page.locator("#result-count").inner_text() == "Showing 1 to 1 of 1 live session"
    row = page.locator("tbody tr")
    assert row.locator("td:first-child").inner_text() == "quinn"
    assert row.locator(".tag").inner_text() == "step-up"
    assert "new country" in (row.locator(".tag").get_attribute("title") or "")
    live.shot(page, "sessions-step-up")
    page.get_by_label("Risk").select_option("")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("#result-count").inner_text() == "Showing 1 to 3 of 3 live sessions"
