"""Two ``sessionward serve`` processes on one real Redis (a private server from
``tests/servers.py``), as behind a load balancer: each sees the other's sessions at once.

Each process has its own state file (API keys, accounts, secrets), as two hosts would: the
keys are created per process, and a key of one is unknown to the other. See docs/service.md,
"Several processes".
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from servers import RedisServer
from servers import redis_server as redis_server  # a fixture

from ._server import interrupt, wait_until_ok

CLI = [sys.executable, "-m", "sessionward"]
DB = 9  # a database of its own on the shared private server


@dataclass
class Node:
    base: str
    keys: dict[str, str]

    def call(self, path: str, scope: str, body: object) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.keys[scope]}"}
        return httpx.post(self.base + path, json=body, headers=headers, timeout=10)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}


def _key(state: Path, scope: str) -> str:
    done = subprocess.run(
        [*CLI, "api-keys", "create", "--scope", scope, "--state", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


@contextmanager
def _node(store: str, state: Path) -> Iterator[Node]:
    keys = {scope: _key(state, scope) for scope in ("validate", "issue")}
    argv = [*CLI, "serve", "--port", "0", "--store", store, "--state", str(state)]
    argv += ["--no-admin", "--no-demo", "--log-level", "warning"]
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
    )
    assert process.stdout is not None
    try:
        base = None
        deadline = time.monotonic() + 30
        while base is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            found = re.search(r"http://127\.0\.0\.1:\d+", line)
            base = found.group(0) if found else None
        assert base is not None, "sessionward serve did not print its address"
        wait_until_ok(base + "/readyz")
        yield Node(base, keys)
    finally:
        interrupt(process)


@pytest.fixture
def nodes(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    store = f"redis://127.0.0.1:{redis_server.port}/{DB}"
    with _node(store, tmp_path / "a.db") as a, _node(store, tmp_path / "b.db") as b:
        yield a, b


def test_sessions_issued_on_one_process_work_on_the_other(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    user = f"user-{uuid.uuid4().hex}"
    issued = a.call("/v1/sessions", "issue", {"user_id": user, "data": {"cart": ["tea"]}})
    assert issued.status_code == 201, issued.text
    token, session_id = issued.json()["token"], issued.json()["session"]["id"]

    seen = b.call("/v1/sessions/validate", "validate", {"token": token}).json()
    assert seen["decision"] == "allow"
    assert seen["session"]["id"] == session_id
    assert seen["session"]["data"] == {"cart": ["tea"]}

    # A change made through B is what A reads next.
    changed = b.call("/v1/sessions/data", "issue", {"token": token, "set": {"cart": ["tea", 2]}})
    assert changed.status_code == 200, changed.text
    assert a.call("/v1/sessions/validate", "validate", {"token": token}).json()["session"][
        "data"
    ] == {"cart": ["tea", 2]}

    # B lists the sessions A issued; a revoke on B is seen by A at once.
    second = a.call("/v1/sessions", "issue", {"user_id": user}).json()["token"]
    listed = httpx.get(
        f"{b.base}/v1/users/{user}/sessions",
        headers={"authorization": f"Bearer {b.keys['issue']}"},
        timeout=10,
    ).json()["sessions"]
    assert len(listed) == 2
    assert b.call("/v1/sessions/revoke", "issue", {"token": token}).json() == {"revoked": True}
    assert a.call("/v1/sessions/validate", "validate", {"token": token}).json() == {
        "decision": "deny",
        "reason": "invalid",
    }
    assert a.call("/v1/sessions/validate", "validate", {"token": second}).json()["decision"] == (
        "allow"
    )

    # Revoking every session of the user on A ends the one B would validate next.
    assert a.call(f"/v1/users/{user}/revoke", "issue", {}).json() == {"revoked": 1}
    assert b.call("/v1/sessions/validate", "validate", {"token": second}).json() == {
        "decision": "deny",
        "reason": "invalid",
    }


def test_api_keys_are_per_process_state(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    # Each process knows only the keys of its own state file.
    foreign = httpx.post(
        b.base + "/v1/sessions/validate",
        json={"token": "x"},
        headers={"authorization": f"Bearer {a.keys['validate']}"},
        timeout=10,
    )
    assert foreign.status_code == 401
    assert foreign.json()["error"]["code"] == "unauthenticated"
