"""The fuzzer of ``scripts/fuzz_service.py`` over every route, a few hundred requests against
a real uvicorn (the long run is by hand: docs/fuzzing.md). Stateful: tokens, ids, cookies and
CSRF tokens handed out are reused. No request may get a server error."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from sessionward.service import ServiceConfig, create_app
from sessionward.service.keys import create_key
from sessionward.service.runtime import Runtime

from ._server import serve

_SCRIPT = Path(__file__).parents[2] / "scripts" / "fuzz_service.py"


def _fuzzer() -> Any:
    spec = importlib.util.spec_from_file_location("fuzz_service", _SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_no_route_answers_a_server_error(tmp_path: Path) -> None:
    fuzz = _fuzzer()
    config = ServiceConfig(store=str(tmp_path / "fuzz.db"), trusted_proxies=("127.0.0.1",))
    app = create_app(config)
    runtime: Runtime = app.state.runtime
    keys = {s: create_key(runtime.state, s, s, time.time())[0] for s in ("validate", "issue")}
    keys["admin"] = create_key(runtime.state, "admin", "admin", time.time())[0]
    count = int(os.environ.get("SESSIONWARD_FUZZ_REQUESTS", "400"))
    seed = 1 if os.environ.get("CI") == "true" else random.randrange(1 << 30)
    tally = fuzz.Tally()
    try:
        with serve(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            fuzz.run(client, fuzz.Context(keys), random.Random(seed), count, tally)
    finally:
        asyncio.run(runtime.close())
    assert tally.total == count
    assert tally.statuses[200] > 0  # it reached the API and the pages
    assert tally.statuses[303] > 0
    assert tally.errors == [], f"seed {seed}: {tally.errors[:5]}"
