"""An issuer's JWK set, fetched over HTTPS and cached. This file is the source of truth; the
``_sync`` twin is generated.

* Only ``https`` URLs (plain ``http`` to a loopback address only, for tests and sidecars);
  no redirects followed; a timeout on every fetch; the body capped (``max_bytes``).
* The set is kept for the ``max-age`` its answer names, clamped to ``[min_age, max_age]``
  (``default_age`` without one). A failed refresh keeps the keys already held.
* A token whose ``kid`` is not in the set makes the source fetch again, at most once per
  ``refetch_interval`` seconds however many tokens arrive: a sender of random ``kid`` values
  cannot turn each request into a fetch. A key the issuer has just rotated in is seen at the
  latest ``refetch_interval`` seconds after the first token that names it.
* Given a configuration URL (``/.well-known/openid-configuration`` or
  ``/.well-known/ssf-configuration``) instead of a JWK set URL, the source reads its
  ``jwks_uri`` (the document's ``issuer`` must be the configured issuer).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from sessionward.clock import Clock, SystemClock
from sessionward.core.jws import SignedJwt
from sessionward.errors import ConfigError
from sessionward.signals.keys import (
    ALGORITHMS,
    IssuerKey,
    SignalRejected,
    candidates_for,
    parse_jwks,
)

__all__ = ["AsyncKeySource", "check_url"]

_log = logging.getLogger("sessionward.signals")
_LOOPBACK: Final = frozenset(("127.0.0.1", "::1", "localhost"))
# What a refresh may fail with: a refused document, the network, a body that is no JSON
# (UnicodeDecodeError is a ValueError; absurd nesting a RecursionError).
_FAILURES = (
    SignalRejected,
    ConfigError,
    httpx.HTTPError,
    httpx.StreamError,
    ValueError,
    RecursionError,
)
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d{1,9})\s*(?:,|$)", re.IGNORECASE)


def check_url(url: str) -> str:
    """``url`` if the source may fetch it (``https``, or ``http`` to loopback)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password:
        raise ConfigError("a key URL needs a host and no credentials")
    if parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK):
        return url
    raise ConfigError("key URLs must use https (http only to a loopback address)")


class AsyncKeySource:
    """The keys of ``issuer``, from ``jwks_url`` or from the ``jwks_uri`` of
    ``configuration_url``. ``client`` is an ``httpx`` client of the caller's (it is then the
    caller's to close); by default each refresh opens a client of its own and closes it
    (refreshes are minutes apart, and a pooled connection would tie the source to one event
    loop)."""

    def __init__(
        self,
        issuer: str,
        *,
        jwks_url: str | None = None,
        configuration_url: str | None = None,
        algorithms: Sequence[str] = ALGORITHMS,
        clock: Clock | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        max_bytes: int = 256 * 1024,
        min_age: float = 60.0,
        max_age: float = 86400.0,
        default_age: float = 3600.0,
        refetch_interval: float = 60.0,
    ) -> None:
        if (jwks_url is None) == (configuration_url is None):
            raise ConfigError("give exactly one of jwks_url and configuration_url")
        self.issuer = issuer
        self._jwks_url = None if jwks_url is None else check_url(jwks_url)
        self._configuration_url = (
            None if configuration_url is None else check_url(configuration_url)
        )
        self.algorithms = tuple(a for a in algorithms if a in ALGORITHMS)
        if not self.algorithms:
            raise ConfigError(f"algorithms must name some of {', '.join(ALGORITHMS)}")
        self.clock: Clock = clock or SystemClock()
        self._client = client
        self._timeout = timeout
        self.max_bytes = max_bytes
        self._ages = (min_age, max_age, default_age)
        self.refetch_interval = refetch_interval
        self._keys: list[IssuerKey] | None = None
        self._fresh_until = 0.0
        self._last_attempt: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0  # how many JWK set fetches were attempted (for tests and metrics)

    async def keys_for(self, jwt: SignedJwt) -> list[IssuerKey]:
        """The keys to check ``jwt`` with: the cached set, refreshed when it is stale or does
        not hold the token's key (each at most once per ``refetch_interval``). Raises
        ``SignalRejected("keys-unavailable")`` when no set was ever fetched."""
        now = self.clock.now()
        keys = self._keys
        stale = keys is None or now >= self._fresh_until
        if (stale or not candidates_for(jwt, keys or [])) and self._reserve(now):
            await self._refresh()
        if self._keys is None:
            raise SignalRejected("keys-unavailable", "temporarily_unavailable")
        return self._keys

    def _reserve(self, now: float) -> bool:
        """Take the one fetch allowed in this ``refetch_interval`` (atomic across threads)."""
        with self._lock:
            last = self._last_attempt
            if last is not None and now - last < self.refetch_interval:
                return False
            self._last_attempt = now
            return True

    async def _refresh(self) -> None:
        self.fetches += 1
        try:
            url = self._jwks_url or await self._discover()
            document, age = await self._get_json(url)
            keys = parse_jwks(document, self.algorithms)
        except _FAILURES as exc:
            _log.warning("key set of %s not refreshed: %s", self.issuer, type(exc).__name__)
            return
        self._keys = keys
        self._fresh_until = self.clock.now() + age

    async def _discover(self) -> str:
        document, _ = await self._get_json(self._configuration_url or "")
        if document.get("issuer") != self.issuer:
            raise ConfigError("the configuration document names another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ConfigError("the configuration document has no jwks_uri")
        return check_url(jwks_uri)

    async def _get_json(self, url: str) -> tuple[dict[str, Any], float]:
        if self._client is not None:
            return await self._read(self._client, url)
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
            return await self._read(client, url)

    async def _read(self, client: httpx.AsyncClient, url: str) -> tuple[dict[str, Any], float]:
        headers = {"accept": "application/json", "accept-encoding": "identity"}
        async with client.stream(
            "GET", url, headers=headers, timeout=self._timeout, follow_redirects=False
        ) as response:
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():  # decoded: the cap bounds what we hold
                body += chunk
                if len(body) > self.max_bytes:
                    raise ValueError("answer too large")
            age = self._age(response.headers.get("cache-control", ""))
        document = json.loads(bytes(body))
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        return document, age

    def _age(self, cache_control: str) -> float:
        low, high, default = self._ages
        if "no-store" in cache_control.lower() or "no-cache" in cache_control.lower():
            return low
        match = _MAX_AGE.search(cache_control)
        age = float(match.group(1)) if match else default
        return min(max(age, low), high)

    async def close(self) -> None:
        """Nothing to release unless a subclass holds more: the source keeps no connection."""
