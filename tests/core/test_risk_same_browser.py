"""Every browser attribute as the session's (``RiskPolicy.browser_same``), on fixed contexts:
off by default, weak evidence of the owner when set, never said of a partial copy, and it
does not turn a thief's other differences or a revoke into something milder than a step-up."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sessionward import ConfigError
from sessionward.core.risk import (
    Browser,
    Decision,
    Network,
    Observation,
    Signal,
    Signals,
    Verdict,
    assess,
    begin,
    remember,
)
from sessionward.core.risk_history import Population, UserRisk
from sessionward.core.risk_policy import RiskPolicy

OFF = RiskPolicy()
ON = RiskPolicy(browser_same=-0.7)
HOME = Network("81.2.69.0/24", "Andrews & Arnold Ltd", "GB")
HOTEL = Network("90.1.2.0/24", "Orange", "FR")
CHROME = Browser("Chrome", 126, "Windows", 10, "desktop")
SAFARI = Browser("Safari", 17, "Mac OS X", 14, "desktop")
BASE = Signals(HOME, CHROME, "en-gb", "Windows")


def sig(base: Signals = BASE, **changes: Any) -> Signals:
    return dataclasses.replace(base, **changes)


def verdict(now: Signals, policy: RiskPolicy, start: Signals = BASE) -> Verdict:
    login = Observation(0.0, start)
    user = remember(UserRisk(), None, login, policy)
    return assess(Observation(7200.0, now), begin(login), user, Population(), policy)


def same(v: Verdict) -> float | None:
    found = [r.weight for r in v.reasons if r.signal is Signal.BROWSER_SAME]
    return found[0] if found else None


def test_off_by_default() -> None:
    assert same(verdict(sig(network=HOTEL), OFF)) is None


def test_a_move_with_every_attribute_the_same_carries_the_weight() -> None:
    on, off = verdict(sig(network=HOTEL), ON), verdict(sig(network=HOTEL), OFF)
    assert same(on) == pytest.approx(-0.7)
    assert on.score == pytest.approx(off.score - 0.7)
    assert next(r for r in on.reasons if r.signal is Signal.BROWSER_SAME).group == "browser"


def test_a_browser_that_sends_no_platform_hint_counts_as_the_same() -> None:
    safari = Signals(HOME, SAFARI, "fr-fr", "")
    assert same(verdict(sig(safari, network=HOTEL), ON, start=safari)) == pytest.approx(-0.7)


def test_a_matching_device_signal_is_needed_when_the_session_has_one() -> None:
    start = sig(device_signal="d1")
    assert same(verdict(sig(start, network=HOTEL), ON, start=start)) is not None
    assert same(verdict(sig(start, network=HOTEL, device_signal="d2"), ON, start=start)) is None
    assert same(verdict(sig(start, network=HOTEL, device_signal=""), ON, start=start)) is None


PARTIAL_COPIES = {
    "another language": sig(network=HOTEL, language="ru"),
    "no language": sig(network=HOTEL, language=""),
    "no platform hint": sig(network=HOTEL, platform=""),
    "a contradicting hint": sig(network=HOTEL, platform_mismatch=True),
    "a browser update": sig(network=HOTEL, browser=dataclasses.replace(CHROME, major=127)),
    "a stale copied version": sig(network=HOTEL, browser=dataclasses.replace(CHROME, major=125)),
}


@pytest.mark.parametrize("changed", PARTIAL_COPIES.values(), ids=PARTIAL_COPIES.keys())
def test_a_partial_copy_gets_nothing(changed: Signals) -> None:
    assert same(verdict(changed, ON)) is None


def test_an_unparsed_user_agent_gets_nothing() -> None:
    blank = Signals(HOME, Browser(), "en-gb", "")
    assert same(verdict(sig(blank, network=HOTEL), ON, start=blank)) is None


def test_a_foreign_replay_with_its_own_browser_is_still_revoked() -> None:
    thief = Signals(
        Network("5.1.0.0/24", "Rostelecom", "RU"), Browser("curl", 8, "", None, "tool"), "ru", ""
    )
    assert verdict(thief, ON).decision is Decision.REVOKE


def test_a_positive_weight_is_refused() -> None:
    with pytest.raises(ConfigError):
        RiskPolicy(browser_same=0.5)
