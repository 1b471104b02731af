"""The real ``sessionward profiles`` command, run as a subprocess."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sessionward.audit.profiles import Cookie, Profiles

COMMAND = Path(sys.executable).parent / "sessionward"
RAW_TOKEN = re.compile(r"sw1_[A-Za-z0-9_-]{20,}")


@dataclass
class Run:
    status: int
    out: str
    err: str


def sessionward(*args: str, env: dict[str, str] | None = None) -> Run:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    environment["PYTHONPATH"] = os.pathsep.join(sys.path)
    environment.update(env or {})
    done = subprocess.run(
        [str(COMMAND), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    run = Run(done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in run.err, run.err
    assert not RAW_TOKEN.search(run.out + run.err), "a raw token was printed"
    return run


def error(run: Run, *fragments: str) -> None:
    assert run.status == 2, run
    assert run.out == ""
    (line,) = run.err.splitlines()
    assert line.startswith("sessionward: error: ")
    for fragment in fragments:
        assert fragment in line, line


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def real_token() -> str:
    from sessionward.core.token import mint

    return mint()[0]


def test_the_group_is_listed_in_help() -> None:
    run = sessionward("--help")
    assert "profiles" in run.out
    listing = sessionward("profiles", "--help")
    for action in ("create", "list", "show", "clone", "delete", "export", "import", "open"):
        assert action in listing.out


def test_create_with_settings_then_list_and_show(home: Path) -> None:
    created = sessionward(
        "profiles", "--home", str(home), "create", "alice", "--user-agent", "QA-alice/1.0",
        "--locale", "fr-FR", "--timezone", "Europe/Paris", "--viewport", "1024x768",
        "--proxy", "http://qa:hunter2@proxy.test:3128",
    )  # fmt: skip
    assert created.out == f"created profile alice in {home / 'alice'}\n"
    sessionward("profiles", "create", "bob", "--home", str(home))  # --home after the action too
    listed = sessionward("profiles", "--home", str(home), "list")
    assert listed.out.splitlines()[1:] == [
        "alice                      0       0  no      QA-alice/1.0",
        "bob                        0       0  no      (the client's own)",
    ]
    shown = json.loads(sessionward("profiles", "--home", str(home), "show", "alice", "--json").out)
    assert shown["settings"] == {
        "user_agent": "QA-alice/1.0",
        "locale": "fr-FR",
        "timezone": "Europe/Paris",
        "viewport": {"width": 1024, "height": 768},
        "proxy": "http://qa:***@proxy.test:3128",
    }
    assert "hunter2" not in sessionward("profiles", "--home", str(home), "show", "alice").out


def test_the_home_comes_from_the_environment(home: Path) -> None:
    env = {"SESSIONWARD_PROFILES": str(home)}
    sessionward("profiles", "create", "alice", env=env)
    assert Profiles(home).names() == ["alice"]
    assert "alice" in sessionward("profiles", "list", env=env).out
    empty = home.parent / "empty"
    assert sessionward("profiles", "--home", str(empty), "list", env=env).out == (
        f"no profiles in {empty}\n"
    )


def test_show_masks_every_value_and_names_session_ids(home: Path) -> None:
    token = real_token()
    profile = Profiles(home).create("alice")
    with profile.edit() as data:
        data.set_cookie(Cookie("__Host-id", token, "shop.test", secure=True, http_only=True))
        data.set_cookie(Cookie("theme", "dark-and-secret", ".shop.test", "/", 4_102_444_800.0))
        data.local_storage["https://shop.test"] = {"jwt": "eyJhbGciOi.secret.part", "t": token}
    run = sessionward("profiles", "--home", str(home), "show", "alice")
    assert run.status == 0
    session_id = token[4:20]
    assert (
        f"shop.test/  __Host-id=sw1_…(68 chars)  session {session_id}  Secure HttpOnly" in run.out
    )
    assert (
        ".shop.test/  theme=…(15 chars)  SameSite=Lax expires 2100-01-01T00:00:00+00:00" in run.out
    )
    assert "https://shop.test  jwt=…(22 chars)" in run.out
    assert "dark-and-secret" not in run.out
    assert "secret.part" not in run.out
    shown = json.loads(sessionward("profiles", "--home", str(home), "show", "alice", "--json").out)
    assert shown["cookies"][0]["session_id"] == session_id
    assert shown["local_storage"]["https://shop.test"]["t"] == "sw1_…(68 chars)"


def test_export_writes_a_private_file_and_import_reads_it_back(home: Path, tmp_path: Path) -> None:
    token = real_token()
    with Profiles(home).create("alice").edit() as data:
        data.set_cookie(Cookie("sid", token, "shop.test", http_only=True))
        data.local_storage["https://shop.test"] = {"who": "alice"}
    sessionward("profiles", "--home", str(home), "create", "bob")
    for fmt, name in (("cookies.txt", "c.txt"), ("storage-state", "s.json"), ("json", "p.json")):
        target = tmp_path / name
        run = sessionward(
            "profiles", "--home", str(home), "export", "alice", "--format", fmt, "-o", str(target)
        )
        assert run.status == 0
        assert f"to {target} ({fmt}, mode 0600)" in run.out
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert token in target.read_text()  # the file holds the real value
        again = sessionward(
            "profiles", "--home", str(home), "export", "alice", "--format", fmt, "-o", str(target)
        )
        error(again, f"{target} exists: pass --force")
        imported = sessionward(
            "profiles", "--home", str(home), "import", "bob", str(target), "--replace"
        )
        assert imported.status == 0, imported.err
        assert f"({fmt}" in imported.out
        bob = Profiles(home)["bob"].read()
        assert [(c.name, c.value) for c in bob.cookies] == [("sid", token)]
        assert bob.local_storage == (
            {} if fmt == "cookies.txt" else {"https://shop.test": {"who": "alice"}}
        )


def test_import_errors_name_the_file_not_the_values(home: Path, tmp_path: Path) -> None:
    sessionward("profiles", "--home", str(home), "create", "alice")
    bad = tmp_path / "bad.txt"
    bad.write_text(
        "# Netscape HTTP Cookie File\nshop.test\tMAYBE\t/\tFALSE\t0\tsid\tsecret-value\n"
    )
    run = sessionward("profiles", "--home", str(home), "import", "alice", str(bad))
    error(run, str(bad), "line 2")
    assert "secret-value" not in run.err
    error(
        sessionward("profiles", "--home", str(home), "import", "alice", str(tmp_path / "none")),
        "no file",
    )
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    error(sessionward("profiles", "--home", str(home), "import", "alice", str(binary)), "not UTF-8")


def test_a_damaged_profile_does_not_hide_the_others(home: Path) -> None:
    profiles = Profiles(home)
    profiles.create("alice")
    profiles.create("bob").file.write_text("{")
    run = sessionward("profiles", "--home", str(home), "list")
    assert run.status == 0
    assert run.out.splitlines()[1].startswith("alice ")
    assert run.out.splitlines()[2].startswith("bob ")
    assert "is damaged (not JSON)" in run.out
    error(sessionward("profiles", "--home", str(home), "show", "bob"), "is damaged")


def test_clone_and_delete(home: Path) -> None:
    sessionward("profiles", "--home", str(home), "create", "alice", "--user-agent", "QA/1")
    run = sessionward("profiles", "--home", str(home), "clone", "alice", "alice2")
    assert run.out.startswith("cloned profile alice to alice2")
    assert Profiles(home)["alice2"].read().settings.user_agent == "QA/1"
    error(sessionward("profiles", "--home", str(home), "delete", "alice2"), "confirm with --yes")
    assert (
        sessionward("profiles", "--home", str(home), "delete", "alice2", "--yes").out
        == "deleted profile alice2\n"
    )
    assert Profiles(home).names() == ["alice"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("show", "nobody"), "no profile named 'nobody'"),
        (("create", "../escape"), "a profile name is"),
        (("create", "x", "--viewport", "big"), "--viewport is WIDTHxHEIGHT"),
        (("create", "x", "--timezone", "Nowhere/Land"), "time zone"),
        (("create", "x", "--proxy", "ftp://p:21"), "proxy"),
        (("export", "nobody", "--format", "yaml", "-o", "x"), "invalid choice: 'yaml'"),
        (("show", "x", "--api-key", "k"), "--api-key goes with --server"),
        (
            ("open", "x", "--browser", "/nonexistent/chromium"),
            "no chromium at /nonexistent/chromium",
        ),
    ],
)
def test_bad_input_is_one_line(home: Path, args: tuple[str, ...], fragment: str) -> None:
    Profiles(home).create("x")
    error(sessionward("profiles", "--home", str(home), *args), fragment)


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [
        ("httpx", ("show", "x", "--server", "http://127.0.0.1:9", "--api-key", "k"), "httpx"),
        ("playwright.sync_api", ("open", "x"), "Playwright: pip install playwright"),
    ],
)
def test_a_missing_client_library_says_what_to_install(
    home: Path,
    module: str,
    args: tuple[str, ...],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sessionward import cli

    Profiles(home).create("x")
    monkeypatch.setitem(sys.modules, module, None)  # what an absent package gives import
    assert cli.main(["profiles", "--home", str(home), *args]) == 2
    assert message in capsys.readouterr().err
