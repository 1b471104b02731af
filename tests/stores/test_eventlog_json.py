"""The event logs' JSON for an entry's fields: the direct writer for flat fields gives exactly
what ``json.dumps`` gives, and everything else goes to ``json.dumps``."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from sessionward.core.events import RevokeReason
from sessionward.stores.eventlog._rows import dumps


def _reference(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"anonymous": False, "upgraded_from": None},
        {"reason": RevokeReason.THEFT, "generation": 3, "score": 0.25},
        {"é\u2028": '\x00"\\é😀\n', "big": 10**30, "neg": -0.0, "tiny": 1e-300},
        {"nan": math.nan, "inf": math.inf, "minus": -math.inf},
        {"reasons": (("new-network", 0.5, "a new network"),)},
        {"nested": {"a": [1, None]}},
        {1: "not a string key", "b": True},
        {"t": b"bytes"},
    ],
)
def test_dumps_matches_json_dumps(fields: dict[Any, Any]) -> None:
    text = dumps(fields)
    assert text == _reference(fields)
    assert json.loads(text).keys() == json.loads(_reference(fields)).keys()


def test_dumps_of_flat_fields_escapes_non_ascii() -> None:
    text = dumps({"city": "Zürich", "ip": None})
    assert text == '{"city":"Z\\u00fcrich","ip":null}'
    assert text.isascii()
