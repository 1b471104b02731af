"""The network part of hijack scoring: Freeman's hierarchy (kind, country, network, prefix)
with the session's own networks in front (see ``risk.py`` for the model).

A request from a network the session has not used asks the same questions at every network of
one kind: how often the session and the user used that kind, how the user's sessions spread
below it, how often legitimate requests move at each depth. Those answers are kept per kind
while the session's networks, the user's history, the population and the policy stay the
same; the kind, country and network part per network (AS name); and the whole network part
per prefix. A network new to the session then computes its country and network depths, a new
/24 of a known network only its prefix, and a prefix seen before nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import NamedTuple, TypeVar

from sessionward.core.risk_history import Path, Population, UserRisk, smoothed
from sessionward.core.risk_policy import RiskPolicy
from sessionward.core.risk_types import Network, Reason, Signal

__all__ = ["DEPTHS", "NetworkIndex", "network_path", "owner"]

DEPTHS = (1, 2, 3, 4)
_MEMO_SIZE = 16
K = TypeVar("K")
V = TypeVar("V")

#: What a kept answer was computed from: the user's history, the population and the policy.
_Stamp = tuple[int, int, RiskPolicy]


def owner(net: Network) -> str:
    """Who runs the network: its AS name, or for an address no database lists, its /16
    (IPv4) or /32 (IPv6) as the best stand-in (``"198.51/16"``), so that two unlisted
    networks are not taken for one."""
    if net.asn or not net.prefix:
        return net.asn
    address = net.prefix.partition("/")[0]
    if ":" in address:
        return ":".join(address.split(":")[:2]) + "/32"
    return ".".join(address.split(".")[:2]) + "/16"


def network_path(net: Network) -> Path:
    """The network's place in the hierarchy: kind, country, network (AS), prefix. For VPN,
    hosting and Tor networks the provider comes before the country: a VPN user's habit is the
    provider, and its exits hop between countries."""
    if net.kind:
        return (net.kind, owner(net), net.country, net.prefix)
    return (net.kind, net.country, owner(net), net.prefix)


class _Kind(NamedTuple):
    """Depth 1 (the kind) of the network reasons, and what the deeper depths ask of the
    session, the user and the population, for every network of one kind."""

    legit: float
    attacker: float
    local: float
    new: int  # 1 when the session has not used this kind, else 0
    here: tuple[Path, ...]  # the session's values just below the kind
    total: float  # the user's sessions just below the kind, and how many distinct values
    distinct: int
    vocabularies: tuple[int, int]  # the population's smoothing at depths 2 and 3
    floor: float  # the least a value the user never used may be given, relative to its prior
    moves: tuple[float, float, float]  # the user's move factor at depths 2, 3 and 4
    kind_weight: float | None  # the kind's own weight, None for no kind or one used before


class _Upper(NamedTuple):
    """The network reasons' depths 1 to 3 (kind, country, network), shared by every prefix of
    one network: the running products, the first new depth (0: none) and what the reason's
    text needs."""

    legit: float
    attacker: float
    local: float
    first_new: int
    where: str
    owned: bool  # the session used this network (same country and owner) before
    level: tuple[Signal, str]  # the reason code and text when it did not


class NetworkIndex:
    """What the network model asks of a session's networks, computed once per change of
    them, with the answers kept for them (see the module's docstring). Immutable but for
    those bounded caches."""

    __slots__ = ("_kinds", "_reasons", "_upper", "countries", "owners", "prefixes", "tree")

    def __init__(
        self,
        tree: Mapping[Path, tuple[Path, ...]],
        countries: tuple[str, ...],
        owners: frozenset[tuple[str, str]],
        prefixes: frozenset[tuple[str, str]],
    ) -> None:
        self.tree = tree
        self.countries = countries  # one per network remembered: repeats count
        self.owners = owners  # (country, AS name)
        self.prefixes = prefixes  # (AS name, prefix)
        # By prefix (its hash is kept by the string; a Network's is computed on each use).
        self._reasons: dict[str, tuple[_Stamp, Network, tuple[Reason, ...]]] = {}
        self._upper: dict[tuple[Path, str], tuple[_Stamp, _Upper]] = {}
        self._kinds: dict[str, tuple[_Stamp, _Kind]] = {}

    @classmethod
    def of(cls, nets: Iterable[Network]) -> NetworkIndex:
        nets = tuple(nets)
        return cls(
            _tree(nets),
            tuple(n.country for n in nets),
            frozenset((n.country, owner(n)) for n in nets),
            frozenset((owner(n), n.prefix) for n in nets),
        )

    def grown(self, net: Network) -> NetworkIndex:
        """The index with one more network."""
        return NetworkIndex(
            _grown(self.tree, network_path(net)),
            (*self.countries, net.country),
            self.owners | {(net.country, owner(net))},
            self.prefixes | {(owner(net), net.prefix)},
        )

    def reasons(
        self, net: Network, user: UserRisk, pop: Population, policy: RiskPolicy
    ) -> tuple[Reason, ...]:
        """The network reasons of a request from ``net`` (a phone going back and forth
        between Wi-Fi and its carrier asks the same question again: answered once)."""
        stamp = (user.serial, pop.serial, policy)
        known = self._reasons.get(net.prefix)
        if known is not None and known[0] == stamp and (known[1] is net or known[1] == net):
            return known[2]
        path = network_path(net)
        top = self._kind(net.kind, stamp, user, pop, policy)
        name = (path[:3], net.asn)
        kept = self._upper.get(name)
        if kept is not None and kept[0] == stamp:
            up = kept[1]
        else:
            up = _keep(self._upper, name, stamp, self._depths(net, path, top, user, pop, policy))
        reasons = self._prefix(net, path, top, up, user, policy)
        if len(self._reasons) >= _MEMO_SIZE:
            self._reasons.clear()
        self._reasons[net.prefix] = stamp, net, reasons
        return reasons

    def _kind(
        self, kind: str, stamp: _Stamp, user: UserRisk, pop: Population, policy: RiskPolicy
    ) -> _Kind:
        kept = self._kinds.get(kind)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        return _keep(self._kinds, kind, stamp, _kind_terms(kind, self.tree, user, pop, policy))

    def _depths(
        self,
        net: Network,
        path: Path,
        top: _Kind,
        user: UserRisk,
        pop: Population,
        policy: RiskPolicy,
    ) -> _Upper:
        """Depths 2 and 3 after the kind's: the country then the network, or for a VPN,
        hosting or Tor network the provider then the country."""
        # The session's own values in front: a legitimate request mostly stays put. One that
        # moves is weighed against where legitimate requests move to, learned from the
        # population, and against the user's own habits (see _kind_terms).
        key = path[:2]
        prior = pop.share(key, top.vocabularies[0])
        share = 1.0 / len(top.here) if key in top.here else 0.0
        first_new = top.new or (0 if share else 2)
        if first_new:
            estimate = smoothed(user.weight(key), top.total, top.distinct, prior)
            likely = max(estimate, prior * top.floor)
            if first_new == 2:
                likely *= top.moves[0]
        else:
            likely = share
        chance = prior if net.kind else self._country(net.country, prior, policy)
        legit, attacker, local = top.legit * likely, top.attacker * chance, top.local * share
        parent, key = key, path[:3]
        prior = pop.share(key, top.vocabularies[1])
        here = self.tree.get(parent, ())
        share = 1.0 / len(here) if key in here else 0.0
        first_new = first_new or (0 if share else 3)
        if first_new:
            total, distinct = user.total(parent)
            likely = max(smoothed(user.weight(key), total, distinct, prior), prior * top.floor)
            if first_new == 3:
                likely *= top.moves[1]
        else:
            likely = share
        chance = self._country(net.country, prior, policy) if net.kind else prior
        legit, attacker, local = legit * likely, attacker * chance, local * share
        owned_by = path[1] if net.kind else path[2]
        where = f"{net.asn or 'unlisted network ' + owned_by} ({net.country or '??'})"
        known = ", used before" if user.weight(key) else ""
        if net.country in self.countries:
            level = Signal.NETWORK_ASN, f"new network {where}{known}"
        else:
            level = Signal.NETWORK_COUNTRY, f"new country: {where}{known}"
        owned = (net.country, owned_by) in self.owners
        return _Upper(legit, attacker, local, first_new, where, owned, level)

    def _country(self, country: str, prior: float, policy: RiskPolicy) -> float:
        """The attacker at the country's depth: mostly anyone, often in the victim's country
        (residential proxies); elsewhere, the population's countries, or any country at all:
        a country the site never sees is no less likely for a thief, and far less for the
        owner."""
        same = self.countries.count(country) / len(self.countries)
        anywhere = policy.attacker_anywhere / policy.countries_vocabulary
        elsewhere = (1 - policy.attacker_anywhere) * prior + anywhere
        return policy.attacker_same_country * same + (1 - policy.attacker_same_country) * elsewhere

    def _prefix(
        self,
        net: Network,
        path: Path,
        top: _Kind,
        up: _Upper,
        user: UserRisk,
        policy: RiskPolicy,
    ) -> tuple[Reason, ...]:
        """Depth 4: the session's own prefixes of this network in front, else the user's."""
        prior, here = 1.0 / policy.prefixes_vocabulary, self.tree.get(path[:3], ())
        share = 1.0 / len(here) if path in here else 0.0
        first_new = up.first_new or (0 if share else 4)
        if first_new:
            total, distinct = user.total(path[:3])
            likely = max(smoothed(user.weight(path), total, distinct, prior), prior * top.floor)
            if first_new == 4:
                likely *= top.moves[2]
        else:
            likely = share
        legit, attacker, local = up.legit * likely, up.attacker * prior, up.local * share
        # Now and then the attacker works from the victim's own network (malware relaying).
        total_weight = math.log(
            (policy.attacker_local * local + (1 - policy.attacker_local) * attacker) / legit
        )
        # The reason code: the finest level (prefix, network, country) shared with the session.
        if (path[1] if net.kind else path[2], net.prefix) in self.prefixes:
            level, detail = Signal.NETWORK_SAME, f"the session's network {up.where}"
        elif up.owned:
            used = ", used before" if user.weight(path) else ""
            level, detail = Signal.NETWORK_PREFIX, f"new prefix of {up.where}{used}"
        else:
            level, detail = up.level
        if top.kind_weight is None:
            return (Reason(level, total_weight, detail),)
        return (
            Reason(level, total_weight - top.kind_weight, detail),
            Reason(Signal.NETWORK_KIND, top.kind_weight, _KIND_TEXT.get(net.kind, net.kind)),
        )


_KIND_TEXT = {"hosting": "a hosting provider", "vpn": "a VPN provider", "tor": "a Tor exit"}
_SPREAD_DEPTH = 2  # kind and country: a user's sessions spread over them (VPN on and off)


def _kind_terms(
    kind: str,
    tree: Mapping[Path, tuple[Path, ...]],
    user: UserRisk,
    pop: Population,
    policy: RiskPolicy,
) -> _Kind:
    floor = math.exp(-policy.novelty_cap)
    # A move first made at a depth is weighed by this user's habit, smoothed toward the
    # population's (a user whose sessions are spread over kinds of network, or over
    # countries, switches there: VPN on and off, a commute across a border).
    moves = (policy.move_kind, policy.move_country, policy.move_network, policy.move_prefix)

    def move(depth: int, parent: Path) -> float:
        usual = pop.move(depth, moves[depth - 1], policy.move_weight)
        if depth <= _SPREAD_DEPTH:
            usual = max(usual, user.spread(parent))
        return user.move(depth, usual, policy.user_move_weight)

    # Depth 1: the population's share of the kind is both the attacker's distribution and
    # the prior the user's estimate is smoothed toward; the attacker has a taste for hosting,
    # VPN and Tor networks.
    key: Path = (kind,)
    prior = pop.kind(kind, policy.population_kind(kind), policy.population_weight)
    here = tree.get((), ())
    share = 1.0 / len(here) if key in here else 0.0
    if share:
        likely = share
    else:  # Witten-Bell over the user's past sessions, smoothed toward the population
        total, distinct = user.total(())
        likely = max(smoothed(user.weight(key), total, distinct, prior), prior * floor)
        likely *= move(1, ())
    chance = policy.attacker_kind(kind)
    total, distinct = user.total(key)
    countries, networks = policy.countries_vocabulary, policy.networks_vocabulary
    return _Kind(
        likely,
        chance,
        share,
        0 if share else 1,
        tree.get(key, ()),
        total,
        distinct,
        (networks, countries) if kind else (countries, networks),
        floor,
        (move(2, key), move(3, ()), move(4, ())),
        math.log(chance / likely) if kind and not share else None,
    )


def _keep(memo: dict[K, tuple[_Stamp, V]], key: K, stamp: _Stamp, value: V) -> V:
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = stamp, value
    return value


def _grown(tree: Mapping[Path, tuple[Path, ...]], path: Path) -> dict[Path, tuple[Path, ...]]:
    out = dict(tree)
    for depth in DEPTHS:
        kids = out.get(path[: depth - 1], ())
        if path[:depth] not in kids:
            out[path[: depth - 1]] = (*kids, path[:depth])
    return out


def _tree(nets: Iterable[Network]) -> dict[Path, tuple[Path, ...]]:
    children: dict[Path, dict[Path, None]] = {}
    for net in nets:
        path = network_path(net)
        for depth in DEPTHS:
            children.setdefault(path[: depth - 1], {})[path[:depth]] = None
    return {parent: tuple(kids) for parent, kids in children.items()}
