"""Debian's chromium through Playwright for the HTML report, as the service's browser tests
use it: skipped with the reason when missing, a failure under ``SESSIONWARD_REQUIRE_SERVICES=1``
(CI). Screenshots go to ``$SESSIONWARD_ARTIFACTS/audit`` (default ``test-artifacts/audit``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("SESSIONWARD_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]


def unavailable(reason: str) -> None:
    if os.environ.get("SESSIONWARD_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required for this run: {reason}")
    pytest.skip(reason)


def artifacts_dir() -> Path:
    base = Path(os.environ.get("SESSIONWARD_ARTIFACTS", ROOT / "test-artifacts"))
    target = base / "audit"
    target.mkdir(parents=True, exist_ok=True)
    ignore = base / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return target
