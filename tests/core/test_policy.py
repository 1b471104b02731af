"""Policy: safe defaults, and every inconsistent configuration refused with ConfigError."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sessionward import ConfigError, Policy

BAD: list[tuple[str, dict[str, Any]]] = [
    ("idle zero", {"idle_timeout": 0}),
    ("idle negative", {"idle_timeout": -1}),
    ("idle above absolute", {"idle_timeout": 101, "absolute_timeout": 100}),
    ("touch equal to idle", {"idle_timeout": 100, "touch_interval": 100}),
    ("touch above idle", {"idle_timeout": 100, "touch_interval": 150}),
    ("touch negative", {"touch_interval": -1}),
    ("rotate_after zero", {"rotate_after": 0}),
    ("rotate_after negative", {"rotate_after": -5}),
    ("grace negative", {"rotation_grace": -0.1}),
    ("grace above 300", {"rotation_grace": 300.5}),
    ("data limit 1", {"max_data_bytes": 1}),
    ("cap zero", {"max_sessions_per_user": 0}),
    ("unknown limit action", {"on_session_limit": "drop"}),
    ("history negative", {"context_history": -1}),
    ("history above 64", {"context_history": 65}),
]


@pytest.mark.parametrize("kwargs", [k for _, k in BAD], ids=[n for n, _ in BAD])
def test_inconsistent_policies_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        Policy(**kwargs)
    assert isinstance(caught.value, ValueError)


GOOD: list[dict[str, Any]] = [
    {"idle_timeout": 100, "absolute_timeout": 100},
    {"idle_timeout": 100, "touch_interval": 0},
    {"idle_timeout": 100, "touch_interval": 99.9},
    {"rotation_grace": 0},
    {"rotation_grace": 300},
    {"rotate_after": 0.5},
    {"max_data_bytes": 2},
    {"max_sessions_per_user": 1, "on_session_limit": "reject"},
    {"context_history": 0},
    {"context_history": 64},
]


@pytest.mark.parametrize("kwargs", GOOD)
def test_boundary_policies_are_accepted(kwargs: dict[str, Any]) -> None:
    policy = Policy(**kwargs)
    for name, value in kwargs.items():
        assert getattr(policy, name) == value


def test_defaults_follow_the_cheat_sheet() -> None:
    policy = Policy()
    assert (policy.idle_timeout, policy.absolute_timeout) == (30 * 60, 8 * 3600)
    assert policy.rotation_grace <= 30
    assert policy.rotate_after is None
    assert policy.max_sessions_per_user is None
    assert policy.on_session_limit == "evict_oldest"


def test_effective_touch_interval() -> None:
    assert Policy().effective_touch_interval == 60
    assert Policy(idle_timeout=100).effective_touch_interval == 10
    assert Policy(idle_timeout=100, touch_interval=0).effective_touch_interval == 0
    assert Policy(touch_interval=5).effective_touch_interval == 5


def test_policy_is_immutable() -> None:
    policy = Policy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.idle_timeout = 1  # type: ignore[misc]
    changed = dataclasses.replace(policy, idle_timeout=60)
    assert changed.idle_timeout == 60
    with pytest.raises(ConfigError):
        dataclasses.replace(policy, idle_timeout=0)
