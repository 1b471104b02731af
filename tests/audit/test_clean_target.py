"""The clean target, sessionward's own demo shop over HTTPS with a private CA, driven through
the ``sessionward audit`` command: every probe runs, nothing above "info" is found, the
measurements are right, and the reports are well formed."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sessionward.audit.probes import PROBES
from sessionward.cli import main

from ._browser import ARGS, CHROMIUM, artifacts_dir, unavailable
from ._serve import Tls, serve
from .targets import demo_shop


@dataclass
class Run:
    status: int
    stdout: str
    report: dict[str, Any]
    sarif: dict[str, Any]
    html: Path


@contextlib.contextmanager
def shop(directory: Path, tls: Tls | None) -> Iterator[str]:
    apps: list[Any] = []

    def make(base: str) -> Any:
        apps.append(demo_shop.make_app(base, directory))
        return apps[-1]

    try:
        with serve(make, tls) as base:
            yield base
    finally:
        for app in apps:
            asyncio.run(app.state.runtime.close())


def audit(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["audit", *args])
    return status, out.getvalue()


@pytest.fixture(scope="module")
def shop_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHOP_USER", demo_shop.USER)
        patch.setenv("SHOP_PASSWORD", demo_shop.PASSWORD)
        yield


@pytest.fixture(scope="module")
def clean(tls: Tls, module_dir: Path, shop_env: None) -> Run:
    (module_dir / "shop.toml").write_text(demo_shop.SCENARIO)
    out = {name: module_dir / f"report.{name}" for name in ("json", "sarif", "html")}
    with shop(module_dir, tls) as base:
        status, stdout = audit(
            base, "--scenario", str(module_dir / "shop.toml"), "--ca", str(tls.ca),
            "--timeouts", "--max-wait", "8", "--rate", "0", "--allow-load",
            "--json", str(out["json"]), "--sarif", str(out["sarif"]), "--html", str(out["html"]),
            "--fail-on", "low",
        )  # fmt: skip
    return Run(
        status,
        stdout,
        json.loads(out["json"].read_text()),
        json.loads(out["sarif"].read_text()),
        out["html"],
    )


def test_the_clean_target_gets_nothing_above_info(clean: Run) -> None:
    above = [f for f in clean.report["findings"] if f["severity"] != "info"]
    assert above == []
    assert clean.status == 0  # --fail-on low
    assert clean.report["summary"]["info"] == len(clean.report["findings"]) > 0


def test_every_probe_ran_to_the_end(clean: Run) -> None:
    assert clean.report["probes"] == [p.name for p in PROBES]
    assert clean.report["failed_probes"] == {}
    notes = clean.report["notes"]
    assert notes == ["jwt: the session token is not a JWT; JWT probe skipped"]


def test_the_tokens_are_sound(clean: Run) -> None:
    harvest = clean.report["measurements"]["harvest"]
    assert harvest["verdict"] == "sound", harvest["reasons"]
    assert harvest["samples"] == 1000
    assert harvest["shape"]["encoding"] == "base64url"
    assert harvest["shape"]["static_prefix_chars"] >= 4  # sw1_
    assert harvest["effective_bits"] >= 128
    assert harvest["clock_construction"] is None


def test_the_timeouts_are_measured(clean: Run) -> None:
    timeouts = clean.report["measurements"]["timeouts"]
    # The shop extends a session's idle deadline at most every idle/10 seconds, so a session
    # may end up to 0.2 s before its idle timeout after the last request: margins of 0.5 s.
    idle = timeouts["idle_checks"]
    assert all(c["alive"] for c in idle if c["after"] < demo_shop.IDLE - 0.5)
    assert not any(c["alive"] for c in idle if c["after"] > demo_shop.IDLE + 0.5)
    assert any(c["alive"] for c in idle)
    kept = timeouts["keepalive_checks"]
    assert all(c["alive"] for c in kept if c["after"] < demo_shop.ABSOLUTE - 0.5)
    assert not kept[-1]["alive"]
    assert kept[-1]["after"] < demo_shop.ABSOLUTE + 1


def test_the_terminal_report_lists_the_findings(clean: Run) -> None:
    assert "sessionward audit of https://127.0.0.1:" in clean.stdout
    assert "timeout-idle" in clean.stdout
    assert "findings: " in clean.stdout


def test_sarif_is_2_1_0_with_rules_for_every_result(clean: Run) -> None:
    log = clean.sarif
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert len(run["results"]) == len(clean.report["findings"])
    for result in run["results"]:
        rule = rules[result["ruleIndex"]]
        assert rule["id"] == result["ruleId"]
        assert result["level"] == "note"
        assert result["properties"]["wstg"][0].startswith("WSTG-SESS-")
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.startswith("https://127.0.0.1:")
    assert run["invocations"][0]["executionSuccessful"] is True


def test_without_the_ca_the_certificate_is_refused(
    tls: Tls, tmp_path: Path, shop_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "shop.toml").write_text(demo_shop.SCENARIO)
    with shop(tmp_path, tls) as base:
        status, _ = audit(base, "--scenario", str(tmp_path / "shop.toml"), "--harvest", "off")
        assert status == 2
        assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err
        status, stdout = audit(
            base, "--scenario", str(tmp_path / "shop.toml"), "--insecure", "--harvest", "off",
            "--only", "fixation", "--fail-on", "low",
        )  # fmt: skip
    assert status == 0
    assert "--insecure" in capsys.readouterr().err
    assert "findings: none" in stdout


def test_the_html_report_opens_in_chromium(clean: Run) -> None:
    """Debian's chromium through Playwright: the charts are drawn, nothing is fetched, and a
    screenshot is kept under test-artifacts/audit/."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed")
    if not Path(CHROMIUM).exists():
        unavailable(f"no chromium at {CHROMIUM}")
    shots = artifacts_dir()
    fetched: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("request", lambda request: fetched.append(request.url))
        page.goto(clean.html.as_uri())
        assert page.title().startswith("sessionward audit of https://127.0.0.1:")
        bits = page.locator('svg[aria-label="Smallest p-value per bit position"] rect')
        assert bits.count() == clean.report["measurements"]["harvest"]["analysed_bits"]
        for label in ("Smallest p-value per bit position", "Timeout checks"):
            box = page.locator(f'svg[aria-label="{label}"]').bounding_box()
            assert box is not None
            assert box["width"] > 300
            assert box["height"] > 50
        dots = page.locator('svg[aria-label="Timeout checks"] circle')
        timeouts = clean.report["measurements"]["timeouts"]
        assert dots.count() == len(timeouts["idle_checks"]) + len(timeouts["keepalive_checks"])
        page.screenshot(path=str(shots / "clean-report.png"), full_page=True)
        browser.close()
    assert fetched == [clean.html.as_uri()]
