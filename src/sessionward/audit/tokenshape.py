"""A token sample's shape: length, static parts, encoding, what decodes, and the variable bits.

:func:`describe` keeps the tokens of the most common length (in harvest order), finds the
prefix, suffix and single positions that never change, recognises JWTs, hex and base64, and
looks inside the decoded bytes for readable text and embedded timestamps.

:func:`variable_bits` turns each token into the bits of its variable positions the way Burp
Sequencer does: a position whose observed character set has 2^k members gives k bits (the
character's index in that set, ordered by the character's value when the token is hex or
base64, so a full position yields the very bits it encodes). Positions with any other set
size are read together as one mixed-radix number, whose top bits are dropped because they are
biased for a uniform number below a bound that is not a power of two; what remains is within
2^-12 of fair.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["Shape", "VariableBits", "decode_text", "describe", "jwt_parts", "variable_bits"]

_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_HEX = set(string.hexdigits)
_B64URL = set(string.ascii_letters + string.digits + "-_")
_B64 = set(string.ascii_letters + string.digits + "+/=")
_TRIM_BITS = 12
_DAY = 86_400.0
_ORDER: dict[str, Literal["big", "little"]] = {"big": "big", "little": "little"}


@dataclass(frozen=True, slots=True)
class Shape:
    total: int
    kept: int  # tokens of the most common length, analysed
    length: int
    prefix: str
    suffix: str
    static_positions: tuple[int, ...]  # in the middle part, beyond prefix and suffix
    encoding: str  # "jwt", "hex", "base64url", "base64" or "characters"
    decoded_bytes: int | None
    readable: tuple[str, ...]  # words every decoded token contains, when they decode to text
    timestamps: tuple[str, ...]  # where a value near the harvest time sits in the token

    def as_json(self) -> dict[str, object]:
        return {
            "tokens": self.total,
            "analysed": self.kept,
            "length": self.length,
            "static_prefix_chars": len(self.prefix),
            "static_suffix_chars": len(self.suffix),
            "static_positions": list(self.static_positions),
            "encoding": self.encoding,
            "decoded_bytes": self.decoded_bytes,
            "readable_words": list(self.readable),
            "embedded_timestamps": list(self.timestamps),
        }


def describe(
    tokens: Sequence[str], times: Sequence[float] | None = None
) -> tuple[Shape, list[str]]:
    """The shape, and the middle parts (prefix and suffix cut) of the tokens kept.
    ``times[i]`` is when token ``i`` was received (seconds since 1970), if known."""
    if not tokens:
        raise ValueError("no tokens")
    length = Counter(len(t) for t in tokens).most_common(1)[0][0]
    index = [i for i, t in enumerate(tokens) if len(t) == length]
    kept = [tokens[i] for i in index]
    if sum(bool(_JWT.fullmatch(t)) for t in kept) >= 0.9 * len(kept):
        shape = Shape(len(tokens), len(kept), length, "", "", (), "jwt", None, (), ())
        return shape, kept
    prefix = _common_prefix(kept)
    suffix = _common_prefix([t[len(prefix) :][::-1] for t in kept])[::-1]
    middles = [t[len(prefix) : len(t) - len(suffix)] for t in kept]
    width = len(middles[0])
    static = tuple(i for i in range(width) if len({m[i] for m in middles}) == 1)
    encoding, decoded = _decode_all(kept[:200])
    if decoded is None:
        encoding, decoded = _decode_all(middles[:200])
    stamps: tuple[str, ...] = ()
    if times is not None:
        picks = [(kept[j], times[index[j]]) for j in range(min(5, len(kept)))]
        stamps = _timestamps(picks, encoding)
    shape = Shape(
        len(tokens),
        len(kept),
        length,
        prefix,
        suffix,
        static,
        encoding,
        len(decoded[0]) if decoded else None,
        _static_words(decoded or []),
        stamps,
    )
    return shape, middles


def _decode_all(values: Sequence[str]) -> tuple[str, list[bytes] | None]:
    """The encoding every value decodes with, and the decoded values (or "characters")."""
    decoded = [decode_text(v) for v in values]
    kinds = {kind for kind, _ in decoded}
    if len(kinds) == 1 and "characters" not in kinds:
        return kinds.pop(), [raw for _, raw in decoded if raw is not None]
    return "characters", None


def _static_words(decoded: Sequence[bytes]) -> tuple[str, ...]:
    """When the decoded tokens are text (90 % printable or more in nine tokens of ten), the
    words every one of them contains: the readable, fixed part of the structure. Random
    bytes are about 37 % printable."""
    texty = [d for d in decoded if len(d) >= 8 and _printable_share(d) >= 0.9]
    if not decoded or len(texty) < 0.9 * len(decoded):
        return ()
    words = [set(re.findall(rb"[A-Za-z_]{2,}", d)) for d in texty]
    common = set.intersection(*words) if words else set()
    return tuple(sorted(w.decode() for w in common))[:12] or ("(printable text)",)


def _printable_share(data: bytes) -> float:
    return sum(32 <= b < 127 for b in data) / len(data)


def _common_prefix(values: Sequence[str]) -> str:
    if not values:
        return ""
    first, last = min(values), max(values)
    end = 0
    while end < len(first) and end < len(last) and first[end] == last[end]:
        end += 1
    return first[:end]


def decode_text(text: str) -> tuple[str, bytes | None]:
    chars = set(text)
    if (
        text
        and chars <= _HEX
        and len(text) % 2 == 0
        and (text.lower() == text or text.upper() == text)
    ):
        return "hex", bytes.fromhex(text)
    if text and chars <= _B64URL and len(text) % 4 != 1:
        try:
            return "base64url", base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            pass
    if text and chars <= _B64 and len(text.rstrip("=")) % 4 != 1:
        stripped = text.rstrip("=")
        try:
            return "base64", base64.b64decode(stripped + "=" * (-len(stripped) % 4))
        except (binascii.Error, ValueError):
            pass
    return "characters", None


def _timestamps(picks: Sequence[tuple[str, float]], encoding: str) -> tuple[str, ...]:
    """Places holding a number within a day of the token's receipt time (s, ms or us since
    1970) in at least three of the tokens given (all, if fewer): decimal digit runs in the
    text, and 4-, 6- or 8-byte integers in the decoded bytes. One token alone would raise
    false alarms (a random 4-byte number is near "now" about once in 25,000 tries)."""
    seen: Counter[str] = Counter()
    for token, now in picks:
        found = set()
        for match in re.finditer(r"\d{10,16}", token):
            if _near(int(match.group(0)), now):
                found.add(f"decimal digits at character {match.start()}")
        raw = decode_text(token)[1] or b""
        for width in (4, 6, 8):
            for at in range(len(raw) - width + 1):
                for order in ("big", "little"):
                    value = int.from_bytes(raw[at : at + width], _ORDER[order])
                    if _near(value, now):
                        found.add(f"{width}-byte {order}-endian integer at byte {at} ({encoding})")
        seen.update(found)
    need = min(3, len(picks))
    return tuple(sorted(place for place, n in seen.items() if n >= need))[:5]


def _near(value: int, now: float) -> bool:
    return any(abs(value / scale - now) < _DAY for scale in (1, 1_000, 1_000_000))


# -- bits -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VariableBits:
    """Per-token bit strings (``"0101..."``), all the same length, and what they came from.
    Characters are ordered by their value in the token's encoding when it is hex or base64,
    so a full position yields exactly the bits the character encodes."""

    tokens: list[str]
    width: int
    positions: int  # variable character positions
    power_of_two_bits: int
    radix_bits: int  # bits taken from the mixed-radix group
    trimmed_bits: int  # top bits of that group left out (biased)
    char_bits: float  # sum of log2(set size) over variable positions


_ALPHABETS = {
    "hex": "0123456789abcdefABCDEF",
    "base64url": string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_",
    "base64": string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/=",
}


def variable_bits(middles: Sequence[str], encoding: str = "characters") -> VariableBits:
    """``encoding`` orders each position's characters by their value in that encoding (so a
    full base64 position maps to the decoded bits themselves); otherwise by code point."""
    width = len(middles[0]) if middles else 0
    alphabet = _ALPHABETS.get(encoding, "")

    def order(c: str) -> tuple[int, str]:
        at = alphabet.find(c)
        if encoding == "hex" and at >= 16:
            at -= 6  # upper-case digits sort with their lower-case twins
        return (at if at >= 0 else len(alphabet) + ord(c), c)

    charsets = [sorted({m[i] for m in middles}, key=order) for i in range(width)]
    binary = [i for i, cs in enumerate(charsets) if len(cs) > 1 and _is_power(len(cs))]
    other = [i for i, cs in enumerate(charsets) if len(cs) > 1 and not _is_power(len(cs))]
    tables = {
        i: {
            c: format(n, f"0{len(charsets[i]).bit_length() - 1}b")
            for n, c in enumerate(charsets[i])
        }
        for i in binary
    }
    radix = math.prod(len(charsets[i]) for i in other)
    radix_bits = max(0, radix.bit_length() - 1 - _TRIM_BITS) if other else 0
    index = {i: {c: n for n, c in enumerate(charsets[i])} for i in other}
    mask = (1 << radix_bits) - 1
    out = []
    for middle in middles:
        bits = "".join(tables[i][middle[i]] for i in binary)
        if radix_bits:
            value = 0
            for i in other:
                value = value * len(charsets[i]) + index[i][middle[i]]
            bits += format(value & mask, f"0{radix_bits}b")
        out.append(bits)
    power_bits = sum(len(charsets[i]).bit_length() - 1 for i in binary)
    total_radix = radix.bit_length() - 1 if other else 0
    char_bits = sum(math.log2(len(cs)) for cs in charsets if len(cs) > 1)
    return VariableBits(
        out,
        power_bits + radix_bits,
        len(binary) + len(other),
        power_bits,
        radix_bits,
        max(0, total_radix - radix_bits),
        char_bits,
    )


def _is_power(n: int) -> bool:
    return n & (n - 1) == 0


def jwt_parts(token: str) -> tuple[dict[str, object], dict[str, object]] | None:
    """The decoded header and payload of a compact JWS, or ``None``."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, payload = (
            json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2]
        )
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    return header, payload
