"""Run an audit: check the scenario works, run the probes in order, collect the report.

A probe that fails (the target stops answering, a step of the scenario does not work) is
noted in the report and the others still run; a scenario that does not work at all (login
fails, or the authenticated page is recognised without logging in) stops the audit first.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sessionward._version import __version__
from sessionward.audit.context import Context, Options, Progress, SilentProgress
from sessionward.audit.errors import AuditError, TargetError
from sessionward.audit.findings import Finding, Severity
from sessionward.audit.probes import PROBES
from sessionward.audit.probes.passive import Watch
from sessionward.audit.scenario import Scenario
from sessionward.audit.transport import ClientFactory, Network, default_client

__all__ = ["Report", "plan", "run_audit"]


@dataclass
class Report:
    target: str
    scenario: str
    started: float
    finished: float
    options: Options
    findings: list[Finding] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0

    @property
    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def at_least(self, severity: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity >= severity]

    def counts(self) -> dict[str, int]:
        return {s.label: sum(f.severity == s for f in self.findings) for s in reversed(Severity)}

    def as_json(self) -> dict[str, Any]:
        return {
            "tool": {"name": "sessionward audit", "version": __version__},
            "target": self.target,
            "scenario": self.scenario,
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "requests": self.requests,
            "probes": self.probes,
            "failed_probes": self.failed,
            "options": {
                "harvest": self.options.harvest,
                "rate": self.options.rate,
                "concurrency": self.options.concurrency,
                "timeouts": self.options.timeouts,
                "max_wait": self.options.max_wait,
                "concurrent_logins": self.options.concurrent_logins,
            },
            "summary": self.counts(),
            "findings": [f.as_json() for f in self.findings],
            "measurements": self.data,
            "notes": self.notes,
        }


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="seconds")


def _selected(options: Options) -> list[str]:
    return [p.name for p in PROBES if options.wants(p.name)]


def plan(url: str, scenario: Scenario, options: Options) -> list[str]:
    """What a run would send, probe by probe (``--dry-run``): no request is made."""
    network = Network(url, rate=options.rate)
    for path in scenario.paths:
        network.url(path)  # the scenario stays on the target
    ctx = Context(scenario, network, options)
    lines = [
        f"target {network.origin} (only this origin is contacted)",
        f"at most {options.rate:g} requests a second" if options.rate > 0 else "no rate limit",
        f"baseline: log in once ({scenario.login.kind} login at {scenario.login.url}), GET"
        f" {scenario.authenticated.path} with and without the session",
    ]
    for probe in PROBES:
        if options.wants(probe.name):
            lines += probe.plan(ctx)
    return lines


def run_audit(
    url: str,
    scenario: Scenario,
    options: Options,
    *,
    verify: ssl.SSLContext | bool = True,
    client_factory: ClientFactory = default_client,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    scenario.login.credentials()  # fail before any traffic when they are missing
    network = Network(url, rate=options.rate, verify=verify, client_factory=client_factory)
    for path in scenario.paths:
        network.url(path)
    ctx = Context(scenario, network, options, progress or SilentProgress(), sleep)
    watch = Watch(ctx)
    network.observers.append(watch)
    report = Report(network.base_url, scenario.name, time.time(), 0.0, options)
    try:
        _baseline(ctx)
        for probe in PROBES:
            if not options.wants(probe.name):
                continue
            report.probes.append(probe.name)
            try:
                probe.run(ctx)
            except AuditError as exc:
                report.failed[probe.name] = network.redactor.text(str(exc))
                ctx.note(f"{probe.name}: could not finish: {exc}")
        watch.finish()
    finally:
        network.close()
    report.finished = time.time()
    report.findings = sorted(ctx.findings, key=lambda f: (-f.severity, f.id))
    report.data, report.notes, report.requests = ctx.data, ctx.notes, network.requests
    return report


def _baseline(ctx: Context) -> None:
    """The scenario must work, and its recogniser must tell the two states apart."""
    stranger = ctx.actor("stranger")
    if ctx.flows.authenticated(stranger)[0]:
        raise TargetError(
            f"{ctx.scenario.authenticated.path} is recognised as authenticated without any"
            " session; make [authenticated] more specific (contains = text only a signed-in"
            " user sees)"
        )
    ctx.flows.login(ctx.actor("baseline"))
