"""``sessionward events list|tail``: the audit log from the command line, with the command's
exit statuses (0 done, 1 nothing matched, 2 error) and never a token."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest
from servers import PostgresServer, RedisServer
from servers import postgres_server as postgres_server  # a fixture
from servers import redis_server as redis_server  # a fixture
from test_cli import COMMAND, assert_error, sessionward

from sessionward import SessionManager, SQLiteStore
from sessionward.cli.events import parse_time
from sessionward.core.events import EventBus
from sessionward.signals.recorder import Recorder
from sessionward.stores.eventlog import open_event_log
from sessionward.testing import FakeClock


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A database with four events: alice's login and logout, bob's login, an anonymous one."""
    path = str(tmp_path / "s.db")
    store = SQLiteStore(path)
    log = open_event_log(path)
    recorder = Recorder(log, application=lambda e: "shop" if e.user_id else None)
    clock = FakeClock(time.time() - 3600)
    with SessionManager(store, clock=clock, events=EventBus([recorder])) as manager:
        alice = manager.issue("alice")
        clock.advance(600)
        manager.revoke(alice)
        clock.advance(600)
        manager.issue("bob")
        manager.issue()
    recorder.close()
    log.close()
    return path


def test_list_prints_newest_first(db: str) -> None:
    run = sessionward("--db", db, "events", "list")
    assert run.status == 0, run.err
    lines = run.out.splitlines()
    assert [line.split()[1] for line in lines] == ["created", "created", "revoked", "created"]
    assert "user=alice" in lines[2]
    assert "reason=logout" in lines[2]
    assert "app=shop" in lines[2]


def test_list_filters_and_json(db: str) -> None:
    run = sessionward("events", "list", "--db", db, "--user", "alice", "--json")
    rows = [json.loads(line) for line in run.out.splitlines()]
    assert [r["kind"] for r in rows] == ["revoked", "created"]
    assert {r["user_id"] for r in rows} == {"alice"}
    assert rows[0]["session_id"] == rows[1]["session_id"]
    kinds = sessionward("events", "list", "--db", db, "--kind", "revoked", "--json")
    assert [json.loads(line)["kind"] for line in kinds.out.splitlines()] == ["revoked"]
    recent = sessionward("events", "list", "--db", db, "--since", "45m", "--json")
    assert len(recent.out.splitlines()) == 2  # bob's and the anonymous one, 40 minutes ago
    one = sessionward("events", "list", "--db", db, "--limit", "1", "--json")
    assert len(one.out.splitlines()) == 1
    session = rows[0]["session_id"]
    by_session = sessionward("events", "list", "--db", db, "--session", session, "--json")
    assert len(by_session.out.splitlines()) == 2


def test_list_that_matches_nothing_exits_1(db: str) -> None:
    run = sessionward("events", "list", "--db", db, "--user", "nobody")
    assert run.status == 1
    assert run.out == ""
    assert "no event matched" in run.err


def test_errors_exit_2_in_one_line(db: str, tmp_path: Path) -> None:
    assert_error(sessionward("events", "list", "--db", str(tmp_path / "typo.db")), "typo.db")
    assert_error(sessionward("events", "list", "--db", db, "--since", "last tuesday"), "not a time")
    assert_error(
        sessionward("events", "list", "--db", db, "--session", "sw1_" + "A" * 64), "whole token"
    )
    assert_error(sessionward("events", "list"), "no store given")
    assert not (tmp_path / "typo.db").exists()  # never a new database


def test_tail_prints_the_latest_oldest_first(db: str) -> None:
    run = sessionward("events", "tail", "--db", db, "--limit", "2", "--json")
    kinds = [json.loads(line)["user_id"] for line in run.out.splitlines()]
    assert kinds == ["bob", None]


def test_tail_follow_prints_new_events_as_they_are_written(db: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    process = subprocess.Popen(
        [str(COMMAND), "events", "tail", "--db", db, "--follow", "--interval", "0.05", "--json"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    try:
        first = [json.loads(process.stdout.readline()) for _ in range(4)]
        assert [e["kind"] for e in first] == ["created", "revoked", "created", "created"]
        log = open_event_log(db)
        log.append([{"kind": "expired", "at": time.time(), "session_id": "S" * 16,
                     "user_id": "carol", "application": "shop", "deadline": "idle"}])  # fmt: skip
        log.close()
        later = json.loads(process.stdout.readline())
        assert (later["kind"], later["user_id"], later["deadline"]) == ("expired", "carol", "idle")
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
        process.stdout.close()


def test_times() -> None:
    now = 1_800_000_000.0
    assert parse_time("2h", now) == now - 7200
    assert parse_time("1800000000", now) == now
    assert parse_time("2027-01-15T08:00:00", now) == parse_time("2027-01-15T08:00:00+00:00", now)


def test_an_unreachable_url_store_is_an_error() -> None:
    assert_error(sessionward("events", "list", "--store", "redis://127.0.0.1:1/0"), "redis")


@pytest.fixture(params=["postgres", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return server.url
    redis: RedisServer = request.getfixturevalue("redis_server")
    return redis.url


def test_list_reads_a_postgres_or_redis_log(store_url: str) -> None:
    user = f"shop/u-{secrets.token_hex(4)}"
    log = open_event_log(store_url)
    log.append([{"kind": "revoked", "at": time.time(), "session_id": "S" * 16,
                 "user_id": user, "application": "shop", "reason": "risk"}])  # fmt: skip
    log.close()
    run = sessionward("events", "list", "--store", store_url, "--user", user)
    assert run.status == 0, run.err
    [line] = run.out.splitlines()
    assert "revoked" in line
    assert "reason=risk" in line
