"""The strict base64url codec every JOSE object goes through: one spelling per value."""

from __future__ import annotations

import base64
import random
import re

import pytest

from sessionward.core.jose import b64decode, b64encode

_URLSAFE = re.compile(r"[A-Za-z0-9_-]*")


def reference(segment: object) -> bytes | None:
    """Unpadded base64url with a canonical last character, by the book: ``None`` otherwise."""
    if not isinstance(segment, str) or _URLSAFE.fullmatch(segment) is None:
        return None
    if len(segment) % 4 == 1:
        return None
    value = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    return value if b64encode(value) == segment else None  # the canonical spelling only


def decoded(segment: object) -> bytes | None:
    try:
        return b64decode(segment)  # type: ignore[arg-type]
    except ValueError:
        return None


@pytest.mark.parametrize(
    "segment",
    [
        "",
        "AA",
        "AQ",
        "AAA",
        "AAE",
        "AAAA",
        "AA==",
        "AA=",
        "A",
        "+w",
        "/w",
        "-w",
        "_w",
        "A A",
        "AA\n",
        "é",
        "AAé",
        "!!",
        "AQ=",
        b"AA",
        None,
        3,
    ],
)
def test_examples(segment: object) -> None:
    assert decoded(segment) == reference(segment)


def test_random_spellings_agree_with_the_reference() -> None:
    rng = random.Random(13)
    alphabet = "AQgwZz09-_+/=.! \n\té\x00"
    for _ in range(20000):
        segment = "".join(rng.choice(alphabet) for _ in range(rng.randrange(10)))
        assert decoded(segment) == reference(segment), repr(segment)
    for _ in range(2000):
        data = rng.randbytes(rng.randrange(40))
        text = b64encode(data)
        assert text == base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        assert b64decode(text) == data
