"""Tokens made from the clock: try to reproduce a few harvested tokens from the time they
were issued.

Statistics cannot see that ``md5(str(time.time()))`` is predictable: its output looks random.
An attacker who knows roughly when a token was issued can, however, recompute it. This check
does exactly that for a handful of tokens, within the window in which each was issued (from
the moment the request left to the moment the answer came back, shifted by the offset of the
server's ``Date`` clock when it is not this machine's), for these constructions:

* ``md5``, ``sha1`` and ``sha256`` of the time written as whole seconds, milliseconds or
  microseconds, as Python's ``str(time.time())``, as ``"%.6f"`` and as PHP's
  ``microtime()`` (``"0.12345600 1718000000"``), compared with the token's hex text or its
  decoded bytes;
* Python's ``random.Random`` seeded with the time in whole seconds, milliseconds or
  microseconds, or with the float ``time.time()``, then ``getrandbits(n)`` for the token's
  width (both byte orders).

The candidate count is bounded (:data:`PASSES`): microsecond and float forms are tried only
when the window is narrow, which it is on a local network and when the server's clock is this
machine's. A reproduction is proof; no reproduction proves nothing.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

__all__ = ["PASSES", "ClockMatch", "TimedToken", "find_clock_derivation"]

_HASHES = ("md5", "sha1", "sha256")
#: (slack, budget) per pass: a narrow window for every form, then a wider one for the coarse
#: forms only (whole seconds and milliseconds), when the server's clock is a little off.
PASSES = ((0.002, 400_000), (0.05, 20_000))


@dataclass(frozen=True, slots=True)
class TimedToken:
    """A token's variable part as text, its decoded bytes (if any), and the window (server
    clock, seconds since 1970) in which it was issued."""

    text: str
    raw: bytes | None
    earliest: float
    latest: float


@dataclass(frozen=True, slots=True)
class ClockMatch:
    construction: str
    reproduced: int
    tried: int


def find_clock_derivation(
    tokens: Sequence[TimedToken],
    *,
    passes: Sequence[tuple[float, int]] = PASSES,
) -> ClockMatch | None:
    """The first construction that reproduces two of ``tokens`` (one, if only one is given),
    or ``None``. Only the first two tokens are tried: a right construction reproduces each of
    them. Each pass widens every window by its slack (clock granularity and drift) and tries
    at most its budget of candidates per token and construction."""
    need = min(2, len(tokens))
    for slack, budget in passes:
        for name, candidates in _constructions():
            tried = 0
            for hits, token in enumerate(tokens[:need], start=1):
                found = False
                for value in candidates(token.earliest - slack, token.latest + slack, budget):
                    tried += 1
                    if _equal(value, token):
                        found = True
                        break
                if not found:
                    break  # a construction that is right reproduces every token
                if hits == need:
                    return ClockMatch(name, hits, tried)
    return None


def _equal(value: bytes | int | str, token: TimedToken) -> bool:
    if isinstance(value, str):
        return value == token.text.lower()
    if isinstance(value, bytes):
        return token.raw is not None and value == token.raw
    if token.raw is None:
        return False
    return value in (int.from_bytes(token.raw, "big"), int.from_bytes(token.raw, "little"))


Candidates = Callable[[float, float, int], Iterator[bytes | int | str]]


def _constructions() -> Iterator[tuple[str, Candidates]]:
    for form, times in _TIME_FORMS:
        for hash_name in _HASHES:
            yield f"{hash_name}({form})", _hashed(times, hash_name)
    for form, seeds in _SEED_FORMS:
        yield f"random.Random({form}).getrandbits(n)", _seeded(seeds)


def _hashed(times: Callable[[float, float, int], Iterator[str]], hash_name: str) -> Candidates:
    def candidates(earliest: float, latest: float, budget: int) -> Iterator[bytes | int | str]:
        for text in times(earliest, latest, budget):
            digest = hashlib.new(hash_name, text.encode("ascii"))
            yield digest.hexdigest()
            yield digest.digest()

    return candidates


def _seeded(seeds: Callable[[float, float, int], Iterator[int | float]]) -> Candidates:
    def candidates(earliest: float, latest: float, budget: int) -> Iterator[bytes | int | str]:
        for seed in seeds(earliest, latest, budget // 16):  # a generator costs ~16 us to seed
            value = random.Random(seed).getrandbits(256)  # noqa: S311 - reproducing one
            # getrandbits(n) fills 32-bit words from the least significant end, so every
            # narrower draw is the low bits of the wide one.
            for bits in (64, 128, 160):
                yield value & ((1 << bits) - 1)
            yield value

    return candidates


# -- time values in a window -------------------------------------------------------------------


def _scaled(scale: int) -> Callable[[float, float, int], Iterator[int]]:
    def values(earliest: float, latest: float, budget: int) -> Iterator[int]:
        low, high = math.floor(earliest * scale), math.ceil(latest * scale)
        if high - low <= budget:
            yield from range(low, high + 1)

    return values


def _doubles(earliest: float, latest: float, budget: int) -> Iterator[float]:
    """Every float between ``earliest`` and ``latest`` (what ``time.time()`` can return)."""
    low, high = _float_bits(earliest), _float_bits(latest)
    if high - low <= budget:
        for bits in range(low, high + 1):
            yield struct.unpack("<d", struct.pack("<q", bits))[0]


def _float_bits(value: float) -> int:
    return int(struct.unpack("<q", struct.pack("<d", value))[0])


def _as_text(
    values: Callable[[float, float, int], Iterator[int | float]], fmt: str
) -> Callable[[float, float, int], Iterator[str]]:
    def texts(earliest: float, latest: float, budget: int) -> Iterator[str]:
        for value in values(earliest, latest, budget):
            yield fmt.format(value)

    return texts


def _micro_float(earliest: float, latest: float, budget: int) -> Iterator[float]:
    for micros in _scaled(1_000_000)(earliest, latest, budget):
        yield micros / 1_000_000


def _microtime(earliest: float, latest: float, budget: int) -> Iterator[str]:
    for micros in _scaled(1_000_000)(earliest, latest, budget):
        seconds, fraction = divmod(micros, 1_000_000)
        yield f"0.{fraction:06d}00 {seconds}"


_TIME_FORMS: tuple[tuple[str, Callable[[float, float, int], Iterator[str]]], ...] = (
    ("int(time.time())", _as_text(_scaled(1), "{}")),
    ("time in milliseconds", _as_text(_scaled(1_000), "{}")),
    ("time in microseconds", _as_text(_scaled(1_000_000), "{}")),
    ("str(time.time())", _as_text(_doubles, "{!r}")),
    ("'%.6f' % time.time()", _as_text(_micro_float, "{:.6f}")),
    ("PHP microtime()", _microtime),
)
_SEED_FORMS: tuple[tuple[str, Callable[[float, float, int], Iterator[int | float]]], ...] = (
    ("int(time.time())", _scaled(1)),
    ("time in milliseconds", _scaled(1_000)),
    ("time in microseconds", _scaled(1_000_000)),
    ("time.time()", _doubles),
)
