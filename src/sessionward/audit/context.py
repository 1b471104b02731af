"""What a probe works with: the options, the network, the scenario's steps, and where findings,
measurements, notes and progress go."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from sessionward.audit.findings import RULES, Finding, Severity
from sessionward.audit.flows import Flows
from sessionward.audit.scenario import Scenario
from sessionward.audit.transport import DEFAULT_USER_AGENT, Actor, Network

__all__ = [
    "HARVEST_FULL",
    "HARVEST_QUICK",
    "Context",
    "Options",
    "Progress",
    "SilentProgress",
]

HARVEST_QUICK = 1_000
HARVEST_FULL = 20_000

#: The second client of the replay probe: another browser, platform and language.
OTHER_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
)


@dataclass(frozen=True, slots=True)
class Options:
    """Run options. ``harvest`` is the number of tokens to collect (0: none). ``max_wait``
    bounds every wait of the timeout probe, which runs only with ``timeouts``.
    ``only``/``skip`` name probes."""

    harvest: int = HARVEST_QUICK
    concurrency: int = 2
    rate: float = 50.0
    timeouts: bool = False
    max_wait: float = 120.0
    concurrent_logins: int = 5
    only: frozenset[str] = frozenset()
    skip: frozenset[str] = frozenset()
    allow_load: bool = False

    def wants(self, probe: str) -> bool:
        return (not self.only or probe in self.only) and probe not in self.skip


class Progress(Protocol):
    """Where long steps report how far they are (the command shows progress bars)."""

    def task(
        self, description: str, total: float
    ) -> contextlib.AbstractContextManager[Callable[[float], None]]: ...


class SilentProgress:
    @contextlib.contextmanager
    def task(self, description: str, total: float) -> Iterator[Callable[[float], None]]:
        yield lambda amount: None


@dataclass
class Context:
    scenario: Scenario
    network: Network
    options: Options
    progress: Progress = field(default_factory=SilentProgress)
    sleep: Callable[[float], None] = time.sleep
    findings: list[Finding] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    flows: Flows = field(init=False)
    _seen: set[tuple[str, str]] = field(default_factory=set, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.flows = Flows(self.scenario, self.network)

    def actor(self, name: str, *, user_agent: str = DEFAULT_USER_AGENT, **headers: str) -> Actor:
        return self.network.actor(name, user_agent=user_agent, headers=headers)

    def report(
        self,
        rule: str,
        detail: str,
        *,
        url: str = "",
        evidence: dict[str, Any] | None = None,
        severity: Severity | None = None,
        key: str = "",
    ) -> None:
        """Record a finding once per ``(rule, key)``; evidence and detail are redacted.
        Thread-safe: the passive checks also run in harvest workers."""
        with self._lock:
            if (rule, key) in self._seen:
                return
            self._seen.add((rule, key))
        known = RULES[rule]
        redactor = self.network.redactor
        self.findings.append(
            Finding(
                rule=known,
                severity=severity if severity is not None else known.severity,
                detail=redactor.text(detail),
                url=redactor.text(url),
                evidence=redactor.evidence(evidence or {}),
            )
        )

    def note(self, text: str) -> None:
        self.notes.append(self.network.redactor.text(text))
