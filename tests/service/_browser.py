"""Browser plumbing: Debian's chromium through Playwright, screenshots, axe-core from npm.

Skips with a clear reason when chromium, Playwright or npm is missing, unless
``SESSIONWARD_REQUIRE_SERVICES=1`` (CI), where a missing piece is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from sessionward.service.passwords import STEP, totp_now

CHROMIUM = os.environ.get("SESSIONWARD_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]


def code_to_type(secret: str, room: float = 10.0) -> str:
    """The authenticator's code, to type into a page served on the real clock. The server
    takes a code until ``TOTP_DRIFT`` (5 s) after its 30 s step ends, and typing it in and
    submitting can take seconds on a loaded machine: with less than ``room`` seconds left in
    the step, this waits for the next one (a code that then lasts ``room`` + 5 s at least)."""
    left = STEP - time.time() % STEP
    if left < room:
        time.sleep(left + 0.01)  # into the next step: not a synchronisation
    return totp_now(secret, time.time())


def unavailable(reason: str) -> None:
    if os.environ.get("SESSIONWARD_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required for this run: {reason}")
    pytest.skip(reason)


def artifacts_dir() -> Path:
    """Where screenshots go: ``$SESSIONWARD_ARTIFACTS`` or ``test-artifacts/`` (git-ignored
    by a ``.gitignore`` written inside it)."""
    base = Path(os.environ.get("SESSIONWARD_ARTIFACTS", ROOT / "test-artifacts"))
    target = base / "service"
    target.mkdir(parents=True, exist_ok=True)
    ignore = base / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return target


def screenshots_dir() -> Path:
    """Where the page-by-page screenshots go: ``$SESSIONWARD_SCREENSHOTS`` or
    ``screenshots/`` inside the artifacts directory (see :func:`artifacts_dir`)."""
    chosen = os.environ.get("SESSIONWARD_SCREENSHOTS")
    target = Path(chosen) if chosen else artifacts_dir().parent / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    return target


def axe_source() -> str:
    """axe-core's ``axe.min.js``, installed from npm into a cache directory once."""
    cache = Path(os.environ.get("SESSIONWARD_AXE_DIR", Path.home() / ".cache/sessionward/axe"))
    script = cache / "node_modules/axe-core/axe.min.js"
    if not script.is_file():
        npm = shutil.which("npm")
        if npm is None:
            unavailable("npm is not installed (needed to fetch axe-core)")
        cache.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [str(npm), "install", "--prefix", str(cache), "--no-audit", "--no-fund", "axe-core@4"],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if result.returncode != 0 or not script.is_file():
            unavailable(f"npm install axe-core failed: {result.stderr.strip()[-300:]}")
    return script.read_text(encoding="utf-8")
