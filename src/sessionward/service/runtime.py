"""The parts every page and endpoint of the service shares, and how they are opened.

``open_store`` turns ``--store`` into a session store: a SQLite path, or a Redis/PostgreSQL URL
handled by ``sessionward.stores.redis`` / ``sessionward.stores.postgres`` when those modules are
installed (a clear :class:`ConfigError` otherwise). ``open_token_service`` turns ``jwt_keys``
on: refresh families live in the same store, under a manager of their own (no ``rotate_after``:
a refresh token rotates on every use).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from sessionward.clock import Clock, SystemClock
from sessionward.core.dpop import DpopPolicy
from sessionward.core.events import EventBus, log_event
from sessionward.core.record import SessionRecord
from sessionward.errors import ConfigError, StoreError
from sessionward.manager._async.manager import AsyncSessionManager
from sessionward.manager.risk import RiskAssessor
from sessionward.service.activity import Activity, application_of, tagged
from sessionward.service.config import ServiceConfig
from sessionward.service.keys import KeyRing
from sessionward.service.metrics import Metrics
from sessionward.service.receivers import Receivers, open_receivers
from sessionward.service.state import ServiceState
from sessionward.service.tenancy import admits
from sessionward.service.throttle import Guard, open_guard
from sessionward.service.webhooks import Webhooks, open_webhooks
from sessionward.signals.recorder import Recorder
from sessionward.stores._async.base import AsyncStore
from sessionward.stores._async.sqlite import AsyncSQLiteStore
from sessionward.stores.consumers import ConsumerStore
from sessionward.stores.eventlog import EventLog, MemoryEventLog, open_event_log

if TYPE_CHECKING:
    from sessionward.jwt import AsyncTokenService
    from sessionward.signals.transmitter import Transmitter

__all__ = [
    "RESERVED_PREFIX",
    "Runtime",
    "dpop_policy",
    "open_risk",
    "open_runtime",
    "open_store",
]

#: User ids in this namespace belong to the service itself (admin accounts); the API refuses
#: to issue sessions for them, so an ``issue`` key cannot mint an admin session.
RESERVED_PREFIX = "sessionward:"
ADMIN_USER_PREFIX = RESERVED_PREFIX + "admin:"
ADMIN_SCOPE = "sessionward:admin"

_URL_STORES = {
    "redis": ("sessionward.stores.redis", "AsyncRedisStore", "redis"),
    "rediss": ("sessionward.stores.redis", "AsyncRedisStore", "redis"),
    "redis+cluster": ("sessionward.stores.redis", "AsyncRedisStore", "redis"),
    "rediss+cluster": ("sessionward.stores.redis", "AsyncRedisStore", "redis"),
    "redis+sentinel": ("sessionward.stores.redis", "AsyncRedisStore", "redis"),
    "rediss+sentinel": ("sessionward.stores.redis", "AsyncRedisStore", "redis"),
    "unix": ("sessionward.stores.redis", "AsyncRedisStore", "redis"),
    "postgres": ("sessionward.stores.postgres", "AsyncPostgresStore", "postgres"),
    "postgresql": ("sessionward.stores.postgres", "AsyncPostgresStore", "postgres"),
}


def open_store(spec: str) -> AsyncStore:
    """A session store for ``spec`` (SQLite path or URL)."""
    if "://" not in spec:
        return AsyncSQLiteStore(spec)
    scheme = spec.split("://", 1)[0].lower()
    if scheme not in _URL_STORES:
        raise ConfigError(
            f"unknown store URL scheme {scheme!r}: use a SQLite path, redis:// or postgresql://"
        )
    module_name, class_name, extra = _URL_STORES[scheme]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"the {extra} store is not available ({exc.name} is missing):"
            f" pip install 'sessionward[{extra}]'"
        ) from None
    store_class: Any = getattr(module, class_name, None)
    if store_class is None:
        raise ConfigError(f"{module_name} has no {class_name}")
    factory = getattr(store_class, "from_url", None)
    return cast(AsyncStore, factory(spec) if factory is not None else store_class(spec))


@dataclass(slots=True)
class Runtime:
    config: ServiceConfig
    manager: AsyncSessionManager
    state: ServiceState
    keys: KeyRing
    activity: Activity
    metrics: Metrics
    guard: Guard  # throttles every guess of a secret (sessionward.service.throttle)
    tokens: AsyncTokenService | None = None  # the JWT mode, when ``jwt_keys`` is configured
    event_log: EventLog | None = None  # the durable audit log (``config.event_log``)
    recorder: Recorder | None = None  # writes every event to ``event_log`` in the background
    receivers: Receivers | None = None  # identity-provider links, back-channel logout, SSF
    webhooks: Webhooks | None = None  # endpoints and their deliverer (needs ``event_log``)
    risk: RiskAssessor | None = None  # hijack scoring, when ``risk`` is configured
    transmitter: Transmitter | None = None  # Shared Signals (sessionward.service.ssf)
    ssf_off: str | None = None  # why there is no transmitter
    dpop: DpopPolicy = field(default_factory=DpopPolicy)  # proofs passed on in ``dpop`` fields
    _managers: dict[str, AsyncSessionManager] = field(default_factory=dict)

    def manager_for(self, application: str) -> AsyncSessionManager:
        """The manager that authenticates ``application``'s sessions only (see
        ``sessionward.service.tenancy``); it shares the store, policy, clock and events of
        ``manager``, which serves the reads and revocations no token is presented for."""
        manager = self._managers.get(application)
        if manager is None:
            base = self.manager
            events = tagged(base.events, application)
            manager = AsyncSessionManager(
                base.store,
                policy=base.policy,
                clock=base.clock,
                events=events,
                admit=admits(application),
                risk=self.risk,
            )
            self._managers[application] = manager
        return manager

    def start_background(self) -> None:
        """Start the work that runs beside the requests: webhook delivery."""
        if self.webhooks is not None:
            self.webhooks.start()

    async def close(self) -> None:
        if self.webhooks is not None:
            self.webhooks.close()  # stops reading the log before it closes
        if self.transmitter is not None:
            self.transmitter.close()
        if self.receivers is not None:
            await self.receivers.close()
        if self.recorder is not None:
            self.recorder.close()  # appends what is queued before the log closes
        if self.event_log is not None:
            self.event_log.close()
        if self.tokens is not None:
            self.tokens.close()  # its manager shares the store closed just below
        await self.guard.close()
        await self.manager.close()
        self.state.close()

    async def store_ready(self) -> bool:
        """One store round trip (a lookup of an id that cannot exist) and a state query."""
        try:
            await self.manager.store.get("AAAAAAAAAAAAAAAA")
            self.state.ping()
        except StoreError:
            return False
        return True

    async def session_count(self) -> int | None:
        count = getattr(self.manager.store, "count", None)
        if count is None:
            return None
        try:
            return int(await count())
        except StoreError:
            return None


def open_runtime(
    config: ServiceConfig,
    *,
    clock: Clock | None = None,
    store: AsyncStore | None = None,
    event_log: EventLog | None = None,
    consumers: ConsumerStore | None = None,
) -> Runtime:
    """Open the session store (first: see ``ServiceState``), the event log beside it and the
    service state. A given ``store`` without a given ``event_log`` gets an in-memory log."""
    clock = clock or SystemClock()
    shared = store is None
    activity = Activity(clock.now)
    events = EventBus([log_event, activity])
    risk = open_risk() if config.risk else None
    if store is None:
        store = open_store(config.store)
        if config.event_log and event_log is None:
            event_log = open_event_log(config.store)
    elif config.event_log and event_log is None:
        event_log = MemoryEventLog()
    recorder = None
    if event_log is not None:
        recorder = Recorder(
            event_log,
            application=application_of,
            clock=clock.now,
            retention=config.event_retention,
        )
        events.subscribe(recorder)
    manager = AsyncSessionManager(
        store,
        policy=config.policy,
        clock=clock,
        events=events,
        admit=_not_a_refresh_family if config.jwt_keys else None,
        risk=risk,
    )
    state = ServiceState(config.state_path)
    state.mark_served(clock.now())
    keys = KeyRing(state, cache_seconds=config.key_cache_seconds, clock=clock)
    try:
        dpop = dpop_policy(config, state)
        tokens = open_token_service(config, manager, dpop) if config.jwt_keys else None
    except BaseException:
        state.close()
        if event_log is not None:
            event_log.close()
        raise
    guard = open_guard(config.store, state, clock.now, events)
    receivers = open_receivers(config, manager)
    try:
        webhooks = open_webhooks(config, event_log, clock, store=consumers, shared=shared)
    except BaseException:
        state.close()
        raise
    if recorder is not None and webhooks is not None:
        # This process's events reach its deliverer as soon as they are written; other
        # nodes' events at its next poll.
        recorder.on_append(webhooks.deliverer.wake)
    return Runtime(
        config,
        manager,
        state,
        keys,
        activity,
        Metrics(),
        guard,
        tokens,
        event_log=event_log,
        recorder=recorder,
        receivers=receivers,
        webhooks=webhooks,
        risk=risk,
        dpop=dpop,
    )


def dpop_policy(config: ServiceConfig, state: ServiceState) -> DpopPolicy:
    """How the API checks DPoP proofs: with ``dpop_nonces``, each must carry a current nonce,
    an HMAC of a time window under ``dpop_nonce_key`` (or the state file's secret), so every
    process holding the key issues and accepts the same nonces without a store round trip."""
    if not config.dpop_nonces:
        return DpopPolicy()
    return DpopPolicy(nonce_key=config.nonce_key_bytes() or state.secret("dpop-nonce"))


def open_risk() -> RiskAssessor:
    """The risk assessor of ``risk = true`` (the default); a ``ConfigError`` that says what
    to install, or how to turn scoring off, when its packages are missing."""
    try:
        import geoip2fast  # noqa: F401 - only checked for presence here
        import ua_parser  # noqa: F401
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"hijack scoring (on by default) needs {exc.name}: pip install "
            "'sessionward[service]', or turn it off with --no-risk (risk = false)"
        ) from None
    return RiskAssessor()


_FAMILY_MARK = '"_sessionward_refresh":'  # sessionward.jwt.refresh.FAMILY_KEY, as stored


def _not_a_refresh_family(record: SessionRecord) -> bool:
    """The session endpoints must not authenticate (or renew, outside the family's
    bookkeeping) a JWT refresh token: both kinds share the store."""
    return _FAMILY_MARK not in record.data


def open_token_service(
    config: ServiceConfig, manager: AsyncSessionManager, dpop: DpopPolicy | None = None
) -> AsyncTokenService:
    """The JWT mode: ``config.jwt_keys`` is a key file's path or the key text itself."""
    try:
        from sessionward.jwt import AsyncTokenService
        from sessionward.jwt.loading import keyset_from_text, load_keyset_file
    except ModuleNotFoundError as exc:
        raise ConfigError(f"jwt_keys needs {exc.name}: pip install 'sessionward[jwt]'") from None
    spec = str(config.jwt_keys).strip()
    now = manager.clock.now()
    if spec.startswith(("{", "-----BEGIN")):
        keyset = keyset_from_text(spec, now=now)
    else:
        keyset = load_keyset_file(spec, now=now)
    refresh_manager = AsyncSessionManager(
        manager.store,
        policy=replace(manager.policy, rotate_after=None),
        clock=manager.clock,
        events=manager.events,
    )
    return AsyncTokenService(
        refresh_manager,
        keyset,
        issuer=config.origin,
        audience=config.jwt_audience or config.origin,
        dpop=dpop or DpopPolicy(),  # used only for clients that send a proof (docs/binding.md)
    )
