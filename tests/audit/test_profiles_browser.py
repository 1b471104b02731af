"""Profiles in a real browser (Debian's chromium through Playwright, headless, the flags of
tests/web/test_browser.py): two profiles signed in to the demo shop as different users share
no cookie and no storage entry; what a run leaves is what the next run starts from; the
storage state round-trips with Playwright's own; the identity and proxy settings.

Skipped with the reason when chromium or Playwright is missing, unless
``SESSIONWARD_REQUIRE_SERVICES=1``. Never runs ``playwright install``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionward.audit.profiles import (
    ProfileData,
    ProfileError,
    Profiles,
    Settings,
    browser_context,
)

from ._profiles_sites import (
    ARGS,
    CHROMIUM,
    browser_sign_in,
    demo_shop,
    forward_proxy,
    need_chromium,
    notes_app,
    serve,
)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


def greeting(page: Any, base: str) -> str | None:
    page.goto(f"{base}/demo/")
    match = re.search(r"Welcome back, <strong>(\w+)</strong>", page.content())
    return match.group(1) if match else None


def values(data: ProfileData) -> set[str]:
    return {c.value for c in data.cookies if c.value}


def test_two_profiles_in_chromium_share_no_cookie_and_no_storage(
    playwright: Any, tmp_path: Path
) -> None:
    profiles = Profiles(tmp_path / "home")
    for name in ("alice", "bob"):
        profiles.create(name, Settings(user_agent=f"QA-{name}/1.0"))
    with demo_shop(tmp_path) as shop:
        origin = shop.base
        with (
            browser_context(profiles["alice"], playwright, args=ARGS) as as_alice,
            browser_context(profiles["bob"], playwright, args=ARGS) as as_bob,
        ):
            pages = {}
            for name, context in (("alice", as_alice), ("bob", as_bob)):
                page = pages[name] = context.new_page()
                browser_sign_in(page, shop.base, name)
                page.evaluate("name => localStorage.setItem('note', 'by ' + name)", name)
            # Both at once, each sees only its own.
            assert greeting(pages["alice"], shop.base) == "alice"
            assert greeting(pages["bob"], shop.base) == "bob"
            assert pages["bob"].evaluate("localStorage.getItem('note')") == "by bob"
            live_alice = {c["value"] for c in as_alice.cookies()}
            live_bob = {c["value"] for c in as_bob.cookies()}
            assert live_alice.isdisjoint(live_bob)
        alice, bob = profiles["alice"].read(), profiles["bob"].read()
        assert values(alice) == live_alice
        assert values(bob) == live_bob
        assert alice.local_storage == {origin: {"note": "by alice"}}
        assert bob.local_storage == {origin: {"note": "by bob"}}

        # The profile file is what a run starts from: a profile that never ran a browser,
        # given alice's export, is alice in chromium (cookies and storage).
        carol = profiles.create("carol")
        carol.import_text(profiles["alice"].export("json"))
        with browser_context(carol, playwright, args=ARGS) as as_carol:
            page = as_carol.new_page()
            assert greeting(page, shop.base) == "alice"
            assert page.evaluate("localStorage.getItem('note')") == "by alice"
            assert page.evaluate("navigator.userAgent") == "QA-alice/1.0"
        # ... and alice herself is still alice on her next run.
        with browser_context(profiles["alice"], playwright, args=ARGS) as again:
            assert greeting(again.new_page(), shop.base) == "alice"


def test_storage_state_round_trips_with_playwright(playwright: Any, tmp_path: Path) -> None:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    profile = Profiles(tmp_path / "home").create("bob")
    try:
        with demo_shop(tmp_path) as shop:
            plain = browser.new_context()
            page = plain.new_page()
            browser_sign_in(page, shop.base, "bob")
            page.evaluate("localStorage.setItem('note', 'by bob')")
            original = tmp_path / "playwright-state.json"
            plain.storage_state(path=str(original))
            plain.close()

            assert profile.import_text(original.read_text()).format == "storage-state"
            exported = tmp_path / "exported.json"
            exported.write_text(profile.export("storage-state"))

            # Playwright takes the export back as its own.
            fresh = browser.new_context(storage_state=str(exported))
            page = fresh.new_page()
            assert greeting(page, shop.base) == "bob"
            assert page.evaluate("localStorage.getItem('note')") == "by bob"
            fresh.close()
            # The profile's own browser is bob too.
            with browser_context(profile, playwright, args=ARGS) as context:
                assert greeting(context.new_page(), shop.base) == "bob"
        state, back = json.loads(original.read_text()), json.loads(exported.read_text())
        assert back["origins"] == state["origins"]
        key = lambda c: (c["domain"], c["path"], c["name"])  # noqa: E731
        assert sorted(back["cookies"], key=key) == sorted(state["cookies"], key=key)
    finally:
        browser.close()


def test_identity_settings_reach_the_browser(playwright: Any, tmp_path: Path) -> None:
    with forward_proxy() as (proxy, seen):
        settings = Settings("QA-dana/3.0", "de-DE", "Asia/Tokyo", (900, 700), proxy)
        profile = Profiles(tmp_path).create("dana", settings)
        with browser_context(profile, playwright, args=ARGS) as context:
            page = context.new_page()
            page.goto("http://shop.invalid/page")
            assert page.inner_text("body") == "proxied http://shop.invalid/page"
            seen_by_page = page.evaluate(
                """() => [navigator.userAgent, navigator.language,
                    Intl.DateTimeFormat().resolvedOptions().timeZone,
                    window.innerWidth, window.innerHeight]"""
            )
    assert seen_by_page == ["QA-dana/3.0", "de-DE", "Asia/Tokyo", 900, 700]
    assert seen[0] == "http://shop.invalid/page"  # (then the favicon)


def test_closing_the_context_inside_the_block_is_an_error(playwright: Any, tmp_path: Path) -> None:
    profile = Profiles(tmp_path).create("erin")

    def close_inside(base: str) -> None:
        with browser_context(profile, playwright, args=ARGS) as context:
            context.new_page().goto(f"{base}/login?user=erin")
            context.close()

    with serve(notes_app()) as base, pytest.raises(ProfileError, match="closed before"):
        close_inside(base)
    assert profile.read().cookies == []
    assert not profile.in_use()
