"""Actions that store something without a secret are limited per client address (ASVS 5.0
2.4.1): the demo shop's guest sessions (a cart's first item starts one) and registrations,
counted in the throttle's moving windows (docs/throttling.md). Over the limit the form answers
429 with Retry-After and stores nothing, the window that filled is a ``throttled`` event, and
a store outage refuses rather than let an action through uncounted. Over real HTTP; the
address comes through a trusted proxy; time is the service's fake clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from limits import parse_many

from sessionward.service.throttle import RULES, open_guard

from ._forms import Browser, Site, site_at

GUESTS = parse_many(RULES["guest-session"].address)[0].amount  # a minute, from one address
SIGN_UPS = parse_many(RULES["registration"].address)[0].amount
PASSWORD = "a pot of oolong, please"  # noqa: S105 - the test accounts'


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with site_at(tmp_path, trusted_proxies=("127.0.0.1",)) as site:
        yield site


def _from(site: Site, address: str) -> Browser:
    """A browser without cookies whose requests come from ``address`` (through the proxy)."""
    return site.browser(**{"x-forwarded-for": address})


def _add(client: Browser, item: str = "tea") -> httpx.Response:
    return client.post("/demo/cart/add", {"item": item}, csrf_from="/demo/")


def _register(client: Browser, name: str, password: str = PASSWORD) -> httpx.Response:
    form = {"username": name, "password": password}
    return client.post("/demo/register", form, csrf_from="/demo/register")


def _sessions(site: Site) -> int | None:
    return asyncio.run(site.runtime.session_count())


def _throttled(site: Site) -> list[dict[str, Any]]:
    return site.kinds("throttled")


def _refused(answer: httpx.Response) -> int:
    """The wait of a 429 form answer, checked: Retry-After, the page says it, no session."""
    assert answer.status_code == 429, answer.text
    wait = int(answer.headers["retry-after"])
    assert f"Try again in {wait} s." in answer.text
    assert not any(c.startswith("__Host-shop=") for c in answer.headers.get_list("set-cookie"))
    return wait


def test_guest_sessions_are_limited_per_address(site: Site) -> None:
    guest = _from(site, "203.0.113.60")
    assert _add(guest).headers["location"] == "/demo/cart"
    for _ in range(GUESTS + 10):  # a guest with a session adds items: not counted again
        assert _add(guest, "mug").status_code == 303
    assert _sessions(site) == 1
    for _ in range(GUESTS - 1):  # new guests from the same address, each a session
        assert _add(_from(site, "203.0.113.60")).status_code == 303
    assert _sessions(site) == GUESTS
    [event] = _throttled(site)  # the session that filled the minute's window
    assert event["reason"] == "guest-session-address"
    assert event["user_id"] is None
    assert 1 <= event["retry_after"] <= 60

    bot = _from(site, "203.0.113.60")
    wait = _refused(_add(bot))
    assert 1 <= wait <= 60
    assert _sessions(site) == GUESTS  # nothing stored
    assert len(_throttled(site)) == 1  # a refused attempt fills nothing
    assert _add(guest).status_code == 303  # the guests who have a session shop on
    assert _add(_from(site, "198.51.100.61")).status_code == 303  # another address: its own
    assert _sessions(site) == GUESTS + 1

    site.clock.advance(wait)
    assert _add(bot).status_code == 303  # the window passed
    assert _sessions(site) == GUESTS + 2
    cart = bot.get("/demo/cart")
    assert "Cart (1)" in cart.text


def test_the_guest_limit_can_be_turned_off_registrations_stay_limited(tmp_path: Path) -> None:
    # As an audit's token harvest needs: any number of guest sessions from one address.
    with site_at(tmp_path, trusted_proxies=("127.0.0.1",), demo_guest_limit=False) as site:
        for _ in range(GUESTS + 5):
            assert _add(_from(site, "203.0.113.70")).status_code == 303
        assert _sessions(site) == GUESTS + 5
        assert _throttled(site) == []
        client = _from(site, "203.0.113.70")
        for n in range(SIGN_UPS):
            assert _register(client, f"kim{n}").status_code == 303
        _refused(_register(client, "kim-more"))


def test_registrations_are_limited_per_address(site: Site) -> None:
    site.add_user("demo", "ann", "ann's own password")
    client = _from(site, "2001:db8:1:1::10")
    for _ in range(3):  # refused for what the form says: no hash, nothing stored, not counted
        assert _register(client, "kim", "short").status_code == 400
    names = ["ann", "kim", "lou", "ann", "max"]  # a taken name counts as much as a free one
    assert [_register(client, n).status_code for n in names] == [303] * SIGN_UPS
    [event] = _throttled(site)
    assert event["reason"] == "registration-address"
    assert event["user_id"] is None
    assert PASSWORD not in str(event)

    neighbour = _from(site, "2001:db8:1:1::99")  # the same /64: the same address
    wait = _refused(_register(neighbour, "ned"))
    assert 1 <= wait <= 60
    assert site.runtime.state.get_user("demo", "ned") is None  # nothing stored
    assert "Try again in" in _register(client, "ned").text
    assert site.runtime.state.get_user("demo", "ned") is None
    elsewhere = _from(site, "2001:db8:1:2::10")  # another /64
    assert _register(elsewhere, "ola").status_code == 303
    assert site.runtime.state.get_user("demo", "ola") is not None

    site.clock.advance(wait)
    assert _register(neighbour, "ned").status_code == 303  # the window passed
    assert site.runtime.state.get_user("demo", "ned") is not None
    assert _from(site, "2001:db8:1:1::10").shop_login("ned", PASSWORD).status_code == 303


def test_registrations_back_off_by_the_hour(site: Site) -> None:
    client = _from(site, "203.0.113.62")
    waits = []
    for step in range(4):  # 5 a minute, 20 an hour: the fourth wait is the hour's
        for i in range(SIGN_UPS):
            assert _register(client, f"user{step}-{i}").status_code == 303
        waits.append(_refused(_register(client, f"late{step}")))
        site.clock.advance(waits[-1])
    assert max(waits[:3]) <= 60
    assert waits[3] > 3000
    assert [e["reason"] for e in _throttled(site)][-1] == "registration-address"


def test_a_store_outage_refuses_rather_than_count_nothing(site: Site) -> None:
    runtime = site.runtime
    # The windows' store goes away (a Redis where nothing listens); the sessions' stays.
    runtime.guard = open_guard("redis://127.0.0.1:9/0", runtime.state, time.time, None)
    shopper = _from(site, "203.0.113.63")
    added = _add(shopper)
    assert added.status_code == 503
    assert _sessions(site) == 0
    assert _register(shopper, "zoe").status_code == 503
    assert runtime.state.get_user("demo", "zoe") is None


def test_the_guest_limit_is_configured_by_flag_environment_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessionward.cli import build_parser
    from sessionward.cli.serve import _load
    from sessionward.service.config import load_config

    assert load_config({}, environ={}).demo_guest_limit is True  # on by default
    off = {"SESSIONWARD_DEMO_GUEST_LIMIT": "false"}
    assert load_config({}, environ=off).demo_guest_limit is False
    toml = tmp_path / "service.toml"
    toml.write_text("demo_guest_limit = false\n", encoding="utf-8")
    assert load_config({}, environ={}, config_file=str(toml)).demo_guest_limit is False
    monkeypatch.delenv("SESSIONWARD_DEMO_GUEST_LIMIT", raising=False)
    for command in ("serve", "demo"):
        flagged = build_parser().parse_args([command, "--no-demo-guest-limit"])
        assert _load(flagged).demo_guest_limit is False
        assert _load(build_parser().parse_args([command])).demo_guest_limit is True
