"""Ending every session of every user through the service (ASVS 7.4.5): the admin-scope API
endpoint with its explicit confirmation. The admin page's form is in test_admin_console.py."""

from __future__ import annotations

from .conftest import Service


def _issue(service: Service, user: str | None) -> dict[str, str]:
    body = {} if user is None else {"user_id": user}
    response = service.client.post("/v1/sessions", json=body, headers=service.auth("issue"))
    assert response.status_code == 201
    return {"token": response.json()["token"], "id": response.json()["session"]["id"]}


def _decision(service: Service, token: str) -> str:
    response = service.client.post(
        "/v1/sessions/validate", json={"token": token}, headers=service.auth("validate")
    )
    decision: str = response.json()["decision"]
    return decision


def test_the_api_refuses_to_end_every_applications_sessions(service: Service) -> None:
    sessions = [_issue(service, u) for u in ("alice", "alice", "bob", None)]
    kept = _issue(service, "ops")
    url = "/v1/sessions/revoke-all"
    confirm = {"confirm": "revoke-all"}
    assert service.client.post(url, json=confirm, headers=service.auth("issue")).status_code == 403
    for body in ({}, {"confirm": "yes"}, {"confirm": "revoke-all", "keep_session_id": "x"}):
        refused = service.client.post(url, json=body, headers=service.auth("admin"))
        assert refused.status_code == 400, body
        assert refused.json()["error"]["code"] == "invalid_request"
    # An application's key acts within its application; the store ends every session of
    # every application at once, so that is the admin console's and the command line's.
    done = service.client.post(
        url,
        json={"confirm": "revoke-all", "keep_session_id": kept["id"]},
        headers=service.auth("admin"),
    )
    assert done.status_code == 403
    assert done.json()["error"]["code"] == "forbidden"
    assert [_decision(service, s["token"]) for s in sessions] == ["allow"] * len(sessions)
    assert not [e for e in service.runtime.activity.recent if e["kind"] == "all-revoked"]
