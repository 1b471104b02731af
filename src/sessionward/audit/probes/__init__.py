"""The probes, in the order they run. Each has a name (for ``--only``/``--skip``), a plan
(what it would send, for ``--dry-run``) and a run; the passive checks watch every answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sessionward.audit.context import Context
from sessionward.audit.probes import csrf, harvest, jwt, lifecycle, passive, timeouts

__all__ = ["PROBES", "Probe"]


@dataclass(frozen=True, slots=True)
class Probe:
    name: str
    title: str
    run: Callable[[Context], None]
    plan: Callable[[Context], list[str]]


def _exposure_plan(ctx: Context) -> list[str]:
    return passive.plan(ctx.scenario.cookie, ctx.scenario.authenticated.path)


PROBES: tuple[Probe, ...] = (
    Probe("harvest", "token harvest and randomness", harvest.run, harvest.plan),
    Probe("fixation", "session fixation", lifecycle.fixation, lifecycle.plan_fixation),
    Probe("logout", "logout", lifecycle.logout, lifecycle.plan_logout),
    Probe("exposure", "token exposure", passive.url_token_probe, _exposure_plan),
    Probe("csrf", "cross-site request forgery", csrf.run, csrf.plan),
    Probe("replay", "replay from a second client", lifecycle.replay, lifecycle.plan_replay),
    Probe("concurrent", "concurrent sessions", lifecycle.concurrent, lifecycle.plan_concurrent),
    Probe("jwt", "JSON Web Token attacks", jwt.run, jwt.plan),
    Probe("timeouts", "idle and absolute timeouts", timeouts.run, timeouts.plan),
)
