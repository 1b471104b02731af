"""Every API endpoint over real HTTP (uvicorn on a loopback port), on a real SQLite file and
a fake clock: answers, scopes, error codes, and the opaque ``invalid``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from sessionward import Policy
from sessionward.core import token as tokens
from sessionward.service import ServiceConfig, create_app
from sessionward.service.runtime import Runtime
from sessionward.testing import FakeClock

from ._server import serve
from .conftest import Service, make_keys


def issue(service: Service, **body: Any) -> dict[str, Any]:
    response = service.client.post("/v1/sessions", json=body, headers=service.auth("issue"))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def validate(service: Service, token: str, **extra: Any) -> dict[str, Any]:
    response = service.client.post(
        "/v1/sessions/validate", json={"token": token, **extra}, headers=service.auth("validate")
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_issue_answers_session_and_token_and_no_store(service: Service) -> None:
    response = service.client.post(
        "/v1/sessions",
        json={
            "user_id": "alice",
            "scopes": ["orders:read"],
            "data": {"theme": "dark"},
            "context": {"ip": "192.0.2.7", "user_agent": "curl/8"},
        },
        headers=service.auth("issue"),
    )
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert tokens.parse(body["token"]).session_id == body["session"]["id"]
    session = body["session"]
    assert session["user_id"] == "alice"
    assert session["scopes"] == ["orders:read"]
    assert session["data"] == {"theme": "dark"}
    assert session["anonymous"] is False
    assert "secret_hash" not in response.text
    assert "context_history" not in session


def test_anonymous_issue_then_login_carries_data_and_kills_old_token(service: Service) -> None:
    anonymous = issue(service)
    assert anonymous["session"]["anonymous"] is True
    service.client.post(
        "/v1/sessions/data",
        json={"token": anonymous["token"], "set": {"cart": ["tea"]}},
        headers=service.auth("issue"),
    )
    login = issue(service, user_id="bob", previous_token=anonymous["token"])
    assert login["session"]["data"] == {"cart": ["tea"]}
    assert validate(service, anonymous["token"]) == {"decision": "deny", "reason": "invalid"}
    assert validate(service, login["token"])["decision"] == "allow"


def test_validate_denies_every_kind_of_bad_token_identically(service: Service) -> None:
    good = issue(service, user_id="carol")["token"]
    wrong_secret = tokens.token_from_parts(tokens.parse(good).session_id, b"\x00" * 32)
    expired = issue(service, user_id="dave")["token"]
    answers = [
        validate(service, "garbage"),
        validate(service, good[:-1] + ("A" if good[-1] != "A" else "B")),
        validate(service, wrong_secret),
        validate(service, tokens.mint()[0]),
    ]
    service.clock.advance(601)
    answers.append(validate(service, expired))
    assert all(a == {"decision": "deny", "reason": "invalid"} for a in answers)
    reasons = {e.get("reason") for e in service.runtime.activity.recent if e["kind"] == "rejected"}
    assert {"malformed", "mismatch", "unknown"} <= reasons  # the real reasons, for operators
    assert any(e["kind"] == "expired" for e in service.runtime.activity.recent)


def test_validate_records_context_and_decides_step_up(unscored: Service) -> None:
    service = unscored  # without hijack scoring a session keeps its raw context history
    token = issue(service, user_id="erin")["token"]
    service.clock.advance(400)
    answer = validate(service, token, context={"ip": "198.51.100.1"}, max_auth_age=300)
    assert answer["decision"] == "step-up"
    assert answer["session"]["user_id"] == "erin"
    assert validate(service, token, max_auth_age=3000)["decision"] == "allow"
    assert validate(service, token, min_level=2)["decision"] == "step-up"
    detail = service.client.get(
        f"/v1/sessions/{answer['session']['id']}", headers=service.auth("admin")
    ).json()
    assert detail["session"]["context_history"][-1]["ip"] == "198.51.100.1"
    assert service.runtime.activity.decisions_total["step-up"] == 2


def test_validate_rotates_when_due(tmp_path: Any) -> None:
    clock = FakeClock()
    policy = Policy(idle_timeout=600, absolute_timeout=3600, rotate_after=60)
    config = ServiceConfig(store=str(tmp_path / "r.db"), admin=False, demo=False, policy=policy)
    app = create_app(config, clock=clock)
    runtime: Runtime = app.state.runtime
    keys = make_keys(runtime)
    with serve(app) as base, httpx.Client(base_url=base) as client:
        auth = {"authorization": f"Bearer {keys['issue']}"}
        token = client.post("/v1/sessions", json={"user_id": "f"}, headers=auth).json()["token"]
        clock.advance(61)
        answer = client.post("/v1/sessions/validate", json={"token": token}, headers=auth).json()
        assert answer["decision"] == "rotate"
        assert answer["token"] != token
        again = {"token": answer["token"]}
        answer = client.post("/v1/sessions/validate", json=again, headers=auth).json()
        assert answer["decision"] == "allow"
    asyncio.run(runtime.close())


def test_rotate_keeps_old_token_for_grace_only(service: Service) -> None:
    old = issue(service, user_id="gina")["token"]
    response = service.client.post(
        "/v1/sessions/rotate", json={"token": old}, headers=service.auth("issue")
    )
    assert response.status_code == 200
    new = response.json()["token"]
    assert new != old
    assert tokens.parse(new).session_id == tokens.parse(old).session_id
    # Inside the grace window the old token resolves to the new one, however often it comes.
    for _ in range(2):
        assert validate(service, old)["token"] == new
        again = service.client.post(
            "/v1/sessions/rotate", json={"token": old}, headers=service.auth("issue")
        )
        assert again.json()["token"] == new  # a retry or second tab: no third secret
    assert validate(service, new)["decision"] == "allow"
    service.clock.advance(31)
    assert validate(service, old)["decision"] == "deny"  # replay after grace: theft
    assert validate(service, new)["decision"] == "deny"  # ... which ended the session


def test_elevate_rotates_without_grace_and_sets_level(service: Service) -> None:
    old = issue(service, user_id="hal")["token"]
    response = service.client.post(
        "/v1/sessions/elevate",
        json={"token": old, "auth_level": 2, "scopes": ["admin"]},
        headers=service.auth("issue"),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["session"]["auth_level"] == 2
    assert body["session"]["scopes"] == ["admin"]
    assert validate(service, old)["decision"] == "deny"
    assert validate(service, body["token"], min_level=2)["decision"] == "allow"
    anonymous = issue(service)["token"]
    refused = service.client.post(
        "/v1/sessions/elevate", json={"token": anonymous}, headers=service.auth("issue")
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_request"


def test_update_data_sets_and_unsets_and_enforces_limit(service: Service) -> None:
    token = issue(service, data={"a": 1, "b": 2})["token"]
    response = service.client.post(
        "/v1/sessions/data",
        json={"token": token, "set": {"c": [3]}, "unset": ["a"]},
        headers=service.auth("issue"),
    )
    assert response.status_code == 200
    assert response.json()["session"]["data"] == {"b": 2, "c": [3]}
    too_big = service.client.post(
        "/v1/sessions/data",
        json={"token": token, "set": {"x": "y" * 20_000}},
        headers=service.auth("issue"),
    )
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "data_too_large"
    bad = service.client.post(
        "/v1/sessions/data", json={"token": "nope", "set": {}}, headers=service.auth("issue")
    )
    assert bad.status_code == 401
    assert bad.json() == {"error": {"code": "invalid_token", "message": "invalid"}}


def test_revoke_by_token_is_idempotent(service: Service) -> None:
    token = issue(service, user_id="ivy")["token"]
    auth = service.auth("issue")
    first = service.client.post("/v1/sessions/revoke", json={"token": token}, headers=auth)
    assert first.json() == {"revoked": True}
    assert validate(service, token)["decision"] == "deny"
    second = service.client.post("/v1/sessions/revoke", json={"token": token}, headers=auth)
    assert second.status_code == 200
    assert second.json() == {"revoked": False}


def test_list_and_revoke_user_keeping_one(service: Service) -> None:
    tokens_ = [issue(service, user_id="jo")["token"] for _ in range(3)]
    issue(service, user_id="other")
    auth = service.auth("issue")
    listed = service.client.get("/v1/users/jo/sessions", headers=auth).json()["sessions"]
    assert [s["user_id"] for s in listed] == ["jo"] * 3
    keep = tokens.parse(tokens_[0]).session_id
    response = service.client.post(
        "/v1/users/jo/revoke",
        json={"keep_session_id": keep, "reason": "password-change"},
        headers=auth,
    )
    assert response.json() == {"revoked": 2}
    assert [validate(service, t)["decision"] for t in tokens_] == ["allow", "deny", "deny"]
    reasons = [e["reason"] for e in service.runtime.activity.recent if e["kind"] == "revoked"]
    assert reasons == ["password-change", "password-change"]
    empty = service.client.post("/v1/users/jo/revoke", headers=auth)
    assert empty.status_code == 200
    assert empty.json() == {"revoked": 1}
    assert service.client.get("/v1/users/other/sessions", headers=auth).json()["sessions"]


def test_user_ids_with_slashes_and_unicode_round_trip(service: Service) -> None:
    issue(service, user_id="tenant/ä b")
    listed = service.client.get(
        "/v1/users/tenant%2F%C3%A4%20b/sessions", headers=service.auth("issue")
    )
    assert listed.status_code == 200
    assert [s["user_id"] for s in listed.json()["sessions"]] == ["tenant/ä b"]
    plain = service.client.get("/v1/users/%C3%A4%20x/sessions", headers=service.auth("issue"))
    assert plain.status_code == 200
    assert plain.json() == {"sessions": []}


def test_user_ids_with_line_breaks_are_routed(service: Service) -> None:
    """Found by schemathesis: a user id holding a newline answered an undocumented 404."""
    issue(service, user_id="line\nbreak")
    listed = service.client.get("/v1/users/line%0Abreak/sessions", headers=service.auth("issue"))
    assert listed.status_code == 200
    assert [s["user_id"] for s in listed.json()["sessions"]] == ["line\nbreak"]
    revoked = service.client.post("/v1/users/line%0Abreak/revoke", headers=service.auth("issue"))
    assert revoked.json() == {"revoked": 1}


def test_admin_get_and_delete_session(unscored: Service) -> None:
    service = unscored  # the raw context history is shown when hijack scoring is off
    body = issue(service, user_id="kim", context={"user_agent": "Firefox/128"})
    session_id = body["session"]["id"]
    admin = service.auth("admin")
    detail = service.client.get(f"/v1/sessions/{session_id}", headers=admin)
    assert detail.status_code == 200
    assert detail.json()["session"]["context_history"][0]["user_agent"] == "Firefox/128"
    assert [e["kind"] for e in detail.json()["events"]] == ["created"]
    assert body["token"] not in detail.text
    deleted = service.client.delete(f"/v1/sessions/{session_id}", headers=admin)
    assert deleted.json() == {"revoked": True}
    assert validate(service, body["token"])["decision"] == "deny"
    gone = service.client.get(f"/v1/sessions/{session_id}", headers=admin)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "not_found"
    junk = service.client.get("/v1/sessions/not-an-id", headers=admin)
    assert junk.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/sessions", {"user_id": "x"}),
        ("POST", "/v1/sessions/rotate", {"token": "x"}),
        ("POST", "/v1/sessions/elevate", {"token": "x"}),
        ("POST", "/v1/sessions/data", {"token": "x", "set": {}}),
        ("POST", "/v1/sessions/revoke", {"token": "x"}),
        ("GET", "/v1/users/x/sessions", None),
        ("POST", "/v1/users/x/revoke", {}),
        ("GET", "/v1/sessions/AAAAAAAAAAAAAAAA", None),
        ("DELETE", "/v1/sessions/AAAAAAAAAAAAAAAA", None),
    ],
)
def test_validate_only_key_cannot_issue_or_revoke(
    service: Service, method: str, path: str, body: Any
) -> None:
    response = service.client.request(method, path, json=body, headers=service.auth("validate"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_issue_key_cannot_use_admin_operations_or_reserved_users(service: Service) -> None:
    session_id = issue(service, user_id="lee")["session"]["id"]
    auth = service.auth("issue")
    assert service.client.get(f"/v1/sessions/{session_id}", headers=auth).status_code == 403
    assert service.client.delete(f"/v1/sessions/{session_id}", headers=auth).status_code == 403
    for key in ("issue", "admin"):
        reserved = service.client.post(
            "/v1/sessions", json={"user_id": "sessionward:admin:root"}, headers=service.auth(key)
        )
        assert reserved.status_code == 403
    listing = service.client.get("/v1/users/sessionward:admin:root/sessions", headers=auth)
    assert listing.status_code == 403
    admin_listing = service.client.get(
        "/v1/users/sessionward:admin:root/sessions", headers=service.auth("admin")
    )
    assert admin_listing.status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer swk_not_a_key",
        "Bearer swk_AAAAAAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_missing_or_unknown_key_is_401_with_challenge(service: Service, header: Any) -> None:
    headers = {} if header is None else {"authorization": header}
    response = service.client.post("/v1/sessions/validate", json={"token": "x"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_revoked_key_stops_working(service: Service) -> None:
    key = service.keys["validate"]
    assert validate(service, "x")["decision"] == "deny"
    key_id = key[4:20]
    assert service.runtime.state.revoke_key(key_id, service.clock.now())
    response = service.client.post(
        "/v1/sessions/validate", json={"token": "x"}, headers=service.auth("validate")
    )
    assert response.status_code == 401
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    other = service.client.post(
        "/v1/sessions/validate",
        json={"token": "x"},
        headers={"authorization": f"Bearer {tampered}"},
    )
    assert other.status_code == 401


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"{}", {"content-type": "text/plain"}, 415, "unsupported_media"),
        (b"{not json", {"content-type": "application/json"}, 400, "invalid_request"),
        (b"[1, 2]", {"content-type": "application/json"}, 400, "invalid_request"),
        (b'{"token": 5}', {"content-type": "application/json"}, 400, "invalid_request"),
        (
            b'{"token": "x", "extra": 1}',
            {"content-type": "application/json"},
            400,
            "invalid_request",
        ),
        (b'{"token": NaN}', {"content-type": "application/json"}, 400, "invalid_request"),
        (b'{"token": "\\ud800"}', {"content-type": "application/json"}, 400, "invalid_request"),
        (
            b'{"token": "' + b"x" * 70_000 + b'"}',
            {"content-type": "application/json"},
            413,
            "request_too_large",
        ),
    ],
)
def test_bad_bodies_get_stable_error_codes(
    service: Service, content: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    response = service.client.post(
        "/v1/sessions/validate", content=content, headers={**headers, **service.auth("validate")}
    )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_wrong_method_and_unknown_path_are_json(service: Service) -> None:
    wrong = service.client.get("/v1/sessions/validate", headers=service.auth("admin"))
    assert wrong.status_code == 404  # GET matches /v1/sessions/{session_id}: not an id
    put = service.client.put("/v1/sessions/validate", headers=service.auth("admin"))
    assert put.status_code == 405
    assert put.json()["error"]["code"] == "method_not_allowed"
    missing = service.client.get("/v2/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_health_readiness_and_store_outage_fail_closed(service: Service) -> None:
    token = issue(service, user_id="max")["token"]
    assert service.client.get("/healthz").json() == {"status": "ok"}
    assert service.client.get("/readyz").json() == {"status": "ready"}
    asyncio.run(service.runtime.manager.store.close())  # the store goes away
    ready = service.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "store_unavailable"
    answer = service.client.post(
        "/v1/sessions/validate", json={"token": token}, headers=service.auth("validate")
    )
    assert answer.status_code == 503
    assert answer.json() == {
        "error": {"code": "store_unavailable", "message": "the session store is unavailable"}
    }
    issued = service.client.post("/v1/sessions", json={}, headers=service.auth("issue"))
    assert issued.status_code == 503
    assert "token" not in issued.json()
    assert service.client.get("/healthz").status_code == 200


def test_metrics_exposition(service: Service) -> None:
    token = issue(service, user_id="nia")["token"]
    validate(service, token)
    validate(service, "bad")
    response = service.client.get("/metrics", headers=service.auth("validate"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert 'sessionward_validate_decisions_total{decision="allow"} 1' in text
    assert 'sessionward_validate_decisions_total{decision="deny"} 1' in text
    assert 'sessionward_events_total{kind="created"} 1' in text
    assert 'sessionward_rejections_total{reason="malformed"} 1' in text
    assert 'sessionward_api_requests_total{route="validate",status="200"} 2' in text
    assert 'sessionward_api_request_duration_seconds_count{route="issue"} 1' in text
    assert "sessionward_store_up 1" in text
    assert "sessionward_sessions 1" in text
    for line in text.splitlines():  # every sample line is "name{labels} number"
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])
    assert service.client.get("/metrics").status_code == 401


def test_no_token_in_logs(service: Service, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = issue(service, user_id="oz")["token"]
    validate(service, token)
    service.client.post("/v1/sessions/rotate", json={"token": token}, headers=service.auth("issue"))
    validate(service, token[:-3] + "AAA")
    assert caplog.records
    secret_part = token[len(tokens.PREFIX) + 16 :]
    for record in caplog.records:
        assert secret_part[:20] not in record.getMessage()
        assert service.keys["issue"] not in record.getMessage()


@pytest.mark.parametrize("scope", ["validate", "issue", "admin"])
def test_every_scope_may_validate_and_query_strings_are_ignored(
    service: Service, scope: str
) -> None:
    token = issue(service)["token"]
    headers = service.auth(scope)
    plain = service.client.post("/v1/sessions/validate", json={"token": token}, headers=headers)
    assert plain.status_code == 200
    assert plain.json()["decision"] == "allow"
    # A token or key in the query string is never read: only the body and the header count.
    queried = service.client.post(
        f"/v1/sessions/validate?token={token}&api_key={service.keys[scope]}",
        json={"token": "x"},
        headers=headers,
    )
    assert queried.json() == {"decision": "deny", "reason": "invalid"}
    keyless = service.client.post(
        f"/v1/sessions/validate?access_token={service.keys[scope]}", json={"token": token}
    )
    assert keyless.status_code == 401
