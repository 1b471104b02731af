"""Throttling of every place a secret is guessed: passwords, TOTP codes, the admin setup code,
API keys. The policy, and how it maps to ASVS 5.0 V6 and NIST SP 800-63B 5.2.2, is in
docs/throttling.md.

Each kind of secret has three sets of moving windows (the ``limits`` library's moving-window
strategy, state in the configured store: see ``sessionward.service.throttle_storage``):

* ``address``: attempts from one client address (an IPv6 address counts by its /64), on any
  account;
* ``pair``: attempts on one account from one address; forgotten when that address succeeds
  (NIST: disregard a user's failed attempts from the address they then sign in from);
* ``account``: attempts on one account from every address, except addresses where the
  account signed in within ``TRUSTED_DAYS`` (so an attacker cannot lock its owner out).

Each set holds several windows (a few a minute, more an hour, a cap a day): the wait grows as
the attempts add up, which is the backoff. A refused attempt is never evaluated and answers
"try again in N s" (the API: 429 with ``Retry-After``). The attempt that fills a window and
fails emits a :class:`GuessThrottled` event. Passwords, codes and the setup code reserve their
attempt before it is checked (:meth:`Guard.attempt`, through :func:`reserve` in
``sessionward.service.factors``), atomically, so parallel guesses cannot overrun a window;
API keys are checked against the windows on a key-cache miss and counted only when they fail
(:meth:`Guard.check`, :meth:`Guard.failed`), since a valid key is looked up every few seconds
by every process. Account names and addresses are stored only as hashes.

The same windows bound actions that store something without a secret (a guest session the
demo shop starts, a registration): every such action from an address counts, whatever its
outcome, through :meth:`Guard.count`; they have an address set only.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from sessionward.core.events import Event, EventBus
from sessionward.errors import StoreError, StoreUnavailable
from sessionward.service.state import ServiceState
from sessionward.service.throttle_storage import (
    Closer,
    PostgresWindows,
    StateWindows,
    redis_windows,
    retry_seconds,
)

__all__ = [
    "RULES",
    "TRUSTED_DAYS",
    "Guard",
    "GuessThrottled",
    "Rules",
    "Throttled",
    "network_of",
    "open_guard",
    "reserve",
]

_log = logging.getLogger("sessionward.service")

TRUSTED_DAYS = 30


@dataclass(frozen=True, slots=True)
class Rules:
    """The windows of one kind of secret, or of action, in ``limits``' notation
    (``"5/minute;20/hour"``); an empty string is a set without windows."""

    address: str
    pair: str = ""
    account: str = ""


_HUMAN = Rules(address="10/minute;50/hour;300/day", pair="5/minute;20/hour", account="100/day")
RULES: dict[str, Rules] = {
    "password": _HUMAN,
    "totp": _HUMAN,
    "setup-code": Rules(address="5/minute;20/hour", pair="5/minute;20/hour", account="100/day"),
    # Failures only: a key holds 256 random bits; this stops scanning, not a lucky guess.
    "api-key": Rules(address="30/minute;300/hour;3000/day", pair="10/minute", account="1000/day"),
    # Actions that store something without a secret, counted per address (Guard.count); wide
    # enough for the many users behind one carrier-grade NAT (docs/throttling.md).
    "guest-session": Rules(address="60/minute;600/hour;3000/day"),
    "registration": Rules(address="5/minute;20/hour;50/day"),
}


@dataclass(frozen=True, slots=True)
class GuessThrottled(Event):
    """A window filled: ``reason`` is the kind (a secret, or an action such as
    ``guest-session``) and the set (``address``, ``pair`` or ``account``), throttled for
    ``retry_after`` seconds. ``user_id`` is the account (``None`` for an address set)."""

    kind: ClassVar[str] = "throttled"
    reason: str = ""
    retry_after: int = 0


class Throttled(Exception):
    """Too many attempts: try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many attempts; try again in {retry_after} s")
        self.retry_after = retry_after


def network_of(address: str | None) -> str:
    """The unit an address is counted by: the address itself, or an IPv6 address's /64."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "replace")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class _Set:
    name: str
    items: Sequence[RateLimitItem]
    key: str


class Guard:
    """The throttle of the service; ``now`` is the clock of ``storage``'s timestamps."""

    def __init__(
        self,
        storage: Storage,
        *,
        now: Callable[[], float] = time.time,
        events: EventBus | None = None,
        rules: dict[str, Rules] | None = None,
        close: Closer | None = None,
    ) -> None:
        self.storage = storage
        self._close = close
        self.limiter = MovingWindowRateLimiter(storage)
        self.now = now
        self.events = events
        self.rules = {
            kind: {name: _parsed(getattr(r, name)) for name in ("address", "pair", "account")}
            for kind, r in (rules or RULES).items()
        }
        self.trust = parse_many(f"1/{TRUSTED_DAYS} days")[0]

    async def attempt(self, kind: str, account: str | None, address: str | None) -> None:
        """Reserve one attempt, or raise :class:`Throttled` (nothing is counted then)."""
        await self._reserve(await self._sets(kind, account, address))

    async def _reserve(self, sets: list[_Set]) -> None:
        await self._refuse_if_full(sets)
        try:
            for window in sets:
                for item in window.items:
                    if not await self.limiter.hit(item, window.key):
                        await self._refuse_if_full(sets)  # a parallel attempt took the slot
        except (StoreError, StorageError) as exc:
            raise _unavailable(exc) from exc

    async def count(self, kind: str, address: str | None) -> None:
        """Count one action of ``kind`` from ``address`` (a guest session started, a
        registration: every one counts, whatever its outcome), or raise :class:`Throttled`
        (nothing is counted then). The action that fills a window reports it."""
        sets = await self._sets(kind, None, address)
        await self._reserve(sets)
        await self._report_full(kind, sets, None)

    async def check(self, kind: str, account: str | None, address: str | None) -> None:
        """Raise :class:`Throttled` if an attempt now would be refused; count nothing."""
        await self._refuse_if_full(await self._sets(kind, account, address))

    async def failed(
        self, kind: str, account: str | None, address: str | None, *, reserved: bool = True
    ) -> None:
        """The attempt failed: count it (unless :meth:`attempt` already did) and report each
        window it filled."""
        sets = await self._sets(kind, account, address)
        try:
            for window in sets:
                for item in window.items:
                    if not reserved:
                        await self.limiter.hit(item, window.key)
        except (StoreError, StorageError) as exc:
            raise _unavailable(exc) from exc
        await self._report_full(kind, sets, account)

    async def _report_full(self, kind: str, sets: list[_Set], account: str | None) -> None:
        """Emit an event for each set with a window that is now full (its first only)."""
        try:
            for window in sets:
                for item in window.items:
                    if not await self.limiter.test(item, window.key):
                        stats = await self.limiter.get_window_stats(item, window.key)
                        wait = retry_seconds(stats.reset_time, self.now())
                        self._emit(kind, window.name, account, wait)
                        break
        except (StoreError, StorageError) as exc:
            raise _unavailable(exc) from exc

    async def succeeded(self, kind: str, account: str | None, address: str | None) -> None:
        """The attempt succeeded: forget this address's failures on the account, and trust the
        address for the account's own window."""
        if account is None:
            return
        pair = _digest(kind, "pair", account, network_of(address))
        try:
            for item in self.rules[kind]["pair"]:
                await self.limiter.clear(item, pair)
            await self.storage.incr(self._trust_key(kind, account, address), self._trust_seconds)
        except (StoreError, StorageError) as exc:
            raise _unavailable(exc) from exc

    @property
    def _trust_seconds(self) -> int:
        return int(self.trust.get_expiry())

    def _trust_key(self, kind: str, account: str, address: str | None) -> str:
        return "trusted/" + _digest(kind, "trusted", account, network_of(address))

    async def _sets(self, kind: str, account: str | None, address: str | None) -> list[_Set]:
        rules = self.rules[kind]
        net = network_of(address)
        sets = [_Set("address", rules["address"], _digest(kind, "address", net))]
        if account is None:
            return sets
        sets.append(_Set("pair", rules["pair"], _digest(kind, "pair", account, net)))
        try:
            trusted = await self.storage.get(self._trust_key(kind, account, address)) > 0
        except (StoreError, StorageError) as exc:
            raise _unavailable(exc) from exc
        if not trusted:
            sets.append(_Set("account", rules["account"], _digest(kind, "account", account)))
        return sets

    async def _refuse_if_full(self, sets: list[_Set]) -> None:
        wait = 0
        try:
            for window in sets:
                for item in window.items:
                    if not await self.limiter.test(item, window.key):
                        stats = await self.limiter.get_window_stats(item, window.key)
                        wait = max(wait, retry_seconds(stats.reset_time, self.now()))
        except (StoreError, StorageError) as exc:
            raise _unavailable(exc) from exc
        if wait:
            raise Throttled(wait)

    def _emit(self, kind: str, limited: str, account: str | None, wait: int) -> None:
        _log.warning("sessionward throttled %s attempts (%s) for %d s", kind, limited, wait)
        if self.events is not None:
            self.events.emit(
                GuessThrottled(
                    session_id=None,
                    user_id=account,
                    at=self.now(),
                    reason=f"{kind}-{limited}",
                    retry_after=wait,
                )
            )

    async def close(self) -> None:
        if self._close is not None:
            await self._close()


async def reserve(guard: Guard, kind: str, account: str | None, address: str | None) -> int:
    """Reserve a guess of a secret: 0 when it may go ahead (then report it to
    :meth:`Guard.succeeded` or :meth:`Guard.failed`), else the seconds to wait."""
    try:
        await guard.attempt(kind, account, address)
    except Throttled as exc:
        return exc.retry_after
    return 0


def open_guard(
    store: str, state: ServiceState, now: Callable[[], float], events: EventBus | None
) -> Guard:
    """The throttle for a service whose session store is ``store`` (a SQLite path or URL):
    its windows live beside the sessions."""
    if "://" not in store:
        return Guard(StateWindows(state, now), now=now, events=events)
    if store.split("://", 1)[0].lower() in ("postgres", "postgresql"):
        windows = PostgresWindows(store, now)
        return Guard(windows, now=now, events=events, close=windows.close)
    storage, close = redis_windows(store)
    return Guard(storage, now=time.time, events=events, close=close)  # limits' own clock


def _parsed(windows: str) -> list[RateLimitItem]:
    return parse_many(windows) if windows else []


def _unavailable(exc: Exception) -> StoreUnavailable:
    """A throttle that cannot count fails closed: the attempt is refused as a store outage."""
    _log.error("rate-limit store unavailable: %s", type(exc).__name__)
    return StoreUnavailable("the rate-limit store is unavailable")
