"""``GET /v1/events``: the application's audit log, newest first, a page at a time, for keys of
scope ``admin``, each seeing its own application's events only."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers import WAIT

from sessionward.errors import ConfigError
from sessionward.service import ServiceConfig, create_app
from sessionward.service.config import load_config
from sessionward.service.keys import create_key
from sessionward.service.runtime import Runtime

from ._server import serve
from .conftest import Service


def issue(service: Service, user: str | None, key: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else service.auth("issue")
    body = {} if user is None else {"user_id": user}
    answer = service.client.post("/v1/sessions", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def events(service: Service, key: str | None = None, **params: Any) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else service.auth("admin")
    answer = service.client.get("/v1/events", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return dict(answer.json())


def test_events_are_listed_newest_first_with_public_user_ids(service: Service) -> None:
    alice = issue(service, "alice")
    service.clock.advance(5)
    revoke = {"token": alice["token"]}
    service.client.post("/v1/sessions/revoke", json=revoke, headers=service.auth("issue"))
    page = events(service)
    kinds = [(e["kind"], e["session_id"]) for e in page["events"]]
    assert kinds == [("revoked", alice["session"]["id"]), ("created", alice["session"]["id"])]
    revoked = page["events"][0]
    assert revoked["user_id"] == "alice"  # as the application knows it
    assert revoked["application"] == "default"
    assert revoked["reason"] == "logout"
    assert revoked["at"] == service.clock.now()
    assert page["next"] is None


def test_pages_follow_the_next_cursor(service: Service) -> None:
    made = [issue(service, f"user{i}")["session"]["id"] for i in range(5)]
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = events(service, **params)
        assert len(page["events"]) <= 2
        seen += [e["session_id"] for e in page["events"]]
        if page["next"] is None:
            break
        params["before"] = page["next"]
    assert seen == made[::-1]


def test_filters(service: Service) -> None:
    first = issue(service, "alice")["session"]["id"]
    service.clock.advance(60)
    middle = service.clock.now()
    second = issue(service, "bob")["session"]["id"]
    issue(service, None)  # an anonymous session of the application
    service.clock.advance(60)
    service.client.post(
        "/v1/users/alice/revoke", json={"reason": "password-change"}, headers=service.auth("issue")
    )

    def found(**params: Any) -> list[tuple[str, str]]:
        return [(e["kind"], e["session_id"]) for e in events(service, **params)["events"]]

    assert found(user="alice") == [("revoked", first), ("created", first)]
    assert found(session=second) == [("created", second)]
    assert found(kind="revoked") == [("revoked", first)]
    assert len(found(kind="created,revoked")) == 4
    assert found(since=middle, until=middle + 1) == found(kind="created")[:2]
    assert found(user="nobody") == []


def test_a_key_sees_its_own_applications_events_only(service: Service) -> None:
    now = time.time()
    shop_admin = create_key(service.runtime.state, "admin", "shop", now, "shop")[0]
    shop_issue = create_key(service.runtime.state, "issue", "shop issue", now, "shop")[0]
    ours = issue(service, "alice")["session"]["id"]
    theirs = issue(service, "alice", shop_issue)["session"]["id"]
    assert [e["session_id"] for e in events(service)["events"]] == [ours]
    shop = events(service, shop_admin)["events"]
    assert [(e["session_id"], e["user_id"], e["application"]) for e in shop] == [
        (theirs, "alice", "shop")
    ]
    assert events(service, shop_admin, session=ours)["events"] == []


@pytest.mark.parametrize("scope", ["validate", "issue"])
def test_narrower_keys_are_refused(service: Service, scope: str) -> None:
    answer = service.client.get("/v1/events", headers=service.auth(scope))
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    assert service.client.get("/v1/events").status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "ten"},
        {"before": "sw1_aaaaaaaaaaaaaaaa"},
        {"before": "1" * 65},
        {"session": "not-an-id"},
        {"since": "yesterday"},
        {"until": "nan"},
        {"kind": ","},
        {"user": ""},
        {"colour": "blue"},
    ],
)
def test_bad_parameters_answer_invalid_request(service: Service, params: dict[str, str]) -> None:
    answer = service.client.get("/v1/events", params=params, headers=service.auth("admin"))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_request"
    assert "sw1_" not in answer.text


def test_a_repeated_parameter_is_refused(service: Service) -> None:
    answer = service.client.get(
        "/v1/events?kind=created&kind=revoked", headers=service.auth("admin")
    )
    assert answer.status_code == 400


def test_metrics_count_the_audit_log(service: Service) -> None:
    issue(service, "alice")
    assert service.runtime.recorder is not None
    assert service.runtime.recorder.flush(WAIT)
    text = service.client.get("/metrics", headers=service.auth("validate")).text
    assert "sessionward_event_log_written_total 1" in text
    assert "sessionward_event_log_dropped_total 0" in text
    assert "sessionward_event_log_pending 0" in text


def test_retention_and_the_log_itself_are_configurable() -> None:
    environ = {"SESSIONWARD_EVENT_RETENTION_DAYS": "30", "SESSIONWARD_EVENT_LOG": "on"}
    config = load_config(environ=environ)
    assert config.event_retention == 30 * 86_400
    assert load_config(environ={"SESSIONWARD_EVENT_RETENTION_DAYS": "0"}).event_retention is None
    assert ServiceConfig().event_retention == 90 * 86_400
    assert not load_config(environ={"SESSIONWARD_EVENT_LOG": "false"}).event_log
    with pytest.raises(ConfigError):
        ServiceConfig(event_retention_days=-1)


def test_without_the_log_the_endpoint_says_so(tmp_path: Path) -> None:
    config = ServiceConfig(store=str(tmp_path / "n.db"), admin=False, demo=False, event_log=False)
    app = create_app(config)
    runtime: Runtime = app.state.runtime
    assert runtime.event_log is None
    assert runtime.recorder is None
    key = create_key(runtime.state, "admin", "k", time.time())[0]
    with serve(app) as base:
        answer = httpx.get(base + "/v1/events", headers={"authorization": f"Bearer {key}"})
    asyncio.run(runtime.close())
    assert answer.status_code == 404
    assert "event_log" in answer.json()["error"]["message"]
    tables = sqlite3.connect(tmp_path / "n.db").execute("SELECT name FROM sqlite_master")
    assert ("sessionward_events",) not in tables.fetchall()
