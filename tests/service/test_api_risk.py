"""Hijack scoring through the service's API over real HTTP (uvicorn on a loopback port, a real
SQLite file, a fake clock): the application passes its user's request context in the
validate body, and the answer carries the risk decision and its reasons."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from agents import FIREFOX, SAFARI

from sessionward import Policy
from sessionward.errors import ConfigError
from sessionward.service import ServiceConfig, create_app
from sessionward.service.openapi import openapi_document
from sessionward.service.runtime import Runtime
from sessionward.testing import FakeClock

from ._server import serve
from .conftest import Service, make_keys

HOURS = 3600.0
# The user's own request as the application saw it: Andrews & Arnold (GB), Safari on a Mac.
OWNER = {"ip": "81.2.69.160", "user_agent": SAFARI, "accept_language": "en-GB,en;q=0.9"}
# A stolen token replayed from Comcast (US) with another Safari version.
THIEF = {
    "ip": "73.1.2.3",
    "user_agent": SAFARI.replace("Version/17.4", "Version/18.1"),
    "accept_language": "en-GB,en;q=0.9",
}
# Replayed from a Russian network in Firefox on Linux with Russian as the language.
FOREIGN = {"ip": "95.173.136.70", "user_agent": FIREFOX, "accept_language": "ru"}


@pytest.fixture
def scored(tmp_path: Path) -> Iterator[Service]:
    clock = FakeClock()
    path = tmp_path / "service.db"
    config = ServiceConfig(
        store=str(path),
        admin=False,
        demo=False,
        policy=Policy(idle_timeout=24 * HOURS, absolute_timeout=7 * 24 * HOURS),
        key_cache_seconds=0,
        risk=True,
    )
    app = create_app(config, clock=clock)
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base, httpx.Client(base_url=base, timeout=10) as client:
            yield Service(app, runtime, clock, client, make_keys(runtime), path)
    finally:
        asyncio.run(runtime.close())


def login(service: Service, user: str = "alice") -> str:
    response = service.client.post(
        "/v1/sessions",
        json={"user_id": user, "context": OWNER},
        headers=service.auth("issue"),
    )
    assert response.status_code == 201, response.text
    service.clock.advance(5 * HOURS)  # later: no impossible-travel signal
    token: str = response.json()["token"]
    return token


def validate(service: Service, token: str, context: dict[str, Any]) -> dict[str, Any]:
    response = service.client.post(
        "/v1/sessions/validate",
        json={"token": token, "context": context},
        headers=service.auth("validate"),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_stolen_token_replayed_elsewhere_gets_step_up_while_the_owner_is_allowed(
    scored: Service,
) -> None:
    token = login(scored)
    first = validate(scored, token, OWNER)
    assert first["decision"] == "allow"
    assert first["risk"]["decision"] == "allow"
    assert first["session"]["user_id"] == "alice"

    stolen = validate(scored, token, THIEF)
    assert stolen["decision"] == "step-up"
    assert stolen["reason"] == "risk"
    assert stolen["message"].startswith("Please sign in again")
    assert stolen["user_id"] == "alice"
    assert "session" not in stolen  # nothing of the session is served to this request
    risk = stolen["risk"]
    assert risk["decision"] == "step_up"
    codes = [r["code"] for r in risk["reasons"]]
    assert "network.new_country" in codes
    country = next(r for r in risk["reasons"] if r["code"] == "network.new_country")
    assert country["weight"] > 0
    assert "COMCAST" in country["sentence"]
    assert "(US)" in country["sentence"]
    assert risk["score"] == pytest.approx(sum(r["weight"] for r in risk["reasons"]), abs=0.1)
    assert "73.1.2.3" not in str(risk)

    scored.clock.advance(30)
    assert validate(scored, token, OWNER)["decision"] == "allow"  # the owner goes on


def test_a_logged_request_is_served_with_its_reasons(scored: Service) -> None:
    token = login(scored)
    # Another British network and another language: unusual, not alarming.
    answer = validate(scored, token, {**OWNER, "ip": "86.128.9.1", "accept_language": "de-DE"})
    assert answer["decision"] == "allow"
    assert answer["session"]["user_id"] == "alice"
    assert answer["risk"]["decision"] == "log"
    assert "language.changed" in [r["code"] for r in answer["risk"]["reasons"]]


@pytest.mark.parametrize(
    "address",
    ["fe80::1%eth0", "2a02:8010::1%1", "81.2.69.160:443", "[2a02:8010::1]", "unknown", ""],
)
def test_any_address_the_application_passes_gets_a_decision(scored: Service, address: str) -> None:
    # Whatever the application's server reported as the peer: a decision, never an error.
    token = login(scored)
    answer = validate(scored, token, {**OWNER, "ip": address})
    assert answer["risk"]["decision"] in {"allow", "log", "step_up", "revoke"}
    assert address not in str(answer["risk"]) or not address


def test_without_a_context_nothing_is_scored(scored: Service) -> None:
    token = login(scored)
    response = scored.client.post(
        "/v1/sessions/validate", json={"token": token}, headers=scored.auth("validate")
    )
    assert response.json()["decision"] == "allow"
    assert "risk" not in response.json()


def test_a_revoke_ends_the_session_and_says_why(scored: Service) -> None:
    token = login(scored)
    ended = validate(scored, token, FOREIGN)
    assert ended["decision"] == "deny"
    assert ended["reason"] == "risk"
    assert ended["risk"]["decision"] == "revoke"
    groups = {r["code"].partition(".")[0] for r in ended["risk"]["reasons"]}
    assert {"network", "browser"} <= groups
    assert validate(scored, token, OWNER) == {"decision": "deny", "reason": "invalid"}


def test_confirm_after_a_new_sign_in_teaches_the_context_and_rotates(scored: Service) -> None:
    token = login(scored)
    travel = {**OWNER, "ip": "73.1.2.3"}  # the owner abroad, in their own browser
    assert validate(scored, token, travel)["decision"] == "step-up"
    # The application signed its user in again (password, passkey), then confirms.
    response = scored.client.post(
        "/v1/sessions/confirm",
        json={"token": token, "context": travel},
        headers=scored.auth("issue"),
    )
    assert response.status_code == 200, response.text
    new_token = response.json()["token"]
    assert new_token != token
    assert validate(scored, token, travel) == {"decision": "deny", "reason": "invalid"}
    scored.clock.advance(60)
    assert validate(scored, new_token, travel)["decision"] == "allow"
    listed = scored.client.get("/v1/users/alice/sessions", headers=scored.auth("issue"))
    (session,) = listed.json()["sessions"]
    decisions = [d["decision"] for d in session["risk_decisions"]]
    assert decisions[:2] == ["confirmed", "step_up"]  # newest first


def test_signing_in_again_with_the_challenged_token_as_previous_ends_it(scored: Service) -> None:
    token = login(scored)
    travel = {**OWNER, "ip": "73.1.2.3"}
    assert validate(scored, token, travel)["decision"] == "step-up"
    response = scored.client.post(
        "/v1/sessions",
        json={"user_id": "alice", "context": travel, "previous_token": token},
        headers=scored.auth("issue"),
    )
    assert response.status_code == 201, response.text
    assert validate(scored, token, OWNER) == {"decision": "deny", "reason": "invalid"}
    scored.clock.advance(60)
    assert validate(scored, response.json()["token"], travel)["decision"] == "allow"


def test_confirm_needs_the_context(scored: Service) -> None:
    token = login(scored)
    response = scored.client.post(
        "/v1/sessions/confirm", json={"token": token}, headers=scored.auth("issue")
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_the_issue_example_is_not_allowed_with_the_default_configuration(
    service: Service,
) -> None:
    """Signed in from 198.51.100.1 in Safari on macOS; the token then validated from a Tor
    exit with curl and another language. The ``service`` fixture sets nothing about risk:
    scoring is on by default."""
    assert service.runtime.config.risk is True
    issued = service.client.post(
        "/v1/sessions",
        json={
            "user_id": "alice",
            "context": {"ip": "198.51.100.1", "user_agent": SAFARI, "accept_language": "en-US"},
        },
        headers=service.auth("issue"),
    )
    assert issued.status_code == 201
    token, session_id = issued.json()["token"], issued.json()["session"]["id"]
    service.clock.advance(60)
    thief = {"ip": "185.220.101.1", "user_agent": "curl/8.0", "accept_language": "ru"}
    answer = validate(service, token, thief)
    assert answer["decision"] in ("step-up", "deny")
    assert answer["reason"] == "risk"
    assert "session" not in answer
    assert answer["risk"]["decision"] in ("step_up", "revoke")
    codes = {r["code"] for r in answer["risk"]["reasons"]}
    # the network (a Tor exit elsewhere), the browser (a tool, not Safari), the language
    assert {code.partition(".")[0] for code in codes} >= {"network", "browser", "language"}
    weights = [r["weight"] for r in answer["risk"]["reasons"]]
    assert answer["risk"]["score"] == pytest.approx(sum(weights), abs=0.1)
    listed = service.client.get("/v1/events", headers=service.auth("admin")).json()["events"]
    risk = [e for e in listed if e["kind"] == "risk" and e["session_id"] == session_id]
    assert len(risk) == 1
    assert risk[0]["decision"] == answer["risk"]["decision"]
    assert "185.220.101.1" not in str(listed)
    assert token not in str(listed)


def test_without_a_context_the_default_scoring_changes_nothing(service: Service) -> None:
    issued = service.client.post(
        "/v1/sessions", json={"user_id": "alice"}, headers=service.auth("issue")
    )
    token = issued.json()["token"]
    answer = service.client.post(
        "/v1/sessions/validate", json={"token": token}, headers=service.auth("validate")
    ).json()
    assert answer["decision"] == "allow"
    assert "risk" not in answer


def test_confirm_answers_not_found_without_risk(unscored: Service) -> None:
    service = unscored
    response = service.client.post(
        "/v1/sessions",
        json={"user_id": "alice", "context": OWNER},
        headers=service.auth("issue"),
    )
    token = response.json()["token"]
    confirm = service.client.post(
        "/v1/sessions/confirm",
        json={"token": token, "context": OWNER},
        headers=service.auth("issue"),
    )
    assert confirm.status_code == 404
    assert confirm.json()["error"]["code"] == "not_found"


def test_another_applications_key_cannot_confirm(scored: Service) -> None:
    from sessionward.service.keys import create_key

    token = login(scored)
    other, _ = create_key(scored.runtime.state, "issue", "other app", 0.0, application="shop2")
    response = scored.client.post(
        "/v1/sessions/confirm",
        json={"token": token, "context": OWNER},
        headers={"authorization": f"Bearer {other}"},
    )
    assert response.status_code == 401
    assert validate(scored, token, OWNER)["decision"] == "allow"


def test_the_user_listing_names_device_network_and_decisions(scored: Service) -> None:
    token = login(scored)
    validate(scored, token, OWNER)
    validate(scored, token, THIEF)
    listed = scored.client.get("/v1/users/alice/sessions", headers=scored.auth("issue"))
    assert listed.status_code == 200
    (session,) = listed.json()["sessions"]
    assert session["device"] == "Safari 17 on macOS"
    assert session["network"]["owner"] == "Andrews & Arnold Ltd"
    assert session["network"]["country"] == "GB"
    assert session["network"]["description"] == "Andrews & Arnold Ltd (GB)"
    (decision,) = session["risk_decisions"]
    assert decision["decision"] == "step_up"
    assert any(r["code"] == "network.new_country" for r in decision["reasons"])
    assert "81.2.69.160" not in listed.text
    detail = scored.client.get(f"/v1/sessions/{session['id']}", headers=scored.auth("admin"))
    assert detail.json()["session"]["device"] == "Safari 17 on macOS"
    assert detail.json()["session"]["risk_decisions"][0]["decision"] == "step_up"
    assert SAFARI not in listed.text


def test_the_openapi_document_describes_the_risk_fields() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    assert set(schemas["Context"]["properties"]) >= {"ip", "user_agent", "device_signal"}
    assert schemas["RiskDecision"]["properties"]["decision"]["enum"] == [
        "allow",
        "log",
        "step_up",
        "revoke",
        "confirmed",
    ]
    assert set(schemas["RiskReason"]["required"]) == {"code", "weight", "sentence"}
    validate_ok = document["paths"]["/v1/sessions/validate"]["post"]["responses"]["200"]
    answer = validate_ok["content"]["application/json"]["schema"]["properties"]
    assert answer["risk"] == {"$ref": "#/components/schemas/RiskDecision"}
    assert "risk" in answer["reason"]["enum"]
    assert "/v1/sessions/confirm" in document["paths"]
    assert {"device", "network", "risk_decisions"} <= set(schemas["Session"]["properties"])


def test_risk_without_the_extra_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from sessionward.service.runtime import open_risk

    monkeypatch.setitem(sys.modules, "geoip2fast", None)
    with pytest.raises(ConfigError, match=r"sessionward\[service\].*--no-risk"):
        open_risk()


def test_risk_is_configured_by_flag_environment_and_file(tmp_path: Path) -> None:
    from sessionward.service.config import load_config

    assert load_config({}, environ={}).risk is True  # on by default
    assert load_config({"risk": False}, environ={}).risk is False
    assert load_config({}, environ={"SESSIONWARD_RISK": "0"}).risk is False
    toml = tmp_path / "service.toml"
    toml.write_text("risk = false\n", encoding="utf-8")
    assert load_config({}, environ={}, config_file=str(toml)).risk is False
    assert load_config({"risk": True}, environ={}, config_file=str(toml)).risk is True


def test_serve_takes_the_risk_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionward.cli import build_parser
    from sessionward.cli._common import CommandError
    from sessionward.cli.serve import _load

    monkeypatch.delenv("SESSIONWARD_RISK", raising=False)
    assert _load(build_parser().parse_args(["serve", "--risk"])).risk is True
    assert _load(build_parser().parse_args(["serve"])).risk is True
    assert _load(build_parser().parse_args(["serve", "--no-risk"])).risk is False
    with pytest.raises(CommandError, match="not allowed"):
        build_parser().parse_args(["serve", "--risk", "--no-risk"])


def test_the_device_signal_is_keyed_per_application_and_a_change_alone_never_revokes(
    scored: Service,
) -> None:
    import json

    from sessionward import SQLiteStore
    from sessionward.web import DeviceSignal

    raw = "R" * 22
    response = scored.client.post(
        "/v1/sessions",
        json={"user_id": "alice", "context": {**OWNER, "device_signal": raw}},
        headers=scored.auth("issue"),
    )
    token, session_id = response.json()["token"], response.json()["session"]["id"]
    scored.clock.advance(60)
    same = validate(scored, token, {**OWNER, "device_signal": raw})
    assert "device.same" in [r["code"] for r in same["risk"]["reasons"]]
    changed = validate(scored, token, {**OWNER, "device_signal": "S" * 22})
    assert changed["risk"]["decision"] != "revoke"
    assert "device.changed" in [r["code"] for r in changed["risk"]["reasons"]]
    assert validate(scored, token, {**OWNER, "device_signal": raw})["decision"] == "allow"

    secret = scored.runtime.state.secret("device-signal:default")
    store = SQLiteStore(str(scored.path))
    try:
        record = store.get(session_id)
    finally:
        store.close()
    assert record is not None
    assert raw not in record.context
    stored = json.loads(record.context)["session"]["device"]
    assert stored == DeviceSignal(secret=secret).keyed(raw)
