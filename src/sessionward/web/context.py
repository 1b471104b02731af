"""Capture the request signals the risk engine scores (a :class:`~sessionward.RequestContext`).

The client address is the peer address unless the peer is a configured trusted proxy; only
then is ``X-Forwarded-For`` read, from the right, skipping further trusted proxies. A header
sent by anyone else is ignored, so a client cannot claim another address by sending one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from sessionward.core.context import RequestContext
from sessionward.errors import ConfigError
from sessionward.web.device import DeviceSignal

__all__ = ["ContextCapture"]

_IP_CHARACTERS = "0123456789abcdefABCDEF.:"
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> _Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:443"
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class ContextCapture:
    """Turns a request's peer address and headers into a :class:`RequestContext`.

    ``trusted_proxies``: addresses or networks (``"10.0.0.0/8"``) of the reverse proxies in
    front of the application. Empty (the default) means ``X-Forwarded-For`` is never read.
    ``device``: read the optional device signal (see :mod:`sessionward.web.device`).
    """

    __slots__ = ("_trusted", "device")

    def __init__(
        self, trusted_proxies: Iterable[str] = (), device: DeviceSignal | None = None
    ) -> None:
        self.device = device
        if isinstance(trusted_proxies, str):
            raise ConfigError("trusted_proxies must be a list of addresses or networks")
        try:
            self._trusted: tuple[_Network, ...] = tuple(
                ipaddress.ip_network(p, strict=False) for p in trusted_proxies
            )
        except ValueError as exc:
            raise ConfigError(f"invalid trusted proxy: {exc}") from None

    def _is_trusted(self, address: _Address) -> bool:
        return any(address in network for network in self._trusted)

    def client_ip(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client address: walk ``X-Forwarded-For`` right to left while hops are trusted.

        A malformed entry stops the walk at the last address known to be real.
        """
        if not self._trusted:  # the common case: the server's peer address, shape-checked only
            return peer if peer and not peer.strip(_IP_CHARACTERS) else None
        current = _address(peer) if peer else None
        if current is None:
            return None
        hops = [h for h in (forwarded_for or "").split(",") if h.strip()]
        while self._is_trusted(current) and hops:
            previous = _address(hops.pop())
            if previous is None:
                break
            current = previous
        return str(current)

    def capture(self, peer: str | None, headers: Mapping[str, str]) -> RequestContext:
        """``headers`` has lower-cased names (see ``sessionward.web._http``)."""
        hints = {k: v for k, v in headers.items() if k.startswith("sec-ch-ua")}
        return RequestContext(
            ip=self.client_ip(peer, headers.get("x-forwarded-for")),
            user_agent=headers.get("user-agent"),
            accept_language=headers.get("accept-language"),
            client_hints=hints,
            device_key=None if self.device is None else self.device.key(headers.get("cookie")),
        )
