"""Fixtures for the service tests: the service on a real uvicorn (loopback), a real SQLite
file and a fake clock, and API keys of each scope."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from sessionward import Policy
from sessionward.service import ServiceConfig, create_app
from sessionward.service.keys import create_key
from sessionward.service.runtime import Runtime
from sessionward.testing import FakeClock

from ._server import serve

POLICY = Policy(idle_timeout=600, absolute_timeout=3600)


@dataclass
class Service:
    app: Starlette
    runtime: Runtime
    clock: FakeClock
    client: httpx.Client
    keys: dict[str, str]
    path: Path

    def auth(self, scope: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[scope]}"}


def make_keys(runtime: Runtime) -> dict[str, str]:
    return {
        scope: create_key(runtime.state, scope, f"test {scope}", time.time())[0]
        for scope in ("validate", "issue", "admin")
    }


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    clock = FakeClock()
    path = tmp_path / "service.db"
    config = ServiceConfig(
        store=str(path), admin=False, demo=False, policy=POLICY, key_cache_seconds=0
    )
    app = create_app(config, clock=clock)
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base, httpx.Client(base_url=base, timeout=10) as client:
            yield Service(app, runtime, clock, client, make_keys(runtime), path)
    finally:
        asyncio.run(runtime.close())


@pytest.fixture
def unscored(tmp_path: Path) -> Iterator[Service]:
    """The service with hijack scoring turned off (``risk = false``): sessions then keep
    their raw context history instead of the risk engine's summary."""
    clock = FakeClock()
    path = tmp_path / "unscored.db"
    config = ServiceConfig(
        store=str(path), admin=False, demo=False, policy=POLICY, key_cache_seconds=0, risk=False
    )
    app = create_app(config, clock=clock)
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base, httpx.Client(base_url=base, timeout=10) as client:
            yield Service(app, runtime, clock, client, make_keys(runtime), path)
    finally:
        asyncio.run(runtime.close())
