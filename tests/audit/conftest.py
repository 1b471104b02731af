"""Fixtures for the auditor's tests: targets on a real uvicorn over loopback, a private CA
for HTTPS, and one audit run per target shared by the tests that read its report."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionward.audit.scenario import Scenario, parse_scenario

from ._serve import Tls, make_tls

CREDENTIALS = {
    "WEAK_USER": "alice",
    "WEAK_PASSWORD": "wonderland",
    "JWT_USER": "alice",
    "JWT_PASSWORD": "wonderland",
}


def scenario(text: str, name: str = "test") -> Scenario:
    return parse_scenario(tomllib.loads(text), name=name)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def credentials() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audit")
