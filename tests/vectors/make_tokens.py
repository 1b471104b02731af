"""Regenerate ``tokens.json``, the known-answer vectors for the version-1 token format.

    python tests/vectors/make_tokens.py          # rewrite tokens.json
    python tests/vectors/make_tokens.py --check  # exit 1 if tokens.json is out of date

Written from the format description alone (``sw1_`` + base64url(id 12 B | secret 32 B |
crc32(prefix | id | secret), little-endian)) with the standard library's base64, zlib and hashlib:
it deliberately does not import sessionward, so the vectors are not produced by the code they
test. The ids and secrets are fixed test values, not secrets of any real session.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import zlib
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "tokens.json"
PREFIX = "sw1_"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def token(raw_id: bytes, secret: bytes, prefix: str = PREFIX, crc_prefix: str | None = None) -> str:
    body = raw_id + secret
    crc_input = (prefix if crc_prefix is None else crc_prefix).encode("ascii") + body
    crc = zlib.crc32(crc_input).to_bytes(4, "little")
    return prefix + b64url(body + crc)


def derived(label: str, size: int) -> bytes:
    """Deterministic bytes that look random (sha256 counter mode over a label)."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
        counter += 1
    return out[:size]


def valid_parts() -> list[tuple[str, bytes, bytes]]:
    parts = [
        ("all zero", bytes(12), bytes(32)),
        ("all ones", b"\xff" * 12, b"\xff" * 32),
        ("counting", bytes(range(12)), bytes(range(100, 132))),
        ("alphabet edges", b"\xfb\xef\xbe" * 4, b"\xf8\x00\x3f" * 10 + b"\xfc\x10"),
    ]
    parts += [(f"derived {n}", derived(f"id{n}", 12), derived(f"secret{n}", 32)) for n in range(4)]
    return parts


def valid_vectors() -> list[dict[str, Any]]:
    vectors = []
    for name, raw_id, secret in valid_parts():
        vectors.append(
            {
                "name": name,
                "id_hex": raw_id.hex(),
                "secret_hex": secret.hex(),
                "token": token(raw_id, secret),
                "session_id": b64url(raw_id),
                "secret_sha256_hex": hashlib.sha256(secret).hexdigest(),
            }
        )
    for v in vectors:
        if len(v["token"]) != 68 or len(v["session_id"]) != 16:
            raise SystemExit(f"bad vector {v['name']}")
    joined = "".join(v["token"][4:] for v in vectors)
    if "-" not in joined or "_" not in joined:
        raise SystemExit("vectors must exercise both url-safe characters")
    return vectors


def replace_at(text: str, index: int, char: str) -> str:
    return text[:index] + char + text[index + 1 :]


def flip(text: str, index: int) -> str:
    """Swap the base64url character at ``index`` for a different one of the alphabet."""
    return replace_at(text, index, "B" if text[index] == "A" else "A")


def invalid_vectors(base: str, raw_id: bytes, secret: bytes) -> list[dict[str, Any]]:
    body = base[len(PREFIX) :]
    std_body = base64.b64encode(base64.urlsafe_b64decode(body)).decode("ascii")

    def text(name: str, value: str, reason: str) -> dict[str, Any]:
        return {"name": name, "input": {"type": "str", "value": value}, "reason": reason}

    def other(name: str, value: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "input": value, "reason": "malformed"}

    crc_be = zlib.crc32(PREFIX.encode() + raw_id + secret).to_bytes(4, "big")
    m = "malformed"
    c = "checksum"
    out = [
        # empty, prefix only, wrong length
        text("empty string", "", m),
        text("prefix alone", PREFIX, m),
        text("body without prefix", body, m),
        text("truncated by one", base[:-1], m),
        text("one character too many", base + "A", m),
        text("prefix and 63 characters", base[:67], m),
        text("doubled prefix (well-formed characters)", PREFIX + base[:64], c),
        text("token twice", base + base, m),
        text("very long", PREFIX + "A" * 10_000, m),
        # wrong prefix, each with a checksum that is correct for that prefix
        text("version 0 prefix", token(raw_id, secret, prefix="sw0_"), m),
        text("version 2 prefix", token(raw_id, secret, prefix="sw2_"), m),
        text("upper-case prefix", token(raw_id, secret, prefix="SW1_"), m),
        text("dash instead of underscore", token(raw_id, secret, prefix="sw1-"), m),
        text("other letters", token(raw_id, secret, prefix="xy1_"), m),
        # alphabet
        text("plus sign", replace_at(base, 10, "+"), m),
        text("slash", replace_at(base, 10, "/"), m),
        text("standard base64 of the same bytes", PREFIX + std_body, m),
        text("padding appended", base + "=", m),
        text("padding inside", replace_at(base, 67, "="), m),
        text("dot", replace_at(base, 20, "."), m),
        text("tilde", replace_at(base, 20, "~"), m),
        text("percent-encoded character", base[:-3] + "%2D", m),
        text("space inside", replace_at(base, 30, " "), m),
        text("leading space", " " + base, m),
        text("trailing space", base + " ", m),
        text("trailing newline", base + "\n", m),
        text("trailing CRLF", base + "\r\n", m),
        text("tab inside", replace_at(base, 30, "\t"), m),
        text("NUL inside", replace_at(base, 30, "\x00"), m),
        text("no-break space inside", replace_at(base, 30, "\u00a0"), m),
        text("latin letter with accent", replace_at(base, 30, "\u00e9"), m),
        text("fullwidth letter", replace_at(base, 30, "\uff21"), m),
        text("cyrillic lookalike", replace_at(base, 30, "\u0430"), m),
        text("arabic-indic digit", replace_at(base, 30, "\u0663"), m),
        text("fullwidth prefix", "\uff53" + base[1:], m),
        text("emoji", replace_at(base, 30, "\U0001f600"), m),
        text("lone surrogate", replace_at(base, 30, "\ud800"), m),
        text("zero-width space inside", base[:30] + "\u200b" + base[31:], m),
        # checksum
        text("id character changed", flip(base, 5), c),
        text("secret character changed", flip(base, 40), c),
        text("checksum character changed", flip(base, 66), c),
        text("last character changed", flip(base, 67), c),
        text(
            "checksum without the prefix",
            PREFIX + b64url(raw_id + secret + zlib.crc32(raw_id + secret).to_bytes(4, "little")),
            c,
        ),
        text("checksum big-endian", PREFIX + b64url(raw_id + secret + crc_be), c),
        text("checksum zero", PREFIX + b64url(raw_id + secret + bytes(4)), c),
        text(
            "id and secret swapped halves",
            token(raw_id, secret)[:4]
            + b64url(
                secret[:12]
                + raw_id
                + secret[12:]
                + zlib.crc32(PREFIX.encode() + raw_id + secret).to_bytes(4, "little")
            ),
            c,
        ),
        # not strings at all
        other("None", {"type": "none"}),
        other("bytes of a valid token", {"type": "bytes", "hex": base.encode("ascii").hex()}),
        other("bytearray of a valid token", {"type": "bytearray", "hex": base.encode().hex()}),
        other("memoryview of a valid token", {"type": "memoryview", "hex": base.encode().hex()}),
        other("integer", {"type": "int", "value": 68}),
        other("float", {"type": "float", "value": 68.0}),
        other("boolean", {"type": "bool", "value": True}),
        other("list holding a valid token", {"type": "list", "value": [base]}),
        other("tuple of characters", {"type": "tuple", "value": list(base)}),
        other("dict", {"type": "dict", "value": {"token": base}}),
        other("object", {"type": "object"}),
    ]
    names = [v["name"] for v in out]
    if len(names) != len(set(names)):
        raise SystemExit("duplicate vector names")
    return out


def build() -> dict[str, Any]:
    valid = valid_vectors()
    first = valid_parts()[3]
    base = token(first[1], first[2])
    return {
        "_comment": "Known-answer vectors for sessionward token format v1. Generated by "
        "make_tokens.py (stdlib only, independent of sessionward). Fixed test values only.",
        "format": {"prefix": PREFIX, "length": 68, "id_bytes": 12, "secret_bytes": 32},
        "valid": valid,
        "invalid": invalid_vectors(base, first[1], first[2]),
        "invalid_parts": [
            {
                "name": "secret one byte short",
                "session_id": valid[0]["session_id"],
                "secret_hex": "00" * 31,
            },
            {
                "name": "secret one byte long",
                "session_id": valid[0]["session_id"],
                "secret_hex": "00" * 33,
            },
            {
                "name": "id too short",
                "session_id": valid[0]["session_id"][:-1],
                "secret_hex": "00" * 32,
            },
            {
                "name": "id with padding",
                "session_id": valid[0]["session_id"][:-1] + "=",
                "secret_hex": "00" * 32,
            },
            {
                "name": "id with plus",
                "session_id": "+" + valid[0]["session_id"][1:],
                "secret_hex": "00" * 32,
            },
        ],
    }


def render() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=True) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"out of date: {OUT.name} (run {Path(__file__).name})")
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
