"""Token randomness, Burp-Sequencer style, for any sample size (WSTG-SESS-01, ASVS 7.2.3).

:func:`analyse_tokens` takes harvested tokens as text, in harvest order, and:

1. describes their shape (:mod:`sessionward.audit.tokenshape`): static parts, encoding,
   readable words, embedded timestamps; JWTs are only described (their randomness is the
   signer's business, and the JWT probe tests them);
2. per variable character position, tests that characters are uniform over the observed set
   and that the step from one token to the next is uniform (chi-square);
3. per bit (the character's index in its position's set), runs monobit, runs (transition
   count), poker and long-run tests with p-values valid for the sample size, and tests every
   pair of bit positions for correlation (Bonferroni-adjusted per position; beyond 512 bits,
   each position against its 128 neighbours on each side);
4. at exactly 20,000 tokens, also the FIPS 140-2 battery with its fixed thresholds
   (:func:`sessionward.audit.randomness.analyse_samples`);
5. counts duplicates, looks for counters (small steps between consecutive tokens) and
   correlation with time, and tries to recompute tokens from the clock
   (:mod:`sessionward.audit.clockcheck`).

Effective entropy is reported Burp's way (bits passing every test at significance levels
from 0.001 % to 10 %) and as one estimate: the analysed bits, less those that fail beyond
what chance explains, capped by what the duplicate count allows. Like every statistical test,
passing says only that no defect was found; a hash of a counter passes.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any

from sessionward.audit._stats import (
    binomial_two_sided,
    chi2_tails,
    chi2_upper,
    longest_ones,
    normal_two_sided,
    poisson_upper_tail,
)
from sessionward.audit.clockcheck import ClockMatch, TimedToken, find_clock_derivation
from sessionward.audit.randomness import STREAM_BITS, SampleAnalysis, allowed_failures
from sessionward.audit.randomness import analyse_samples as fips_samples
from sessionward.audit.tokenshape import Shape, decode_text, describe, variable_bits

__all__ = ["LEVELS", "BitResult", "CharResult", "TokenAnalysis", "analyse_tokens"]

#: Significance levels of the effective-entropy chart (Burp's range); the headline uses 1 %.
LEVELS = (0.00001, 0.0001, 0.001, 0.01, 0.05, 0.1)
_HEADLINE = 0.01
_BIT_TESTS = 5  # monobit, runs, poker, long run, correlation
_ENOUGH_BITS = 128  # ASVS 5.0 7.2.3


@dataclass(frozen=True, slots=True)
class BitResult:
    position: int
    ones: float  # share of ones
    p_monobit: float
    p_runs: float
    p_poker: float
    p_long_run: float
    p_correlation: float

    @property
    def p_min(self) -> float:
        return min(self.p_monobit, self.p_runs, self.p_poker, self.p_long_run, self.p_correlation)


@dataclass(frozen=True, slots=True)
class CharResult:
    position: int  # in the token
    charset: int
    p_count: float
    p_transition: float

    @property
    def p_min(self) -> float:
        return min(self.p_count, self.p_transition)


@dataclass(frozen=True, slots=True)
class TokenAnalysis:
    shape: Shape
    samples: int
    analysed_bits: int
    nominal_bits: float  # sum of log2(character set size) over variable positions
    bits: tuple[BitResult, ...]
    chars: tuple[CharResult, ...]
    entropy_by_level: tuple[tuple[float, int], ...]
    effective_bits: float
    gross_bits: tuple[int, ...]
    gross_chars: tuple[int, ...]
    failing_bits: int  # at 1 %
    allowed_failing: int
    duplicates: int
    allowed_duplicates: int
    sequential_share: float
    time_correlation: float | None
    time_correlation_p: float | None
    clock: ClockMatch | None
    fips: SampleAnalysis | None
    compression_ratio: float | None
    reasons: tuple[str, ...] = field(default=())

    @property
    def sound(self) -> bool:
        return not self.reasons

    @property
    def predictable(self) -> bool:
        return self.clock is not None or self.sequential_share >= 0.5

    def as_json(self) -> dict[str, Any]:
        return {
            "shape": self.shape.as_json(),
            "samples": self.samples,
            "analysed_bits": self.analysed_bits,
            "nominal_bits": round(self.nominal_bits, 1),
            "effective_bits": round(self.effective_bits, 1),
            "entropy_by_significance": [
                {"level": level, "bits": bits} for level, bits in self.entropy_by_level
            ],
            "gross_bit_positions": list(self.gross_bits),
            "gross_character_positions": list(self.gross_chars),
            "bits_failing_at_1_percent": self.failing_bits,
            "bits_failing_explained_by_chance": self.allowed_failing,
            "duplicates": self.duplicates,
            "sequential_share": round(self.sequential_share, 4),
            "time_correlation": self.time_correlation,
            "clock_construction": self.clock.construction if self.clock else None,
            "fips_140_2": None
            if self.fips is None
            else {
                "passed": self.fips.passed,
                "intervals": self.fips.intervals,
                "failing_positions": len(self.fips.failing),
                "allowed_failures": self.fips.allowed_failures,
                "gross_positions": len(self.fips.gross),
            },
            "compression_ratio": self.compression_ratio,
            "verdict": "sound" if self.sound else "weak",
            "reasons": list(self.reasons),
            "bit_p_values": [round(b.p_min, 6) for b in self.bits],
        }


def analyse_tokens(
    tokens: Sequence[str],
    windows: Sequence[tuple[float, float]] | None = None,
    *,
    false_alarm: float = 1e-6,
) -> TokenAnalysis:
    """Analyse ``tokens`` (harvest order). ``windows[i]`` is when token ``i`` can have been
    issued, on the server's clock (seconds since 1970); without it there is no clock check
    and no time correlation. A perfect generator is called weak with probability at most
    ``false_alarm`` (statistical rules only; duplicates and clock reproductions are facts)."""
    if len(tokens) < 100:
        raise ValueError("need at least 100 tokens")
    received = [w[1] for w in windows] if windows is not None else None
    shape, middles = describe(tokens, received)
    kept_windows = None
    if windows is not None:
        kept_windows = [w for t, w in zip(tokens, windows, strict=True) if len(t) == shape.length]
    duplicates = len(tokens) - len(set(tokens))
    if shape.encoding == "jwt":
        return _jwt_only(shape, len(tokens), duplicates)
    variable = variable_bits(middles, shape.encoding)
    n, width = len(middles), variable.width
    streams = _position_streams(variable.tokens, width)
    budget = false_alarm / 3
    bits = _bit_results(streams, n)
    chars = _char_results(middles, len(shape.prefix))
    gross_p = budget / max(1, width * _BIT_TESTS)
    gross_bits = tuple(b.position for b in bits if b.p_min < gross_p)
    char_gross_p = budget / max(1, 2 * len(chars))
    gross_chars = tuple(c.position for c in chars if c.p_min < char_gross_p)
    failing = sum(b.p_min < _HEADLINE for b in bits)
    per_bit_rate = min(1.0, _BIT_TESTS * _HEADLINE)
    allowed = allowed_failures(width, per_bit_rate, budget) if width else 0
    levels = tuple((lv, sum(b.p_min >= lv for b in bits)) for lv in LEVELS)
    integers, value_bits = _values(middles, variable.tokens, width)
    sequential = _sequential_share(integers, value_bits)
    correlation = _spearman([w[1] for w in kept_windows], integers) if kept_windows else None
    clock = None
    if kept_windows is not None:
        clock = find_clock_derivation(_timed(tokens, windows or [], shape))
    expected_dups = n * (n - 1) / 2 / 2.0**width if width < 1024 else 0.0
    allowed_dups = _allowed_duplicates(expected_dups, budget)
    defects = len(gross_bits) if failing <= allowed else max(failing, len(gross_bits))
    estimate = float(width - defects) + (variable.trimmed_bits if not gross_chars else 0)
    if duplicates > allowed_dups:
        pairs = len(tokens) * (len(tokens) - 1) / 2
        estimate = min(estimate, max(0.0, math.log2(pairs / duplicates)))
    if clock is not None or sequential >= 0.5:
        estimate = 0.0
    fips = None
    if n == STREAM_BITS and width >= 8:
        fips = fips_samples(_packed(variable.tokens, width))
    analysis = TokenAnalysis(
        shape=shape,
        samples=n,
        analysed_bits=width,
        nominal_bits=variable.char_bits,
        bits=bits,
        chars=chars,
        entropy_by_level=levels,
        effective_bits=estimate,
        gross_bits=gross_bits,
        gross_chars=gross_chars,
        failing_bits=failing,
        allowed_failing=allowed,
        duplicates=duplicates,
        allowed_duplicates=allowed_dups,
        sequential_share=sequential,
        time_correlation=correlation[0] if correlation else None,
        time_correlation_p=correlation[1] if correlation else None,
        clock=clock,
        fips=fips,
        compression_ratio=_compression(variable.tokens, width),
    )
    return _with_reasons(analysis)


def _with_reasons(a: TokenAnalysis) -> TokenAnalysis:
    reasons = []
    if a.clock is not None:
        reasons.append(f"tokens recomputed from the clock: {a.clock.construction}")
    if a.sequential_share >= 0.5:
        reasons.append(f"{a.sequential_share:.0%} of consecutive tokens differ by a small step")
    if a.duplicates > a.allowed_duplicates:
        reasons.append(f"{a.duplicates} duplicate token(s)")
    if a.effective_bits < _ENOUGH_BITS:
        reasons.append(f"estimated effective entropy {a.effective_bits:.0f} bits (< 128)")
    if a.gross_bits:
        reasons.append(f"{len(a.gross_bits)} bit position(s) fail grossly")
    if a.gross_chars:
        reasons.append(f"{len(a.gross_chars)} character position(s) fail grossly")
    if a.failing_bits > a.allowed_failing:
        reasons.append(f"{a.failing_bits} bits fail at 1 %, chance explains {a.allowed_failing}")
    if a.fips is not None and not a.fips.passed:
        reasons.append("FIPS 140-2 per-position battery fails: " + "; ".join(a.fips.reasons))
    return replace(a, reasons=tuple(reasons))


def _jwt_only(shape: Shape, count: int, duplicates: int) -> TokenAnalysis:
    reasons = (f"{duplicates} duplicate token(s)",) if duplicates else ()
    return TokenAnalysis(
        shape,
        count,
        0,
        0.0,
        (),
        (),
        (),
        0.0,
        (),
        (),
        0,
        0,
        duplicates,
        0,
        0.0,
        None,
        None,
        None,
        None,
        None,
        reasons,
    )


def _allowed_duplicates(expected: float, budget: float) -> int:
    """The Poisson quantile of the duplicate count at ``budget`` (a normal bound past 50,
    where the token space is so small that the entropy rule fails anyway)."""
    if expected > 50:
        return int(expected + 8 * math.sqrt(expected)) + 1
    allowed = 0
    while poisson_upper_tail(expected, allowed) > budget:
        allowed += 1
    return allowed


def _timed(
    tokens: Sequence[str], windows: Sequence[tuple[float, float]], shape: Shape
) -> list[TimedToken]:
    picked = [i for i, t in enumerate(tokens) if len(t) == shape.length][:2]
    out = []
    for i in picked:
        middle = tokens[i][len(shape.prefix) : len(tokens[i]) - len(shape.suffix)]
        out.append(TimedToken(middle, decode_text(middle)[1], *windows[i]))
    return out


# -- bit level ------------------------------------------------------------------------------------


def _position_streams(bit_tokens: Sequence[str], width: int) -> list[int]:
    """Bit position j across the tokens, as one integer (first token most significant)."""
    if not width:
        return []
    return [int("".join(column), 2) for column in zip(*bit_tokens, strict=True)]


def _bit_results(streams: Sequence[int], n: int) -> tuple[BitResult, ...]:
    full = (1 << n) - 1
    correlation = _correlations(streams, n)
    results = []
    for position, x in enumerate(streams):
        ones = x.bit_count()
        transitions = ((x ^ (x >> 1)) & (full >> 1)).bit_count()
        longest = max(longest_ones(x), longest_ones(x ^ full))
        results.append(
            BitResult(
                position=position,
                ones=ones / n,
                p_monobit=binomial_two_sided(ones, n),
                p_runs=binomial_two_sided(transitions, n - 1),
                p_poker=_poker(x, n),
                p_long_run=min(1.0, -math.expm1(-math.ldexp(n - longest + 2, -longest))),
                p_correlation=correlation[position],
            )
        )
    return tuple(results)


def _poker(x: int, n: int) -> float:
    """Two-sided chi-square (15 df) of the 4-bit groups; 1.0 below 80 groups (5 per cell)."""
    groups = n // 4
    if groups < 80:
        return 1.0
    x >>= n - 4 * groups
    low = int("0001" * groups, 2)
    masks = [low]
    for shift in (3, 2, 1, 0):
        plane = (x >> shift) & low
        masks = [m & p for m in masks for p in (plane ^ low, plane)]
    statistic = 16 / groups * sum(m.bit_count() ** 2 for m in masks) - groups
    lower, upper = chi2_tails(statistic, 15)
    return min(1.0, 2 * min(lower, upper))


_NEIGHBOURS = 128  # beyond 512 bits, each position is paired with its 128 neighbours each side


def _correlations(streams: Sequence[int], n: int) -> list[float]:
    """Per position: the smallest pairwise agreement p-value, times the number of partners
    (every other position up to 512 bits; the neighbours within 128 positions beyond, which
    keeps the work linear for long tokens)."""
    width = len(streams)
    reach = width if width <= 4 * _NEIGHBOURS else _NEIGHBOURS
    best = [1.0] * width
    partners = [0] * width
    for i in range(width):
        xi = streams[i]
        for j in range(i + 1, min(width, i + reach + 1)):
            p = binomial_two_sided((xi ^ streams[j]).bit_count(), n)
            partners[i] += 1
            partners[j] += 1
            if p < best[i]:
                best[i] = p
            if p < best[j]:
                best[j] = p
    return [min(1.0, p * max(1, k)) for p, k in zip(best, partners, strict=True)]


def _packed(bit_tokens: Sequence[str], width: int) -> list[bytes]:
    usable = width - width % 8
    return [int(t[:usable], 2).to_bytes(usable // 8, "big") for t in bit_tokens]


# -- character level ----------------------------------------------------------------------------


def _char_results(middles: Sequence[str], offset: int) -> tuple[CharResult, ...]:
    n = len(middles)
    results = []
    for i in range(len(middles[0]) if middles else 0):
        column = [m[i] for m in middles]
        charset = sorted(set(column))
        k = len(charset)
        if k < 2:
            continue
        index = {c: v for v, c in enumerate(charset)}
        values = [index[c] for c in column]
        steps = Counter((b - a) % k for a, b in pairwise(values))
        results.append(
            CharResult(
                position=offset + i,
                charset=k,
                p_count=_uniform_p(Counter(values), k, n),
                p_transition=_uniform_p(steps, k, n - 1),
            )
        )
    return tuple(results)


def _uniform_p(counts: Counter[int], k: int, n: int) -> float:
    expected = n / k
    if expected < 5:
        return 1.0  # too few samples for the chi-square approximation
    statistic = sum((counts.get(v, 0) - expected) ** 2 for v in range(k)) / expected
    return chi2_upper(statistic, k - 1)


# -- order and time -----------------------------------------------------------------------------


def _values(middles: Sequence[str], bit_tokens: Sequence[str], width: int) -> tuple[list[int], int]:
    """Each token's variable part as a number (decoded when it is hex or base64, so a hex
    counter reads as the counter), and the number's width in bits."""
    decoded = [decode_text(m)[1] for m in middles]
    if middles and all(d is not None for d in decoded):
        raw = [d or b"" for d in decoded]
        return [int.from_bytes(d, "big") for d in raw], 8 * len(raw[0])
    return [int(t, 2) if t else 0 for t in bit_tokens], width


def _sequential_share(values: Sequence[int], width: int) -> float:
    """The share of consecutive tokens whose values differ by at most max(16, 2^(width/4)):
    under 2^(1 - 3 width/4) for random values of 16 bits or more (a few percent below that),
    near 1 for a counter, however many requests ran in parallel."""
    if width < 8 or len(values) < 2:
        return 0.0
    limit = max(16, 1 << (width // 4))
    small = sum(abs(b - a) <= limit for a, b in pairwise(values))
    return small / (len(values) - 1)


def _spearman(times: Sequence[float], values: Sequence[int]) -> tuple[float, float] | None:
    n = len(values)
    if n < 3 or len(set(times)) < 2 or len(set(values)) < 2:
        return None
    rx, ry = _ranks(times), _ranks(values)
    mean = (n + 1) / 2
    cov = sum((a - mean) * (b - mean) for a, b in zip(rx, ry, strict=True))
    var_x = sum((a - mean) ** 2 for a in rx)
    var_y = sum((b - mean) ** 2 for b in ry)
    r = cov / math.sqrt(var_x * var_y)
    return round(r, 4), normal_two_sided(r * math.sqrt(n - 1))


def _ranks(values: Sequence[float] | Sequence[int]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _compression(bit_tokens: Sequence[str], width: int) -> float | None:
    """zlib's compressed size over the raw size of the packed variable bits (an intuitive
    indicator only: random data does not compress, so about 1.0)."""
    packed = b"".join(_packed(bit_tokens, width))
    if len(packed) < 64:
        return None
    return round(len(zlib.compress(packed, 9)) / len(packed), 4)
