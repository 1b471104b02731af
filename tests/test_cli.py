"""The real ``sessionward`` command, run as a subprocess against real SQLite files."""

from __future__ import annotations

import ast
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from sessionward import Policy, SessionManager, SQLiteStore, __version__, cli
from sessionward.core.events import EventBus
from sessionward.testing import FakeClock

COMMAND = Path(sys.executable).parent / "sessionward"
RAW_TOKEN = re.compile(r"sw1_[A-Za-z0-9_-]{20,}")


@dataclass
class Run:
    status: int
    out: str
    err: str


def sessionward(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    environment.update(env or {})
    done = subprocess.run(
        [str(COMMAND), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=60,
        check=False,
    )
    run = Run(done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in run.err, run.err
    assert "Traceback" not in run.out, run.out
    assert not RAW_TOKEN.search(run.out + run.err), "a raw token was printed"
    return run


def assert_error(run: Run, *fragments: str) -> None:
    """Exit status 2, nothing on stdout, one line on stderr containing every fragment."""
    assert run.status == 2, run
    assert run.out == ""
    lines = run.err.splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("sessionward: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@dataclass
class Db:
    path: Path
    alice: list[str]
    bob: str
    anonymous: str
    expired: list[str]


@pytest.fixture
def db(tmp_path: Path) -> Db:
    """alice: 2 live sessions; bob: 1; one anonymous; 2 expired (alice and carol)."""
    path = tmp_path / "sessions.db"
    now = time.time()
    past = FakeClock(now - 10 * 3600)  # longer ago than the 8 h absolute lifetime
    with SessionManager(SQLiteStore(path), clock=past, events=EventBus([])) as old:
        expired = [old.issue("alice").id, old.issue("carol").id]
    clock = FakeClock(now)
    policy = Policy()
    with SessionManager(SQLiteStore(path), policy=policy, clock=clock, events=EventBus([])) as m:
        alice = [m.issue("alice", scopes=["read"]).id, m.issue("alice").id]
        bob = m.issue("bob").id
        anonymous = m.issue(data={"cart": ["book"]}).id
    return Db(path, alice, bob, anonymous, expired)


def stored_ids(path: Path) -> set[str]:
    """What the file holds, read with plain sqlite3 (independent of the code under test)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM sessions")}
    finally:
        conn.close()


# -- basics ---------------------------------------------------------------------------------------


def test_the_command_is_installed() -> None:
    assert COMMAND.is_file(), f"install the project first: {COMMAND} is missing"


def test_version() -> None:
    run = sessionward("--version")
    assert run.status == 0
    assert run.out.strip() == f"sessionward {__version__}"


def test_help_lists_the_command_groups() -> None:
    run = sessionward("--help")
    assert run.status == 0
    for word in ("sessions", "gc", "tour", "--db"):
        assert word in run.out


def test_python_dash_m_is_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sessionward", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"sessionward {__version__}"


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_commands_go_through_the_api_and_groups_not_through_the_package() -> None:
    # No raw SQL beside the store, and no group importing ``sessionward.cli`` (which loads
    # the groups): shared helpers live in ``sessionward.cli._common``.
    package = Path(cli.__file__).parent
    for path in sorted(package.glob("*.py")):
        imported = _imported_modules(path)
        assert "sqlite3" not in imported, path.name
        if path.name != "__init__.py":
            assert "sessionward.cli" not in imported, path.name


# -- the command-group registry (in process: it is a hook for other modules) ---------------------


def register_hello(subparsers: cli.Subparsers) -> None:
    hello = subparsers.add_parser("hello", help="say hello")
    hello.add_argument("name")
    hello.set_defaults(handler=lambda args: print(f"hello {args.name}") or 0)


def test_a_registered_group_becomes_a_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    group = cli.CommandGroup("hello", f"{__name__}:register_hello", "say hello")
    monkeypatch.setattr(cli, "GROUPS", [*cli.GROUPS, group])
    assert cli.main(["hello", "world"]) == 0
    assert capsys.readouterr().out == "hello world\n"
    assert cli.main(["hello"]) == 2
    assert "required: name" in capsys.readouterr().err


def test_a_group_whose_dependency_is_missing_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    group = cli.CommandGroup("widgets", "not_installed_dependency_xyz:register", "w", "jwt")
    monkeypatch.setattr(cli, "GROUPS", [*cli.GROUPS, group])
    assert cli.main(["widgets", "list"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "sessionward: error: 'widgets' needs the optional dependency not_installed_dependency_xyz:"
        " pip install 'sessionward[jwt]'\n"
    )
    assert cli.main(["sessions", "list"]) == 2  # the other commands are unaffected
    assert "no database given" in capsys.readouterr().err


def register_gc_again(subparsers: cli.Subparsers) -> None:
    subparsers.add_parser("gc", help="a second gc")


def test_a_broken_group_breaks_only_its_own_commands(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SESSIONWARD_DEBUG", raising=False)
    broken = cli.CommandGroup("broken", "sessionward.no_such_module_xyz:register", "broken")
    clash = cli.CommandGroup("gc", f"{__name__}:register_gc_again", "clash")
    monkeypatch.setattr(cli, "GROUPS", [*cli.GROUPS, broken, clash])
    assert cli.main(["broken", "anything"]) == 2
    warning, error = capsys.readouterr().err.splitlines()
    assert error.startswith(
        "sessionward: error: the 'broken' commands (sessionward.no_such_module_xyz:register)"
        " failed to load: ModuleNotFoundError"
    )
    assert warning.startswith("sessionward: warning: the 'gc' commands")  # a clash is reported
    assert "conflicting subparser: gc" in warning
    assert cli.main(["sessions", "list"]) == 2
    assert "no database given" in capsys.readouterr().err


# -- sessions list --------------------------------------------------------------------------------


def test_list_all_as_a_table(db: Db) -> None:
    run = sessionward("--db", str(db.path), "sessions", "list")
    assert run.status == 0, run
    assert run.err == ""
    lines = run.out.splitlines()
    assert lines[0].split()[:3] == ["ID", "USER", "STATUS"]
    assert lines[-1] == "6 session(s)"
    body = "\n".join(lines[1:-1])
    for session_id in [*db.alice, db.bob, db.anonymous, *db.expired]:
        assert session_id in body
    assert "(anonymous)" in body
    assert body.count("expired") == 2


def test_list_json_parses_and_describes_each_session(db: Db) -> None:
    run = sessionward("sessions", "list", "--json", "--db", str(db.path))
    assert run.status == 0, run
    rows = json.loads(run.out)
    by_id = {row["id"]: row for row in rows}
    assert set(by_id) == {*db.alice, db.bob, db.anonymous, *db.expired}
    assert by_id[db.alice[0]]["user_id"] == "alice"
    assert by_id[db.alice[0]]["scopes"] == ["read"]
    assert by_id[db.alice[0]]["status"] == "live"
    assert by_id[db.anonymous]["anonymous"] is True
    assert {by_id[i]["status"] for i in db.expired} == {"expired"}
    assert by_id[db.bob]["created_at"].endswith("+00:00")
    assert "data" not in by_id[db.anonymous]  # carts and other app data stay private


def test_list_one_user(db: Db) -> None:
    run = sessionward("--db", str(db.path), "sessions", "list", "--user", "alice", "--json")
    assert run.status == 0, run
    ids = [row["id"] for row in json.loads(run.out)]
    assert sorted(ids) == sorted([*db.alice, db.expired[0]])
    assert {row["user_id"] for row in json.loads(run.out)} == {"alice"}


def test_list_an_unknown_user_and_an_empty_database(db: Db, tmp_path: Path) -> None:
    run = sessionward("--db", str(db.path), "sessions", "list", "--user", "nobody")
    assert (run.status, run.out) == (1, "")  # the help's "1 nothing matched"
    assert run.err == "sessionward: no session of user nobody\n"
    as_json = sessionward("--db", str(db.path), "sessions", "list", "--user", "nobody", "--json")
    assert (as_json.status, json.loads(as_json.out)) == (1, [])
    assert sessionward("--db", str(db.path), "sessions", "list").status == 0
    empty = tmp_path / "empty-sessions.db"
    SQLiteStore(empty).close()
    assert json.loads(sessionward("--db", str(empty), "sessions", "list", "--json").out) == []


def test_the_database_can_come_from_the_environment(db: Db) -> None:
    run = sessionward("sessions", "list", "--json", env={"SESSIONWARD_DB": str(db.path)})
    assert run.status == 0, run
    assert len(json.loads(run.out)) == 6


def test_the_command_line_wins_over_the_environment(db: Db, tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere.db"
    run = sessionward("--db", str(db.path), "gc", env={"SESSIONWARD_DB": str(missing)})
    assert run.status == 0, run
    assert not missing.exists()


# -- revoking -------------------------------------------------------------------------------------


def test_revoke_one_session(db: Db) -> None:
    run = sessionward("--db", str(db.path), "sessions", "revoke", db.bob)
    assert (run.status, run.out) == (0, f"revoked session {db.bob}\n")
    assert db.bob not in stored_ids(db.path)
    assert db.alice[0] in stored_ids(db.path)
    again = sessionward("--db", str(db.path), "sessions", "revoke", db.bob)
    assert again.status == 1
    assert again.out == ""
    assert again.err == f"sessionward: no session {db.bob}\n"


def test_revoke_user_ends_every_session_of_that_user_only(db: Db) -> None:
    run = sessionward("--db", str(db.path), "sessions", "revoke-user", "alice")
    assert (run.status, run.out) == (0, "revoked 3 session(s) of user alice\n")
    assert stored_ids(db.path) == {db.bob, db.anonymous, db.expired[1]}
    run = sessionward("--db", str(db.path), "sessions", "revoke-user", "alice")
    assert (run.status, run.out, run.err) == (1, "", "sessionward: no session of user alice\n")


def test_gc_deletes_only_expired_sessions(db: Db) -> None:
    run = sessionward("--db", str(db.path), "gc")
    assert (run.status, run.out) == (0, "deleted 2 expired session(s)\n")
    assert stored_ids(db.path) == {*db.alice, db.bob, db.anonymous}
    assert sessionward("gc", env={"SESSIONWARD_DB": str(db.path)}).out == (
        "deleted 0 expired session(s)\n"
    )


# -- errors ---------------------------------------------------------------------------------------


def test_no_database_given() -> None:
    assert_error(sessionward("sessions", "list"), "--db", "SESSIONWARD_DB")


@pytest.mark.parametrize(
    "args",
    [
        ("sessions", "list"),
        ("sessions", "revoke", "AAAAAAAAAAAAAAAA"),
        ("sessions", "revoke-user", "alice"),
        ("gc",),
    ],
)
def test_a_missing_database_is_an_error_and_is_not_created(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    missing = tmp_path / "typo.db"
    assert_error(sessionward("--db", str(missing), *args), "no database file", "typo.db")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a database, just text " * 200, "not a database"),
        (bytes(range(256)) * 40, "not a database"),
        (b"", "empty file"),
    ],
)
@pytest.mark.parametrize("args", [("sessions", "list"), ("gc",), ("sessions", "revoke-user", "a")])
def test_a_garbage_file_is_an_error_and_is_left_untouched(
    tmp_path: Path, content: bytes, message: str, args: tuple[str, ...]
) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(content)
    assert_error(sessionward("--db", str(path), *args), message)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.db"]


def test_someone_elses_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    assert_error(sessionward("--db", str(path), "sessions", "list"), "not sessionward's")
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert tables == {"users"}


def test_a_damaged_sessionward_database_is_an_error(db: Db) -> None:
    data = bytearray(db.path.read_bytes())
    for suffix in ("-wal", "-shm"):
        assert not Path(str(db.path) + suffix).exists()  # checkpointed and closed
    assert len(data) >= 3 * 4096
    data[4096:] = b"\xff" * (len(data) - 4096)  # every page after the first is garbage
    db.path.write_bytes(bytes(data))
    for args in (("sessions", "list"), ("sessions", "list", "--user", "alice"), ("gc",)):
        run = sessionward("--db", str(db.path), *args)
        assert_error(run)
        assert "malformed" in run.err or "not a database" in run.err or "unreadable" in run.err


def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    assert_error(sessionward("--db", str(tmp_path), "gc"), "no database file")


@pytest.mark.parametrize(
    ("bad_id", "fragment"),
    [
        ("abc", "not a session id (3 characters"),
        ("AAAAAAAAAAAAAAA!", "not a session id"),
        ("A" * 17, "not a session id (17 characters"),
        ("", "not a session id (0 characters"),
    ],
)
def test_a_bad_session_id(db: Db, bad_id: str, fragment: str) -> None:
    assert_error(sessionward("--db", str(db.path), "sessions", "revoke", bad_id), fragment)
    assert len(stored_ids(db.path)) == 6


def test_a_whole_token_given_as_id_is_refused_without_echoing_it(db: Db, tmp_path: Path) -> None:
    with SessionManager(SQLiteStore(db.path), events=EventBus([])) as manager:
        session = manager.issue("dave")
    token = session.token
    assert token is not None
    run = sessionward("--db", str(db.path), "sessions", "revoke", token)
    assert_error(run, "whole token", "public session id")
    assert token[4:] not in run.err
    assert session.id in stored_ids(db.path)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((), "required: COMMAND"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        (("sessions",), "required: ACTION"),
        (("sessions", "revoke"), "required: ID"),
        (("sessions", "list", "--bogus"), "unrecognized arguments: --bogus"),
        (("--bogus",), "unrecognized arguments: --bogus"),
        (("--db", "x.db", "--bogus"), "unrecognized arguments: --bogus"),
        (("sessions", "--bogus"), "unrecognized arguments: --bogus"),
        (("gc", "extra"), "unrecognized arguments: extra"),
        (("--db",), "expected one argument"),
    ],
)
def test_bad_arguments(args: tuple[str, ...], fragment: str) -> None:
    assert_error(sessionward(*args), fragment)


def test_closing_the_pipe_early_is_not_an_error(db: Db) -> None:
    # Like ``sessionward sessions list | head -n 1``: far more output than a pipe buffers.
    with SessionManager(SQLiteStore(db.path), events=EventBus([])) as manager:
        for _ in range(1500):
            manager.issue("eve")
    writer = subprocess.Popen(
        [str(COMMAND), "--db", str(db.path), "sessions", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    assert writer.stderr is not None
    first = writer.stdout.readline()
    writer.stdout.close()
    err = writer.stderr.read()
    writer.stderr.close()
    status = writer.wait(timeout=60)
    assert first.startswith("ID")
    assert "Traceback" not in err
    assert err == ""
    assert status == 0


# -- tour -----------------------------------------------------------------------------------------


def test_tour_in_the_current_directory_creates_the_default_database(tmp_path: Path) -> None:
    run = sessionward("tour", cwd=tmp_path)
    assert run.status == 0, run
    assert run.err == ""
    assert (tmp_path / "sessionward.db").is_file()
    out = run.out
    for expected in (
        "anonymous session",
        "cart ['book', 'pen']",
        "old anonymous token: rejected",
        "valid: user alice",
        "tampered token: rejected (checksum)",
        "old token within 30 s: accepted",
        "ended 2 session(s)",
        "alice's laptop token: rejected",
        "alice's phone token:  rejected",
        "bob's token:          accepted",
        "sw1_…(68 chars)",
    ):
        assert expected in out, expected
    # the session the tour leaves behind is bob's, and the listing shows it
    listing = sessionward("--db", str(tmp_path / "sessionward.db"), "sessions", "list", "--json")
    assert [row["user_id"] for row in json.loads(listing.out)] == ["bob"]


def test_tour_with_an_explicit_database_twice(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "tour.db"
    path.parent.mkdir()
    first = sessionward("tour", "--db", str(path))
    second = sessionward("--db", str(path), "tour")
    assert first.status == second.status == 0
    assert len(stored_ids(path)) == 2  # one bob per run
    ids = set(re.findall(r"session ([A-Za-z0-9_-]{16})", first.out + second.out))
    assert ids >= stored_ids(path)


def test_tour_refuses_a_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"junk" * 1000)
    assert_error(sessionward("tour", "--db", str(path)), "not a database")
    assert path.read_bytes() == b"junk" * 1000
