"""Two ``sessionward serve`` processes on one PostgreSQL (a private server), both running
their deliverers: an endpoint added from the command line receives every event issued on
either process exactly once, signed (checked by ``standardwebhooks``)."""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import PostgresServer
from servers import postgres_server as postgres_server  # a fixture
from signals._receiver import Receiver

from .test_shared_store import CLI, Node, _env, _node


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    rx.start()
    try:
        yield rx
    finally:
        rx.close()


def _add(store: str, url: str) -> str:
    done = subprocess.run(
        [*CLI, "webhooks", "add", url, "--event", "created", "--db", store],
        capture_output=True, text=True, timeout=60, env=_env(), check=True,
    )  # fmt: skip
    found = re.search(r"(whsec_\S+)", done.stdout)
    assert found is not None, done.stdout
    return found.group(1)


def test_two_processes_deliver_each_event_once(
    postgres_server: PostgresServer, receiver: Receiver, tmp_path: Path
) -> None:
    store = postgres_server.url
    with _node(store, tmp_path / "a.db") as a, _node(store, tmp_path / "b.db") as b:
        receiver.secret = _add(store, receiver.url)
        nodes: list[Node] = [a, b]
        users = [f"w{n}-{time.monotonic_ns()}" for n in range(20)]
        for n, user in enumerate(users):
            issued = nodes[n % 2].call("/v1/sessions", "issue", {"user_id": user})
            assert issued.status_code == 201, issued.text
        deadline = time.monotonic() + 30
        while len(receiver.ids()) < len(users) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)  # a duplicate would arrive within a round or two
    got = [p["data"]["user_id"] for p in receiver.payloads()]
    assert sorted(got) == sorted(users)  # every one, none twice
    assert max(Counter(receiver.ids()).values()) == 1
    assert receiver.refused == 0
