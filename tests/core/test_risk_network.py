"""The network model's kept answers: a session's index answers exactly as a fresh one would,
whatever it answered before and whoever asked."""

from __future__ import annotations

from itertools import permutations

import pytest

from sessionward.core.risk import Network, Observation, Signals, begin, confirm, remember
from sessionward.core.risk_history import Population, PopulationCounter, UserRisk
from sessionward.core.risk_network import NetworkIndex, network_path
from sessionward.core.risk_policy import RiskPolicy

POLICY = RiskPolicy()
HOME = Network("81.2.69.0/24", "Andrews & Arnold Ltd", "GB")
NETWORKS = [
    Network("81.2.70.0/24", "Andrews & Arnold Ltd", "GB"),  # a new prefix of the session's
    Network("86.1.0.0/24", "British Telecommunications PLC", "GB"),  # a new network, same country
    Network("86.1.7.0/24", "British Telecommunications PLC", "GB"),  # ... and another /24 of it
    Network("5.1.0.0/24", "Rostelecom", "RU"),  # another country
    Network("5.2.0.0/24", "Rostelecom", "RU"),
    Network("185.1.1.0/24", "M247 Europe SRL", "NL", "vpn"),  # a kind the session never used
    Network("185.1.2.0/24", "M247 Europe SRL", "GB", "vpn"),  # the same provider elsewhere
    Network("52.95.110.0/24", "AMAZON-02", "US", "hosting"),
    Network("198.51.100.0/24", "", ""),  # in no database
]


def _session() -> tuple[NetworkIndex, UserRisk, Population]:
    """A session that used its home network and a VPN, a user with some history."""
    user = UserRisk()
    first = Observation(0.0, Signals(HOME))
    session = begin(first)
    user = remember(user, None, first, POLICY)
    vpn = Observation(60.0, Signals(Network("185.1.1.0/24", "M247 Europe SRL", "SE", "vpn")))
    user = remember(user, session, vpn, POLICY)
    session = confirm(session, vpn, POLICY)
    counter = PopulationCounter()
    for i in range(40):
        counter.add(network_path(NETWORKS[i % len(NETWORKS)]))
        counter.moved(1 + i % 4)
    return session.index, user, counter.snapshot()


def _fresh(index: NetworkIndex) -> NetworkIndex:
    return NetworkIndex(index.tree, index.countries, index.owners, index.prefixes)


@pytest.mark.parametrize("order", list(permutations(range(4)))[:6])
def test_kept_answers_equal_fresh_ones_in_any_order(order: tuple[int, ...]) -> None:
    index, user, pop = _session()
    asked = [n for i in order for n in NETWORKS[i::4]]
    for net in asked + asked:  # the second round answers from what was kept
        assert index.reasons(net, user, pop, POLICY) == _fresh(index).reasons(
            net, user, pop, POLICY
        )


def test_answers_kept_for_one_history_are_not_given_for_another() -> None:
    index, user, pop = _session()
    other = remember(
        user, None, Observation(120.0, Signals(Network("5.1.0.0/24", "Rostelecom", "RU"))), POLICY
    )
    empty = PopulationCounter().snapshot()
    for net in NETWORKS:
        index.reasons(net, user, pop, POLICY)
    for net in NETWORKS:
        for u, p, policy in ((other, pop, POLICY), (user, empty, POLICY), (user, pop, _strict())):
            assert index.reasons(net, u, p, policy) == _fresh(index).reasons(net, u, p, policy)
    russian = NETWORKS[3]
    assert index.reasons(russian, other, pop, POLICY) != index.reasons(russian, user, pop, POLICY)


def _strict() -> RiskPolicy:
    return RiskPolicy(attacker_same_country=0.5, novelty_cap=2.0)
