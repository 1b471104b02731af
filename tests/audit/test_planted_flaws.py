"""Every flaw planted in the test targets is found, over real HTTP, and no token reaches a
report. Each target documents its flaws and lists the findings they must produce."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sessionward.audit.context import HARVEST_QUICK, Options
from sessionward.audit.findings import Severity
from sessionward.audit.html_report import to_html
from sessionward.audit.output import to_json, to_sarif
from sessionward.audit.runner import Report, run_audit

from ._serve import serve
from .conftest import scenario
from .targets import confused_jwt, sound_jwt, weak_jwt, weak_shop

pytestmark = pytest.mark.usefixtures("credentials")


@pytest.fixture(scope="module")
def weak_run(credentials: None) -> tuple[Report, dict[str, Any]]:
    apps: list[Any] = []

    def make(base: str) -> Any:
        apps.append(weak_shop.create_app("md5-time"))
        return apps[0]

    options = Options(harvest=HARVEST_QUICK, rate=0, timeouts=True, max_wait=4)
    with serve(make) as base:
        report = run_audit(base, scenario(weak_shop.SCENARIO, "weak"), options)
    return report, apps[0].state.sessions


def found(report: Report) -> set[str]:
    return {f.id for f in report.findings}


@pytest.mark.parametrize("flaw", sorted(weak_shop.EXPECTED))
def test_every_planted_flaw_of_the_weak_shop_is_found(
    weak_run: tuple[Report, dict[str, Any]], flaw: int
) -> None:
    report, _ = weak_run
    assert weak_shop.EXPECTED[flaw] <= found(report), report.notes
    assert report.failed == {}


def test_predictable_tokens_are_critical_and_named(weak_run: tuple[Report, Any]) -> None:
    report, _ = weak_run
    finding = next(f for f in report.findings if f.id == "token-predictable")
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["construction"] == "md5(str(time.time()))"
    assert report.data["harvest"]["verdict"] == "weak"
    assert report.data["harvest"]["samples"] == HARVEST_QUICK


def test_no_token_reaches_any_report(weak_run: tuple[Report, dict[str, Any]]) -> None:
    report, sessions = weak_run
    outputs = to_json(report) + to_sarif(report) + to_html(report)
    issued = [sid for sid in sessions if len(sid) >= 8]
    assert len(issued) > 1000  # the harvest, the logins and the planted ids
    assert [sid for sid in issued if sid in outputs] == []
    in_url = next(f for f in json.loads(to_json(report))["findings"] if f["id"] == "token-in-url")
    assert in_url["evidence"]["value"].startswith("/account?sid=«token 32 chars #")


def test_every_finding_in_json_names_its_wstg_test(weak_run: tuple[Report, Any]) -> None:
    report, _ = weak_run
    findings = json.loads(to_json(report))["findings"]
    assert findings
    for finding in findings:
        assert finding["wstg"]
        assert all(w.startswith("WSTG-SESS-") for w in finding["wstg"])
        assert finding["asvs"] or finding["id"] == "replay-other-client"
        assert all(a.startswith("ASVS 5.0 ") for a in finding["asvs"])
        assert finding["remediation"]
        assert finding["severity"] in {s.label for s in Severity}


@pytest.mark.parametrize("generator", ["counter", "seeded-random"])
def test_other_predictable_generators_are_found(generator: str) -> None:
    options = Options(harvest=HARVEST_QUICK, rate=0, only=frozenset({"harvest"}))
    with serve(lambda base: weak_shop.create_app(generator)) as base:
        report = run_audit(base, scenario(weak_shop.SCENARIO), options)
    assert "token-predictable" in found(report)
    assert report.data["harvest"]["verdict"] == "weak"


@pytest.mark.parametrize(
    ("module", "make"),
    [
        (weak_jwt, lambda base: weak_jwt.create_app()),
        (confused_jwt, confused_jwt.create_app),
    ],
    ids=["weak-jwt", "confused-jwt"],
)
def test_every_planted_jwt_flaw_is_found(module: Any, make: Any) -> None:
    with serve(make) as base:
        report = run_audit(base, scenario(module.SCENARIO), Options(harvest=0, rate=0))
    for flaw, expected in module.EXPECTED.items():
        assert expected <= found(report), (flaw, sorted(found(report)))
    assert report.failed == {}


@pytest.mark.parametrize("alg", ["ES256", "HS256"])
def test_sessionward_jwt_mode_withstands_every_jwt_probe(alg: str) -> None:
    with serve(lambda base: sound_jwt.create_app(base, alg)) as base:
        report = run_audit(base, scenario(sound_jwt.SCENARIO), Options(harvest=0, rate=0))
    above = [(f.id, f.detail) for f in report.findings if f.severity > Severity.INFO]
    assert above == []
    assert report.failed == {}
    assert "jwt-claims" in found(report)  # the JWT probe did run
