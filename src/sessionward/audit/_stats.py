"""Distributions and bit tricks shared by the randomness battery and the token sequencer.

Standard library only. Every p-value here is a tail probability under "the bits are fair
coin flips"; the approximations used are named in each docstring.
"""

from __future__ import annotations

import math
from functools import cache

__all__ = [
    "binomial_two_sided",
    "binomial_upper_tail",
    "chi2_tails",
    "chi2_upper",
    "longest_ones",
    "normal_two_sided",
    "poisson_upper_tail",
]


@cache
def _binomial_cdf(n: int) -> tuple[float, ...]:
    """P(X <= k) for X ~ Binomial(n, 1/2), k = 0..n//2 (the lower half is all we need)."""
    log_total = math.lgamma(n + 1) - n * math.log(2)
    cdf, acc = [], 0.0
    for k in range(n // 2 + 1):
        acc += math.exp(log_total - math.lgamma(k + 1) - math.lgamma(n - k + 1))
        cdf.append(acc)
    return tuple(cdf)


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair trials (symmetric: 2 * tail)."""
    distance = min(k, n - k)  # by symmetry P(X >= n-d) = P(X <= d)
    if 2 * distance >= n:
        return 1.0
    return min(1.0, 2 * _binomial_cdf(n)[distance])


def chi2_tails(statistic: float, df: int) -> tuple[float, float]:
    """(P(chi2 <= x), P(chi2 >= x)) for integer ``df``, via the regularised gamma function."""
    a, x = df / 2, max(statistic, 0.0) / 2
    if x == 0:
        return 0.0, 1.0
    if x < a + 1:  # the lower series converges fast here and avoids 1 - (1 - tiny)
        lower = _gamma_lower_series(a, x)
        return lower, 1.0 - lower
    upper = _gamma_upper_closed(a, x)
    return 1.0 - upper, upper


def _gamma_lower_series(a: float, x: float) -> float:
    term = total = 1.0 / a
    n = 1
    while term > total * 1e-17 and n < 1000:
        term *= x / (a + n)
        total += term
        n += 1
    return min(1.0, total * math.exp(a * math.log(x) - x - math.lgamma(a)))


def _gamma_upper_closed(a: float, x: float) -> float:
    """Q(a, x) for integer or half-integer ``a`` (chi-square with integer df), in closed form:

    Q(m, x) = e^-x sum_{k<m} x^k / k!
    Q(m + 1/2, x) = erfc(sqrt x) + e^-x sum_{k=1..m} x^(k - 1/2) / Gamma(k + 1/2)
    """
    log_x = math.log(x)
    if a == int(a):
        return min(1.0, sum(math.exp(k * log_x - x - math.lgamma(k + 1)) for k in range(int(a))))
    total = math.erfc(math.sqrt(x))
    for k in range(1, int(a) + 1):
        total += math.exp((k - 0.5) * log_x - x - math.lgamma(k + 0.5))
    return min(1.0, total)


def binomial_upper_tail(n: int, p: float, k: int) -> float:
    """P(X > k) for X ~ Binomial(n, p)."""
    if k >= n:
        return 0.0
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for j in range(n, k, -1):  # smallest terms first
        total += math.exp(
            math.lgamma(n + 1)
            - math.lgamma(j + 1)
            - math.lgamma(n - j + 1)
            + j * log_p
            + (n - j) * log_q
        )
    return min(1.0, total)


def poisson_upper_tail(mean: float, k: int) -> float:
    """P(X > k) for X ~ Poisson(mean)."""
    if mean <= 0:
        return 0.0
    term = math.exp(-mean)
    below = term
    for j in range(1, k + 1):
        term *= mean / j
        below += term
    if below < 0.5:
        return 1.0 - below
    # Sum the tail directly so tiny tails are not lost to 1 - (1 - tiny).
    total, j, term = 0.0, k + 1, term * mean / (k + 1)
    while term > 0 and (term > total * 1e-17) and j < k + 10_000:
        total += term
        j += 1
        term *= mean / j
    return min(1.0, total)


def longest_ones(x: int) -> int:
    """Length of the longest run of ones, in O(log L) big-integer operations."""
    if not x:
        return 0
    ladder = [(1, x)]  # (k, y_k) for k = 1, 2, 4, ...: y_k marks starts of k ones in a row
    while True:
        k, y = ladder[-1]
        doubled = y & (y >> k)
        if not doubled:
            break
        ladder.append((2 * k, doubled))
    length, current = ladder.pop()
    for step, y_step in reversed(ladder):  # greedy binary search in [length, 2*length)
        longer = current & (y_step >> length)
        if longer:
            length, current = length + step, longer
    return length


def chi2_upper(statistic: float, df: int) -> float:
    """P(chi2 >= statistic) with ``df`` degrees of freedom."""
    return chi2_tails(statistic, df)[1]


def normal_two_sided(z: float) -> float:
    """Two-sided tail probability of a standard normal deviate."""
    return math.erfc(abs(z) / math.sqrt(2))
