"""Turn a captured :class:`~sessionward.RequestContext` into the engine's :class:`Observation`.

The work (an address lookup, a user-agent parse) is cached, each cache bounded: by the whole
context (an unchanged context costs one dictionary lookup), by address, by /24 (/48) block
and by user agent (a phone that changes address keeps its parsed browser, and usually its
carrier's block).
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from sessionward.core.context import RequestContext
from sessionward.core.risk import Browser, Network, Observation, Signals
from sessionward.errors import ConfigError
from sessionward.risk.agents import language_of, parse_user_agent, platform_mismatch, platform_of
from sessionward.risk.networks import (
    GeoLookup,
    NetworkKinds,
    geoip2fast_block,
    geoip2fast_lookup,
    locate,
    network_of,
)

__all__ = ["Enricher"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Bounded(Generic[K, V]):
    """A dictionary that forgets its oldest entry when full (insertion order)."""

    __slots__ = ("_data", "_size")

    def __init__(self, size: int) -> None:
        # OrderedDict: dropping the oldest entry is O(1); a plain dict would scan the slots
        # its earlier deletions left at the front.
        self._data: OrderedDict[K, V] = OrderedDict()
        self._size = size

    def get(self, key: K) -> V | None:
        return self._data.get(key)

    def put(self, key: K, value: V) -> V:
        if len(self._data) >= self._size:
            self._data.popitem(last=False)
        self._data[key] = value
        return value

    def __len__(self) -> int:
        return len(self._data)


class _Ranges:
    """Address ranges that share one AS name and country, as the database answered them,
    with the network's kind: a new /24 inside a block looked up before (a consumer ISP's
    /12, a carrier's pools) costs a binary search instead of a database lookup. Bounded; the
    oldest range goes first."""

    __slots__ = ("_ends", "_order", "_size", "_starts", "_values")

    def __init__(self, size: int) -> None:
        self._starts: list[int] = []  # sorted; ranges do not overlap (one database)
        self._ends: dict[int, int] = {}
        self._values: dict[int, tuple[str, str, str]] = {}
        self._order: OrderedDict[int, None] = OrderedDict()
        self._size = size

    def get(self, number: int) -> tuple[str, str, str] | None:
        i = bisect.bisect_right(self._starts, number) - 1
        if i >= 0:
            start = self._starts[i]
            if number <= self._ends[start]:
                return self._values[start]
        return None

    def put(self, first: int, last: int, value: tuple[str, str, str]) -> None:
        if first > last or first in self._ends:
            return
        if len(self._starts) >= self._size:
            oldest, _ = self._order.popitem(last=False)
            del self._starts[bisect.bisect_left(self._starts, oldest)]
            del self._ends[oldest], self._values[oldest]
        bisect.insort(self._starts, first)
        self._ends[first], self._values[first] = last, value
        self._order[first] = None


class Enricher:
    """Signals from a request context: network (prefix, AS name, country, kind), parsed user
    agent, first language, platform hint, device signal.

    ``geo`` maps an address to ``(as_name, country)`` (default: geoip2fast's offline data,
    loaded on first use); ``kinds`` names hosting, VPN and Tor networks (default: the list
    shipped with sessionward); ``cache_size`` bounds each of the three caches.
    """

    __slots__ = (
        "_agents",
        "_blocks",
        "_contexts",
        "_geo",
        "_headers",
        "_kinds",
        "_networks",
        "_ranges",
    )

    def __init__(
        self,
        *,
        geo: GeoLookup | None = None,
        kinds: NetworkKinds | None = None,
        cache_size: int = 4096,
    ) -> None:
        if not 1 <= cache_size <= 1_000_000:
            raise ConfigError("cache_size must be between 1 and 1000000")
        self._geo = geo or geoip2fast_lookup
        # With the default data, whole database blocks are cached, not only /24s.
        self._ranges = _Ranges(cache_size) if geo is None else None
        self._kinds = kinds or NetworkKinds.default()
        self._contexts: _Bounded[tuple[object, ...], Signals] = _Bounded(cache_size)
        self._networks: _Bounded[str | None, Network] = _Bounded(cache_size)
        self._blocks: _Bounded[str, Network] = _Bounded(cache_size)
        self._agents: _Bounded[str, Browser] = _Bounded(cache_size)
        self._headers: _Bounded[tuple[str | None, str], tuple[str, str]] = _Bounded(cache_size)

    def signals(self, context: RequestContext) -> Signals:
        key = context.key()
        cached = self._contexts.get(key)
        if cached is not None:
            return cached
        browser = self._browser(context.user_agent or "")
        language, platform = self._header_values(context)
        signals = Signals(
            self._network(context.ip),
            browser,
            language,
            platform,
            context.device_key or "",
            platform_mismatch(browser, platform),
        )
        return self._contexts.put(key, signals)

    def observe(
        self, context: RequestContext, now: float, *, previous_secret: bool = False
    ) -> Observation:
        """The observation of a request made at ``now`` (the injected clock's time)."""
        return Observation(now, self.signals(context), previous_secret)

    def _header_values(self, context: RequestContext) -> tuple[str, str]:
        key = (context.accept_language, context.client_hints.get("sec-ch-ua-platform", ""))
        values = self._headers.get(key)
        if values is None:
            parsed = (language_of(context.accept_language), platform_of(context.client_hints))
            values = self._headers.put(key, parsed)
        return values

    def _network(self, address: str | None) -> Network:
        network = self._networks.get(address)
        if network is None:
            network = self._networks.put(address, self._block(address))
        return network

    def _block(self, address: str | None) -> Network:
        """A new address: its /24 (/48) is often known already (a phone's carrier hands out
        addresses from a few blocks), and one owner and country per block is what the engine
        works with."""
        parts = locate(address)
        if parts is None:
            return Network()
        prefix, normal, number = parts
        network = self._blocks.get(prefix)
        if network is None:
            if self._ranges is None:
                network = network_of(normal, self._geo, self._kinds)
            else:
                owner = self._ranges.get(number)
                if owner is None:
                    asn, country, first, last = geoip2fast_block(normal)
                    owner = (asn, country, self._kinds(asn))
                    self._ranges.put(first, last, owner)
                network = Network(prefix, *owner)
            network = self._blocks.put(prefix, network)
        return network

    def _browser(self, user_agent: str) -> Browser:
        browser = self._agents.get(user_agent)
        if browser is None:
            browser = self._agents.put(user_agent, parse_user_agent(user_agent))
        return browser
