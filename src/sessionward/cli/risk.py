"""``sessionward risk``: measure the hijack-scoring engine on recorded or generated traces.

    sessionward risk eval TRACES.jsonl [--decisions FILE] [--set NAME=VALUE ...] [--no-reauth]

Prints, per attack class, the share of attacked sessions detected, detected by the attacker's
third request, and the attacker requests served before detection (median, 95th percentile);
for legitimate sessions, the share challenged (step-up or revoke) and revoked.
``--decisions`` also writes every event's decision as JSON lines, for an independent scorer.
``--set`` changes a :class:`~sessionward.core.risk_policy.RiskPolicy` field. The owner answers
a step-up by signing in again, which teaches the engine the context (``--no-reauth``: never).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from sessionward.cli._common import CommandError, Subparsers
from sessionward.core.risk_policy import RiskPolicy
from sessionward.errors import ConfigError
from sessionward.risk.evaluate import replay, score
from sessionward.risk.traces import TraceError, read_traces

__all__ = ["register"]


def _error(message: str) -> Exception:
    return CommandError(message)


def register(subparsers: Subparsers) -> None:
    """Add the ``risk`` command group."""
    risk = subparsers.add_parser(
        "risk", help="measure hijack detection", description="Measure the risk engine."
    )
    actions = risk.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    evaluate = actions.add_parser(
        "eval", help="replay a trace file and print detection and false-alarm figures"
    )
    evaluate.add_argument("traces", metavar="TRACES.jsonl", help="one session per line")
    evaluate.add_argument(
        "--decisions", metavar="FILE", help="write every event's decision as JSON lines"
    )
    evaluate.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change a RiskPolicy setting (repeatable)",
    )
    evaluate.add_argument(
        "--no-reauth",
        action="store_true",
        help="do not let the owner confirm a challenged context by signing in again",
    )
    evaluate.set_defaults(handler=_eval)


def _policy(settings: list[str]) -> RiskPolicy:
    types = {f.name: f.type for f in dataclasses.fields(RiskPolicy)}
    changes: dict[str, float | int] = {}
    for item in settings:
        name, _, value = item.partition("=")
        if name not in types:
            raise _error(f"--set: RiskPolicy has no setting {name!r}")
        try:
            changes[name] = int(value) if types[name] in (int, "int") else float(value)
        except ValueError:
            raise _error(f"--set {name}: {value!r} is not a number") from None
    try:
        return RiskPolicy(**changes)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise _error(f"--set: {exc}") from None


def _eval(args: argparse.Namespace) -> int:
    policy = _policy(args.set)
    path = Path(args.traces)
    try:
        with path.open(encoding="utf-8") as lines:
            traces = read_traces(lines)
    except OSError as exc:
        raise _error(f"{path}: {exc.strerror or exc}") from None
    except (TraceError, UnicodeDecodeError) as exc:
        raise _error(f"{path}: {exc}") from None
    if not traces:
        raise _error(f"{path}: no sessions")
    decisions = replay(traces, policy=policy, reauth=not args.no_reauth)
    if args.decisions:
        try:
            with Path(args.decisions).open("w", encoding="utf-8") as out:
                for trace, made in zip(traces, decisions, strict=True):
                    for i, decision in enumerate(made):
                        row = {"session": trace.session, "i": i, "decision": decision.value}
                        out.write(json.dumps(row) + "\n")
        except OSError as exc:
            raise _error(f"{args.decisions}: {exc.strerror or exc}") from None
    print(score(traces, decisions).format())
    return 0
