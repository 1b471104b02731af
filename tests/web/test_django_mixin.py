"""Django's own session-backend suite (``SessionTestsMixin``) against ``sessionward.django``.

Django's test code is not part of its wheel and is not vendored here: the sdist of the
installed Django version is fetched from PyPI with ``pip download`` at test time, and only
``tests/sessions_tests`` is extracted into a temporary directory. Without network access the
test is skipped with the reason, unless ``SESSIONWARD_REQUIRE_SERVICES=1`` (as in CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import django
import pytest
from servers import redis_server  # noqa: F401 - fixture

RUNNER = Path(__file__).with_name("django_mixin_runner.py")
MIXIN_TESTS = 65  # sync + async tests in SessionTestsMixin of Django 5.2


def _unavailable(reason: str) -> None:
    if os.environ.get("SESSIONWARD_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def sessions_tests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("django-sdist")
    version = django.get_version()
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--quiet",
                "-d",
                str(where),
                f"django=={version}",
            ],
            check=True,
            capture_output=True,
            timeout=240,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        _unavailable(f"could not download Django {version}'s sdist from PyPI: {exc}")
    [archive] = where.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        wanted = [m for m in tar.getmembers() if "/tests/sessions_tests/" in m.name and m.isfile()]
        tar.extractall(where, members=wanted, filter="data")
    [package] = where.glob("*/tests/sessions_tests")
    return package.parent


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_django_session_tests_mixin_passes(
    sessions_tests: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    extra = []
    if backend == "redis":  # the sessions live in a private Redis server
        server = request.getfixturevalue("redis_server")
        server.call("FLUSHALL")
        extra.append(server.url)
    result = subprocess.run(
        [sys.executable, str(RUNNER), str(sessions_tests), *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["failures"] == summary["errors"] == summary["skipped"] == 0
    assert summary["run"] >= MIXIN_TESTS, summary
