"""The evaluation harness and ``sessionward risk eval`` on a hand-written trace file.

``data/known.jsonl``: alice (Safari on macOS at home on Andrews & Arnold) and bob (Chrome on
Windows at home on Sky) each have five ordinary sessions, then:

* alice-home: a new address in her home /24: allowed throughout;
* alice-trip: five hours later from Orange in France: a step-up, after which she is known there;
* alice-stolen (tor): curl with Accept-Language ru from a Tor exit: revoked at once, and the
  session stays dead;
* bob-cloned (clone): his own /24, every attribute copied: never detected, 4 requests served;
* bob-shared (concurrent): a thief on BT while bob is active: the thief's first request is
  served, bob's next one is challenged; bob signs in again, which rotates the secret, and the
  thief's next request is refused for good (``revoke``);
* carol-phone: a new user whose phone changes carrier prefix: allowed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from sessionward import cli
from sessionward.core.risk import Decision
from sessionward.risk.evaluate import replay, score
from sessionward.risk.traces import Trace, TraceError, read_traces

KNOWN = Path(__file__).parent / "data" / "known.jsonl"
CHALLENGED = {
    ("alice-trip", 1): "step_up",
    ("alice-stolen", 2): "revoke",
    ("alice-stolen", 3): "revoke",
    ("alice-stolen", 4): "revoke",  # the owner too: the session is gone
    ("bob-shared", 3): "step_up",
    ("bob-shared", 4): "revoke",  # bob's confirmation rotated the thief's secret out
}


@pytest.fixture(scope="module")
def traces() -> list[Trace]:
    with KNOWN.open(encoding="utf-8") as lines:
        return read_traces(lines)


def _not_allowed(
    traces: list[Trace], decisions: list[list[Decision]]
) -> dict[tuple[str | int, int], str]:
    return {
        (trace.session, i): d.value
        for trace, made in zip(traces, decisions, strict=True)
        for i, d in enumerate(made)
        if d is not Decision.ALLOW
    }


def test_known_decisions(traces: list[Trace]) -> None:
    assert _not_allowed(traces, replay(traces)) == CHALLENGED


def test_known_figures(traces: list[Trace]) -> None:
    report = score(traces, replay(traces))
    rows = {c.name: (c.sessions, c.detected, c.by_third, c.served_median) for c in report.classes}
    assert rows == {"tor": (1, 1, 1, 0), "clone": (1, 0, 0, 4), "concurrent": (1, 1, 1, 1)}
    origins = {c.name: c.detected for c in report.origins}
    assert origins == {
        "another country, or a hosting/VPN/Tor network": 1,
        "another network in the owner's country": 1,
        "the owner's own /24 or /48": 0,
    }
    assert (report.legitimate, report.challenged, report.revoked) == (13, 1, 0)
    assert report.events == 55
    assert report.decisions == {"allow": 49, "log": 0, "step_up": 2, "revoke": 4}
    assert "challenged 7.69% (1), revoked 0.00% (0)" in report.format()


def test_without_reauthentication_a_challenged_context_is_never_learned(
    traces: list[Trace],
) -> None:
    made = _not_allowed(traces, replay(traces, reauth=False))
    assert [made.get(("alice-trip", i)) for i in (1, 2, 3)] == ["step_up"] * 3


def test_the_engine_never_reads_who_made_a_request(traces: list[Trace]) -> None:
    """Swap every label: with no re-authentication to play out, the decisions are the same."""
    swapped = [
        dataclasses.replace(
            trace,
            attack=None,
            events=tuple(
                dataclasses.replace(e, attacker=not e.attacker and i > 0)
                for i, e in enumerate(trace.events)
            ),
        )
        for trace in traces
    ]
    assert replay(swapped, reauth=False) == replay(traces, reauth=False)


BAD_LINES = [
    ("not json", "not JSON"),
    ("[]", "a session must be an object"),
    ('{"events": [{"t": 1}]}', "'session' is missing"),
    ('{"session": true, "events": [{"t": 1}]}', "'session' must be a string"),
    ('{"session": 1.5, "events": [{"t": 1}]}', "'session' must be a string"),
    ('{"session": "s", "events": []}', "'events' must be a non-empty list"),
    ('{"session": "s", "events": [{"t": "1"}]}', "'t' must be a number"),
    ('{"session": "s", "events": [{"t": 1, "actor": "thief"}]}', "'actor' must be"),
    ('{"session": "s", "events": [{"t": 2}, {"t": 1}]}', "not in time order"),
    ('{"session": "s", "events": [{"t": 1, "ip": 7}]}', "'ip' must be a string"),
    ('{"session": "s", "events": [{"t": 1, "secret": "old"}]}', "'secret' must be"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_a_malformed_trace_names_its_line(line: str, message: str) -> None:
    with pytest.raises(TraceError, match=f"line 2[:,].*{message}"):
        read_traces(['{"session": "ok", "events": [{"t": 0}]}', line])


def test_the_first_event_is_the_login_whoever_made_it() -> None:
    """The engine does not read ``actor``: a file labelling the login an attacker's is read,
    the login allowed, and the attacker's requests counted from there."""
    traces = read_traces(['{"session": "s", "events": [{"t": 0, "actor": "attacker"}]}'])
    assert replay(traces) == [[Decision.ALLOW]]
    assert score(traces, replay(traces)).classes[0].served_median == 1


def test_a_session_may_appear_once() -> None:
    line = '{"session": "s", "events": [{"t": 0}]}'
    with pytest.raises(TraceError, match="appears twice"):
        read_traces([line, "", line])


def test_integer_ids_are_read_and_written_back_as_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    traces = tmp_path / "ids.jsonl"
    traces.write_text(
        '{"session": 7, "user": 3, "events": [{"t": 0}, {"t": 1}]}\n'
        '{"session": "7b", "user": "3", "events": [{"t": 2}]}\n',
        "utf-8",
    )
    out = tmp_path / "decisions.jsonl"
    assert cli.main(["risk", "eval", str(traces), "--decisions", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [(r["session"], r["i"]) for r in rows] == [(7, 0), (7, 1), ("7b", 0)]
    assert "legitimate sessions 2:" in capsys.readouterr().out
    one, again = '{"session": 7, "events": [{"t": 0}]}', '{"session": "7", "events": [{"t": 1}]}'
    with pytest.raises(TraceError, match="session '7' appears twice"):
        read_traces([one, again])


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "decisions.jsonl"
    assert cli.main(["risk", "eval", str(KNOWN), "--decisions", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "legitimate sessions 13: challenged 7.69% (1), revoked 0.00% (0)" in printed
    assert "the owner's own /24 or /48" in printed
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert len(rows) == 55
    assert {(r["session"], r["i"]): r["decision"] for r in rows if r["decision"] != "allow"} == (
        CHALLENGED
    )


def test_the_command_takes_policy_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["risk", "eval", str(KNOWN), "--set", "step_up_at=7"]) == 0
    assert "challenged 0.00% (0)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "bogus=1"], "RiskPolicy has no setting 'bogus'"),
        (["--set", "step_up_at=x"], "is not a number"),
        (["--set", "step_up_at=99"], "log_at <= step_up_at <= revoke_at"),
    ],
)
def test_bad_settings_are_one_line_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["risk", "eval", str(KNOWN), *args]) == 2
    assert message in capsys.readouterr().err


def test_bad_files_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["risk", "eval", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"session": "s", "events": [{"t": 2}, {"t": 1}]}\n', "utf-8")
    assert cli.main(["risk", "eval", str(bad)]) == 2
    assert "line 1: events are not in time order" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", "utf-8")
    assert cli.main(["risk", "eval", str(empty)]) == 2
    assert "no sessions" in capsys.readouterr().err
