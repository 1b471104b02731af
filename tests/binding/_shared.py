"""Setup the binding tests share: a scored manager and a DPoP-bound session on it, and the
service on a real uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from proofs import Device
from service._server import serve
from service.conftest import Service, make_keys

from sessionward import Policy, SessionManager, SQLiteStore
from sessionward.core import binding as states
from sessionward.core.context import RequestContext
from sessionward.core.dpop import DpopPolicy
from sessionward.core.record import Session
from sessionward.manager._sync.binding import Binder, DpopCheck
from sessionward.manager.risk import RiskAssessor
from sessionward.service import ServiceConfig, create_app
from sessionward.service.runtime import Runtime
from sessionward.testing import FakeClock

SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.4 Safari/605.1.15"
)


# -- the manager, in process ------------------------------------------------------------------


@contextmanager
def scored_manager(tmp_path: Path) -> Iterator[SessionManager]:
    """A manager on a real SQLite file with hijack scoring on and a fake clock (renewal due
    after 600 s)."""
    policy = Policy(idle_timeout=3600, absolute_timeout=86400, rotate_after=600)
    store = SQLiteStore(str(tmp_path / "s.db"))
    with SessionManager(store, policy=policy, clock=FakeClock(), risk=RiskAssessor()) as m:
        yield m


def dpop_session(manager: SessionManager, device: Device, context: RequestContext) -> Session:
    """Alice's session, bound to ``device``'s key from the start."""
    state = states.dpop_state(device.thumbprint, manager.clock.now())
    data = {states.BINDING_KEY: states.encode(state)}
    return manager.issue("alice", data=data, context=context)


def dpop_check(
    manager: SessionManager, token: str, proof: str | None, *, method: str, url: str
) -> DpopCheck:
    return DpopCheck(
        Binder(manager), DpopPolicy(), proof, method=method, url=url, access_token=token
    )


# -- the service ------------------------------------------------------------------------------


def service_config(tmp_path: Path, *, state: str = "state.db", **extra: Any) -> ServiceConfig:
    """The service on ``tmp_path/service.db``: no admin, no demo, keys never cached."""
    return ServiceConfig(
        store=str(tmp_path / "service.db"),
        state=str(tmp_path / state),
        admin=False,
        demo=False,
        policy=Policy(idle_timeout=3600, absolute_timeout=86400, rotate_after=None),
        key_cache_seconds=0,
        **extra,
    )


@contextmanager
def running_service(config: ServiceConfig, clock: FakeClock) -> Iterator[Service]:
    """The service on a real uvicorn (loopback), with an API key of each scope."""
    app = create_app(config, clock=clock)
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base, httpx.Client(base_url=base, timeout=10) as client:
            yield Service(app, runtime, clock, client, make_keys(runtime), Path(config.store))
    finally:
        asyncio.run(runtime.close())
