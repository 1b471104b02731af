"""The risk engine on fixed contexts: every signal, every decision path, the learning rules."""

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
    SessionRisk,
    Signal,
    Signals,
    Verdict,
    assess,
    begin,
    confirm,
    decide,
    learn,
    network_path,
    novelty,
    remember,
)
from sessionward.core.risk_history import Population, PopulationCounter, UserRisk
from sessionward.core.risk_policy import RiskPolicy

POLICY = RiskPolicy()
DAY = 86400.0

HOME = Network("81.2.69.0/24", "Andrews & Arnold Ltd", "GB")
HOME_NEXT = Network("81.2.70.0/24", "Andrews & Arnold Ltd", "GB")
MOBILE = Network("172.56.9.0/24", "EE Limited", "GB")
OTHER_GB = Network("86.1.0.0/24", "British Telecommunications PLC", "GB")
ABROAD = Network("5.1.0.0/24", "Rostelecom", "RU")
VPN = Network("185.1.1.0/24", "M247 Europe SRL", "NL", "vpn")
TOR = Network("185.220.101.0/24", "Stiftung Erneuerbare Freiheit", "DE", "tor")
HOSTING = Network("52.95.110.0/24", "AMAZON-02", "US", "hosting")

CHROME = Browser("Chrome", 126, "Windows", 10, "desktop")
BASE = Signals(HOME, CHROME, "en-gb", "Windows")


def sig(**changes: Any) -> Signals:
    return dataclasses.replace(BASE, **changes)


def session_at(signals: Signals = BASE, t: float = 0.0) -> SessionRisk:
    return begin(Observation(t, signals))


def new_user(signals: Signals = BASE) -> UserRisk:
    return remember(UserRisk(), None, Observation(0.0, signals), POLICY)


def seasoned_user() -> UserRisk:
    """Twenty sessions at home, ten on a mobile carrier with a new prefix each time."""
    user = UserRisk()
    for day in range(20):
        user = remember(user, None, Observation(day * DAY, BASE), POLICY)
    for day in range(10):
        net = Network(f"172.56.{day}.0/24", "EE Limited", "GB")
        user = remember(user, None, Observation(day * DAY, sig(network=net)), POLICY)
    return user


def verdict(
    signals: Signals,
    *,
    user: UserRisk | None = None,
    session: SessionRisk | None = None,
    t: float = 100.0,
    previous_secret: bool = False,
    population: Population | None = None,
    policy: RiskPolicy = POLICY,
) -> Verdict:
    return assess(
        Observation(t, signals, previous_secret),
        session or session_at(),
        user if user is not None else new_user(),
        population or Population(),
        policy,
    )


def signals_of(v: Verdict) -> set[Signal]:
    return {r.signal for r in v.reasons}


def weight(v: Verdict, signal: Signal) -> float:
    return sum(r.weight for r in v.reasons if r.signal is signal)


# -- decisions on fixed contexts --------------------------------------------------------------


def test_the_same_context_is_allowed_with_the_same_network_as_evidence() -> None:
    v = verdict(BASE)
    assert v.decision is Decision.ALLOW
    assert weight(v, Signal.NETWORK_SAME) < -2
    assert v.score == pytest.approx(sum(r.weight for r in v.reasons))


@pytest.mark.parametrize("user", [new_user(), seasoned_user()], ids=["new user", "seasoned user"])
def test_a_new_prefix_of_the_same_network_is_allowed(user: UserRisk) -> None:
    v = verdict(sig(network=HOME_NEXT), user=user)
    assert v.decision is Decision.ALLOW
    assert Signal.NETWORK_PREFIX in signals_of(v)


@pytest.mark.parametrize("user", [new_user(), seasoned_user()], ids=["new user", "seasoned user"])
def test_a_browser_update_is_allowed(user: UserRisk) -> None:
    v = verdict(sig(browser=dataclasses.replace(CHROME, major=127)), user=user)
    assert v.decision is Decision.ALLOW
    assert weight(v, Signal.BROWSER_UPDATE) == POLICY.browser_update


def test_a_network_the_user_knows_from_other_sessions_scores_lower_than_an_unknown_one() -> None:
    known = verdict(
        sig(network=Network("172.56.77.0/24", "EE Limited", "GB")), user=seasoned_user()
    )
    unknown = verdict(sig(network=OTHER_GB), user=seasoned_user())
    assert known.score < 0 < unknown.score < POLICY.step_up_at
    assert known.decision is Decision.ALLOW
    assert unknown.decision in (Decision.ALLOW, Decision.LOG)


def test_a_new_network_scores_higher_for_a_user_with_a_settled_history() -> None:
    fresh = verdict(sig(network=OTHER_GB), user=new_user())
    settled = verdict(sig(network=OTHER_GB), user=seasoned_user())
    assert settled.score > fresh.score


@pytest.mark.parametrize(
    "network", [ABROAD, VPN, TOR, HOSTING], ids=["abroad", "vpn", "tor", "hosting"]
)
def test_another_country_asks_to_sign_in_again(network: Network) -> None:
    v = verdict(sig(network=network), user=seasoned_user(), t=5 * 3600)
    assert v.decision is Decision.STEP_UP
    assert Signal.NETWORK_COUNTRY in signals_of(v)


def test_another_country_for_a_user_without_history_is_at_least_logged() -> None:
    v = verdict(sig(network=ABROAD), t=5 * 3600)
    assert v.decision in (Decision.LOG, Decision.STEP_UP)
    assert v.score > verdict(sig(network=OTHER_GB), t=5 * 3600).score


@pytest.mark.parametrize("network", [VPN, TOR, HOSTING], ids=["vpn", "tor", "hosting"])
def test_hosting_vpn_and_tor_networks_add_their_own_reason(network: Network) -> None:
    v = verdict(sig(network=network), t=5 * 3600)
    assert weight(v, Signal.NETWORK_KIND) > 1


def test_a_population_full_of_vpn_users_makes_a_vpn_less_telling() -> None:
    counter = PopulationCounter()
    for _ in range(500):
        counter.add(network_path(VPN))
        counter.add(network_path(HOME))
    v = verdict(sig(network=VPN), t=5 * 3600)
    crowded = verdict(sig(network=VPN), t=5 * 3600, population=counter.snapshot())
    assert weight(crowded, Signal.NETWORK_KIND) < weight(v, Signal.NETWORK_KIND)


def test_a_foreign_replay_with_its_own_browser_is_revoked() -> None:
    thief = Signals(ABROAD, Browser("Firefox", 120, "Linux", None, "desktop"), "ru", "")
    v = verdict(thief, t=5 * 3600)
    assert v.decision is Decision.REVOKE
    assert {Signal.NETWORK_COUNTRY, Signal.BROWSER_OS, Signal.LANGUAGE_CHANGED} <= signals_of(v)
    assert [r.weight for r in v.reasons] == sorted((r.weight for r in v.reasons), reverse=True)


SINGLE_CHANGES: list[tuple[str, Signals]] = [
    ("new address, same prefix", BASE),
    ("new prefix", sig(network=HOME_NEXT)),
    ("new network", sig(network=OTHER_GB)),
    ("new country", sig(network=ABROAD)),
    ("tor exit", sig(network=TOR)),
    ("browser update", sig(browser=dataclasses.replace(CHROME, major=127))),
    ("browser downgrade", sig(browser=dataclasses.replace(CHROME, major=120))),
    ("other browser", sig(browser=dataclasses.replace(CHROME, family="Edge"))),
    ("other device", sig(browser=Browser("Chrome Mobile", 126, "Android", 14, "mobile"))),
    ("language", sig(language="ru")),
    ("platform", sig(platform="Linux")),
]


@pytest.mark.parametrize("user", [new_user(), seasoned_user()], ids=["new user", "seasoned user"])
@pytest.mark.parametrize(("name", "changed"), SINGLE_CHANGES, ids=[n for n, _ in SINGLE_CHANGES])
def test_one_change_alone_never_revokes(name: str, changed: Signals, user: UserRisk) -> None:
    # Hours later, so the impossible-travel signal does not join in.
    assert verdict(changed, user=user, t=5 * 3600).decision is not Decision.REVOKE


def test_a_revoke_needs_two_groups_of_evidence() -> None:
    policy = RiskPolicy(log_at=1, step_up_at=2, revoke_at=3, corroboration=2)
    one_group = decide(
        (_reason(Signal.NETWORK_COUNTRY, 9.0), _reason(Signal.NETWORK_KIND, 3)), policy
    )
    two_groups = decide(
        (_reason(Signal.NETWORK_COUNTRY, 9.0), _reason(Signal.BROWSER_OS, 2)), policy
    )
    weak_second = decide(
        (_reason(Signal.NETWORK_COUNTRY, 9.0), _reason(Signal.BROWSER_OS, 1.9)), policy
    )
    assert one_group.decision is Decision.STEP_UP
    assert two_groups.decision is Decision.REVOKE
    assert weak_second.decision is Decision.STEP_UP


@pytest.mark.parametrize(
    ("score", "decision"),
    [(2.49, Decision.ALLOW), (2.5, Decision.LOG), (4.99, Decision.LOG), (5.0, Decision.STEP_UP)],
)
def test_thresholds(score: float, decision: Decision) -> None:
    assert decide((_reason(Signal.NETWORK_ASN, score),), POLICY).decision is decision


def _reason(signal: Signal, w: float) -> Reason:
    return Reason(signal, w, "test")


# -- browser, language, client hint, device signal ---------------------------------------------

BROWSER_CASES: list[tuple[Browser, Signal | None]] = [
    (CHROME, None),
    (dataclasses.replace(CHROME, major=128), Signal.BROWSER_UPDATE),
    (dataclasses.replace(CHROME, os_major=11), Signal.BROWSER_UPDATE),
    (dataclasses.replace(CHROME, major=125), Signal.BROWSER_DOWNGRADE),
    (dataclasses.replace(CHROME, major=140), Signal.BROWSER_JUMP),
    (dataclasses.replace(CHROME, family="Edge"), Signal.BROWSER_FAMILY),
    (dataclasses.replace(CHROME, os="Mac OS X"), Signal.BROWSER_OS),
    (Browser("curl", 8, "", None, "tool"), Signal.BROWSER_DEVICE),
]


@pytest.mark.parametrize(("browser", "expected"), BROWSER_CASES)
def test_browser_changes_follow_the_hierarchy(browser: Browser, expected: Signal | None) -> None:
    found = {s for s in signals_of(verdict(sig(browser=browser))) if s.group == "browser"}
    assert found == ({expected} if expected else set())


LANGUAGE_CASES = [
    ("en-gb", None),
    ("en-us", Signal.LANGUAGE_REGION),
    ("ru", Signal.LANGUAGE_CHANGED),
    ("", Signal.LANGUAGE_MISSING),
]


@pytest.mark.parametrize(("language", "expected"), LANGUAGE_CASES)
def test_language_changes(language: str, expected: Signal | None) -> None:
    found = {s for s in signals_of(verdict(sig(language=language))) if s.group == "language"}
    assert found == ({expected} if expected else set())


def test_a_language_where_the_session_had_none() -> None:
    v = verdict(BASE, session=session_at(sig(language="")))
    assert Signal.LANGUAGE_ADDED in signals_of(v)


PLATFORM_CASES: list[tuple[str, str, bool, set[Signal]]] = [
    ("Windows", "Windows", False, set()),
    ("Windows", "Linux", False, {Signal.PLATFORM_CHANGED}),
    ("Windows", "", False, {Signal.PLATFORM_MISSING}),
    ("", "Windows", False, {Signal.PLATFORM_ADDED}),
    ("Windows", "Windows", True, {Signal.PLATFORM_MISMATCH}),
]


@pytest.mark.parametrize(("before", "now", "mismatch", "expected"), PLATFORM_CASES)
def test_client_hint_platform(before: str, now: str, mismatch: bool, expected: set[Signal]) -> None:
    v = verdict(
        sig(platform=now, platform_mismatch=mismatch), session=session_at(sig(platform=before))
    )
    assert {s for s in signals_of(v) if s.group == "platform"} == expected


def test_a_mismatch_the_session_started_with_is_not_held_against_it() -> None:
    odd = sig(platform_mismatch=True)  # say, a user-agent switcher the owner uses
    assert Signal.PLATFORM_MISMATCH not in signals_of(verdict(odd, session=session_at(odd)))


DEVICE_CASES = [
    ("d1", "d1", Signal.DEVICE_SAME),
    ("d1", "d2", Signal.DEVICE_CHANGED),
    ("d1", "", Signal.DEVICE_MISSING),
    ("", "d1", Signal.DEVICE_ADDED),
]


@pytest.mark.parametrize(("before", "now", "expected"), DEVICE_CASES)
def test_device_signal(before: str, now: str, expected: Signal) -> None:
    v = verdict(sig(device_signal=now), session=session_at(sig(device_signal=before)))
    assert {s for s in signals_of(v) if s.group == "device"} == {expected}
    assert (weight(v, expected) < 0) is (expected is Signal.DEVICE_SAME)


def test_no_device_signal_at_all_says_nothing() -> None:
    assert not {s for s in signals_of(verdict(BASE)) if s.group == "device"}


# -- behaviour -------------------------------------------------------------------------------


def _walk(steps: list[tuple[float, Signals]], user: UserRisk | None = None) -> list[Verdict]:
    """Run a session through ``steps`` (the first is the login), learning as the manager would."""
    user = user if user is not None else UserRisk()
    t0, first = steps[0]
    session = begin(Observation(t0, first))
    user = remember(user, None, Observation(t0, first), POLICY)
    out = []
    for t, signals in steps[1:]:
        obs = Observation(t, signals)
        v = assess(obs, session, user, Population(), POLICY)
        if v.decision in (Decision.ALLOW, Decision.LOG):
            user = remember(user, session, obs, POLICY)
        session = learn(session, obs, v, POLICY)
        out.append(v)
    return out


def test_use_from_two_networks_at_once_is_concurrent() -> None:
    there = sig(network=OTHER_GB)
    steps = [(0.0, BASE), (10.0, BASE), (20.0, there), (30.0, BASE)]
    arrival, back = _walk(steps, seasoned_user())[1:]
    assert arrival.decision is Decision.LOG
    assert Signal.CONCURRENT in signals_of(back)
    assert back.decision is Decision.STEP_UP


def test_a_move_without_coming_back_is_not_concurrent() -> None:
    steps = [(0.0, BASE), (20.0, sig(network=OTHER_GB)), (30.0, sig(network=OTHER_GB))]
    assert not any(Signal.CONCURRENT in signals_of(v) for v in _walk(steps))


def test_coming_back_after_the_window_is_not_concurrent() -> None:
    later = POLICY.concurrent_window + 100
    steps = [(0.0, BASE), (20.0, sig(network=OTHER_GB)), (20.0 + later, BASE)]
    assert Signal.CONCURRENT not in signals_of(_walk(steps)[-1])


def test_dual_stack_alternation_in_one_network_is_not_concurrent() -> None:
    v6 = sig(network=Network("2a02:8010:1::/48", "Andrews & Arnold Ltd", "GB"))
    steps = [(0.0, BASE), (5.0, v6), (10.0, BASE), (15.0, v6), (20.0, BASE)]
    verdicts = _walk(steps)
    assert all(v.decision is Decision.ALLOW for v in verdicts)


def test_another_country_within_the_hour_is_impossible_travel() -> None:
    soon = verdict(sig(network=ABROAD), t=600)
    later = verdict(sig(network=ABROAD), t=POLICY.travel_window + 600)
    assert Signal.TRAVEL in signals_of(soon)
    assert Signal.TRAVEL not in signals_of(later)


def test_a_vpn_switch_is_not_travel() -> None:
    assert Signal.TRAVEL not in signals_of(verdict(sig(network=VPN), t=600))


def test_request_velocity() -> None:
    steps = [(i * 0.05, BASE) for i in range(2000)]  # twenty a second
    verdicts = _walk(steps)
    assert Signal.VELOCITY not in signals_of(verdicts[10])
    assert Signal.VELOCITY in signals_of(verdicts[-1])
    assert all(v.decision is not Decision.REVOKE for v in verdicts)


def test_a_rotated_out_secret_in_the_same_context_is_a_race() -> None:
    v = verdict(BASE, previous_secret=True)
    assert Signal.PREVIOUS_SECRET not in signals_of(v)
    assert v.decision is Decision.ALLOW


def test_a_rotated_out_secret_from_elsewhere_is_revoked() -> None:
    v = verdict(sig(network=OTHER_GB), user=seasoned_user(), previous_secret=True)
    assert weight(v, Signal.PREVIOUS_SECRET) == POLICY.previous_secret
    assert v.decision is Decision.REVOKE


# -- learning --------------------------------------------------------------------------------


def test_an_allowed_network_is_learned_and_a_challenged_one_is_not() -> None:
    session = session_at()
    user = seasoned_user()
    logged = Observation(100, sig(network=OTHER_GB))
    v = assess(logged, session, user, Population(), POLICY)
    assert v.decision is Decision.LOG
    after = learn(session, logged, v, POLICY)
    again = assess(Observation(200, logged.signals), after, user, Population(), POLICY)
    assert Signal.NETWORK_SAME in signals_of(again)

    abroad = Observation(5 * 3600, sig(network=ABROAD))
    v = assess(abroad, session, user, Population(), POLICY)
    assert v.decision is Decision.STEP_UP
    after = learn(session, abroad, v, POLICY)
    assert after.networks == session.networks
    assert after.signals == session.signals
    confirmed = confirm(session, abroad, POLICY)
    assert confirmed.networks[-1].network == ABROAD
    assert confirmed.networks[-1].score == 0.0  # the owner vouched for it


def test_optional_signals_a_request_leaves_out_keep_their_settled_value() -> None:
    session = session_at(sig(device_signal="d1"))
    obs = Observation(10, sig(device_signal="", language=""))
    after = learn(session, obs, assess(obs, session, new_user(), Population(), POLICY), POLICY)
    assert after.signals.device_signal == "d1"
    assert after.signals.language == "en-gb"


def test_the_session_remembers_a_bounded_number_of_networks() -> None:
    policy = RiskPolicy(session_networks=3)
    session = session_at()
    for i in range(6):
        net = Network(f"81.2.{i}.0/24", "Andrews & Arnold Ltd", "GB")
        obs = Observation(10.0 + i, sig(network=net))
        session = learn(session, obs, Verdict(Decision.ALLOW, 0.0, ()), policy)
    assert [s.network.prefix for s in session.networks] == [f"81.2.{i}.0/24" for i in (3, 4, 5)]


def test_an_unchanged_context_reuses_the_verdict() -> None:
    session, user = session_at(), new_user()
    obs = Observation(10, BASE)
    first = assess(obs, session, user, Population(), POLICY)
    session = learn(session, obs, first, POLICY)
    assert session.cached is first
    assert assess(Observation(20, BASE), session, user, Population(), POLICY) is first


def test_the_user_history_counts_sessions_not_requests() -> None:
    session, user = session_at(), new_user()
    for t in range(1, 50):
        obs = Observation(float(t), BASE)
        user = remember(user, session, obs, POLICY)
        session = learn(session, obs, Verdict(Decision.ALLOW, 0.0, ()), POLICY)
    assert user.weight(("", "GB")) == 1.0
    assert user.weight(("", "GB", HOME.asn, HOME.prefix)) == 1.0


def test_the_user_history_decays_and_forgets() -> None:
    user = new_user()
    half = remember(
        user, None, Observation(POLICY.history_half_life, sig(network=OTHER_GB)), POLICY
    )
    assert half.weight(("", "GB")) == pytest.approx(1.5)  # one halved, plus one
    gone = remember(
        user, None, Observation(POLICY.history_retention + 1, sig(network=ABROAD)), POLICY
    )
    assert gone.weight(("", "GB")) == 0
    assert gone.weight(("", "RU")) == 1


def test_the_user_history_halves_once_per_half_life_however_often_it_is_updated() -> None:
    # A value left unused decays by its age once, not again at every later update.
    user = new_user()
    step = POLICY.history_half_life / 8
    for k in range(1, 9):
        net = Network(f"81.2.{k}.0/24", "Andrews & Arnold Ltd", "GB")
        user = remember(user, None, Observation(k * step, sig(network=net)), POLICY)
    assert user.weight(("", "GB", HOME.asn, HOME.prefix)) == pytest.approx(0.5)
    # The value used at the last update is still worth a whole session.
    last = ("", "GB", HOME.asn, "81.2.8.0/24")
    assert user.weight(last) == pytest.approx(1.0)


def test_the_user_history_is_bounded() -> None:
    policy = RiskPolicy(user_prefixes=4)
    user = UserRisk()
    for i in range(10):
        net = Network(f"81.2.{i}.0/24", "Andrews & Arnold Ltd", "GB")
        user = remember(user, None, Observation(float(i), sig(network=net)), policy)
    assert len([path for path in user.tallies if len(path) == 4]) == 4


def test_the_user_history_round_trips_through_json() -> None:
    user = seasoned_user()
    again = UserRisk.from_json(user.to_json())
    assert again.to_json() == user.to_json()
    assert (
        verdict(sig(network=OTHER_GB), user=again).score
        == verdict(sig(network=OTHER_GB), user=user).score
    )


def test_garbage_history_json_is_ignored_not_trusted() -> None:
    rows = [["", "GB", "x", 1], "junk", ["", "US", 1.0], ["", 7, 1.0, 2.0], ["", "DE", 1, 2]]
    user = UserRisk.from_json({"paths": rows, "updated": "y"})
    assert list(user.tallies) == [("", "DE")]
    assert user.updated == 0.0


# -- policy ----------------------------------------------------------------------------------

BAD_POLICIES: list[dict[str, Any]] = [
    {"log_at": 0},
    {"log_at": 6, "step_up_at": 5},
    {"revoke_at": 4},
    {"corroboration": 0},
    {"move_country": 1.0},
    {"move_kind": 0.5},  # the move shares must add up to 1
    {"attacker_local": 0.0},
    {"attacker_tor": 0.5, "attacker_vpn": 0.5},
    {"population_vpn": 0.99, "population_hosting": 0.01},
    {"novelty_cap": 0},
    {"session_networks": 0},
    {"user_prefixes": 5000},
    {"history_retention": 1.0},
]


@pytest.mark.parametrize("kwargs", BAD_POLICIES)
def test_inconsistent_risk_policies_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        RiskPolicy(**kwargs)


def test_a_stricter_policy_challenges_what_the_default_only_logs() -> None:
    strict = RiskPolicy(log_at=1.0, step_up_at=2.5)
    user = seasoned_user()
    assert verdict(sig(network=OTHER_GB), user=user).decision is Decision.LOG
    assert verdict(sig(network=OTHER_GB), user=user, policy=strict).decision is Decision.STEP_UP


def test_a_rotated_out_secret_over_the_other_address_family_is_a_race() -> None:
    v6 = sig(network=Network("2a02:8010:1::/48", "Andrews & Arnold Ltd", "GB"))
    v = verdict(v6, previous_secret=True)
    assert Signal.PREVIOUS_SECRET not in signals_of(v)


# -- the population's habits -------------------------------------------------------------------


def test_vpn_networks_put_the_provider_before_the_country() -> None:
    assert network_path(VPN) == ("vpn", "M247 Europe SRL", "NL", "185.1.1.0/24")
    assert network_path(HOME) == ("", "GB", "Andrews & Arnold Ltd", "81.2.69.0/24")


@pytest.mark.parametrize(
    ("network", "depth"),
    [(HOME, 0), (HOME_NEXT, 4), (OTHER_GB, 3), (ABROAD, 2), (VPN, 1)],
)
def test_novelty_is_the_first_level_the_session_has_not_used(network: Network, depth: int) -> None:
    assert novelty(session_at(), network) == depth


def test_where_legitimate_requests_move_is_learned_from_the_population() -> None:
    counter = PopulationCounter()
    for _ in range(5000):  # a site whose users switch VPNs on and off all the time
        counter.moved(1)
    toggles = counter.snapshot()
    assert toggles.move(1, POLICY.move_kind, POLICY.move_weight) > 0.8
    usual = verdict(sig(network=VPN), user=seasoned_user(), t=5 * 3600)
    there = verdict(sig(network=VPN), user=seasoned_user(), t=5 * 3600, population=toggles)
    assert there.score < usual.score - 3


def test_a_confirmed_network_does_not_count_against_the_session_later() -> None:
    user = seasoned_user()
    session = session_at()
    trip = Observation(100, sig(network=OTHER_GB))
    first = assess(trip, session, user, Population(), POLICY)
    assert first.decision is Decision.LOG
    learned = learn(session, trip, first, POLICY)
    vouched = confirm(session, trip, POLICY)
    # Back home a minute later: here, there, here again is two places at once, unless the
    # owner vouched for "there".
    home = Observation(160, BASE)
    for history, expected in ((learned, Decision.STEP_UP), (vouched, Decision.LOG)):
        back = assess(home, history, user, Population(), POLICY)
        assert Signal.CONCURRENT in signals_of(back)
        assert back.decision is expected


@pytest.mark.parametrize("policy", [POLICY, RiskPolicy(user_prefixes=3, user_networks=2)])
def test_incremental_totals_match_a_recount(policy: RiskPolicy) -> None:
    user = UserRisk()
    for i in range(40):  # close together: the cheap path that updates totals in place
        net = Network(f"81.2.{i % 7}.0/24", ("A", "B", "C")[i % 3], ("GB", "FR")[i % 2])
        user = remember(user, None, Observation(float(i), sig(network=net)), policy)
    recount = UserRisk(user.tallies, user.updated)
    assert len([p for p in user.tallies if len(p) == 4]) <= policy.user_prefixes
    for path in user.tallies:
        assert user.total(path[:-1]) == pytest.approx(recount.total(path[:-1]))


def test_the_session_tree_grows_as_if_rebuilt() -> None:
    policy = RiskPolicy(session_networks=4)
    session = session_at()
    nets = [HOME_NEXT, OTHER_GB, VPN, ABROAD, MOBILE, HOME_NEXT, TOR]
    for t, net in enumerate(nets, 1):
        obs = Observation(float(t), sig(network=net))
        session = learn(session, obs, Verdict(Decision.ALLOW, 0.0, ()), policy)
        rebuilt = SessionRisk(session.networks, session.signals, session.last_t)
        assert dict(session.tree) == dict(rebuilt.tree)
