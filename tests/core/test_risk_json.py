"""The session's risk history round-trips through JSON, and bad JSON is refused."""

from __future__ import annotations

import json

import pytest

from sessionward.core.risk import Browser, Network, Observation, Signals, begin, learn
from sessionward.core.risk_json import session_from_json, session_to_json
from sessionward.core.risk_policy import RiskPolicy
from sessionward.core.risk_types import Decision, Verdict

HOME = Network("81.2.69.0/24", "Andrews & Arnold Ltd", "GB", "")
PHONE = Network("86.128.9.0/24", "British Telecommunications PLC", "GB", "")
SIGNALS = Signals(HOME, Browser("Safari", 17, "Mac OS X", 10, "desktop"), "en-gb", "macOS", "d1")


def test_a_session_history_round_trips() -> None:
    session = begin(Observation(100.0, SIGNALS))
    moved = Observation(200.0, Signals(PHONE, SIGNALS.browser, "en-gb", "", ""))
    session = learn(session, moved, Verdict(Decision.ALLOW, 0.5, ()), RiskPolicy())
    text = json.dumps(session_to_json(session))
    back = session_from_json(json.loads(text))
    assert back.networks == session.networks
    assert back.signals == session.signals
    assert (back.last_t, back.rate) == (session.last_t, session.rate)
    assert back.tree == session.tree


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {},
        {"networks": []},
        {"networks": [["a", "b", "c", "", 1, 2]]},
        {"networks": [["a", "b", "c", 4, 1, 2, 0]]},
        {"networks": [["a", "b", "c", "", "1", 2, 0]]},
    ],
)
def test_bad_history_is_refused(data: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (one kind of refusal)
        session_from_json(data)


def test_bad_signals_are_refused() -> None:
    good = session_to_json(begin(Observation(1.0, SIGNALS)))
    for key, value in [
        ("browser", ["Safari", "17", "", None, ""]),
        ("language", 3),
        ("mismatch", "no"),
        ("last", True),
        ("network", ["x"]),
    ]:
        with pytest.raises(ValueError):  # noqa: PT011
            session_from_json({**good, key: value})
