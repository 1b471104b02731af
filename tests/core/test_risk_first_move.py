"""An owner's first move against a thief's, on fixed contexts: every browser attribute as the
session's (``RiskPolicy.browser_same``: off by default, weak evidence of the owner when set,
never said of a partial copy) and a move with nothing else different
(``RiskPolicy.step_up_alone_at``: off by default, a log below it; a move plus any other
difference still asks for a sign-in, and neither turns a revoke into something milder)."""

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
    Reason,
    Signal,
    Signals,
    Verdict,
    assess,
    begin,
    decide,
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


ALONE = RiskPolicy(step_up_alone_at=7.0)
MOVE = Reason(Signal.NETWORK_COUNTRY, 6.0, "new country: Orange (FR)")


@pytest.mark.parametrize(
    ("reasons", "policy", "expected"),
    [
        ((MOVE,), OFF, Decision.STEP_UP),
        ((MOVE,), ALONE, Decision.LOG),
        ((MOVE, Reason(Signal.BROWSER_SAME, -0.7, "same")), ALONE, Decision.LOG),
        ((MOVE, Reason(Signal.DEVICE_SAME, -1.0, "same")), ALONE, Decision.LOG),
        ((Reason(Signal.NETWORK_COUNTRY, 7.5, "far"),), ALONE, Decision.STEP_UP),
        ((MOVE, Reason(Signal.LANGUAGE_REGION, 1.0, "en-gb -> en-us")), ALONE, Decision.STEP_UP),
        ((MOVE, Reason(Signal.PLATFORM_MISSING, 2.0, "none")), ALONE, Decision.STEP_UP),
        ((MOVE, Reason(Signal.TRAVEL, 2.0, "GB -> FR in 600 s")), ALONE, Decision.STEP_UP),
        ((MOVE, Reason(Signal.CONCURRENT, 1.0, "also used")), ALONE, Decision.STEP_UP),
    ],
    ids=[
        "off",
        "alone",
        "same browser",
        "same device",
        "above",
        "language",
        "hint",
        "travel",
        "concurrent",
    ],
)
def test_a_move_alone_is_logged_below_its_threshold(
    reasons: tuple[Reason, ...], policy: RiskPolicy, expected: Decision
) -> None:
    assert decide(reasons, policy).decision is expected


def test_a_move_alone_never_softens_a_revoke() -> None:
    reasons = (Reason(Signal.NETWORK_COUNTRY, 6.0, "far"), Reason(Signal.BROWSER_OS, 5.0, "x"))
    assert decide(reasons, ALONE).decision is Decision.REVOKE


def test_a_first_trip_with_the_same_browser_is_logged_and_a_partial_copy_is_not() -> None:
    # A user whose sessions all started at home: a first trip is a step-up by default.
    trip = sig(network=HOTEL)
    assert verdict(trip, OFF).decision is Decision.STEP_UP
    policy = RiskPolicy(step_up_alone_at=9.0)
    assert verdict(trip, policy).decision is Decision.LOG
    assert verdict(sig(trip, language="en-us"), policy).decision is Decision.STEP_UP


@pytest.mark.parametrize("value", [4.0, 9.5, -1.0])
def test_a_threshold_outside_step_up_and_revoke_is_refused(value: float) -> None:
    with pytest.raises(ConfigError):
        RiskPolicy(step_up_alone_at=value)
