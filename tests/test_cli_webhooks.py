"""``sessionward webhooks``: endpoints managed from the command line, delivered by a deliverer
on the same SQLite file, the history read back by the command."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from signals._receiver import Receiver

from sessionward import cli
from sessionward.core.events import SessionRevoked
from sessionward.signals.delivery import Deliverer
from sessionward.signals.webhook_endpoints import KIND, WebhookRenderer
from sessionward.stores import SQLiteStore
from sessionward.stores.consumers import SQLiteConsumerStore
from sessionward.stores.eventlog.spec import open_event_log
from sessionward.testing import FakeClock


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "sessions.db"
    SQLiteStore(path).close()
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = cli.main(["webhooks", *args])
    out = capsys.readouterr()
    return status, out.out + out.err


def test_add_list_rotate_remove(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(capsys, "add", "https://hooks.test/in", "--event", "revoked", "--db", db)
    assert status == 0
    hook_id = re.search(r"webhook (wh_\S+)", out).group(1)  # type: ignore[union-attr]
    secret = re.search(r"(whsec_\S+)", out).group(1)  # type: ignore[union-attr]
    status, out = run(capsys, "list", "--json", "--db", db)
    assert status == 0
    [row] = json.loads(out)
    assert (row["id"], row["events"], row["state"]) == (hook_id, ["revoked"], "active")
    assert secret not in out
    status, out = run(capsys, "rotate-secret", hook_id, "--db", db)
    assert status == 0
    assert "whsec_" in out
    assert secret not in out
    assert run(capsys, "list", "--application", "shop", "--db", db)[1].startswith("no webhooks")
    status, out = run(capsys, "remove", hook_id, "--application", "shop", "--db", db)
    assert status == 1  # another application's endpoint is not found
    assert run(capsys, "remove", hook_id, "--db", db)[0] == 0
    assert run(capsys, "remove", hook_id, "--db", db)[0] == 1
    status, out = run(capsys, "add", "ftp://nope", "--db", db)
    assert status == 2
    assert "https://" in out


def test_refuses_a_file_that_is_not_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = run(capsys, "list", "--db", str(tmp_path / "missing.db"))
    assert status == 2
    assert "not a sessionward database" in out
    assert not (tmp_path / "missing.db").exists()


def test_deliveries_show_what_a_deliverer_sent(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    receiver = Receiver()
    receiver.start()
    try:
        status, out = run(capsys, "add", receiver.url, "--db", db)
        assert status == 0
        hook_id = re.search(r"webhook (wh_\S+)", out).group(1)  # type: ignore[union-attr]
        receiver.secret = re.search(r"(whsec_\S+)", out).group(1)  # type: ignore[union-attr]
        log = open_event_log(db)
        ids = log.append(
            [{**SessionRevoked("s1", "default/u", time.time()).to_dict(), "application": "default"}]
        )
        store = SQLiteConsumerStore(db)
        engine = Deliverer(log, store, {KIND: WebhookRenderer()}, clock=FakeClock(time.time()))
        try:
            assert engine.run_once() == 1
        finally:
            engine.stop()
            store.close()
            log.close()
    finally:
        receiver.close()
    assert receiver.ids() == [f"evt_{ids[0]}"]
    status, out = run(capsys, "deliveries", hook_id, "--json", "--db", db)
    assert status == 0
    [row] = json.loads(out)
    assert (row["ok"], row["status"], row["message_id"], row["attempt"]) == (
        True, 204, f"evt_{ids[0]}", 1,
    )  # fmt: skip
    status, out = run(capsys, "deliveries", hook_id, "--db", db)
    assert status == 0
    assert f"evt_{ids[0]}  attempt 1  204  ok" in out
