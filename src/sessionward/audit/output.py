"""Machine-readable reports: JSON (the report as it is) and SARIF 2.1.0 for code-scanning
tools. Both carry, for every finding, its id, severity, ASVS 5.0 and WSTG references,
redacted evidence and the remediation."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sessionward._version import __version__
from sessionward.audit.findings import RULES, Finding, Rule, Severity
from sessionward.audit.runner import Report

__all__ = ["SARIF_SCHEMA", "to_json", "to_sarif"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
#: GitHub code scanning ranks security results by this property (0.1-10).
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.1",
}


def to_json(report: Report) -> str:
    return json.dumps(report.as_json(), indent=2, sort_keys=False) + "\n"


def _rule(rule: Rule) -> dict[str, Any]:
    references = [f"ASVS 5.0 {r}" for r in rule.asvs] + list(rule.wstg)
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": f"{rule.title} ({', '.join(references)})."},
        "help": {"text": rule.remediation},
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
        "properties": {
            "tags": ["security", *rule.wstg, *(f"ASVS-5.0-{r}" for r in rule.asvs)],
            "security-severity": _SECURITY_SEVERITY[rule.severity],
        },
    }


def _result(finding: Finding, index: dict[str, int], target: str) -> dict[str, Any]:
    where = finding.url or target
    fingerprint = hashlib.sha256(f"{finding.id}|{where}|{finding.detail}".encode()).hexdigest()
    return {
        "ruleId": finding.id,
        "ruleIndex": index[finding.id],
        "level": _LEVEL[finding.severity],
        "message": {"text": f"{finding.rule.title}: {finding.detail}"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": where}}}],
        "partialFingerprints": {"sessionwardFinding/v1": fingerprint[:32]},
        "properties": {
            "severity": finding.severity.label,
            "security-severity": _SECURITY_SEVERITY[finding.severity],
            "wstg": list(finding.rule.wstg),
            "asvs": [f"ASVS 5.0 {r}" for r in finding.rule.asvs],
            "evidence": finding.evidence,
            "remediation": finding.rule.remediation,
        },
    }


def to_sarif(report: Report) -> str:
    rules = [RULES[rule_id] for rule_id in sorted({f.id for f in report.findings})]
    index = {rule.id: n for n, rule in enumerate(rules)}
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "sessionward audit",
                        "version": __version__,
                        "rules": [_rule(r) for r in rules],
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not report.failed,
                        "startTimeUtc": report.as_json()["started"].replace("+00:00", "Z"),
                        "endTimeUtc": report.as_json()["finished"].replace("+00:00", "Z"),
                    }
                ],
                "results": [_result(f, index, report.target) for f in report.findings],
                "properties": {"target": report.target, "scenario": report.scenario},
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"
