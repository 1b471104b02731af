"""Safety: a dry run sends nothing, redirects off the target are not followed, heavy settings
need --allow-load, and the command reports bad input in one line."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sessionward.audit.context import Options
from sessionward.audit.errors import TargetError
from sessionward.audit.runner import run_audit
from sessionward.audit.transport import Network
from sessionward.cli import main

from ._serve import serve
from .conftest import scenario
from .targets import weak_shop


class Counter:
    def __init__(self) -> None:
        self.hits: list[str] = []

    def app(self, location: str | None = None) -> Starlette:
        async def anything(request: Request) -> Response:
            self.hits.append(request.url.path)
            if location:
                return RedirectResponse(location, status_code=302)
            return Response("ok")

        return Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST"])])


@contextlib.contextmanager
def counted(location: str | None = None) -> Iterator[tuple[str, Counter]]:
    counter = Counter()
    with serve(lambda base: counter.app(location)) as base:
        yield base, counter


def run_cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["audit", *args])
    return status, out.getvalue()


def test_a_dry_run_sends_nothing_and_lists_every_probe(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(weak_shop.SCENARIO)
    with counted() as (base, counter):
        status, out = run_cli(base, "--scenario", str(tmp_path / "s.toml"), "--dry-run",
                              "--timeouts", "--max-wait", "30")  # fmt: skip
    assert status == 0
    assert counter.hits == []
    for probe in ("harvest:", "fixation:", "logout:", "exposure:", "csrf:", "replay:",
                  "concurrent:", "jwt:", "timeouts:"):  # fmt: skip
        assert probe in out
    assert "GET / from a client without cookies x 1000" in out
    assert "dry run: nothing was sent" in out


def test_redirects_off_the_target_are_not_followed() -> None:
    with counted() as (elsewhere, other), counted(f"{elsewhere}/stolen") as (base, target):
        network = Network(base, rate=0)
        actor = network.actor("t")
        answer = actor.follow(actor.get("/start"))
        network.close()
    assert answer.status == 302
    assert target.hits == ["/start"]
    assert other.hits == []


def test_a_scenario_that_does_not_work_stops_the_audit_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEAK_USER", "alice")
    monkeypatch.setenv("WEAK_PASSWORD", "wonderland")
    with counted() as (base, counter):  # answers "ok" to everything: no login form anywhere
        with pytest.raises(TargetError, match="recognised as authenticated without any session"):
            run_audit(base, scenario(weak_shop.SCENARIO.replace("Account of", "ok")),
                      Options(harvest=0, rate=0))  # fmt: skip
        assert counter.hits == ["/account"]
        with pytest.raises(TargetError, match="no login form with a password field on /login"):
            run_audit(base, scenario(weak_shop.SCENARIO), Options(harvest=0, rate=0))
    assert counter.hits == ["/account", "/account", "/login"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "500"], "--rate 500 can load the target: add --allow-load"),
        (["--rate", "0"], "--rate 0 can load the target"),
        (["--concurrency", "16"], "--concurrency 16 can load the target"),
        (["--concurrent-logins", "100"], "--concurrent-logins 100 can load the target"),
        (["--only", "sqli"], "unknown probe 'sqli'"),
        (["--fail-on", "urgent"], "--fail-on: unknown severity"),
        (["--samples", "10"], "--samples must be between 100 and 1000000"),
    ],
)
def test_heavy_or_wrong_options_stop_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (tmp_path / "s.toml").write_text(weak_shop.SCENARIO)
    with counted() as (base, counter):
        status, _ = run_cli(base, "--scenario", str(tmp_path / "s.toml"), *args)
    assert status == 2
    assert message in capsys.readouterr().err
    assert counter.hits == []


def test_a_bad_scenario_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "s.toml").write_text("[session\n")
    assert run_cli("http://127.0.0.1:9", "--scenario", str(tmp_path / "s.toml"))[0] == 2
    err = capsys.readouterr().err
    assert err.startswith("sessionward: error: ")
    assert "not valid TOML" in err
    assert err.count("\n") == 1


def test_missing_credentials_stop_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEAK_USER", raising=False)
    (tmp_path / "s.toml").write_text(weak_shop.SCENARIO)
    with counted() as (base, counter):
        assert run_cli(base, "--scenario", str(tmp_path / "s.toml"))[0] == 2
    assert "set WEAK_USER" in capsys.readouterr().err
    assert counter.hits == []


def test_findings_at_the_threshold_fail_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEAK_USER", "alice")
    monkeypatch.setenv("WEAK_PASSWORD", "wonderland")
    (tmp_path / "s.toml").write_text(weak_shop.SCENARIO)
    with serve(lambda base: weak_shop.create_app()) as base:
        common = [base, "--scenario", str(tmp_path / "s.toml"), "--only", "logout", "--quiet"]
        assert run_cli(*common, "--fail-on", "high")[0] == 1
        assert run_cli(*common, "--fail-on", "critical")[0] == 0
        assert run_cli(*common)[0] == 0
