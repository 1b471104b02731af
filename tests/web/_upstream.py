"""Third-party test modules, run against sessionward without copying them into the repository.

``upstream_module("starlette", "tests/middleware/test_session.py")`` downloads the sdist of the
*installed* release with pip into a private temporary directory (outside the repository,
removed at exit), and imports that file from there as a module. The caller then swaps one
name (the session middleware or interface) and re-exports the test functions.

PyPI unreachable: the calling module is skipped with pip's reason, or fails when
``SESSIONWARD_REQUIRE_SERVICES=1`` (as CI sets it).
"""

from __future__ import annotations

import atexit
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _pytest.fixtures import FixtureFunctionDefinition

_ROOT: Path | None = None
_SDISTS: dict[str, Path] = {}


def _unavailable(reason: str) -> None:
    if os.environ.get("SESSIONWARD_REQUIRE_SERVICES") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def _root() -> Path:
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="sessionward-upstream-"))
        atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
    return _ROOT


def sdist(project: str) -> Path:
    """The unpacked sdist of the installed release of ``project``."""
    if project in _SDISTS:
        return _SDISTS[project]
    version = importlib.metadata.version(project)
    target = _root() / f"{project}-download"
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        "--timeout",
        "20",
        "--retries",
        "2",
        "--dest",
        str(target),
        f"{project}=={version}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    archives = sorted(target.glob("*.tar.gz")) if target.exists() else []
    if done.returncode != 0 or not archives:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        _unavailable(f"cannot download the {project} {version} sdist from PyPI: {last}")
    unpacked = _root() / f"{project}-{version}"
    with tarfile.open(archives[0]) as archive:
        archive.extractall(unpacked, filter="data")
    (top,) = [p for p in unpacked.iterdir() if p.is_dir()]
    _SDISTS[project] = top
    return top


def load(name: str, path: Path, *, aliases: Mapping[str, ModuleType] = {}) -> ModuleType:
    """Import ``path`` as module ``name``; ``aliases`` stand in for the upstream project's
    own helper modules (its ``tests.types`` is not our ``tests``) while it imports."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved = {alias: sys.modules.get(alias) for alias in aliases}
    sys.modules.update(aliases)
    try:
        with warnings.catch_warnings():
            # starlette.testclient warns when it runs on httpx rather than httpx2; upstream's
            # own configuration silences the same warning.
            warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
            spec.loader.exec_module(module)
    finally:
        for alias, previous in saved.items():
            if previous is None:
                sys.modules.pop(alias, None)
            else:
                sys.modules[alias] = previous
    return module


def tests_of(module: ModuleType, select: Callable[[str], bool]) -> Iterator[tuple[str, Any]]:
    """The test functions of ``module`` whose name ``select`` accepts."""
    for name, value in vars(module).items():
        if name.startswith("test_") and callable(value) and select(name):
            yield name, value


def fixtures_of(module: ModuleType) -> Iterator[tuple[str, Any]]:
    """The pytest fixtures a (conftest) module defines, to re-export them."""
    for name, value in vars(module).items():
        if isinstance(value, FixtureFunctionDefinition):
            yield name, value
