"""The parts every page and endpoint of the service shares, and how they are opened.

``open_store`` turns ``--store`` into a session store: a SQLite path, or a Redis/PostgreSQL URL
handled by ``sessionward.stores.redis`` / ``sessionward.stores.postgres`` when those modules are
installed (a clear :class:`ConfigError` otherwise).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, cast

from sessionward._async.base import AsyncStore
from sessionward._async.manager import AsyncSessionManager
from sessionward._async.sqlite import AsyncSQLiteStore
from sessionward.clock import Clock, SystemClock
from sessionward.core.events import EventBus, log_event
from sessionward.errors import ConfigError, StoreError
from sessionward.service.activity import Activity
from sessionward.service.config import ServiceConfig
from sessionward.service.keys import KeyRing
from sessionward.service.metrics import Metrics
from sessionward.service.state import ServiceState

__all__ = ["RESERVED_PREFIX", "Runtime", "open_runtime", "open_store"]

#: User ids in this namespace belong to the service itself (admin accounts); the API refuses
#: to issue sessions for them, so an ``issue`` key cannot mint an admin session.
RESERVED_PREFIX = "sessionward:"
ADMIN_USER_PREFIX = RESERVED_PREFIX + "admin:"
ADMIN_SCOPE = "sessionward:admin"

_URL_STORES = {
    "redis": ("sessionward.stores.redis", "AsyncRedisStore", "redis"),
    "rediss": ("sessionward.stores.redis", "AsyncRedisStore", "redis"),
    "redis+cluster": ("sessionward.stores.redis", "AsyncRedisStore", "redis"),
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

    async def close(self) -> None:
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
) -> Runtime:
    """Open the session store (first: see ``ServiceState``) and the service state."""
    clock = clock or SystemClock()
    activity = Activity(clock.now)
    events = EventBus([log_event, activity])
    store = store if store is not None else open_store(config.store)
    manager = AsyncSessionManager(store, policy=config.policy, clock=clock, events=events)
    state = ServiceState(config.state_path)
    keys = KeyRing(state, cache_seconds=config.key_cache_seconds)
    return Runtime(config, manager, state, keys, activity, Metrics())
