"""How often does a perfect generator fail the FIPS 140-2 battery? Measured and computed.

    .venv/bin/python benchmarks/randomness_false_alarm.py --streams 1000000

Draws ``--streams`` independent 20,000-bit streams from ``os.urandom``, runs
:func:`sessionward.audit.randomness.check_stream` on each, and counts failures per test and per runs
interval set. It also prints analytic values for comparison: monobit (exact binomial), poker
(chi-square approximation), long run (exact recurrence) and runs (normal approximation per
count), plus a calibration check of the p-values used for the "gross failure" rule.
The results are recorded in docs/randomness.md; ``STREAM_FALSE_ALARM`` in
``sessionward/audit/randomness.py`` is the upper confidence bound printed here, rounded up.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from statistics import NormalDist

from sessionward.audit.randomness import (
    LONG_RUN_LIMIT,
    MONOBIT_BOUNDS,
    POKER_BOUNDS,
    RUNS_INTERVALS,
    STREAM_BITS,
    STREAM_BYTES,
    check_stream,
)

N = STREAM_BITS
TESTS = ("monobit", "poker", "runs:netbsd", "runs:fips-text", "long-run")
P_LEVELS = (1e-2, 1e-3, 1e-4)


def binomial_cdf(k: int, n: int) -> float:
    log_total = math.lgamma(n + 1) - n * math.log(2)
    return sum(
        math.exp(log_total - math.lgamma(j + 1) - math.lgamma(n - j + 1)) for j in range(k + 1)
    )


def monobit_exact() -> float:
    low, high = MONOBIT_BOUNDS
    return binomial_cdf(low, N) + binomial_cdf(N - high, N)  # P(X <= low) + P(X >= high)


def chi2_15_cdf(x: float) -> float:
    """P(chi2(15) <= x) by the lower regularised gamma series (independent of the module)."""
    a, half = 7.5, x / 2
    term = total = 1 / a
    n = 1
    while term > total * 1e-17:
        term *= half / (a + n)
        total += term
        n += 1
    return total * math.exp(a * math.log(half) - half - math.lgamma(a))


def poker_chi2() -> float:
    low, high = POKER_BOUNDS
    return chi2_15_cdf(low) + 1 - chi2_15_cdf(high)


def long_run_exact(limit: int = LONG_RUN_LIMIT) -> float:
    """P(some run >= limit) in N fair bits, by the run-length recurrence."""
    state = [0.0] * limit  # state[L] = P(no long run so far, current run has length L)
    state[1] = 1.0
    for _ in range(N - 1):
        nxt = [0.0] * limit
        nxt[1] = 0.5 * sum(state)
        for length in range(1, limit - 1):
            nxt[length + 1] = 0.5 * state[length]
        state = nxt
    return 1 - sum(state)


def runs_normal(intervals: str) -> tuple[float, float]:
    """(sum, 1 - product) of per-count out-of-interval probabilities, normal approximation.

    Exactly-k runs of one bit value: mean (n-k+3)/2^(k+2), variance ~ n*(p + p^2*(1-2k)),
    p = 2^-(k+2); 6-or-more: mean (n-4)/2^7, variance ~ n*q*(1-13q), q = 2^-7.
    """
    probabilities = []
    for index, (low, high) in enumerate(RUNS_INTERVALS[intervals]):
        k = index + 1
        if k < 6:
            p = 2.0 ** -(k + 2)
            mean, var = (N - k + 3) * p, N * (p + p * p * (1 - 2 * k))
        else:
            q = 2.0**-7
            mean, var = (N - 4) * q, N * q * (1 - 13 * q)
        dist = NormalDist(mean, math.sqrt(var))
        outside = dist.cdf(low - 0.5) + 1 - dist.cdf(high + 0.5)
        probabilities += [outside, outside]  # zeros and ones
    return sum(probabilities), 1 - math.prod(1 - p for p in probabilities)


def upper_bound(count: int, total: int, z: float = 3.09) -> float:
    """One-sided ~99.9 % upper confidence bound of a rate (Wilson score interval)."""
    rate = count / total
    denom = 1 + z * z / total
    centre = rate + z * z / (2 * total)
    spread = z * math.sqrt(rate * (1 - rate) / total + z * z / (4 * total * total))
    return (centre + spread) / denom


def simulate(streams: int) -> None:
    fails = dict.fromkeys(TESTS, 0)
    any_fail = {"netbsd": 0, "fips-text": 0}
    low_p = {
        (stat, level): 0
        for stat in ("monobit", "poker", "transitions", "long-run")
        for level in P_LEVELS
    }
    started = time.perf_counter()
    for _ in range(streams):
        result = check_stream(os.urandom(STREAM_BYTES), intervals="netbsd")
        counts = (result.runs.zeros, result.runs.ones)
        base = not (result.monobit.passed and result.poker.passed and result.long_run.passed)
        fails["monobit"] += not result.monobit.passed
        fails["poker"] += not result.poker.passed
        fails["long-run"] += not result.long_run.passed
        for name in ("netbsd", "fips-text"):
            table = RUNS_INTERVALS[name]
            bad = any(not table[i][0] <= c[i] <= table[i][1] for c in counts for i in range(6))
            fails[f"runs:{name}"] += bad
            any_fail[name] += base or bad
        values = (
            ("monobit", result.monobit.p_value),
            ("poker", result.poker.p_value),
            ("transitions", result.runs.p_value),
            ("long-run", result.long_run.p_value),
        )
        for stat, value in values:
            for level in P_LEVELS:
                low_p[stat, level] += value < level
    elapsed = time.perf_counter() - started
    print(f"simulated {streams} streams from os.urandom in {elapsed:.0f} s")
    for name in TESTS:
        print(f"  {name:15s} fails {fails[name]:7d}  rate {fails[name] / streams:.3e}")
    for name, count in any_fail.items():
        rate, bound = count / streams, upper_bound(count, streams)
        print(f"  any test ({name:9s}) {count:7d}  rate {rate:.3e}  99.9% upper bound {bound:.3e}")
    print("p-value calibration: fraction of streams with p < level (should be <= level)")
    for (stat, level), count in low_p.items():
        print(f"  {stat:12s} p < {level:g}: {count / streams:.2e}")


def analytic() -> None:
    print("analytic per-stream failure probabilities")
    monobit, poker, long_run = monobit_exact(), poker_chi2(), long_run_exact()
    approx = -math.expm1(-(N - LONG_RUN_LIMIT + 2) / 2.0**LONG_RUN_LIMIT)
    print(f"  monobit (exact binomial)          {monobit:.3e}")
    print(f"  poker (chi-square, 15 df)         {poker:.3e}")
    print(f"  long run (exact recurrence)       {long_run:.3e}", end="")
    print(f"   Poisson approximation {approx:.3e}")
    for name in RUNS_INTERVALS:
        union, independent = runs_normal(name)
        total = 1 - (1 - monobit) * (1 - poker) * (1 - long_run) * (1 - independent)
        print(f"  runs {name:9s} (normal approx.)  {independent:.3e} (union bound {union:.3e})")
        print(f"  any test, {name:9s} (if independent) {total:.3e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=1_000_000)
    args = parser.parse_args()
    analytic()
    if args.streams > 0:
        simulate(args.streams)


if __name__ == "__main__":
    main()
