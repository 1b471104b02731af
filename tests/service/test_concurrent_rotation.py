"""Many API calls carrying one token at once, through the real service (uvicorn, SQLite file,
fake clock standing still): validate with the renewal due, and explicit ``/rotate`` calls.
Every caller gets the one new token, nobody is denied, no theft is reported, and the old
token replayed after the grace window is still caught."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from sessionward import Policy
from sessionward.core.events import SessionRevoked, TheftSuspected
from sessionward.service import ServiceConfig, create_app
from sessionward.service.keys import create_key
from sessionward.service.runtime import Runtime
from sessionward.testing import EventRecorder, FakeClock

from ._server import serve

GRACE = 30.0
CALLS = 40
POLICY = Policy(idle_timeout=3600, absolute_timeout=7200, rotate_after=60, rotation_grace=GRACE)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], FakeClock, EventRecorder]]:
    clock, recorder = FakeClock(), EventRecorder()
    config = ServiceConfig(
        store=str(tmp_path / "service.db"),
        admin=False,
        demo=False,
        policy=POLICY,
        key_cache_seconds=0,
    )
    app = create_app(config, clock=clock)
    runtime: Runtime = app.state.runtime
    runtime.manager.events.subscribe(recorder)
    key = create_key(runtime.state, "issue", "test", time.time())[0]
    try:
        with serve(app) as base:
            yield base, {"authorization": f"Bearer {key}"}, clock, recorder
    finally:
        asyncio.run(runtime.close())


def _post(base: str, auth: dict[str, str], path: str, token: str) -> dict[str, object]:
    with httpx.Client(base_url=base, timeout=30) as client:
        response = client.post(path, json={"token": token}, headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize("path", ["/v1/sessions/validate", "/v1/sessions/rotate"])
def test_many_calls_with_one_token_deny_nobody(
    api: tuple[str, dict[str, str], FakeClock, EventRecorder], path: str
) -> None:
    base, auth, clock, recorder = api
    with httpx.Client(base_url=base, timeout=30) as client:
        issued = client.post("/v1/sessions", json={"user_id": "alice"}, headers=auth)
    old = issued.json()["token"]
    if path.endswith("validate"):
        clock.advance(60)  # the renewal is due for every one of the calls

    def call(_: int) -> object:
        return _post(base, auth, path, old).get("token", old)

    with ThreadPoolExecutor(16) as pool:
        held = list(pool.map(call, range(CALLS)))
    new = held[0]
    assert isinstance(new, str)
    assert new != old
    assert held == [new] * CALLS
    assert _post(base, auth, "/v1/sessions/validate", new)["decision"] == "allow"
    assert _post(base, auth, "/v1/sessions/validate", old)["token"] == new
    assert not [e for e in recorder.events if isinstance(e, TheftSuspected | SessionRevoked)]
    clock.advance(GRACE)
    assert _post(base, auth, "/v1/sessions/validate", old)["decision"] == "deny"
    assert len([e for e in recorder.events if isinstance(e, TheftSuspected)]) == 1
    assert _post(base, auth, "/v1/sessions/validate", new)["decision"] == "deny"
