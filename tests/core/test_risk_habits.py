"""The user's habits across sessions and the attacker's countries, on fixed contexts: moves
learned per user, kinds and countries a user is spread over, countries the site never sees,
and what counts as impossible travel."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sessionward.core.risk import (
    Browser,
    Decision,
    Network,
    Observation,
    SessionRisk,
    Signal,
    Signals,
    Verdict,
    assess,
    begin,
    learn,
    owner,
    remember,
)
from sessionward.core.risk_history import Population, PopulationCounter, UserRisk
from sessionward.core.risk_policy import RiskPolicy

POLICY = RiskPolicy()
DAY = 86400.0
HOME = Network("81.2.69.0/24", "Andrews & Arnold Ltd", "GB")
OFFICE = Network("86.1.0.0/24", "British Telecommunications PLC", "GB")
VPN = Network("185.1.1.0/24", "M247 Europe SRL", "NL", "vpn")
FRANCE = Network("90.1.2.0/24", "Orange", "FR")
NOWHERE = Network("41.1.2.0/24", "Some Carrier", "ZZ")
CHROME = Browser("Chrome", 126, "Windows", 10, "desktop")
BASE = Signals(HOME, CHROME, "en-gb", "Windows")


def sig(**changes: Any) -> Signals:
    return dataclasses.replace(BASE, **changes)


def at(t: float, signals: Signals = BASE) -> Observation:
    return Observation(t, signals)


def habitual(sessions: list[Network], *, moves_to: Network | None = None) -> UserRisk:
    """A user whose sessions logged in from ``sessions``, each followed, when ``moves_to`` is
    given, by an allowed request from there."""
    user = UserRisk()
    for day, net in enumerate(sessions):
        login = at(day * DAY, sig(network=net))
        session = begin(login)
        user = remember(user, None, login, POLICY)
        if moves_to is not None:
            user = remember(user, session, at(day * DAY + 60, sig(network=moves_to)), POLICY)
    return user


def score(net: Network, user: UserRisk, population: Population | None = None) -> Verdict:
    day = 40 * DAY
    session = begin(at(day))
    return assess(
        at(day + 600, sig(network=net)), session, user, population or Population(), POLICY
    )


def test_a_login_is_not_a_move_and_a_live_session_leaving_its_networks_is() -> None:
    user = habitual([HOME] * 3)
    assert user.moves == (0.0, 0.0, 0.0, 0.0)
    session = begin(at(0.0))
    assert remember(user, session, at(5.0, sig(network=VPN)), POLICY).moves == (1, 0, 0, 0)
    assert remember(user, session, at(5.0, sig(network=OFFICE)), POLICY).moves == (0, 0, 1, 0)
    # Nothing new to the session: no move, the same history.
    assert remember(user, session, at(5.0), POLICY) is user


def test_moves_round_trip_and_stay_bounded() -> None:
    user = habitual([HOME] * 2, moves_to=VPN)
    again = UserRisk.from_json(user.to_json())
    assert again.moves == user.moves == (2, 0, 0, 0)
    for _ in range(200):  # old moves count half past a bound: recent habits weigh most
        user = remember(user, begin(at(0.0)), at(1.0, sig(network=VPN)), POLICY)
    assert 0 < sum(user.moves) <= 64
    data = user.to_json()
    for bad in ([1, 2], [1, 2, 3, "x"], [True, 0, 0, 0], [-1, 0, 0, 0], "moves"):
        assert UserRisk.from_json({**data, "moves": bad}).moves == (0, 0, 0, 0)


def test_a_user_who_switches_a_vpn_on_in_sessions_is_not_challenged_for_it() -> None:
    switcher = habitual([HOME] * 10, moves_to=VPN)
    stranger = habitual([HOME] * 10)
    known = score(VPN, switcher)
    new = score(VPN, stranger)
    assert known.score < new.score
    assert known.decision in (Decision.ALLOW, Decision.LOG)
    assert new.decision is Decision.STEP_UP  # a first VPN in a live session looks like a thief


def test_a_user_spread_over_kinds_of_network_switches_between_them() -> None:
    spread = habitual([HOME, VPN] * 5)  # half the logins on the VPN, never a switch seen
    single = habitual([HOME] * 9 + [VPN])
    assert spread.spread(()) > single.spread(()) > 0
    assert habitual([HOME] * 10).spread(()) == 0
    assert score(VPN, spread).score < score(VPN, single).score


def test_spread_over_networks_in_one_country_does_not_lower_the_bar() -> None:
    """Only kinds of network and countries: a user of many networks in their country is not
    thereby easier to impersonate from another one."""
    many = habitual([HOME, OFFICE] * 5)
    one = habitual([HOME] * 10)
    other = Network("5.64.1.0/24", "Sky UK Limited", "GB")
    assert score(other, many).score == pytest.approx(score(other, one).score, abs=1.0)


def test_a_country_the_site_never_sees_is_likelier_a_thief() -> None:
    counter = PopulationCounter()
    for i in range(2000):
        counter.add(("", "GB", "BT") if i % 2 else ("", "FR", "Orange"))
    population = counter.snapshot()
    user = habitual([HOME] * 10)
    common, unseen = score(FRANCE, user, population), score(NOWHERE, user, population)
    assert common.score < unseen.score
    assert unseen.decision is Decision.STEP_UP
    assert any(r.signal is Signal.NETWORK_COUNTRY for r in unseen.reasons)


def _walk(*steps: tuple[float, Network]) -> Verdict:
    session: SessionRisk = begin(at(0.0))
    user = habitual([HOME] * 3)
    verdict = None
    for t, net in steps:
        verdict = assess(at(t, sig(network=net)), session, user, Population(), POLICY)
        if t != steps[-1][0]:
            session = learn(
                session, at(t, sig(network=net)), Verdict(Decision.ALLOW, 0.0, ()), POLICY
            )
    assert verdict is not None
    return verdict


def test_impossible_travel_needs_a_country_new_to_the_session() -> None:
    first = _walk((60.0, FRANCE))
    assert any(r.signal is Signal.TRAVEL for r in first.reasons)
    # A roaming phone back and forth between the home carrier and a hotel's Wi-Fi.
    back = _walk((60.0, FRANCE), (120.0, HOME), (180.0, FRANCE))
    assert not any(r.signal is Signal.TRAVEL for r in back.reasons)


def test_one_network_placed_in_two_countries_is_not_travel() -> None:
    elsewhere = dataclasses.replace(HOME, prefix="81.2.99.0/24", country="IE")
    verdict = _walk((60.0, elsewhere))
    assert not any(r.signal is Signal.TRAVEL for r in verdict.reasons)


def test_a_network_asked_about_again_gets_the_same_reasons_until_the_history_changes() -> None:
    user = habitual([HOME] * 5)
    session = begin(at(0.0))
    phone = sig(network=OFFICE)
    first = assess(at(10.0, phone), session, user, Population(), POLICY)
    again = assess(at(20.0, phone), session, user, Population(), POLICY)
    assert again.reasons == first.reasons
    # Another user history (here: one that knows the network) is asked afresh.
    knows = habitual([HOME, OFFICE] * 3)
    other = assess(at(30.0, phone), session, knows, Population(), POLICY)
    assert other.score < first.score
    # So is another policy.
    strict = RiskPolicy(move_network=0.05, move_prefix=0.915)
    assert assess(at(40.0, phone), session, user, Population(), strict).score > first.score


def test_unlisted_networks_are_told_apart_by_their_slash_16() -> None:
    here = Network("203.0.113.0/24")
    next_door = Network("203.0.114.0/24")
    elsewhere = Network("198.51.100.0/24")
    assert (owner(here), owner(elsewhere)) == ("203.0/16", "198.51/16")
    assert owner(Network("2001:db8:1::/48")) == "2001:db8/32"
    assert owner(HOME) == HOME.asn
    assert owner(Network()) == ""
    user, session = UserRisk(), begin(at(0.0, sig(network=here)))
    for day in range(5):
        user = remember(user, None, at(day * DAY, sig(network=here)), POLICY)

    def verdict(net: Network) -> Verdict:
        return assess(at(600.0, sig(network=net)), session, user, Population(), POLICY)

    near, far = verdict(next_door), verdict(elsewhere)
    assert [r.signal for r in near.reasons] == [Signal.NETWORK_PREFIX]
    assert [r.signal for r in far.reasons] == [Signal.NETWORK_ASN]
    assert near.score < far.score
    assert "unlisted network 198.51/16" in far.reasons[0].detail


def test_a_network_scored_in_parts_matches_a_fresh_score() -> None:
    """The kind, country and network part of the network reasons is kept per session and
    reused for each new prefix; every verdict equals the one a session without kept parts
    gives, also after the user's history, the population or the policy changed."""
    session = begin(Observation(0.0, BASE))
    for t, net in ((10.0, VPN), (20.0, HOME)):
        session = learn(
            session, Observation(t, sig(network=net)), Verdict(Decision.ALLOW, 0.0, ()), POLICY
        )
    counter = PopulationCounter()
    counter.add(("", "GB", HOME.asn))
    users = (remember(UserRisk(), None, Observation(0.0, BASE), POLICY), UserRisk())
    contexts = [
        (u, p, q)
        for u in users
        for p in (Population(), counter.snapshot())
        for q in (POLICY, RiskPolicy(attacker_same_country=0.5))
    ]
    nets = [
        dataclasses.replace(base, prefix=f"{base.prefix.rsplit('.', 2)[0]}.{i}.0/24")
        for base in (HOME, OFFICE, VPN, FRANCE, NOWHERE, Network("198.51.7.0/24", "", "GB"))
        for i in (7, 8, 69, 1)
    ]
    for user, population, policy in contexts:
        for net in nets:
            obs = Observation(30.0, sig(network=net))
            fresh = SessionRisk(session.networks, session.signals, session.last_t, session.rate)
            assert assess(obs, session, user, population, policy) == assess(
                obs, fresh, user, population, policy
            ), net
