"""Strict base64url and JSON for JOSE objects: one spelling per value, UTF-8 only.

* ``b64decode`` accepts only the URL-safe alphabet, no padding, and a canonical last character
  (unused trailing bits zero), so no value has two encodings.
* ``loads_object`` accepts a UTF-8 JSON object only: no BOM, no surrounding whitespace, no
  ``NaN``/``Infinity``, and (by default) no duplicate member names (RFC 7515 §5.2 allows
  rejecting them; two parsers reading different values out of one token is a classic
  confusion).
"""

from __future__ import annotations

import binascii
import json
from typing import Any, Final

__all__ = ["b64decode", "b64encode", "dumps", "loads_object"]

# For a segment of length 4k+2 (one byte of padding-free tail) the last character carries
# 4 unused bits; for 4k+3 it carries 2. They must be zero for the spelling to be canonical.
_TAIL_2: Final = frozenset("AQgw")
_TAIL_3: Final = frozenset("AEIMQUYcgkosw048")


_TO_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
# ``-_`` to ``+/``, and ``+/=`` (outside the URL-safe alphabet) to ``!``, which the strict
# decoder refuses: one translation and one C call check the alphabet and decode.
_TO_STANDARD: Final = bytes.maketrans(b"-_+/=", b"+/!!!")
_PAD_BYTES: Final = (b"", b"", b"==", b"=")


def b64encode(data: bytes) -> str:
    """Unpadded base64url."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_TO_URLSAFE).decode()


def b64decode(segment: str, *, checked_alphabet: bool = False) -> bytes:
    """Strict unpadded base64url decoding; raises ``ValueError`` on any other spelling.

    ``checked_alphabet`` is accepted for callers whose own pattern checked the alphabet
    already; the check here costs nothing extra (it is part of the strict decode).
    """
    if not isinstance(segment, str):
        raise ValueError("not base64url")
    rest = len(segment) % 4
    if rest == 1:
        raise ValueError("impossible base64url length")
    if rest == 2 and segment[-1] not in _TAIL_2:
        raise ValueError("non-canonical base64url")
    if rest == 3 and segment[-1] not in _TAIL_3:
        raise ValueError("non-canonical base64url")
    try:
        raw = segment.encode("ascii").translate(_TO_STANDARD) + _PAD_BYTES[rest]
        return binascii.a2b_base64(raw, strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("not base64url") from None


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate member name")
    return out


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_STRICT: Final = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant)
_FAST: Final = json.JSONDecoder(parse_constant=_constant)
# The C scanners themselves (what ``raw_decode`` calls), minus a Python frame per token.
_SCAN: Final[tuple[Any, Any]] = (_FAST.scan_once, _STRICT.scan_once)  # type: ignore[attr-defined]


def loads_object(raw: bytes, *, unique: bool = True) -> dict[str, Any]:
    """Parse UTF-8 JSON text that is exactly one object; raises ``ValueError`` otherwise.

    No whitespace around the object, no BOM, no ``NaN``. ``unique=True`` rejects duplicate
    member names; ``unique=False`` keeps the lexically last one (what RFC 7519 §4 allows
    instead) and is twice as fast — the verifier uses it for the payload, whose bytes the
    signature has already authenticated.
    """
    text = raw.decode("utf-8")  # UnicodeDecodeError is a ValueError
    try:
        value, end = _SCAN[unique](text, 0)
    except (StopIteration, RecursionError):  # RecursionError: absurd nesting
        raise ValueError("not JSON") from None
    if end != len(text) or type(value) is not dict:
        raise ValueError("not exactly one JSON object")
    return value


def dumps(value: Any) -> bytes:
    """Compact JSON in UTF-8, member order as given, never ``NaN``."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )
