"""Every command the ``sessionward serve`` banner prints works as printed against the running
service: with the default store (no options at all) and with a PostgreSQL store, whose keys
live in a state file of their own that the printed command must name."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from servers import PostgresServer
from servers import postgres_server as postgres_server  # a fixture

from ._server import interrupt, wait_until_ok

CLI = [sys.executable, "-m", "sessionward"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}


@contextmanager
def _serve(cwd: Path, *options: str) -> Iterator[tuple[str, list[str]]]:
    process = subprocess.Popen(
        [*CLI, "serve", "--port", "0", "--log-level", "warning", *options],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if "No API keys yet" in line:
            break
    try:
        match = re.search(r"http://127\.0\.0\.1:\d+", "\n".join(lines))
        assert match, lines
        wait_until_ok(match.group(0) + "/healthz")
        yield match.group(0), lines
    finally:
        interrupt(process)


def _run_as_printed(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    words = shlex.split(command)
    assert words[0] == "sessionward", command
    return subprocess.run(
        [*CLI, *words[1:]], cwd=cwd, capture_output=True, text=True, timeout=60, env=_env()
    )


def _check_hints(base: str, lines: list[str], cwd: Path) -> None:
    text = "\n".join(lines)
    hint = re.search(r"No API keys yet: (sessionward .*)$", text, re.MULTILINE)
    assert hint, text
    created = _run_as_printed(hint.group(1), cwd)
    assert created.returncode == 0, created.stderr
    assert "no 'sessionward serve' has used" not in created.stderr  # the service's own file
    key = created.stdout.strip().splitlines()[-1]
    issued = httpx.post(
        base + "/v1/sessions", json={"user_id": "alice"}, headers={"authorization": f"Bearer {key}"}
    )
    assert issued.status_code == 201, issued.text
    # The banner's links answer too.
    for path in re.findall(re.escape(base) + r"(/[^\s)#]*)", text):
        assert httpx.get(base + path, follow_redirects=True).status_code == 200, path


def test_the_banner_hints_work_with_the_default_store(tmp_path: Path) -> None:
    with _serve(tmp_path) as (base, lines):
        assert "No API keys yet: sessionward api-keys create --scope issue" in lines[-1]
        _check_hints(base, lines, tmp_path)


def test_the_banner_hints_work_with_a_postgresql_store(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    with _serve(tmp_path, "--store", postgres_server.url) as (base, lines):
        assert postgres_server.url not in lines[-1]  # a URL may hold a password: never echoed
        assert "--state sessionward-service.db" in lines[-1]
        _check_hints(base, lines, tmp_path)


def test_a_key_command_on_a_state_file_no_service_uses_says_so(tmp_path: Path) -> None:
    # As after `serve --store postgresql://...` and a `api-keys create` without its --state.
    result = _run_as_printed("sessionward api-keys create --scope issue", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "created sessionward.db, which no 'sessionward serve' has used yet" in result.stderr
    assert result.stdout.strip().splitlines()[-1] not in result.stderr  # the key: stdout only


def test_the_curl_walkthrough_of_the_docs_runs_as_written(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "docs/service.md").read_text(encoding="utf-8")
    section = text.split("### The whole lifecycle with curl", 1)[1]
    script = section.split("```bash\n", 1)[1].split("```", 1)[0]
    if shutil.which("jq") is None or shutil.which("curl") is None:
        pytest.skip("the walkthrough needs curl and jq")
    with _serve(tmp_path) as (base, lines):
        hint = re.search(r"No API keys yet: (sessionward .*)$", "\n".join(lines), re.MULTILINE)
        assert hint
        created = _run_as_printed(hint.group(1).replace("issue", "admin"), tmp_path)
        key = created.stdout.strip().splitlines()[-1]
        done = subprocess.run(
            ["bash", "-c", script],
            env={**_env(), "BASE": base, "KEY": key},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    out = done.stdout.split()
    assert out[:3] == ["allow", '{"cart":["tea"]}', "2"], done.stdout
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", out[3]), done.stdout
    assert out[4:] == ["deny", "0"], done.stdout


def test_validate_refuses_a_token_over_256_characters_as_documented(tmp_path: Path) -> None:
    with _serve(tmp_path) as (base, lines):
        hint = re.search(r"No API keys yet: (sessionward .*)$", "\n".join(lines), re.MULTILINE)
        assert hint
        key = _run_as_printed(hint.group(1), tmp_path).stdout.strip().splitlines()[-1]
        auth = {"authorization": f"Bearer {key}"}
        url = base + "/v1/sessions/validate"
        assert httpx.post(url, json={"token": "x" * 256}, headers=auth).json()["decision"] == "deny"
        refused = httpx.post(url, json={"token": "x" * 257}, headers=auth)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "invalid_request"
