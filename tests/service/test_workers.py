"""``sessionward serve --workers 2`` as a user runs it: both processes answer on the one port
and share the store, a killed worker is replaced, Ctrl-C stops every process, and a worker
that cannot start stops the service.

Which worker answers a new connection is the kernel's choice. To address one, the other is
paused (SIGSTOP): a paused process takes no connection from the shared socket, so the one
that answers is known.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from sessionward.service import ServiceConfig
from sessionward.service.workers import run_workers

from ._server import wait_until_ok

CLI = [sys.executable, "-m", "sessionward"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}


@dataclass
class Served:
    process: subprocess.Popen[str]
    base: str
    keys: dict[str, str]
    output: list[str] = field(default_factory=list)

    def workers(self) -> list[int]:
        found = next(line for line in self.output if line.startswith("  Workers"))
        return [int(pid) for pid in found.split(":", 1)[1].split(",")]

    def post(self, path: str, scope: str, body: object) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.keys[scope]}"}
        return httpx.post(self.base + path, json=body, headers=headers, timeout=10)

    def wait_for_line(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.output):
                found = re.search(pattern, line)
                if found:
                    return found
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in {self.output}")


def _state(pid: int) -> str:
    """The scheduler state letter of a process (``T`` when stopped), or ``""`` when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


@contextmanager
def paused(pid: int) -> Iterator[None]:
    """The worker ``pid`` stopped: every new connection goes to the others meanwhile.

    A worker's last answer may still be followed by a write of its own (the audit log's
    batch, within about 20 ms). Frozen inside that write it would hold the SQLite write
    lock, and the other worker would rightly answer 503 once its busy timeout ran out: so
    the worker is given time to finish before it is stopped."""
    time.sleep(0.25)
    os.kill(pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 10
        while _state(pid) != "T":
            assert time.monotonic() < deadline, f"worker {pid} did not stop"
            time.sleep(0.01)
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _key(tmp_path: Path, scope: str) -> str:
    done = subprocess.run(
        [*CLI, "api-keys", "create", "--scope", scope, "--store", "s.db"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    keys = {scope: _key(tmp_path, scope) for scope in ("validate", "issue")}
    argv = [*CLI, "serve", "--port", "0", "--store", "s.db", "--workers", "2"]
    process = subprocess.Popen(
        [*argv, "--no-admin", "--no-demo", "--log-level", "warning"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
    )
    assert process.stdout is not None
    output: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    served = Served(process, "", keys, output)
    try:
        served.base = served.wait_for_line(r"http://127\.0\.0\.1:\d+").group(0)
        served.wait_for_line(r"^  Workers  2 processes: \d+, \d+$")
        wait_until_ok(served.base + "/readyz")
        first, second = served.workers()
        for other in (second, first):  # each worker in turn answers once it has started
            with paused(other):
                assert httpx.get(served.base + "/readyz", timeout=30).status_code == 200
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hang is a failure
                process.kill()
                process.wait(5)
                raise
        reader.join(10)
        process.stdout.close()


def test_both_workers_answer_and_share_the_sessions(served: Served) -> None:
    first, second = served.workers()
    with paused(second):  # only the first worker can answer
        issued = served.post("/v1/sessions", "issue", {"user_id": "ada", "data": {"n": 1}})
        assert issued.status_code == 201, issued.text
    token, session_id = issued.json()["token"], issued.json()["session"]["id"]
    with paused(first):  # only the second
        seen = served.post("/v1/sessions/validate", "validate", {"token": token})
        assert seen.json()["decision"] == "allow"
        assert seen.json()["session"]["id"] == session_id
        assert served.post("/v1/sessions/revoke", "issue", {"token": token}).json() == {
            "revoked": True
        }
    with paused(second):  # the revocation made through the second is seen by the first
        again = served.post("/v1/sessions/validate", "validate", {"token": token})
        assert again.json() == {"decision": "deny", "reason": "invalid"}


def test_a_killed_worker_is_replaced(served: Served) -> None:
    first, second = served.workers()
    os.kill(first, signal.SIGKILL)
    line = served.wait_for_line(rf"worker {first} ended \(killed by SIGKILL\); started (\d+)")
    replacement = int(line.group(1))
    assert replacement not in (first, second)
    with paused(second):  # the connection waits in the socket's queue for the replacement
        answer = httpx.get(served.base + "/readyz", timeout=30)
    assert answer.json() == {"status": "ready"}
    assert served.process.poll() is None


def test_ctrl_c_stops_every_process(served: Served) -> None:
    workers = served.workers()
    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(20) == 0
    for pid in workers:
        assert _state(pid) in ("", "Z"), f"worker {pid} still runs"
    with pytest.raises(httpx.TransportError):
        httpx.get(served.base + "/healthz", timeout=2)
    assert not any("Traceback" in line for line in served.output)


def test_a_worker_that_cannot_start_stops_the_service(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    try:
        broken = ServiceConfig(store=str(tmp_path / "missing-dir" / "s.db"), demo=False)
        started: list[list[int]] = []
        status = run_workers(2, sock, (broken, {}), on_started=started.append)
    finally:
        sock.close()
    assert status == 1
    assert [len(pids) for pids in started] == [2]
    err = capfd.readouterr().err
    assert re.search(r"worker \d+ ended before it served \(exit status 1\); stopping", err)


def test_workers_must_be_a_positive_count(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "serve", "--workers", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        check=False,
    )
    assert done.returncode == 2
    assert "--workers: must be a whole number from 1 to 256" in done.stderr
