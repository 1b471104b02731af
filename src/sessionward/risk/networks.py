"""An address as the risk engine sees it: its prefix, its network's owner, country and kind.

The owner (the autonomous system's name) and the country come from the GeoLite2-derived data
shipped with the ``geoip2fast`` package, read from memory: no lookup leaves the machine. The
kind (hosting, VPN, Tor) comes from a short list kept in ``networks.json`` next to this file.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Any, Protocol

from sessionward.core.risk import Network
from sessionward.errors import ConfigError

__all__ = [
    "GeoLookup",
    "NetworkKinds",
    "address_number",
    "geoip2fast_block",
    "geoip2fast_lookup",
    "locate",
    "prefix_of",
]

#: ``address -> (as_name, country)``; empty strings when unknown.
GeoLookup = Callable[[str], tuple[str, str]]

_V4_PREFIX = 24
_V6_PREFIX = 48


def _normal(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if address.count(".") == 3 and ":" not in address:
        try:  # the common case, parsed in C
            return ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, address))
        except OSError:
            return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:  # "fe80::1%eth0": the zone names an interface of the peer
            ip = ipaddress.IPv6Address(address.partition("%")[0])
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
    return ip


def _prefix(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(ip, ipaddress.IPv4Address):
        return f"{str(ip).rpartition('.')[0]}.0/{_V4_PREFIX}"
    return f"{ipaddress.IPv6Address(int(ip) >> 80 << 80)}/{_V6_PREFIX}"


def prefix_of(address: str) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) holding ``address``, or ``None`` if it is not an address.
    An IPv4-mapped IPv6 address counts as the IPv4 address it carries."""
    ip = _normal(address)
    return _prefix(ip) if ip is not None else None


class NetworkKinds:
    """AS name -> ``"hosting"``, ``"vpn"`` or ``"tor"`` (case-insensitive); others are ``""``.

    ``NetworkKinds.default()`` is the list shipped in ``networks.json``; pass a mapping of
    kind -> names to use your own.
    """

    __slots__ = ("_kinds",)

    KINDS = ("hosting", "vpn", "tor")

    def __init__(self, names: Mapping[str, Iterable[str]]) -> None:
        kinds: dict[str, str] = {}
        for kind, members in names.items():
            if kind not in self.KINDS:
                raise ConfigError(f"unknown network kind {kind!r} (use {', '.join(self.KINDS)})")
            if isinstance(members, str):
                raise ConfigError(f"the {kind} networks must be a list of names")
            kinds.update((str(name).casefold(), kind) for name in members)
        self._kinds = kinds

    @classmethod
    def default(cls) -> NetworkKinds:
        text = resources.files(__package__).joinpath("networks.json").read_text("utf-8")
        data: dict[str, Any] = json.loads(text)
        return cls({kind: data[kind]["names"] for kind in cls.KINDS})

    def __call__(self, as_name: str) -> str:
        return self._kinds.get(as_name.casefold(), "") if as_name else ""

    def __len__(self) -> int:
        return len(self._kinds)


class _GeoIP2Fast(Protocol):
    def lookup(self, ipaddr: str) -> Any: ...


_lock = threading.Lock()
_loaded: list[_GeoIP2Fast] = []


def _database() -> _GeoIP2Fast:
    # geoip2fast keeps its tables in module globals, so one copy per process; loading takes
    # a fraction of a second and is done once, under a lock, on first use.
    if _loaded:
        return _loaded[0]
    with _lock:
        if not _loaded:
            from geoip2fast import GeoIP2Fast

            _loaded.append(GeoIP2Fast(geoip2fast_data_file="geoip2fast-asn-ipv6.dat.gz"))
        return _loaded[0]


def geoip2fast_lookup(address: str) -> tuple[str, str]:
    """The AS name and ISO country of ``address`` from geoip2fast's data; ``("", "")`` for
    private, reserved and unlisted addresses, and no AS name (``""``, the country kept) for an
    address that lies between the data's AS blocks."""
    result = _database().lookup(address)
    country = str(result.country_code or "")
    if result.is_private or not (len(country) == 2 and country.isalpha()):
        return "", ""
    as_block = _span(str(result.asn_cidr)) if result.asn_cidr else None
    number = _number(address)
    inside = as_block is not None and number is not None and as_block[0] <= number <= as_block[1]
    return (str(result.asn_name or "") if inside else ""), country.upper()


def geoip2fast_block(address: str) -> tuple[str, str, int, int]:
    """Like :func:`geoip2fast_lookup`, with the range of addresses (first and last, as
    integers) that share its AS name and country: the intersection of the database's country
    block and the AS block holding ``address``, or, between AS blocks, the country block's
    part of that gap. An empty range (first > last) when there is none or it is not known.
    """
    result = _database().lookup(address)
    country = str(result.country_code or "")
    asn, first, last = _owner_range(result, address)
    if result.is_private or not (len(country) == 2 and country.isalpha()):
        return "", "", first, last
    return asn, country.upper(), first, last


def _owner_range(result: Any, address: str) -> tuple[str, int, int]:
    """The AS name of ``address`` and the range of addresses sharing it and the country."""
    country_block = _span(str(result.cidr)) if result.cidr else None
    as_block = _span(str(result.asn_cidr)) if result.asn_cidr else None
    number = _number(address)
    # Both blocks, or no range: without the AS block before it, the country's says nothing of
    # the AS.
    if country_block is None or as_block is None or number is None:
        return "", 0, -1
    if as_block[0] <= number <= as_block[1]:
        first, last = max(country_block[0], as_block[0]), min(country_block[1], as_block[1])
        return str(result.asn_name or ""), first, last
    if as_block[1] < number:
        return "", *_gap(str(result.asn_cidr), as_block[1], country_block)
    return "", 0, -1


def _gap(as_cidr: str, as_last: int, country_block: tuple[int, int]) -> tuple[int, int]:
    """The part of ``country_block`` after the AS block ``as_cidr`` (which ends before the
    address looked up) that no AS block covers, or an empty range.

    geoip2fast answers an address with the last AS block starting at or before it, whether or
    not the block reaches it. If the country block's last address gets the same block, no AS
    block starts between the two; otherwise the gap's end is not known without more lookups.
    """
    country_first, country_last = country_block
    if _database().lookup(_address(country_last)).asn_cidr != as_cidr:
        return 0, -1
    return max(country_first, as_last + 1), country_last


def _number(address: str) -> int | None:
    try:
        return address_number(address)
    except OSError:
        return None


def _address(number: int) -> str:
    """The inverse of :func:`address_number`."""
    if number < _V6_OFFSET:
        return socket.inet_ntop(socket.AF_INET, number.to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, (number - _V6_OFFSET).to_bytes(16, "big"))


_V6_OFFSET = 1 << 32


_V4_SIZES = {str(bits): 1 << (32 - bits) for bits in range(33)}


def _span(cidr: str) -> tuple[int, int] | None:
    """First and last address numbers (see :func:`address_number`) of ``a.b.c.d/n``."""
    address, _, length = cidr.partition("/")
    size = _V4_SIZES.get(length)
    if size is not None and ":" not in address:
        try:  # IPv4, the common case: no wider checks needed
            start = int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big")
        except OSError:
            return None
        start -= start % size
        return start, start + size - 1
    if not length.isdigit():
        return None
    try:
        start, bits = address_number(address), int(length)
    except (OSError, ValueError):
        return None
    width = 128 if ":" in address else 32
    if not 0 <= bits <= width:
        return None
    size = 1 << (width - bits)
    start -= (start - (_V6_OFFSET if width == 128 else 0)) % size
    return start, start + size - 1


def address_number(ip: str) -> int:
    """A normalised address (see :func:`split`) as one integer, IPv6 above all of IPv4."""
    if ":" in ip:
        return int.from_bytes(socket.inet_pton(socket.AF_INET6, ip), "big") + _V6_OFFSET
    return int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")


def network_of(address: str | None, geo: GeoLookup, kinds: NetworkKinds) -> Network:
    """Everything the engine wants to know about an address."""
    ip = _normal(address) if address else None
    if ip is None:
        return Network()
    asn, country = geo(str(ip))
    return Network(_prefix(ip), asn, country, kinds(asn))


def locate(address: str | None) -> tuple[str, str, int] | None:
    """``(prefix, normalised address, address_number)``, or ``None`` if ``address`` is not an
    address; IPv4 in dotted form without building address objects (the common case)."""
    if address and address.count(".") == 3 and ":" not in address:
        try:
            packed = socket.inet_pton(socket.AF_INET, address)
        except OSError:
            return None
        # inet_pton takes four decimal numbers without leading zeros and nothing else: an
        # address it takes is in normal form already.
        prefix = f"{address.rpartition('.')[0]}.0/{_V4_PREFIX}"
        return prefix, address, int.from_bytes(packed, "big")
    parts = split(address)
    return (parts[0], parts[1], address_number(parts[1])) if parts is not None else None


def split(address: str | None) -> tuple[str, str] | None:
    """``(prefix, normalised address)``, or ``None`` if ``address`` is not an address."""
    ip = _normal(address) if address else None
    return (_prefix(ip), str(ip)) if ip is not None else None
