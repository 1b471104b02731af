"""What the risk engine remembers between requests: a user's networks and the population's.

Both are bounded summaries, never request logs. A user's summary counts *sessions*: each
session adds one to every kind of network, country, network and prefix it used. Counts decay
with a half-life and an entry is forgotten after the retention period, so a user who moved
house stops looking like the old address. The population summary counts sessions per kind of
network, country and network (AS) across all users; the engine uses it as the attacker's
distribution and as the value a user's estimate is smoothed toward (Freeman et al., NDSS 2016).

Everything here is pure: updates return new objects and time comes in as an argument.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

__all__ = ["Path", "Population", "PopulationCounter", "Tally", "UserRisk", "smoothed"]

K = TypeVar("K")


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
    tallies: Mapping[K, Tally], now: float, since: float, half_life: float, horizon: float
) -> dict[K, Tally]:
    """The tallies' weights, decayed from ``since`` (when they were last decayed to; 0:
    never, so each from its last use) to ``now``, without those unused for ``horizon``."""
    out: dict[K, Tally] = {}
    for key, tally in tallies.items():
        if now - tally.last > horizon:
            continue
        age = now - (since or tally.last)
        out[key] = Tally(tally.weight * math.exp2(-max(age, 0.0) / half_life), tally.last)
    return out


def _rank(tally: Tally) -> tuple[float, float]:
    return tally.weight, tally.last


Path = tuple[str, ...]

_SERIALS = itertools.count(1)
_MOVES_KEPT = 64.0  # past this many moves, old ones count half: recent habits weigh most


def _bounded_moves(moves: tuple[float, ...]) -> tuple[float, ...]:
    if len(moves) != 4:
        raise ValueError("moves: one count per depth (kind, country, network, prefix)")
    if sum(moves) > _MOVES_KEPT:
        return tuple(m / 2 for m in moves)
    return moves


def _count(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e6


def _sizes(tallies: Mapping[Path, Tally]) -> list[int]:
    """How many values there are at each depth (1 to 4)."""
    sizes = [0, 0, 0, 0]
    for key in tallies:
        sizes[len(key) - 1] += 1
    return sizes


def _totals(tallies: Mapping[Path, Tally]) -> dict[Path, tuple[float, int]]:
    """Per parent path: total weight and number of distinct children."""
    out: dict[Path, tuple[float, int]] = {}
    for key, tally in tallies.items():
        total, distinct = out.get(key[:-1], (0.0, 0))
        out[key[:-1]] = (total + tally.weight, distinct + 1)
    return out


class UserRisk:
    """One user's networks across sessions, as a tree of paths: ``(kind,)``,
    ``(kind, country)``, ``(kind, country, as_name)``, ``(kind, country, as_name, prefix)``
    (kind first: a VPN user's habit is the provider, wherever its exits are). Immutable;
    :meth:`add` returns a new summary.
    """

    __slots__ = (
        "_sizes",
        "_spread",
        "_totals",
        "latest",
        "moves",
        "serial",
        "tallies",
        "updated",
    )

    def __init__(
        self,
        tallies: Mapping[Path, Tally] | None = None,
        updated: float = 0.0,
        moves: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0),
    ) -> None:
        self.tallies: Mapping[Path, Tally] = MappingProxyType(dict(tallies or {}))
        self.updated = updated  # the time the weights were last decayed to
        #: How often this user's allowed requests first left their session's networks at
        #: each depth (kind, country, network, prefix): a VPN user switches kind often.
        self.moves = _bounded_moves(moves)
        self._spread: dict[Path, float] = {}
        self.serial = next(_SERIALS)  # tells this summary from any other, for caches
        #: When it last learned a value (0: never): of two copies, the later knows more.
        self.latest = max((t.last for t in self.tallies.values()), default=0.0)
        self._totals = _totals(self.tallies)
        self._sizes = _sizes(self.tallies)

    def weight(self, path: Path) -> float:
        tally = self.tallies.get(path)
        return tally.weight if tally is not None else 0.0

    def total(self, parent: Path) -> tuple[float, int]:
        """Total weight and number of distinct values under ``parent``."""
        return self._totals.get(parent, (0.0, 0))

    def add(
        self,
        paths: Iterable[Path],
        *,
        now: float,
        half_life: float,
        retention: float,
        limits: tuple[int, ...],
        moved: int = 0,
    ) -> UserRisk:
        """One session's first use of these paths: each gets one more session. ``limits``:
        how many values to keep at each depth (kinds, countries, networks, prefixes);
        ``moved``: the depth (1 to 4) at which a request of a live session first left its
        networks (0 for a login)."""
        # Decay (and forget) only when it moves weights by more than about 1%: a busy user
        # adds values often, and each full pass costs as much as the rest of a request.
        paths = tuple(paths)
        fresh = now - self.updated < half_life / 64
        out = (
            dict(self.tallies)
            if fresh
            else _decay(self.tallies, now, self.updated, half_life, retention)
        )
        totals: dict[Path, tuple[float, int]] | None = dict(self._totals) if fresh else None
        sizes = list(self._sizes) if fresh else _sizes(out)
        for path in paths:
            previous = out.get(path)
            out[path] = Tally((previous.weight if previous else 0.0) + 1.0, now)
            sizes[len(path) - 1] += previous is None
            if totals is not None:
                total, distinct = totals.get(path[:-1], (0.0, 0))
                totals[path[:-1]] = (total + 1.0, distinct + (previous is None))
        for depth in {len(path) for path in paths}:
            while sizes[depth - 1] > limits[depth - 1]:  # forget the weakest value there
                weakest = min((k for k in out if len(k) == depth), key=lambda k: _rank(out[k]))
                gone = out.pop(weakest)
                sizes[depth - 1] -= 1
                if totals is not None:
                    total, distinct = totals[weakest[:-1]]
                    totals[weakest[:-1]] = (total - gone.weight, distinct - 1)
        moves = self.moves
        if 1 <= moved <= 4:
            moves = _bounded_moves(tuple(m + (d == moved) for d, m in enumerate(moves, 1)))
        latest = max(self.latest, now)
        return UserRisk._made(out, self.updated if fresh else now, totals, sizes, moves, latest)

    def spread(self, parent: Path) -> float:
        """How likely two of this user's sessions differ just below ``parent``: one minus
        the sum of the squared shares of its values (0 for a user who always used one)."""
        cached = self._spread.get(parent)
        if cached is None:
            total, distinct = self.total(parent)
            cached = 0.0
            if distinct > 1 and total > 0:
                depth = len(parent) + 1
                squares = sum(
                    (t.weight / total) ** 2
                    for k, t in self.tallies.items()
                    if len(k) == depth and k[:-1] == parent
                )
                cached = max(0.0, 1.0 - squares)
            self._spread[parent] = cached
        return cached

    def move(self, depth: int, population: float, weight: float) -> float:
        """The share of this user's moves that first differ at ``depth``, smoothed toward the
        population's share ``population`` (worth ``weight`` moves)."""
        return (self.moves[depth - 1] + weight * population) / (sum(self.moves) + weight)

    @classmethod
    def _made(
        cls,
        tallies: dict[Path, Tally],
        updated: float,
        totals: dict[Path, tuple[float, int]] | None,
        sizes: list[int],
        moves: tuple[float, ...],
        latest: float,
    ) -> UserRisk:
        made = cls.__new__(cls)
        made.tallies = MappingProxyType(tallies)
        made.updated = updated
        made.moves = moves
        made._spread = {}
        made.serial = next(_SERIALS)
        made.latest = latest
        made._totals = totals if totals is not None else _totals(tallies)
        made._sizes = sizes
        return made

    def to_json(self) -> dict[str, object]:
        """Plain data for storage: the paths and their decayed weights, and four move
        counts; nothing else."""
        return {
            "updated": self.updated,
            "paths": [[*k, t.weight, t.last] for k, t in self.tallies.items()],
            "moves": list(self.moves),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> UserRisk:
        rows = data.get("paths")
        tallies: dict[Path, Tally] = {}
        for row in rows if isinstance(rows, list) else []:
            if not (isinstance(row, list) and 3 <= len(row) <= 6):
                continue
            *key, weight, last = row
            valid = all(isinstance(k, str) for k in key)
            if valid and isinstance(weight, int | float) and isinstance(last, int | float):
                tallies[tuple(str(k) for k in key)] = Tally(float(weight), float(last))
        updated = data.get("updated")
        raw = data.get("moves")
        moves: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
        if isinstance(raw, list) and len(raw) == 4 and all(_count(m) for m in raw):
            moves = tuple(float(m) for m in raw)
        return cls(tallies, float(updated) if isinstance(updated, int | float) else 0.0, moves)

    def __repr__(self) -> str:
        return f"UserRisk(values={len(self.tallies)})"


@dataclass(frozen=True, slots=True)
class Population:
    """What all users do, counted: sessions by network path prefix (``(kind,)``,
    ``(kind, country)`` then the network; see ``risk.network_path``), the attacker's
    distribution since an attacker is anyone; and ``moves``: how many legitimate requests
    first left their session's networks at each depth (kind, country, network, prefix).
    Empty is a valid population: estimates then fall back to the policy's priors.
    """

    counts: Mapping[Path, int] = field(default_factory=lambda: MappingProxyType({}))
    total: int = 0
    moves: tuple[int, ...] = (0, 0, 0, 0)
    #: Tells this snapshot from any other, for caches (never reused, unlike ``id``).
    serial: int = field(default_factory=lambda: next(_SERIALS), compare=False, repr=False)

    def share(self, path: Path, vocabulary: int) -> float:
        """P(last part of ``path`` | the rest), add-one smoothed over ``vocabulary`` values."""
        parent = self.counts.get(path[:-1], 0) if len(path) > 1 else self.total
        return (self.counts.get(path, 0) + 1) / (parent + vocabulary)

    def kind(self, kind: str, prior: float, weight: float) -> float:
        """The share of sessions on networks of ``kind``, starting from ``prior`` (worth
        ``weight`` sessions)."""
        return (self.counts.get((kind,), 0) + weight * prior) / (self.total + weight)

    def move(self, depth: int, prior: float, weight: float) -> float:
        """Of the legitimate requests that left their session's networks, the share that did
        so first at ``depth`` (1: kind ... 4: prefix), starting from ``prior`` (worth
        ``weight`` moves)."""
        return (self.moves[depth - 1] + weight * prior) / (sum(self.moves) + weight)


class PopulationCounter:
    """Mutable, bounded builder of a :class:`Population`."""

    __slots__ = ("_counts", "_limit", "_moves", "_total")

    def __init__(self, limit: int = 50_000) -> None:
        self._counts: dict[Path, int] = {}
        self._total = 0
        self._moves = [0, 0, 0, 0]
        self._limit = limit

    def add(self, path: Path) -> None:
        """A session's login from the network at ``path`` (see ``risk.network_path``)."""
        self._total += 1
        for depth in (1, 2, 3):
            self._counts[path[:depth]] = self._counts.get(path[:depth], 0) + 1
        if len(self._counts) > self._limit:  # drop the rarest half: they carry least
            ranked = sorted(self._counts.items(), key=lambda item: item[1])
            self._counts = dict(ranked[len(ranked) // 2 :])

    def moved(self, depth: int) -> None:
        """A legitimate request that first left its session's networks at ``depth`` (1 to
        4; 0, a request that stayed, is not counted)."""
        if depth:
            self._moves[depth - 1] += 1

    def snapshot(self) -> Population:
        return Population(MappingProxyType(dict(self._counts)), self._total, tuple(self._moves))
