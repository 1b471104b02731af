"""What the risk engine remembers between requests: a user's networks and the population's.

Both are bounded summaries, never request logs. A user's summary counts *sessions* (each
session adds one to every country, network and prefix it used), decays with a half-life and
forgets an entry after the retention period, so a user who moved house stops looking like
the old address. The population summary counts sessions per country, per network (AS) and
per network kind across all users; the engine uses it as the attacker's distribution and as
the value a user's estimate is smoothed toward (Freeman et al., NDSS 2016).

Everything here is pure: updates return new objects and time comes in as an argument.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

__all__ = ["Population", "PopulationCounter", "Tally", "UserRisk", "smoothed"]

K = TypeVar("K")

#: Kinds of network the enrichment names; "" is an ordinary access network.
KINDS = ("", "hosting", "vpn", "tor")


def smoothed(count: float, total: float, distinct: int, prior: float) -> float:
    """Witten-Bell estimate of a value's probability for one user, smoothed toward ``prior``.

    ``count`` sessions of ``total`` used the value, among ``distinct`` values seen: a user
    who has used many networks is less surprised by one more than a user who always used the
    same one. With no history the estimate is the prior itself.
    """
    if total <= 0:
        return prior
    return (count + distinct * prior) / (total + distinct)


@dataclass(frozen=True, slots=True)
class Tally:
    """A decayed session count and when the value was last used."""

    weight: float
    last: float


def _decay(
    tallies: Mapping[K, Tally], now: float, half_life: float, horizon: float
) -> dict[K, Tally]:
    out: dict[K, Tally] = {}
    for key, tally in tallies.items():
        age = now - tally.last
        if age > horizon:
            continue
        out[key] = Tally(tally.weight * math.exp2(-max(age, 0.0) / half_life), tally.last)
    return out


def _bounded(tallies: dict[K, Tally], limit: int) -> dict[K, Tally]:
    if len(tallies) <= limit:
        return tallies
    keep = sorted(tallies.items(), key=lambda item: (item[1].weight, item[1].last))[-limit:]
    return dict(keep)


def _totals(tallies: Mapping[tuple[str, str], Tally]) -> dict[str, tuple[float, int]]:
    """Per parent (the first part of the key): total weight and number of distinct values."""
    out: dict[str, tuple[float, int]] = {}
    for (parent, _), tally in tallies.items():
        total, distinct = out.get(parent, (0.0, 0))
        out[parent] = (total + tally.weight, distinct + 1)
    return out


class UserRisk:
    """One user's networks across sessions: countries, networks (AS) and prefixes.

    Keys: ``countries`` by country code, ``networks`` by ``(country, as_name)``,
    ``prefixes`` by ``(as_name, prefix)``. Immutable; :meth:`add` returns a new summary.
    """

    __slots__ = ("_net_totals", "_prefix_totals", "countries", "networks", "prefixes", "updated")

    def __init__(
        self,
        countries: Mapping[str, Tally] | None = None,
        networks: Mapping[tuple[str, str], Tally] | None = None,
        prefixes: Mapping[tuple[str, str], Tally] | None = None,
        updated: float = 0.0,
    ) -> None:
        self.countries: Mapping[str, Tally] = MappingProxyType(dict(countries or {}))
        self.networks: Mapping[tuple[str, str], Tally] = MappingProxyType(dict(networks or {}))
        self.prefixes: Mapping[tuple[str, str], Tally] = MappingProxyType(dict(prefixes or {}))
        self.updated = updated
        self._net_totals = _totals(self.networks)
        self._prefix_totals = _totals(self.prefixes)

    def country_total(self) -> tuple[float, int]:
        return sum(t.weight for t in self.countries.values()), len(self.countries)

    def network_total(self, country: str) -> tuple[float, int]:
        return self._net_totals.get(country, (0.0, 0))

    def prefix_total(self, asn: str) -> tuple[float, int]:
        return self._prefix_totals.get(asn, (0.0, 0))

    def add(
        self,
        *,
        countries: Iterable[str] = (),
        networks: Iterable[tuple[str, str]] = (),
        prefixes: Iterable[tuple[str, str]] = (),
        now: float,
        half_life: float,
        retention: float,
        limits: tuple[int, int, int],
    ) -> UserRisk:
        """One session's first use of these values: each gets one more session."""

        def merge(old: Mapping[K, Tally], new: Iterable[K], limit: int) -> dict[K, Tally]:
            out = _decay(old, now, half_life, retention)
            for key in new:
                previous = out.get(key)
                out[key] = Tally((previous.weight if previous else 0.0) + 1.0, now)
            return _bounded(out, limit)

        return UserRisk(
            merge(self.countries, countries, limits[0]),
            merge(self.networks, networks, limits[1]),
            merge(self.prefixes, prefixes, limits[2]),
            now,
        )

    def to_json(self) -> dict[str, object]:
        """Plain data for storage: the values and their decayed weights, nothing else."""
        return {
            "updated": self.updated,
            "countries": [[k, t.weight, t.last] for k, t in self.countries.items()],
            "networks": [[*k, t.weight, t.last] for k, t in self.networks.items()],
            "prefixes": [[*k, t.weight, t.last] for k, t in self.prefixes.items()],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> UserRisk:
        def rows(name: str, width: int) -> list[list[object]]:
            value = data.get(name)
            items = value if isinstance(value, list) else []
            return [r for r in items if isinstance(r, list) and len(r) == width]

        def tally(row: list[object]) -> Tally:
            weight, last = row[-2], row[-1]
            if isinstance(weight, int | float) and isinstance(last, int | float):
                return Tally(float(weight), float(last))
            return Tally(0.0, 0.0)

        updated = data.get("updated")
        return cls(
            {str(r[0]): tally(r) for r in rows("countries", 3)},
            {(str(r[0]), str(r[1])): tally(r) for r in rows("networks", 4)},
            {(str(r[0]), str(r[1])): tally(r) for r in rows("prefixes", 4)},
            float(updated) if isinstance(updated, int | float) else 0.0,
        )

    def __repr__(self) -> str:
        return (
            f"UserRisk(countries={len(self.countries)}, networks={len(self.networks)},"
            f" prefixes={len(self.prefixes)})"
        )


@dataclass(frozen=True, slots=True)
class Population:
    """Session counts across all users: the attacker's distribution (an attacker is anyone).

    ``countries`` by code, ``networks`` by ``(country, as_name)``, ``kinds`` by network kind;
    ``total`` sessions counted. Empty is a valid population: estimates then fall back to the
    policy's priors.
    """

    countries: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    networks: Mapping[tuple[str, str], int] = field(default_factory=lambda: MappingProxyType({}))
    kinds: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    total: int = 0

    def country(self, country: str, vocabulary: int) -> float:
        return (self.countries.get(country, 0) + 1) / (self.total + vocabulary)

    def network(self, country: str, asn: str, vocabulary: int) -> float:
        return (self.networks.get((country, asn), 0) + 1) / (
            self.countries.get(country, 0) + vocabulary
        )

    def kind(self, kind: str, prior: float, weight: float) -> float:
        return (self.kinds.get(kind, 0) + weight * prior) / (self.total + weight)


class PopulationCounter:
    """Mutable, bounded builder of a :class:`Population` (one count per session)."""

    __slots__ = ("_countries", "_kinds", "_limit", "_networks", "_total")

    def __init__(self, limit: int = 50_000) -> None:
        self._countries: dict[str, int] = {}
        self._networks: dict[tuple[str, str], int] = {}
        self._kinds: dict[str, int] = {}
        self._total = 0
        self._limit = limit

    def add(self, country: str, asn: str, kind: str) -> None:
        self._total += 1
        self._countries[country] = self._countries.get(country, 0) + 1
        self._kinds[kind] = self._kinds.get(kind, 0) + 1
        key = (country, asn)
        self._networks[key] = self._networks.get(key, 0) + 1
        if len(self._networks) > self._limit:  # drop the rarest half: they carry least
            ranked = sorted(self._networks.items(), key=lambda item: item[1])
            self._networks = dict(ranked[len(ranked) // 2 :])

    def snapshot(self) -> Population:
        return Population(
            MappingProxyType(dict(self._countries)),
            MappingProxyType(dict(self._networks)),
            MappingProxyType(dict(self._kinds)),
            self._total,
        )
