"""Token harvest and randomness analysis (WSTG-SESS-01, ASVS 7.2.2, 7.2.3, 11.5.1).

Collects ``options.harvest`` tokens: each from a client without cookies sending the
scenario's ``[harvest]`` request (after fetching its ``fields_from`` page, when it has one),
or logging in, without one, with ``options.concurrency``
clients in parallel, all under the shared rate limit. Each token keeps the moment its request
left and its answer came back; the server's clock is placed against ours from the ``Date``
headers (each answer bounds the offset to a one-second interval; their intersection is
usually a few milliseconds wide), so the clock check knows when each token was made.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from sessionward.audit.context import Context
from sessionward.audit.errors import TargetError
from sessionward.audit.findings import Severity
from sessionward.audit.sequencer import TokenAnalysis, analyse_tokens
from sessionward.audit.transport import Actor, Exchange

__all__ = ["Sample", "clock_offset", "plan", "run"]

_OBSERVED = 3  # the first answers go through the passive checks; the rest only count


@dataclass(frozen=True, slots=True)
class Sample:
    token: str
    sent: float
    received: float
    date: float | None  # the server's Date header, seconds since 1970


def plan(ctx: Context) -> list[str]:
    n = ctx.options.harvest
    if not n:
        return ["harvest: off"]
    spec = ctx.scenario.harvest
    how = "a full login"
    if spec is not None:
        page = f"GET {spec.fields_from}, then " if spec.fields_from else ""
        how = f"{page}{spec.method} {spec.path} from a client without cookies"
    return [
        f"harvest: {how} x {n} ({ctx.options.concurrency} in parallel), then analyse"
        " the tokens offline"
    ]


def run(ctx: Context) -> None:
    n = ctx.options.harvest
    if not n:
        return
    samples = collect(ctx, n)
    tokens = [s.token for s in samples]
    if len(tokens) < 100:
        ctx.note(f"harvest: only {len(tokens)} tokens collected; analysis needs 100")
        return
    low, high = clock_offset(samples)
    if low - 1 <= 0 <= high + 1:
        # The Date headers agree with our clock (to their one-second grain, and servers may
        # stamp a Date cached a little earlier): try the same clock first, which it usually
        # is on a local network or with NTP; the clock check widens the window by itself.
        low = high = 0.0
    windows = [(s.sent + low, s.received + high) for s in samples]
    analysis = analyse_tokens(tokens, windows)
    duration = samples[-1].received - samples[0].sent
    ctx.data["harvest"] = {
        **analysis.as_json(),
        "requested": n,
        "seconds": round(duration, 2),
        "server_clock_offset": [round(low, 4), round(high, 4)],
    }
    report(ctx, analysis)


def collect(ctx: Context, n: int) -> list[Sample]:
    lock = threading.Lock()
    samples: list[Sample] = []
    failures: list[str] = []
    workers = max(1, min(ctx.options.concurrency, n))
    counter = iter(range(n))

    def worker(index: int) -> None:
        actor = ctx.actor(f"harvest-{index}")
        while True:
            with lock:
                if next(counter, None) is None or len(failures) > 20:
                    return
            sample = _one(ctx, actor, observe=len(samples) < _OBSERVED)
            with lock:
                if sample is None:
                    failures.append("no token")
                else:
                    samples.append(sample)
                    advance(1)

    task = ctx.progress.task(f"harvesting {n} tokens", n)
    with task as advance, ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(worker, i) for i in range(workers)]:
            future.result()
    if failures and not samples:
        raise TargetError("the harvest request returned no session token")
    samples.sort(key=lambda s: s.received)
    return samples


def _one(ctx: Context, actor: Actor, *, observe: bool) -> Sample | None:
    actor.forget()
    spec = ctx.scenario.harvest
    if spec is None:
        logged = ctx.flows.login(actor, check=False)
        answer: Exchange = logged.answer
        token = logged.token
    else:
        if spec.fields_from is None and spec.method == "GET":
            answer = actor.request("GET", spec.path, headers=dict(spec.headers), observe=observe)
        else:  # a form with its page's fields, as a browser sends it
            answer = ctx.flows.send(actor, spec, observe=observe)
        cookie = answer.cookie(ctx.scenario.cookie or "")
        token = cookie.value if cookie is not None and not cookie.deletes() else ""
    if not token:
        return None
    return Sample(token, answer.started, answer.finished, _date(answer))


def _date(answer: Exchange) -> float | None:
    value = answer.header("date")
    try:
        return parsedate_to_datetime(value).timestamp() if value else None
    except (TypeError, ValueError):
        return None


def clock_offset(samples: Sequence[Sample]) -> tuple[float, float]:
    """Bounds on (server clock - our clock). An answer dated D was made at server time in
    [D, D + 1), between our ``sent`` and ``received``: so the offset lies in
    [D - received, D + 1 - sent]. Without usable dates: the same machine's clock, +-1 s."""
    low, high = -1.0, 1.0
    dated = [s for s in samples if s.date is not None]
    if dated:
        low = max(s.date - s.received for s in dated if s.date is not None)
        high = min(s.date + 1 - s.sent for s in dated if s.date is not None)
        if low > high:  # a clock step during the harvest: fall back to one wide window
            low, high = low - 1, high + 1
            low, high = min(low, high), max(low, high)
    return low, high


def report(ctx: Context, a: TokenAnalysis) -> None:
    summary = (
        f"{a.samples} tokens, {a.shape.encoding}, {a.analysed_bits} variable bits,"
        f" effective entropy about {a.effective_bits:.0f} bits, verdict"
        f" {'sound' if a.sound else 'weak'}"
    )
    evidence = {k: v for k, v in ctx.data["harvest"].items() if k != "bit_p_values"}
    ctx.report(
        "token-analysis",
        summary + ". Passing these tests does not prove the tokens unpredictable.",
        evidence=evidence,
    )
    if a.shape.encoding == "jwt":
        ctx.note(
            "harvest: the tokens are JWTs; their randomness is not analysed (see the JWT probe)"
        )
        return
    if a.clock is not None:
        ctx.report(
            "token-predictable",
            f"tokens were recomputed from the time they were issued: {a.clock.construction}",
            evidence={
                "construction": a.clock.construction,
                "tokens_reproduced": a.clock.reproduced,
            },
        )
    elif a.sequential_share >= 0.5:
        ctx.report(
            "token-predictable",
            f"{a.sequential_share:.0%} of consecutive tokens differ by a small step (a counter)",
            evidence={"sequential_share": a.sequential_share},
        )
    if a.duplicates > a.allowed_duplicates:
        ctx.report(
            "token-duplicates",
            f"{a.duplicates} of {a.samples} harvested tokens were issued before",
            evidence={"duplicates": a.duplicates},
        )
    if not a.predictable and a.effective_bits < 128:
        ctx.report(
            "token-low-entropy",
            f"estimated effective entropy {a.effective_bits:.0f} bits (ASVS asks for 128)",
            severity=Severity.HIGH if a.effective_bits < 64 else Severity.MEDIUM,
            evidence={"effective_bits": a.effective_bits, "analysed_bits": a.analysed_bits},
        )
    statistical = [r for r in a.reasons if "fail" in r]
    if statistical and not a.predictable and a.effective_bits >= 128:
        ctx.report("token-statistics", "; ".join(statistical), evidence={"reasons": statistical})
    if a.shape.readable or a.shape.timestamps:
        parts = []
        if a.shape.readable:
            parts.append("decoded tokens are text with the words " + ", ".join(a.shape.readable))
        if a.shape.timestamps:
            parts.append("a timestamp sits at " + "; ".join(a.shape.timestamps))
        ctx.report("token-structure", "; ".join(parts), evidence=a.shape.as_json())
