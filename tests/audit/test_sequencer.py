"""The token battery on token text: 20,000 tokens from ``secrets`` are sound; a counter,
``random`` seeded by the time and ``md5(time)`` are weak, each for its own reason."""

from __future__ import annotations

import base64
import hashlib
import random
import secrets
import time
import uuid
from collections.abc import Callable

import pytest

from sessionward.audit.clockcheck import TimedToken, find_clock_derivation
from sessionward.audit.randomness import STREAM_BITS
from sessionward.audit.sequencer import analyse_tokens
from sessionward.audit.tokenshape import describe, variable_bits
from sessionward.core import token as tokens

Windows = list[tuple[float, float]]


def harvest(make: Callable[[int], str], n: int = STREAM_BITS) -> tuple[list[str], Windows]:
    """Tokens as a live harvest sees them: each with the window in which it was made."""
    out, windows = [], []
    for i in range(n):
        before = time.time()
        out.append(make(i))
        windows.append((before, time.time()))
    return out, windows


def seeded_by_time(i: int) -> str:
    generator = random.Random(time.time_ns() // 1_000_000)
    return format(generator.getrandbits(128), "032x")


def md5_of_time(i: int) -> str:
    return hashlib.md5(str(time.time()).encode()).hexdigest()  # noqa: S324 - the weak one


def test_20000_tokens_from_secrets_are_sound() -> None:
    analysis = analyse_tokens(*harvest(lambda i: secrets.token_urlsafe(32)))
    assert analysis.sound, analysis.reasons
    fips = analysis.fips
    assert fips is not None
    assert fips.passed, fips.report()
    assert analysis.analysed_bits == 256
    assert analysis.effective_bits == 256
    assert analysis.duplicates == 0
    assert analysis.clock is None
    assert analysis.shape.encoding == "base64url"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda i: format(10_000 + i, "032x"), "differ by a small step"),
        (seeded_by_time, "recomputed from the clock: random.Random(time in milliseconds)"),
        (md5_of_time, "recomputed from the clock: md5(str(time.time()))"),
    ],
    ids=["counter", "random-seeded-by-time", "md5-of-time"],
)
def test_20000_tokens_from_weak_generators_are_weak(
    make: Callable[[int], str], reason: str
) -> None:
    analysis = analyse_tokens(*harvest(make))
    assert not analysis.sound
    assert analysis.predictable
    assert any(reason in r for r in analysis.reasons), analysis.reasons
    assert analysis.effective_bits == 0


def test_md5_of_time_passes_every_statistical_test() -> None:
    # Why the clock check exists: the statistics alone call these tokens sound.
    tokens_, windows = harvest(md5_of_time)
    analysis = analyse_tokens(tokens_)  # no windows: no clock check
    assert analysis.clock is None
    assert analysis.sound, analysis.reasons
    assert analyse_tokens(tokens_, windows).clock is not None


def test_a_quick_harvest_of_sessionward_tokens_is_sound() -> None:
    analysis = analyse_tokens(*harvest(lambda i: tokens.mint()[0], 1000))
    assert analysis.sound, analysis.reasons
    assert analysis.shape.prefix.startswith(tokens.PREFIX)
    assert analysis.analysed_bits == 384 - 6 * (len(analysis.shape.prefix) - len(tokens.PREFIX))
    assert analysis.fips is None  # FIPS needs exactly 20,000


@pytest.mark.parametrize("seed", range(5))
def test_random_tokens_raise_no_false_alarm(seed: int) -> None:
    rng = random.Random(seed)
    sample = [rng.randbytes(24).hex() for _ in range(1000)]
    analysis = analyse_tokens(sample)
    assert analysis.sound, analysis.reasons


def test_uuid4_falls_short_of_128_bits() -> None:
    analysis = analyse_tokens([str(uuid.uuid4()) for _ in range(2000)])
    assert not analysis.sound
    assert 118 <= analysis.effective_bits < 128  # 122 random bits
    assert analysis.shape.static_positions == (8, 13, 14, 18, 23)  # dashes and the version


def encoded(sample: list[bytes]) -> list[str]:
    return [base64.urlsafe_b64encode(s).decode().rstrip("=") for s in sample]


def test_a_stuck_bit_costs_one_bit() -> None:
    rng = random.Random(7)
    free = analyse_tokens(encoded([rng.randbytes(20) for _ in range(2000)]))
    stuck = [bytes([rng.randbytes(1)[0] & 0x7F]) + rng.randbytes(19) for _ in range(2000)]
    analysis = analyse_tokens(encoded(stuck))
    # The first character then takes 32 values, not 64: Burp's mapping gives it 5 bits.
    assert analysis.analysed_bits == free.analysed_bits - 1 == 159
    assert analysis.effective_bits == 159
    assert analysis.sound


def test_a_biased_bit_fails_grossly() -> None:
    rng = random.Random(9)
    sample = []
    for _ in range(2000):
        first = rng.randbytes(1)[0] | (0x80 if rng.random() < 0.75 else 0)
        sample.append(bytes([first]) + rng.randbytes(23))
    analysis = analyse_tokens(encoded(sample))
    # A base64 character's bits are the decoded bits: the biased one is found exactly.
    assert analysis.gross_bits == (0,)
    assert any("fail grossly" in r for r in analysis.reasons)
    assert analysis.effective_bits == analysis.analysed_bits - len(analysis.gross_bits)


def test_duplicates_cap_the_entropy_estimate() -> None:
    rng = random.Random(8)
    pool = [rng.randbytes(16).hex() for _ in range(600)]
    sample = pool + pool[:400]
    analysis = analyse_tokens(sample)
    assert analysis.duplicates == 400
    assert analysis.effective_bits < 20
    assert any("duplicate" in r for r in analysis.reasons)


def test_jwts_are_described_not_tested() -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"HS256"}').decode().rstrip("=")
    sample = [
        f"{header}.{secrets.token_urlsafe(20)}.{secrets.token_urlsafe(32)}" for _ in range(200)
    ]
    analysis = analyse_tokens(sample)
    assert analysis.shape.encoding == "jwt"
    assert analysis.analysed_bits == 0
    assert analysis.sound


def test_shape_finds_static_parts_and_encoding() -> None:
    sample = [f"v2-{secrets.token_hex(8)}-{i % 2}X" for i in range(300)]
    shape, middles = describe(sample)
    assert shape.prefix == "v2-"
    assert shape.kept == 300
    assert len(middles[0]) == len(sample[0]) - 3 - len(shape.suffix)
    bits = variable_bits(middles)
    assert bits.width == 64 + 1  # 16 hex digits and the alternating character


def test_shape_spots_timestamps_and_readable_text() -> None:
    now = time.time()
    stamped = [format(int(now), "08x") + secrets.token_hex(8) for _ in range(200)]
    shape, _ = describe(stamped, [now] * 200)
    assert any("4-byte big-endian integer at byte 0" in t for t in shape.timestamps)
    texty = [base64.b64encode(f"user=alice;n={i:06d}".encode()).decode() for i in range(200)]
    assert "user" in describe(texty)[0].readable


def test_random_bytes_show_no_timestamp() -> None:
    now = time.time()
    sample = [secrets.token_hex(32) for _ in range(200)]
    assert describe(sample, [now] * 200)[0].timestamps == ()


def test_the_clock_check_recomputes_only_what_it_should() -> None:
    made = []
    for _ in range(2):
        before = time.time()
        moment = time.time()
        token = hashlib.sha1(str(int(moment * 1000)).encode()).hexdigest()  # noqa: S324
        made.append(TimedToken(token, bytes.fromhex(token), before, time.time()))
        time.sleep(0.003)
    match = find_clock_derivation(made)
    assert match is not None
    assert match.construction == "sha1(time in milliseconds)"
    fresh = [TimedToken(t, bytes.fromhex(t), time.time(), time.time())
             for t in (secrets.token_hex(16), secrets.token_hex(16))]  # fmt: skip
    assert find_clock_derivation(fresh) is None


def test_too_few_tokens_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 100"):
        analyse_tokens(["abc"] * 99)
