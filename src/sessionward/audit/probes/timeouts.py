"""Idle and absolute timeouts, measured with bounded waits (WSTG-SESS-07, ASVS 7.3.1/7.3.2).

Opt-in (``--timeouts``), and every wait ends by ``--max-wait``. Several sessions are opened
at the start; each idle one is checked exactly once, after its own delay (a check is
activity, so a session checked early would restart its idle clock), which brackets the idle
timeout between the longest delay survived and the shortest one not survived. One more session
is kept active with a request at a steady interval until it dies or the wait ends: that
brackets the absolute lifetime (when it is longer than the idle timeout the keep-alive
interval defeats). A stated timeout from the scenario adds a check just after it.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass

from sessionward.audit.context import Context
from sessionward.audit.transport import Actor

__all__ = ["plan", "run", "schedule"]

_FRACTIONS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)


@dataclass(frozen=True, slots=True)
class Check:
    at: float  # seconds after the session's login
    alive: bool


def schedule(max_wait: float, stated: float | None) -> list[float]:
    """Idle delays: a geometric ladder up to ``max_wait``, plus just past a stated timeout."""
    points = {round(max_wait * f, 3) for f in _FRACTIONS}
    if stated is not None:
        late = stated + max(1.0, 0.1 * stated)
        if late <= max_wait:
            points.add(round(late, 3))
    return sorted(p for p in points if p > 0)


def _keepalive_interval(ctx: Context) -> float:
    stated = ctx.scenario.idle_timeout
    interval = ctx.options.max_wait / 16
    return min(interval, stated / 3) if stated else interval


def run(ctx: Context) -> None:
    if not ctx.options.timeouts:
        ctx.note("timeouts: not measured (opt in with --timeouts and --max-wait SECONDS)")
        return
    max_wait = ctx.options.max_wait
    delays = schedule(max_wait, ctx.scenario.idle_timeout)
    idle: list[tuple[float, Actor]] = []
    started: dict[int, float] = {}  # each session's idle clock starts at its own login
    # Longest delay first: logins can be slow (password hashing), and the short delays are
    # then still ahead when the last login is done. Each check records its real idle time.
    for index, delay in enumerate(sorted(delays, reverse=True)):
        actor = ctx.actor(f"idle-{index}")
        ctx.flows.login(actor)
        started[id(actor)] = time.monotonic()
        idle.append((delay, actor))
    keeper = ctx.actor("keep-alive")
    ctx.flows.login(keeper)
    started[id(keeper)] = time.monotonic()
    interval = _keepalive_interval(ctx)
    events: list[tuple[float, int, str, Actor]] = []
    for n, (delay, actor) in enumerate(idle):
        heapq.heappush(events, (started[id(actor)] + delay, n, "idle", actor))
    heapq.heappush(events, (started[id(keeper)] + interval, len(idle), "keep", keeper))
    idle_checks: list[Check] = []
    keep_checks: list[Check] = []
    deadline = time.monotonic() + max_wait + 1
    with ctx.progress.task(f"timeouts (up to {max_wait:.0f} s)", max_wait) as advance:
        begin, shown = time.monotonic(), 0.0
        while events:
            at, n, kind, actor = heapq.heappop(events)
            wait = at - time.monotonic()
            if wait > 0:
                ctx.sleep(wait)
            done = min(max_wait, time.monotonic() - begin)
            advance(done - shown)
            shown = done
            ok = ctx.flows.authenticated(actor)[0]
            elapsed = time.monotonic() - started[id(actor)]
            (idle_checks if kind == "idle" else keep_checks).append(Check(round(elapsed, 2), ok))
            if kind == "keep" and ok and at + interval <= deadline:
                heapq.heappush(events, (at + interval, n, "keep", actor))
    _report(ctx, sorted(idle_checks, key=lambda c: c.at), keep_checks, interval)


def _report(ctx: Context, idle: list[Check], keep: list[Check], interval: float) -> None:
    max_wait = ctx.options.max_wait
    survived = max((c.at for c in idle if c.alive), default=None)
    died = min((c.at for c in idle if not c.alive), default=None)
    if died is None:
        text = f"no idle timeout within {survived or max_wait:.0f} s"
    elif survived is None:
        text = f"idle timeout shorter than {died:.1f} s (the shortest check)"
    else:
        text = f"idle timeout between {survived:.1f} s and {died:.1f} s"
    ctx.data["timeouts"] = {
        "max_wait": max_wait,
        "idle_checks": [{"after": c.at, "alive": c.alive} for c in idle],
        "keepalive_checks": [{"after": c.at, "alive": c.alive} for c in keep],
        "keepalive_interval": round(interval, 2),
    }
    ctx.report("timeout-idle", text, evidence={"checks": ctx.data["timeouts"]["idle_checks"]})
    stated = ctx.scenario.idle_timeout
    late = [c.at for c in idle if c.alive and stated is not None and c.at > stated * 1.1 + 1]
    if stated is not None and late:
        ctx.report(
            "timeout-idle-exceeded",
            f"a session idle for {max(late):.0f} s still works;"
            f" the stated idle timeout is {stated:.0f} s",
        )
    last_alive = max((c.at for c in keep if c.alive), default=None)
    end = min((c.at for c in keep if not c.alive), default=None)
    if end is None:
        life = f"an active session lasted the whole wait ({last_alive or 0:.0f} s)"
    else:
        life = f"an active session ended between {last_alive or 0:.1f} s and {end:.1f} s"
    ctx.report(
        "timeout-absolute",
        life + f" (a request every {interval:.1f} s)",
        evidence={"checks": ctx.data["timeouts"]["keepalive_checks"]},
    )
    absolute = ctx.scenario.absolute_timeout
    if absolute is not None and last_alive is not None and last_alive > absolute * 1.1 + 1:
        ctx.report(
            "timeout-absolute-exceeded",
            f"an active session still works after"
            f" {last_alive:.0f} s; the stated absolute lifetime is {absolute:.0f} s",
        )
    if absolute is not None and absolute * 1.1 + 1 > max_wait:
        ctx.note(f"timeouts: the stated absolute lifetime ({absolute:.0f} s) is beyond --max-wait")


def plan(ctx: Context) -> list[str]:
    if not ctx.options.timeouts:
        return ["timeouts: off (opt in with --timeouts)"]
    delays = ", ".join(f"{d:g}" for d in schedule(ctx.options.max_wait, ctx.scenario.idle_timeout))
    auth = ctx.scenario.authenticated.path
    return [
        f"timeouts: {len(delays.split(','))} logins, one GET {auth} each after {delays} s idle;"
        f" one more session with GET {auth} every {_keepalive_interval(ctx):.1f} s for up to"
        f" {ctx.options.max_wait:g} s"
    ]
