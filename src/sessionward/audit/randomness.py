"""FIPS 140-2 statistical tests and a Burp-Sequencer-style analysis of token samples.

Pure standard library and no other sessionward import, so the black-box auditor can reuse it.

* :func:`check_stream` runs the four FIPS 140-2 tests (monobit, poker, runs, long run) on one
  stream of exactly 20,000 bits (2,500 bytes, most significant bit of byte 0 first).
* :func:`analyse_samples` takes 20,000 equal-length byte strings (decoded tokens, known-constant
  fields removed), builds one 20,000-bit stream per bit position (that bit across the samples,
  in sample order), tests each, and gives one verdict that tolerates exactly as many failing
  positions as chance explains at ``false_alarm`` (default 1e-6), while failing outright on any
  gross failure (a stuck or heavily biased bit) and on duplicate samples chance cannot explain.

The runs test has two interval sets in circulation (see docs/randomness.md):
``"netbsd"`` (the intervals of deployed code: NetBSD ``rngtest``, rng-tools, libsrtp) and
``"fips-text"`` (the intervals printed in the FIPS 140-2 text). Results carry the label.

Passing says only that no statistical defect was found: a seeded deterministic generator
(or a hash of a counter) passes too. See docs/randomness.md for the false-alarm arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Final, Literal

from sessionward.audit._stats import (
    binomial_two_sided,
    binomial_upper_tail,
    chi2_tails,
    longest_ones,
    poisson_upper_tail,
)

__all__ = [
    "LONG_RUN_LIMIT",
    "MONOBIT_BOUNDS",
    "POKER_BOUNDS",
    "RUNS_INTERVALS",
    "STREAM_BITS",
    "STREAM_BYTES",
    "STREAM_FALSE_ALARM",
    "DuplicateCheck",
    "IntervalSet",
    "LongRunResult",
    "MonobitResult",
    "PokerResult",
    "PositionResult",
    "RunsResult",
    "SampleAnalysis",
    "StreamResult",
    "allowed_failures",
    "analyse_samples",
    "check_stream",
    "long_run",
    "monobit",
    "pack_bits",
    "poker",
    "runs",
]

STREAM_BITS: Final = 20_000
STREAM_BYTES: Final = STREAM_BITS // 8
_NIBBLES: Final = STREAM_BITS // 4

IntervalSet = Literal["netbsd", "fips-text"]

#: Monobit: the number of ones X passes when ``low < X < high`` (strict).
MONOBIT_BOUNDS: Final = (9_725, 10_275)
#: Poker: X = 16/5000 * sum(f(i)^2) - 5000 passes when ``low < X < high`` (strict).
POKER_BOUNDS: Final = (2.16, 46.17)
#: Long run: a run of this many equal bits or more fails.
LONG_RUN_LIMIT: Final = 26
#: Runs: inclusive intervals for run lengths 1, 2, 3, 4, 5 and 6-or-more, for 0-runs and 1-runs.
RUNS_INTERVALS: Final[dict[str, tuple[tuple[int, int], ...]]] = {
    "netbsd": ((2315, 2685), (1114, 1386), (527, 723), (240, 384), (103, 209), (103, 209)),
    "fips-text": ((2343, 2657), (1135, 1365), (542, 708), (251, 373), (111, 201), (111, 201)),
}
#: Probability that one stream from a perfect generator fails at least one of the four tests,
#: per interval set: the upper 99.9 % confidence bound measured on 2 x 10^6 os.urandom streams
#: (8.05e-4 and 4.24e-3 observed; 7.8e-4 and 4.2e-3 computed), rounded up. See
#: docs/randomness.md and benchmarks/randomness_false_alarm.py. The verdict's tolerance for
#: failing positions is derived from it.
STREAM_FALSE_ALARM: Final[dict[str, float]] = {
    "netbsd": 9e-4,
    "fips-text": 4.5e-3,
}
_GROSS_STATISTICS: Final = 4  # monobit, poker, transitions, long run
_POKER_DF: Final = 15

# Integer form of the poker bounds: X = 16*S/5000 - 5000, so low < X  <=>  16*S > 5000*(5000+low).
_POKER_LOW_16S: Final = 25_010_800  # 5000 * 5002.16
_POKER_HIGH_16S: Final = 25_230_850  # 5000 * 5046.17


# -- one stream ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonobitResult:
    """``ones`` counted; ``p_value`` is the exact two-sided binomial tail probability."""

    ones: int
    passed: bool
    p_value: float


@dataclass(frozen=True, slots=True)
class PokerResult:
    """``counts[i]`` is how often nibble ``i`` occurs; ``p_value`` is the two-sided
    chi-square (15 degrees of freedom) probability of ``statistic``."""

    counts: tuple[int, ...]
    statistic: float
    passed: bool
    p_value: float


@dataclass(frozen=True, slots=True)
class RunsResult:
    """Run counts for lengths 1..5 and 6-or-more, for runs of zeros and of ones.

    ``out_of_range`` lists ``(bit, length, count)`` for each count outside its interval
    (length 6 stands for 6-or-more). ``transitions`` (changes between neighbouring bits; runs
    = transitions + 1) is Binomial(19,999, 1/2) for a random stream; ``p_value`` is its exact
    two-sided tail probability, the runs figure used to spot gross failures.
    """

    intervals: str
    zeros: tuple[int, ...]
    ones: tuple[int, ...]
    out_of_range: tuple[tuple[int, int, int], ...]
    transitions: int
    passed: bool
    p_value: float


@dataclass(frozen=True, slots=True)
class LongRunResult:
    """The longest run (of ``bit``); ``p_value`` is the probability that a random stream has
    a run at least this long (Poisson approximation, accurate for the lengths that matter)."""

    longest: int
    bit: int
    passed: bool
    p_value: float


@dataclass(frozen=True, slots=True)
class StreamResult:
    """The four FIPS 140-2 tests on one 20,000-bit stream."""

    monobit: MonobitResult
    poker: PokerResult
    runs: RunsResult
    long_run: LongRunResult

    @property
    def passed(self) -> bool:
        return (
            self.monobit.passed
            and self.poker.passed
            and self.runs.passed
            and (self.long_run.passed)
        )

    @property
    def failed_tests(self) -> tuple[str, ...]:
        results = (
            ("monobit", self.monobit.passed),
            ("poker", self.poker.passed),
            ("runs", self.runs.passed),
            ("long-run", self.long_run.passed),
        )
        return tuple(name for name, ok in results if not ok)

    @property
    def min_p_value(self) -> float:
        """The smallest of the four p-values (monobit, poker, transitions, long run)."""
        return min(
            self.monobit.p_value, self.poker.p_value, self.runs.p_value, self.long_run.p_value
        )

    def report(self) -> str:
        low, high = MONOBIT_BOUNDS
        p_low, p_high = POKER_BOUNDS
        verdict = "PASS" if self.passed else "FAIL (" + ", ".join(self.failed_tests) + ")"
        lines = [
            f"FIPS 140-2 tests on {STREAM_BITS} bits: {verdict}",
            f"  monobit   {_mark(self.monobit.passed)} ones={self.monobit.ones}"
            f" (pass {low} < X < {high})  p={self.monobit.p_value:.3g}",
            f"  poker     {_mark(self.poker.passed)} X={self.poker.statistic:.4f}"
            f" (pass {p_low} < X < {p_high})  p={self.poker.p_value:.3g}",
            f"  runs      {_mark(self.runs.passed)} intervals={self.runs.intervals}"
            f" zeros={list(self.runs.zeros)} ones={list(self.runs.ones)}"
            f" transitions={self.runs.transitions} p={self.runs.p_value:.3g}",
            f"  long run  {_mark(self.long_run.passed)} longest={self.long_run.longest}"
            f" of {self.long_run.bit}s (fail at >= {LONG_RUN_LIMIT})"
            f"  p={self.long_run.p_value:.3g}",
        ]
        for bit, length, count in self.runs.out_of_range:
            label = f"{length}+" if length == 6 else str(length)
            lo, hi = RUNS_INTERVALS[self.runs.intervals][length - 1]
            lines.append(f"    runs of {bit}s, length {label}: {count} not in [{lo}, {hi}]")
        return "\n".join(lines)


def _mark(ok: bool) -> str:
    return "ok  " if ok else "FAIL"


def pack_bits(bits: Sequence[int]) -> bytes:
    """Pack a sequence of 0/1 values into bytes, first bit as the most significant."""
    if len(bits) % 8:
        raise ValueError("the number of bits must be a multiple of 8")
    value = int("".join("1" if b else "0" for b in bits) or "0", 2)
    return value.to_bytes(len(bits) // 8, "big")


def _as_int(stream: bytes) -> int:
    if not isinstance(stream, bytes | bytearray | memoryview):
        raise TypeError("a stream is bytes")
    if len(stream) != STREAM_BYTES:
        raise ValueError(f"a stream is exactly {STREAM_BYTES} bytes ({STREAM_BITS} bits)")
    return int.from_bytes(stream, "big")


def monobit(stream: bytes) -> MonobitResult:
    """FIPS 140-2 monobit test: the number of ones must lie strictly inside 9725..10275."""
    return _monobit(_as_int(stream))


def _monobit(x: int) -> MonobitResult:
    ones = x.bit_count()
    low, high = MONOBIT_BOUNDS
    return MonobitResult(ones, low < ones < high, binomial_two_sided(ones, STREAM_BITS))


_NIBBLE_LOW_BITS: Final = int("0001" * _NIBBLES, 2)


def poker(stream: bytes) -> PokerResult:
    """FIPS 140-2 poker test on the 5000 consecutive 4-bit segments."""
    return _poker(_as_int(stream))


def _nibble_counts(x: int) -> tuple[int, ...]:
    """How often each 4-bit value occurs: the four bit planes of the nibbles, aligned on each
    nibble's lowest bit, are combined into 16 "nibble equals v" masks (a binary tree of ANDs)."""
    masks = [_NIBBLE_LOW_BITS]
    for shift in (3, 2, 1, 0):  # the nibble's most significant bit first
        ones = (x >> shift) & _NIBBLE_LOW_BITS
        zeros = ones ^ _NIBBLE_LOW_BITS
        masks = [m & plane for m in masks for plane in (zeros, ones)]
    return tuple(m.bit_count() for m in masks)


def _poker(x: int) -> PokerResult:
    counts = _nibble_counts(x)
    sixteen_s = 16 * sum(f * f for f in counts)
    statistic = sixteen_s / _NIBBLES - _NIBBLES
    passed = _POKER_LOW_16S < sixteen_s < _POKER_HIGH_16S
    lower, upper = chi2_tails(statistic, _POKER_DF)
    return PokerResult(counts, statistic, passed, min(1.0, 2 * min(lower, upper)))


def runs(stream: bytes, *, intervals: IntervalSet = "netbsd") -> RunsResult:
    """FIPS 140-2 runs test: 0-runs and 1-runs of lengths 1..5 and 6+ within ``intervals``."""
    return _runs(_as_int(stream), intervals)


_ALL_ONES: Final = (1 << STREAM_BITS) - 1


def _runs_at_least(x: int, up_to: int) -> list[int]:
    """``[runs of ones of length >= k for k in 1..up_to]``, by bit-parallel shifts.

    ``y`` has bit j set when bits j..j+k-1 of ``x`` are all ones, so each maximal run of
    length L >= k leaves a block of L-k+1 set bits in ``y``; the blocks are counted by their
    ends (a set bit whose upper neighbour is clear).
    """
    out = []
    y = x
    for k in range(1, up_to + 1):
        if k > 1:
            y &= x >> (k - 1)
        out.append((y & ~(y >> 1)).bit_count())
    return out


def _run_counts(x: int) -> tuple[int, ...]:
    at_least = _runs_at_least(x, 6)
    return (*(at_least[i] - at_least[i + 1] for i in range(5)), at_least[5])


def _runs(x: int, intervals: str) -> RunsResult:
    table = RUNS_INTERVALS.get(intervals)
    if table is None:
        raise ValueError(f"unknown interval set {intervals!r}; use one of {sorted(RUNS_INTERVALS)}")
    zeros, ones = _run_counts(x ^ _ALL_ONES), _run_counts(x)
    bad = tuple(
        (bit, length + 1, count)
        for bit, counts in ((0, zeros), (1, ones))
        for length, count in enumerate(counts)
        if not table[length][0] <= count <= table[length][1]
    )
    transitions = ((x ^ (x >> 1)) & (_ALL_ONES >> 1)).bit_count()
    p_value = binomial_two_sided(transitions, STREAM_BITS - 1)
    return RunsResult(intervals, zeros, ones, bad, transitions, not bad, p_value)


def long_run(stream: bytes) -> LongRunResult:
    """FIPS 140-2 long run test: no run of 26 or more equal bits."""
    return _long_run(_as_int(stream))


def _long_run(x: int) -> LongRunResult:
    ones, zeros = longest_ones(x), longest_ones(x ^ _ALL_ONES)
    longest, bit = (ones, 1) if ones >= zeros else (zeros, 0)
    return LongRunResult(longest, bit, longest < LONG_RUN_LIMIT, _long_run_p_value(longest))


def _long_run_p_value(longest: int) -> float:
    """P(some run of either bit has length >= longest) for a random 20,000-bit stream.

    The expected number of maximal runs of length >= L (either bit) is (n - L + 2) / 2^L; such
    runs are rare and nearly independent, so the count is close to Poisson.
    """
    if longest <= 1:
        return 1.0
    expected = math.ldexp(STREAM_BITS - longest + 2, -longest)  # underflows to 0, never raises
    return min(1.0, -math.expm1(-expected))


def check_stream(stream: bytes, *, intervals: IntervalSet = "netbsd") -> StreamResult:
    """Run all four FIPS 140-2 tests on a 2,500-byte (20,000-bit) stream."""
    return _check(_as_int(stream), intervals)


def _check(x: int, intervals: str) -> StreamResult:
    return StreamResult(_monobit(x), _poker(x), _runs(x, intervals), _long_run(x))


def allowed_failures(positions: int, stream_false_alarm: float, budget: float) -> int:
    """The most failing positions a perfect generator reaches with probability above
    ``budget``: the smallest k with P(Binomial(positions, stream_false_alarm) > k) <= budget."""
    k = 0
    while binomial_upper_tail(positions, stream_false_alarm, k) > budget:
        k += 1
    return k


# -- many samples, Burp-style ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PositionResult:
    """One bit position of the samples: its 20,000-bit stream's results.

    ``position`` counts from the most significant bit of the first byte (0) onwards.
    ``gross`` is set when one of its four p-values is so small that chance cannot explain it
    even across every position and statistic tested (below ``SampleAnalysis.gross_threshold``).
    """

    position: int
    result: StreamResult
    gross: bool

    @property
    def passed(self) -> bool:
        return self.result.passed


@dataclass(frozen=True, slots=True)
class DuplicateCheck:
    """Repeated samples. With ``expected`` (the mean number of repeats for uniform samples of
    this width) tiny, any repeat is a defect; ``allowed`` is ``None`` when the samples are too
    short (under 32 bits) for the check to mean anything."""

    duplicates: int
    expected: float
    allowed: int | None

    @property
    def passed(self) -> bool:
        return self.allowed is None or self.duplicates <= self.allowed


@dataclass(frozen=True, slots=True)
class SampleAnalysis:
    """The verdict on a sample of tokens (see :func:`analyse_samples`)."""

    samples: int
    sample_bytes: int
    intervals: str
    false_alarm: float
    stream_false_alarm: float
    allowed_failures: int
    gross_threshold: float
    positions: tuple[PositionResult, ...]
    duplicates: DuplicateCheck
    failing: tuple[PositionResult, ...] = field(init=False)
    gross: tuple[PositionResult, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "failing", tuple(p for p in self.positions if not p.passed))
        object.__setattr__(self, "gross", tuple(p for p in self.positions if p.gross))

    @property
    def passed(self) -> bool:
        return (
            not self.gross and len(self.failing) <= self.allowed_failures and self.duplicates.passed
        )

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why the verdict is FAIL (empty when it passes)."""
        out = []
        if self.gross:
            out.append(f"{len(self.gross)} position(s) fail grossly")
        if len(self.failing) > self.allowed_failures:
            out.append(
                f"{len(self.failing)} failing positions, chance explains at most"
                f" {self.allowed_failures}"
            )
        if not self.duplicates.passed:
            out.append(f"{self.duplicates.duplicates} repeated sample(s)")
        return tuple(out)

    def report(self) -> str:
        bits = len(self.positions)
        verdict = "PASS" if self.passed else "FAIL: " + "; ".join(self.reasons)
        dup = self.duplicates
        dup_line = (
            f"duplicates: {dup.duplicates} (expected {dup.expected:.3g}, allowed {dup.allowed})"
            if dup.allowed is not None
            else f"duplicates: {dup.duplicates} (samples too short for this check)"
        )
        lines = [
            f"Token randomness (FIPS 140-2 per bit position, runs intervals: {self.intervals})",
            f"verdict: {verdict}",
            f"samples: {self.samples} x {self.sample_bytes} bytes = {bits} bit positions",
            f"failing positions: {len(self.failing)}; allowed by chance: {self.allowed_failures}"
            f" (per-stream false alarm {self.stream_false_alarm:g}, overall false alarm"
            f" <= {self.false_alarm:g})",
            f"gross failures (p < {self.gross_threshold:.3g}): {len(self.gross)}",
            dup_line,
            f"positions passing all four tests: {bits - len(self.failing)} of {bits}",
        ]
        for item in self.failing[:32]:
            result = item.result
            tag = " GROSS" if item.gross else ""
            lines.append(
                f"  bit {item.position:4d} (byte {item.position // 8}, bit {item.position % 8}):"
                f" fails {', '.join(result.failed_tests)}{tag}; ones={result.monobit.ones}"
                f" poker={result.poker.statistic:.2f} longest={result.long_run.longest}"
                f" min p={result.min_p_value:.3g}"
            )
        if len(self.failing) > 32:
            lines.append(f"  ... and {len(self.failing) - 32} more")
        return "\n".join(lines)


@cache
def _bit_tables() -> tuple[tuple[bytes, ...], ...]:
    """``tables[b][m]`` maps a byte to its bit ``b`` (0 = most significant) moved to bit
    position ``7 - m``: eight of them, one per slot, pack eight samples' bits into a byte."""
    return tuple(
        tuple(bytes(((v >> (7 - b)) & 1) << (7 - m) for v in range(256)) for m in range(8))
        for b in range(8)
    )


def _position_streams(samples: Sequence[bytes], width: int) -> list[int]:
    """One 20,000-bit integer per bit position: that bit of every sample, in sample order."""
    joined = b"".join(samples)
    tables = _bit_tables()
    streams = []
    for byte_index in range(width):
        column = joined[byte_index::width]
        slots = [column[m::8] for m in range(8)]
        for bit in range(8):
            value = 0
            for m, slot in enumerate(slots):
                value |= int.from_bytes(slot.translate(tables[bit][m]), "big")
            streams.append(value)
    return streams


def _duplicates(samples: Sequence[bytes], width: int, budget: float) -> DuplicateCheck:
    repeats = len(samples) - len(set(samples))
    bits = 8 * width
    pairs = len(samples) * (len(samples) - 1) / 2
    expected = pairs / 2.0**bits
    if bits < 32:
        return DuplicateCheck(repeats, expected, None)
    allowed = 0
    while poisson_upper_tail(expected, allowed) > budget:
        allowed += 1
    return DuplicateCheck(repeats, expected, allowed)


def analyse_samples(
    samples: Sequence[bytes],
    *,
    intervals: IntervalSet = "netbsd",
    false_alarm: float = 1e-6,
) -> SampleAnalysis:
    """Test every bit position of 20,000 equal-length samples and give one verdict.

    The verdict fails when (1) more positions fail the FIPS tests than chance explains, (2) any
    position fails grossly, or (3) samples repeat more than chance explains. Each rule gets a
    third of ``false_alarm``, so a perfect generator fails with probability at most
    ``false_alarm``. Remove known-constant fields (prefixes, versions) before calling: a
    constant bit is, rightly, a gross failure.
    """
    if len(samples) != STREAM_BITS:
        raise ValueError(f"need exactly {STREAM_BITS} samples, got {len(samples)}")
    if not 0 < false_alarm < 1:
        raise ValueError("false_alarm must be between 0 and 1")
    if intervals not in RUNS_INTERVALS:
        raise ValueError(f"unknown interval set {intervals!r}; use one of {sorted(RUNS_INTERVALS)}")
    if not all(isinstance(s, bytes) for s in samples):
        raise TypeError("samples must be bytes")
    width = len(samples[0])
    if width == 0 or any(len(s) != width for s in samples):
        raise ValueError("samples must be non-empty and all of the same length")
    budget = false_alarm / 3
    streams = _position_streams(samples, width)
    gross_threshold = budget / (len(streams) * _GROSS_STATISTICS)
    results = []
    for position, x in enumerate(streams):
        result = _check(x, intervals)
        results.append(PositionResult(position, result, result.min_p_value < gross_threshold))
    stream_rate = STREAM_FALSE_ALARM[intervals]
    return SampleAnalysis(
        samples=len(samples),
        sample_bytes=width,
        intervals=intervals,
        false_alarm=false_alarm,
        stream_false_alarm=stream_rate,
        allowed_failures=allowed_failures(len(streams), stream_rate, budget),
        gross_threshold=gross_threshold,
        positions=tuple(results),
        duplicates=_duplicates(samples, width, budget),
    )
