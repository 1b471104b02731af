"""ASVS 7.1.1/7.1.2: the documented defaults in docs/policy.md are the code's defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sessionward import Policy

DOC = Path(__file__).resolve().parent.parent / "docs" / "policy.md"
UNITS = {"s": 1, "min": 60, "h": 3600, "KiB": 1024}


def documented_defaults() -> dict[str, str]:
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", DOC.read_text(encoding="utf-8"), re.M)
    return {name: value.strip() for name, value in rows}


def parse(value: str) -> object:
    value = value.split("(")[0].strip()
    if value.startswith("`None`"):
        return None
    if value.startswith('`"'):
        return value.strip('`"')
    match = re.fullmatch(r"(\d+) (s|min|h|KiB)( of JSON)?", value)
    assert match, f"cannot read documented default {value!r}"
    return int(match.group(1)) * UNITS[match.group(2)]


@pytest.mark.parametrize(
    "name",
    [
        "idle_timeout",
        "absolute_timeout",
        "rotate_after",
        "rotation_grace",
        "max_sessions_per_user",
        "on_session_limit",
        "max_data_bytes",
    ],
)
def test_documented_default_matches_policy(name: str) -> None:
    documented = documented_defaults()
    assert name in documented, f"docs/policy.md has no row for {name}"
    assert parse(documented[name]) == getattr(Policy(), name)


def test_documented_touch_interval_matches_policy() -> None:
    assert "min(60 s, idle_timeout / 10)" in documented_defaults()["touch_interval"]
    assert Policy().effective_touch_interval == min(60, Policy().idle_timeout / 10)
    assert Policy(idle_timeout=300, absolute_timeout=600).effective_touch_interval == 30
