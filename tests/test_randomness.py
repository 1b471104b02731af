"""The FIPS 140-2 battery: exact thresholds on hand-built streams, minted tokens pass, and bad
generators fail (so the token test can fail)."""

from __future__ import annotations

import base64
import hashlib
import math
import os
import random
from collections.abc import Callable, Sequence
from fractions import Fraction

import pytest

from sessionward.audit.randomness import (
    RUNS_INTERVALS,
    STREAM_BITS,
    STREAM_FALSE_ALARM,
    IntervalSet,
    SampleAnalysis,
    allowed_failures,
    analyse_samples,
    check_stream,
    long_run,
    monobit,
    pack_bits,
    poker,
    runs,
)
from sessionward.core import token as tokens

N = STREAM_BITS
INTERVAL_SETS: tuple[IntervalSet, ...] = ("netbsd", "fips-text")


# -- hand-built streams --------------------------------------------------------------------------


def stream_with_ones(count: int, seed: int = 1) -> bytes:
    ones = set(random.Random(seed).sample(range(N), count))
    return pack_bits([1 if i in ones else 0 for i in range(N)])


def stream_from_nibbles(counts: Sequence[int], seed: int = 2) -> bytes:
    nibbles = [value for value, count in enumerate(counts) for _ in range(count)]
    random.Random(seed).shuffle(nibbles)
    return bytes(hi << 4 | lo for hi, lo in zip(nibbles[::2], nibbles[1::2], strict=True))


def nibble_counts_with_square_sum(target: int) -> list[int]:
    """16 counts summing to 5000 with sum of squares ``target``: ten cells of 314 and three
    pairs 310 +- d, so sum f^2 = 1,562,560 + 2(d1^2 + d2^2 + d3^2)."""
    rest, odd = divmod(target - 1_562_560, 2)
    assert not odd
    assert rest >= 0
    for d1 in range(math.isqrt(rest) + 1):
        for d2 in range(d1 + 1):
            d3_squared = rest - d1 * d1 - d2 * d2
            if d3_squared < 0:
                break
            d3 = math.isqrt(d3_squared)
            if d3 * d3 == d3_squared:
                counts = [314] * 10 + [310 + d1, 310 - d1, 310 + d2, 310 - d2, 310 + d3, 310 - d3]
                assert sum(counts) == 5000
                assert sum(f * f for f in counts) == target
                return counts
    raise AssertionError(f"no counts for {target}")


PROFILE = [2500, 1250, 625, 300, 150, 150]  # runs of lengths 1..5 and 6+, per bit value


def stream_from_runs(
    zeros: Sequence[int], ones: Sequence[int], *, longest: int | None = None, seed: int = 3
) -> bytes:
    """A 20,000-bit stream with exactly these run counts (lengths 1..5, 6+) per bit value.

    The 6+ runs absorb the bits left over (lengths 6..20); with ``longest`` one 1-run has
    exactly that length.
    """
    rng = random.Random(seed)
    plans: list[list[int]] = []
    for counts in (zeros, ones):
        plans.append([k + 1 for k in range(5) for _ in range(counts[k])] + [6] * counts[5])
    long_ones = [i for i, length in enumerate(plans[1]) if length == 6]
    if longest is not None:
        plans[1][long_ones.pop()] = longest
    spare = N - sum(map(sum, plans))
    growable = [(0, i) for i, length in enumerate(plans[0]) if length == 6]
    growable += [(1, i) for i in long_ones]
    assert spare >= 0, "profile too long"
    while spare:
        progressed = False
        for bit, i in growable:
            if spare and plans[bit][i] < 20:
                plans[bit][i] += 1
                spare -= 1
                progressed = True
        assert progressed, "profile too short"
    for plan in plans:
        rng.shuffle(plan)
    assert abs(len(plans[0]) - len(plans[1])) <= 1
    first = 0 if len(plans[0]) >= len(plans[1]) else 1
    bits: list[int] = []
    order = [plans[first], plans[1 - first]]
    for index in range(len(order[0])):
        bits += [first] * order[0][index]
        if index < len(order[1]):
            bits += [1 - first] * order[1][index]
    assert len(bits) == N
    return pack_bits(bits)


ALTERNATING = pack_bits([i % 2 for i in range(N)])
ZEROS = bytes(N // 8)


# -- monobit -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ones", "passed"),
    [(9725, False), (9726, True), (10000, True), (10274, True), (10275, False)],
)
def test_monobit_thresholds_are_strict(ones: int, passed: bool) -> None:
    result = monobit(stream_with_ones(ones))
    assert result.ones == ones
    assert result.passed is passed


def test_monobit_p_value_is_the_exact_binomial_tail() -> None:
    # P(X <= 9725) + P(X >= 10275) for X ~ Binomial(20000, 1/2), computed exactly.
    term = tail = 1
    for k in range(1, 9726):
        term = term * (N - k + 1) // k  # C(N, k), exactly
        tail += term
    exact = 2 * tail / 2**N  # int / int rounds correctly however big
    assert monobit(stream_with_ones(9725)).p_value == pytest.approx(exact, rel=1e-9)
    assert monobit(stream_with_ones(10275)).p_value == pytest.approx(exact, rel=1e-9)
    assert monobit(ZEROS).p_value == 0.0
    assert monobit(ALTERNATING).p_value == 1.0


# -- poker ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("square_sum", "statistic", "passed"),
    [
        (1_563_174, 2.1568, False),
        (1_563_176, 2.1632, True),
        (1_576_928, 46.1696, True),
        (1_576_930, 46.1760, False),
    ],
)
def test_poker_thresholds_are_strict(square_sum: int, statistic: float, passed: bool) -> None:
    counts = nibble_counts_with_square_sum(square_sum)
    result = poker(stream_from_nibbles(counts))
    assert result.counts == tuple(counts)
    assert result.statistic == pytest.approx(statistic, abs=1e-9)
    assert result.passed is passed


def test_poker_on_constant_and_alternating_streams() -> None:
    zeros = poker(ZEROS)
    assert zeros.counts == (5000,) + (0,) * 15
    assert zeros.statistic == pytest.approx(16 * 5000**2 / 5000 - 5000)
    assert not zeros.passed
    assert zeros.p_value == 0.0
    alternating = poker(ALTERNATING)  # 0101 only
    assert alternating.counts[0b0101] == 5000
    assert not alternating.passed


def test_poker_too_uniform_fails() -> None:
    result = poker(stream_from_nibbles([313] * 8 + [312] * 8))
    assert result.statistic == pytest.approx(0.0128)
    assert not result.passed
    assert result.p_value < 1e-6  # a counter-like, too-even distribution is suspicious too


@pytest.mark.parametrize(
    ("statistic", "upper_tail"),
    [(24.9958, 0.05), (30.5779, 0.01), (37.6973, 0.001)],  # chi-square table, 15 df
)
def test_poker_p_value_matches_chi_square_tables(statistic: float, upper_tail: float) -> None:
    from sessionward.audit._stats import chi2_tails

    lower, upper = chi2_tails(statistic, 15)
    assert upper == pytest.approx(upper_tail, rel=1e-3)
    assert lower + upper == pytest.approx(1.0)


# -- runs ----------------------------------------------------------------------------------------


def test_runs_counts_are_exact() -> None:
    zeros = [2400, 1200, 600, 310, 161, 141]
    ones = [2401, 1201, 599, 311, 150, 150]
    result = runs(stream_from_runs(zeros, ones))
    assert result.zeros == tuple(zeros)
    assert result.ones == tuple(ones)
    assert result.transitions == sum(zeros) + sum(ones) - 1
    assert result.passed


@pytest.mark.parametrize("intervals", INTERVAL_SETS)
@pytest.mark.parametrize("length", [1, 6])
def test_runs_intervals_are_inclusive(intervals: IntervalSet, length: int) -> None:
    low, high = RUNS_INTERVALS[intervals][length - 1]
    base = list(PROFILE)
    if length == 6:
        base[0] = 2400  # make room for many long runs
    for count, passed in ((low - 1, False), (low, True), (high, True), (high + 1, False)):
        zeros, ones = list(base), list(base)
        zeros[length - 1] = low if count < low else min(count, high)
        ones[length - 1] = count
        result = runs(stream_from_runs(zeros, ones), intervals=intervals)
        assert result.ones[length - 1] == count
        assert result.passed is passed, (intervals, length, count)
        assert result.intervals == intervals
        assert result.out_of_range == (() if passed else ((1, length, count),))


def test_runs_of_an_alternating_stream() -> None:
    result = runs(ALTERNATING)
    assert result.zeros == (10000, 0, 0, 0, 0, 0)
    assert result.ones == (10000, 0, 0, 0, 0, 0)
    assert result.transitions == N - 1
    assert not result.passed
    assert result.p_value == 0.0


def test_runs_rejects_an_unknown_interval_set() -> None:
    with pytest.raises(ValueError, match="interval set"):
        runs(ALTERNATING, intervals="bogus")  # type: ignore[arg-type]


# -- long run ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("longest", "passed"), [(25, True), (26, False)])
def test_long_run_threshold(longest: int, passed: bool) -> None:
    stream = stream_from_runs(PROFILE, PROFILE, longest=longest)
    result = long_run(stream)
    assert (result.longest, result.bit) == (longest, 1)
    assert result.passed is passed
    inverted = bytes(b ^ 0xFF for b in stream)
    assert (long_run(inverted).longest, long_run(inverted).bit) == (longest, 0)
    assert long_run(inverted).passed is passed


def test_long_run_p_value_at_the_limit() -> None:
    # Expected number of runs >= 26 is (20000 - 26 + 2) / 2^26 ~ 2.98e-4.
    result = long_run(stream_from_runs(PROFILE, PROFILE, longest=26))
    assert result.p_value == pytest.approx(2.976e-4, rel=1e-3)
    assert long_run(ZEROS).longest == N
    assert long_run(ZEROS).p_value == 0.0


def test_stream_input_is_checked() -> None:
    with pytest.raises(ValueError, match="2500 bytes"):
        check_stream(bytes(100))
    with pytest.raises(TypeError):
        check_stream("0" * 2500)  # type: ignore[arg-type]


def test_stream_report_names_every_test() -> None:
    text = check_stream(ALTERNATING, intervals="fips-text").report()
    assert "FAIL" in text
    for word in ("monobit", "poker", "runs", "long run", "fips-text", "length 1: 10000"):
        assert word in text


# -- the false-alarm arithmetic ------------------------------------------------------------------


def test_allowed_failures_is_the_binomial_quantile() -> None:
    positions, rate, budget = 256, STREAM_FALSE_ALARM["netbsd"], 1e-6 / 3
    allowed = allowed_failures(positions, rate, budget)
    p = Fraction(rate)

    def tail(k: int) -> Fraction:  # P(K > k), exactly
        return 1 - sum(
            (math.comb(positions, j) * p**j * (1 - p) ** (positions - j) for j in range(k + 1)),
            Fraction(0),
        )

    assert tail(allowed) <= budget < tail(allowed - 1)
    assert 1 <= allowed <= 8


# -- many samples --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minted() -> list[str]:
    return [tokens.mint()[0] for _ in range(N)]


@pytest.mark.parametrize("intervals", INTERVAL_SETS)
def test_minted_secrets_pass(minted: list[str], intervals: IntervalSet) -> None:
    secrets_ = [tokens.parse(t).secret for t in minted]
    analysis = analyse_samples(secrets_, intervals=intervals)
    assert len(analysis.positions) == 256
    assert analysis.passed, analysis.report()
    assert not analysis.gross
    assert analysis.duplicates.duplicates == 0


def test_minted_token_payloads_pass(minted: list[str]) -> None:
    payloads = [base64.urlsafe_b64decode(t[len(tokens.PREFIX) :]) for t in minted]
    analysis = analyse_samples(payloads)  # session id | secret | crc32, 384 bits
    assert len(analysis.positions) == 384
    assert analysis.passed, analysis.report()
    assert "verdict: PASS" in analysis.report()


def test_position_streams_follow_sample_order_and_bit_order() -> None:
    rng = random.Random(11)
    samples = [rng.getrandbits(24).to_bytes(3, "big") for _ in range(N)]
    analysis = analyse_samples(samples)
    for position in (0, 7, 13, 23):
        naive = pack_bits([(s[position // 8] >> (7 - position % 8)) & 1 for s in samples])
        assert analysis.positions[position].result == check_stream(naive)


def random_samples(seed: int, width: int = 32) -> list[bytearray]:
    rng = random.Random(seed)
    return [bytearray(rng.getrandbits(8 * width).to_bytes(width, "big")) for _ in range(N)]


def set_bit(sample: bytearray, position: int, value: int) -> None:
    mask = 0x80 >> (position % 8)
    if value:
        sample[position // 8] |= mask
    else:
        sample[position // 8] &= ~mask & 0xFF


def analyse(samples: Sequence[bytes | bytearray]) -> SampleAnalysis:
    return analyse_samples([bytes(s) for s in samples])


def test_a_stuck_bit_fails_grossly() -> None:
    samples = random_samples(12)
    for sample in samples:
        set_bit(sample, 43, 0)
    analysis = analyse(samples)
    assert not analysis.passed
    assert [p.position for p in analysis.gross] == [43]
    assert "bit   43 (byte 5, bit 3)" in analysis.report()
    assert "GROSS" in analysis.report()


def test_a_55_percent_biased_bit_fails_grossly() -> None:
    samples = random_samples(13)
    rng = random.Random(14)
    for sample in samples:
        set_bit(sample, 200, rng.random() < 0.55)
    analysis = analyse(samples)
    assert not analysis.passed
    assert [p.position for p in analysis.gross] == [200]


def mildly_biased(positions: Sequence[int], seed: int) -> SampleAnalysis:
    """Exactly 10,300 ones at each listed position: a monobit failure, but not a gross one."""
    samples = random_samples(seed)
    rng = random.Random(seed + 1)
    for position in positions:
        chosen = set(rng.sample(range(N), 10_300))
        for index, sample in enumerate(samples):
            set_bit(sample, position, index in chosen)
    return analyse(samples)


def test_one_mild_failure_is_within_chance() -> None:
    analysis = mildly_biased([77], seed=15)
    assert 77 in [p.position for p in analysis.failing]
    assert not analysis.gross
    assert analysis.passed, analysis.report()


def test_many_mild_failures_exceed_chance() -> None:
    analysis = mildly_biased(range(0, 240, 20), seed=16)  # 12 positions
    assert not analysis.gross
    assert len(analysis.failing) >= 12 > analysis.allowed_failures
    assert not analysis.passed
    assert "chance explains at most" in analysis.report()


def counter(index: int) -> bytes:
    return index.to_bytes(32, "big")


def lcg_outputs() -> list[bytes]:
    state, out = 12345, []
    for _ in range(N):
        state = (1664525 * state + 1013904223) % 2**32
        out.append(state.to_bytes(4, "big"))
    return out


def twice_each() -> list[bytes]:
    base = [os.urandom(32) for _ in range(N // 2)]
    return [s for s in base for _ in range(2)]


def cycled() -> list[bytes]:
    base = [os.urandom(32) for _ in range(1000)]
    return [base[i % 1000] for i in range(N)]


def seeded_zero_padded() -> list[bytes]:
    rng = random.Random(1234)
    return [rng.getrandbits(20).to_bytes(32, "big") for _ in range(N)]


def seeded_hashed() -> list[bytes]:
    rng = random.Random(1234)  # only 2^20 possible tokens, however they are dressed up
    return [hashlib.sha256(rng.getrandbits(20).to_bytes(3, "big")).digest() for _ in range(N)]


BAD_GENERATORS: dict[str, Callable[[], list[bytes]]] = {
    "counter": lambda: [counter(i) for i in range(N)],
    "lcg-mod-2^32": lcg_outputs,
    "each-token-twice": twice_each,
    "1000-tokens-cycled": cycled,
    "mt-seed-20-bits-zero-padded": seeded_zero_padded,
    "mt-seed-20-bits-hashed": seeded_hashed,
}


@pytest.mark.parametrize("name", sorted(BAD_GENERATORS))
def test_bad_generators_fail(name: str) -> None:
    analysis = analyse_samples(BAD_GENERATORS[name]())
    assert not analysis.passed, analysis.report()
    assert "verdict: FAIL" in analysis.report()


def test_lcg_low_bits_are_the_gross_ones() -> None:
    analysis = analyse_samples(lcg_outputs())
    gross = {p.position for p in analysis.gross}
    assert {31, 30, 29} <= gross  # bit 0 of an LCG mod 2^32 alternates, bit 1 has period 4


def test_hashed_small_seed_is_caught_by_duplicates_only() -> None:
    analysis = analyse_samples(seeded_hashed())
    assert not analysis.gross
    assert len(analysis.failing) <= analysis.allowed_failures
    assert analysis.duplicates.duplicates > 0
    assert not analysis.duplicates.passed
    assert "repeated sample" in analysis.report()


def test_statistics_cannot_see_predictability() -> None:
    # The documented limit (Burp says the same): a hash of a counter is fully predictable
    # but statistically clean. The battery must not claim otherwise, nor raise a false alarm.
    analysis = analyse_samples([hashlib.sha256(counter(i)).digest() for i in range(N)])
    assert analysis.passed, analysis.report()


def test_sample_input_is_checked() -> None:
    with pytest.raises(ValueError, match="exactly 20000 samples"):
        analyse_samples([b"ab"] * 100)
    with pytest.raises(ValueError, match="same length"):
        analyse_samples([b"ab"] * (N - 1) + [b"abc"])
    with pytest.raises(ValueError, match="interval set"):
        analyse_samples([b"ab"] * N, intervals="nist")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="false_alarm"):
        analyse_samples([b"ab"] * N, false_alarm=0)
