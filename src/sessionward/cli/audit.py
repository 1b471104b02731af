"""``sessionward audit``: check another site's session management from outside.

    sessionward audit URL --scenario FILE [--harvest off|quick|full] [--timeouts --max-wait S]
                      [--json FILE] [--sarif FILE] [--html FILE] [--fail-on SEVERITY]
                      [--ca FILE | --insecure] [--rate N] [--dry-run] [--only/--skip PROBES]

Only the origin of URL is ever contacted. Progress bars go to stderr, the report to stdout
(or ``--quiet``). Exit status: 0 done, 1 a finding at or above ``--fail-on``, 2 error.
See docs/audit.md.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sessionward.audit.context import HARVEST_FULL, HARVEST_QUICK, Options
from sessionward.audit.findings import Severity
from sessionward.audit.html_report import to_html
from sessionward.audit.output import to_json, to_sarif
from sessionward.audit.probes import PROBES
from sessionward.audit.runner import Report, plan, run_audit
from sessionward.audit.scenario import load_scenario
from sessionward.cli._common import CommandError, Subparsers

__all__ = ["register"]

_SAFE_RATE = 100.0
_SAFE_CONCURRENCY = 4
_SAFE_LOGINS = 20
_STYLES = {"critical": "bold white on dark_red", "high": "bold red", "medium": "yellow",
           "low": "cyan", "info": "dim"}  # fmt: skip


def register(subparsers: Subparsers) -> None:
    text = "audit a site's session management (ASVS 5.0, WSTG)"
    parser = subparsers.add_parser("audit", help=text, description=text)
    parser.add_argument("url", help="the target (only its origin is contacted)")
    parser.add_argument("--scenario", required=True, metavar="FILE", help="scenario (TOML)")
    parser.add_argument(
        "--harvest",
        choices=["off", "quick", "full"],
        default="quick",
        help=f"tokens to analyse: quick {HARVEST_QUICK}, full {HARVEST_FULL}",
    )
    parser.add_argument("--samples", type=int, metavar="N", help="harvest exactly N tokens")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2,
        metavar="N",
        help="parallel harvest clients (default 2)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=50.0,
        metavar="N",
        help="requests per second at most (default 50; 0 = no limit)",
    )
    parser.add_argument(
        "--timeouts",
        action="store_true",
        help="measure idle and absolute timeouts (waits up to --max-wait)",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="longest wait of the timeout probe (default 120)",
    )
    parser.add_argument(
        "--concurrent-logins",
        type=int,
        default=5,
        metavar="N",
        help="logins of the concurrent-session probe (default 5)",
    )
    names = ", ".join(p.name for p in PROBES)
    parser.add_argument("--only", metavar="PROBES", help=f"run only these ({names})")
    parser.add_argument("--skip", metavar="PROBES", help="run all but these")
    parser.add_argument(
        "--allow-load",
        action="store_true",
        help=f"allow more than {_SAFE_RATE:g} requests/s, more than"
        f" {_SAFE_CONCURRENCY} parallel clients or {_SAFE_LOGINS} logins",
    )
    parser.add_argument("--json", metavar="FILE", help="write the JSON report ('-': stdout)")
    parser.add_argument("--sarif", metavar="FILE", help="write SARIF 2.1.0 ('-': stdout)")
    parser.add_argument("--html", metavar="FILE", help="write the HTML report")
    parser.add_argument(
        "--fail-on",
        metavar="SEVERITY",
        help="exit 1 when a finding is this severe or worse (info, low, medium, high, critical)",
    )
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--ca", metavar="FILE", help="trust this CA bundle (PEM) for HTTPS")
    tls.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the server's certificate (self-signed staging only)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be sent; send nothing"
    )
    parser.add_argument("--quiet", action="store_true", help="no report on stdout")
    parser.set_defaults(handler=_audit)  # fmt: skip


def _options(args: argparse.Namespace) -> Options:
    harvest = {"off": 0, "quick": HARVEST_QUICK, "full": HARVEST_FULL}[args.harvest]
    if args.samples is not None:
        if not 100 <= args.samples <= 1_000_000:
            raise CommandError("--samples must be between 100 and 1000000")
        harvest = args.samples
    known = {p.name for p in PROBES}
    only, skip = _names(args.only, known), _names(args.skip, known)
    heavy = []
    if args.rate <= 0 or args.rate > _SAFE_RATE:
        heavy.append(f"--rate {args.rate:g}")
    if args.concurrency > _SAFE_CONCURRENCY:
        heavy.append(f"--concurrency {args.concurrency}")
    if args.concurrent_logins > _SAFE_LOGINS:
        heavy.append(f"--concurrent-logins {args.concurrent_logins}")
    if heavy and not args.allow_load:
        raise CommandError(f"{', '.join(heavy)} can load the target: add --allow-load")
    if args.concurrency < 1 or args.concurrent_logins < 1 or args.max_wait <= 0:
        raise CommandError("--concurrency, --concurrent-logins and --max-wait must be positive")
    return Options(
        harvest=harvest,
        concurrency=args.concurrency,
        rate=max(0.0, args.rate),
        timeouts=args.timeouts,
        max_wait=args.max_wait,
        concurrent_logins=args.concurrent_logins,
        only=only,
        skip=skip,
        allow_load=args.allow_load,
    )


def _names(value: str | None, known: set[str]) -> frozenset[str]:
    names = frozenset(n.strip() for n in (value or "").split(",") if n.strip())
    unknown = sorted(names - known)
    if unknown:
        raise CommandError(f"unknown probe {unknown[0]!r} (probes: {', '.join(sorted(known))})")
    return names


def _verify(args: argparse.Namespace, err: Console) -> ssl.SSLContext | bool:
    if args.insecure:
        err.print("[yellow]warning:[/] --insecure: the server's certificate is not checked")
        return False
    if args.ca:
        try:
            return ssl.create_default_context(cafile=args.ca)
        except (OSError, ssl.SSLError) as exc:
            raise CommandError(f"--ca {args.ca}: {exc}") from None
    return True


def _audit(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False)
    try:
        threshold = Severity.parse(args.fail_on) if args.fail_on else None
    except ValueError as exc:
        raise CommandError(f"--fail-on: {exc}") from None
    options = _options(args)
    scenario = load_scenario(args.scenario)
    if args.dry_run:
        for line in plan(args.url, scenario, options):
            print(line)
        print("dry run: nothing was sent")
        return 0
    verify = _verify(args, err)
    with _progress(err) as progress:
        report = run_audit(args.url, scenario, options, verify=verify, progress=progress)
    _write(args.json, to_json(report))
    _write(args.sarif, to_sarif(report))
    if args.html:
        _write(args.html, to_html(report))
    if not args.quiet and "-" not in (args.json, args.sarif):
        _terminal(report, Console(highlight=False))
    if threshold is not None and report.at_least(threshold):
        return 1
    return 0


def _write(target: str | None, text: str) -> None:
    if target is None:
        return
    if target == "-":
        sys.stdout.write(text)
    else:
        Path(target).write_text(text, encoding="utf-8")


class _RichProgress:
    def __init__(self, progress: Progress) -> None:
        self._progress = progress

    @contextmanager
    def task(self, description: str, total: float) -> Iterator[Callable[[float], None]]:
        task = self._progress.add_task(description, total=total)

        def advance(amount: float) -> None:
            self._progress.advance(task, amount)

        try:
            yield advance
        finally:
            self._progress.update(task, completed=total)


@contextmanager
def _progress(console: Console) -> Iterator[_RichProgress]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=False) as progress:
        yield _RichProgress(progress)


def _terminal(report: Report, console: Console) -> None:
    console.print(f"[bold]sessionward audit[/] of {report.target} ({report.scenario}):"
                  f" {report.requests} requests, probes {', '.join(report.probes)}")  # fmt: skip
    table = Table(show_header=True, header_style="bold", expand=True)
    for column, ratio in (("severity", 1), ("id", 2), ("finding", 6), ("references", 2)):
        table.add_column(column, ratio=ratio, overflow="fold")
    for f in report.findings:
        refs = " ".join([*f.rule.wstg, *(f"ASVS {r}" for r in f.rule.asvs)])
        table.add_row(f"[{_STYLES[f.severity.label]}]{f.severity.label}[/]", f.id,
                      f"{f.rule.title}: {f.detail}", refs)  # fmt: skip
    if report.findings:
        console.print(table)
    counts = ", ".join(f"{n} {label}" for label, n in report.counts().items() if n)
    console.print(f"findings: {counts or 'none'}")
    for note in report.notes:
        console.print(f"[dim]note: {note}[/]")
