"""DBSC through the service's REST API, over real HTTP (uvicorn on a loopback port): a backend
in any language relays its browser's registration and refreshes, and the service answers what
to send back (status, headers, session config, bound cookie). The browser's JWTs are signed
with ``cryptography`` (ES256 and RS256) as Chromium signs them."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _shared import running_service, service_config
from proofs import Device
from service.conftest import Service

from sessionward import SQLiteStore
from sessionward.core import dbsc
from sessionward.service.keys import create_key
from sessionward.service.openapi import openapi_document
from sessionward.testing import FakeClock

BOUND = "__Host-id-bound"
LIFETIME = 300  # BindingPolicy's default cookie_lifetime
REGISTER, REFRESH = "/v1/sessions/dbsc/register", "/v1/sessions/dbsc/refresh"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Service]:
    yield from _service(tmp_path, risk=False)


@pytest.fixture
def scoring_api(tmp_path: Path) -> Iterator[Service]:
    yield from _service(tmp_path, risk=True)


def _service(tmp_path: Path, *, risk: bool) -> Iterator[Service]:
    with running_service(service_config(tmp_path, risk=risk), FakeClock(time.time())) as service:
        yield service


def _post(api: Service, path: str, body: dict[str, Any], scope: str = "issue") -> Any:
    answer = api.client.post(path, json=body, headers=api.auth(scope))
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return answer.json()


def _offer(api: Service, user: str = "ann", **options: str) -> tuple[str, dict[str, str]]:
    """A login asking for a binding: the token and the offer's parameters."""
    issued = api.client.post(
        "/v1/sessions", json={"user_id": user, "dbsc": options}, headers=api.auth("issue")
    )
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert body["session"]["binding"]["state"] == "offered"
    header = body["dbsc"]["registration"]
    algorithms, _, rest = header.partition(";")
    assert algorithms == "(ES256 RS256)"
    params = {k: dbsc.item_text(v) or "" for k, v in (p.split("=", 1) for p in rest.split(";"))}
    return body["token"], params


def _register(api: Service, device: Device, **options: str) -> tuple[str, str, str]:
    """A bound session: its token, its DBSC session identifier and its first bound cookie."""
    token, offer = _offer(api, **options)
    jwt = device.registration(offer["challenge"], offer["authorization"])
    relay = _post(api, REGISTER, {"token": token, "response": jwt, "dbsc": options})
    assert relay["status"] == 200, relay
    return token, relay["body"]["session_identifier"], relay["cookie"]["value"]


def _validate(api: Service, token: str, bound_cookie: str | None = None) -> Any:
    body = (
        {"token": token} if bound_cookie is None else {"token": token, "bound_cookie": bound_cookie}
    )
    return _post(api, "/v1/sessions/validate", body, scope="validate")


def _challenge(api: Service, token: str, sid: str) -> str:
    relay = _post(api, REFRESH, {"token": token, "session_identifier": sid})
    assert relay["status"] == 403
    assert relay["cookie"] is None
    assert relay["set_cookie"] is None
    assert relay["body"] is None
    challenge, _, named = relay["headers"][dbsc.CHALLENGE].partition(";id=")
    assert dbsc.item_text(named) == sid
    return dbsc.item_text(challenge) or ""


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_a_relayed_registration_binds_the_session(
    api: Service, alg: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    device = Device(alg)
    token, offer = _offer(api, path="/auth/dbsc", cookie_name="sid")
    assert offer["path"] == "/auth/dbsc/register"
    jwt = device.registration(offer["challenge"], offer["authorization"])
    options = {"path": "/auth/dbsc", "cookie_name": "sid"}
    relay = _post(api, REGISTER, {"token": token, "response": jwt, "dbsc": options})
    assert relay["status"] == 200
    assert relay["headers"]["content-type"] == "application/json"
    config = relay["body"]
    assert config["refresh_url"] == "/auth/dbsc/refresh"
    assert config["continue"] is True
    attributes = "Path=/; Secure; HttpOnly; SameSite=Lax"
    assert config["credentials"] == [
        {"type": "cookie", "name": "__Host-sid-bound", "attributes": attributes}
    ]
    cookie = relay["cookie"]
    assert cookie["name"] == "__Host-sid-bound"
    assert cookie["max_age"] == LIFETIME
    assert (cookie["path"], cookie["secure"], cookie["http_only"], cookie["same_site"]) == (
        "/",
        True,
        True,
        "Lax",
    )
    assert relay["set_cookie"].startswith(f"__Host-sid-bound={cookie['value']}; {attributes}; ")
    assert f"Max-Age={LIFETIME}" in relay["set_cookie"]
    session = _validate(api, token, cookie["value"])
    assert session["decision"] == "allow"
    binding = session["session"]["binding"]
    assert (binding["state"], binding["method"], binding["jkt"]) == (
        "bound",
        "dbsc",
        device.thumbprint,
    )
    assert token not in caplog.text
    assert cookie["value"] not in caplog.text


def test_a_bound_session_validates_only_with_a_live_bound_cookie(api: Service) -> None:
    device = Device()
    token, _, cookie = _register(api, device)
    assert _validate(api, token) == {"decision": "deny", "reason": "invalid"}  # copied alone
    assert _validate(api, token, "x" * 43)["decision"] == "deny"
    assert _validate(api, token, cookie)["decision"] == "allow"
    api.clock.advance(LIFETIME + 1)
    assert _validate(api, token, cookie)["decision"] == "deny"  # replayed after its lifetime
    unbound, _ = _offer(api, user="bo")  # never registered: works as an ordinary session
    assert _validate(api, unbound)["decision"] == "allow"


def test_a_refresh_is_challenged_then_answered_with_a_new_cookie(api: Service) -> None:
    device = Device("RS256")
    token, sid, first = _register(api, device)
    api.clock.advance(LIFETIME + 1)
    assert _validate(api, token, first)["decision"] == "deny"
    challenge = _challenge(api, token, sid)
    proof = device.refresh(challenge)
    relay = _post(api, REFRESH, {"token": token, "session_identifier": sid, "response": proof})
    assert relay["status"] == 200
    assert relay["body"]["session_identifier"] == sid
    fresh = relay["cookie"]["value"]
    assert fresh != first
    assert relay["cookie"]["max_age"] == LIFETIME
    assert dbsc.CHALLENGE in relay["headers"]  # the next refresh's challenge, in advance
    assert _validate(api, token, fresh)["decision"] == "allow"
    again = {"token": token, "session_identifier": sid, "response": proof}
    replayed = _post(api, REFRESH, again)  # the same jti twice
    assert replayed["status"] == 403
    assert replayed["cookie"] is None


def test_a_refresh_signed_by_another_key_is_refused_and_sets_no_cookie(api: Service) -> None:
    device, thief = Device(), Device()
    token, sid, _ = _register(api, device)
    challenge = _challenge(api, token, sid)
    for proof in (
        thief.refresh(challenge),
        device.refresh(challenge, typ="jwt"),
        device.refresh(challenge, alg="RS256"),
        device.refresh("not-a-challenge-we-issued"),
    ):
        body = {"token": token, "session_identifier": sid, "response": proof}
        relay = _post(api, REFRESH, body)
        assert relay["status"] == 403, proof
        assert relay["cookie"] is None
        assert relay["set_cookie"] is None
    latest = dbsc.item_text(relay["headers"][dbsc.CHALLENGE].partition(";")[0]) or ""
    body = {"token": token, "session_identifier": sid, "response": device.refresh(latest)}
    owner = _post(api, REFRESH, body)  # each refusal challenged again: the owner answers
    assert owner["status"] == 200
    assert owner["cookie"] is not None


def test_a_proof_for_another_session_is_refused(api: Service) -> None:
    device = Device()  # one browser, two sessions bound to the same key
    token_a, sid_a, _ = _register(api, device)
    token_b, sid_b, _ = _register(api, device)
    challenge_a = _challenge(api, token_a, sid_a)
    proof_a = device.refresh(challenge_a)
    crossed = _post(
        api, REFRESH, {"token": token_b, "session_identifier": sid_b, "response": proof_a}
    )
    assert crossed["status"] == 403
    assert crossed["cookie"] is None
    named = _post(
        api, REFRESH, {"token": token_b, "session_identifier": sid_a, "response": proof_a}
    )
    assert named["body"] == {"continue": False}  # not B's DBSC session: the browser drops it
    assert named["cookie"]["max_age"] == 0
    assert named["cookie"]["value"] == ""
    mine = _post(api, REFRESH, {"token": token_a, "session_identifier": sid_a, "response": proof_a})
    assert mine["status"] == 200
    assert mine["cookie"]["max_age"] == LIFETIME


def test_bad_registrations_are_refused_and_leave_the_offer(api: Service) -> None:
    device, other = Device(), Device("RS256")
    token, offer = _offer(api)
    challenge, authorization = offer["challenge"], offer["authorization"]
    for jwt in (
        device.registration(challenge, authorization, typ="JWT"),
        device.registration(challenge, authorization, alg="RS256"),
        device.registration(challenge, authorization, alg="HS256"),
        device.registration(challenge, authorization, alg="none"),
        device.registration(challenge, authorization, jwk=other.jwk),
        device.registration(challenge, "another authorization"),
        device.registration("a-challenge-we-never-issued", authorization),
        device.registration(challenge, authorization, aud="https://elsewhere.example/"),
    ):
        relay = _post(api, REGISTER, {"token": token, "response": jwt})
        assert relay["status"] == 400, jwt
        assert relay["body"] == {"continue": False}
        assert relay["cookie"] is None
    assert _validate(api, token)["session"]["binding"]["state"] == "offered"
    good = device.registration(
        challenge, authorization, aud="https://app.example/sessionward/dbsc/register"
    )
    url = "https://app.example/sessionward/dbsc/register"
    relay = _post(api, REGISTER, {"token": token, "response": good, "url": url})
    assert relay["status"] == 200
    assert relay["cookie"]["name"] == BOUND
    again = _post(api, REGISTER, {"token": token, "response": good, "url": url})
    assert again["status"] == 400
    assert again["cookie"] is None


def test_after_logout_a_refresh_ends_the_browser_session(api: Service) -> None:
    device = Device()
    token, sid, cookie = _register(api, device)
    logout = {"token": token, "bound_cookie": cookie}
    assert _post(api, "/v1/sessions/revoke", logout) == {"revoked": True}
    for body in (
        {"token": token, "session_identifier": sid},
        {"token": token, "session_identifier": sid, "response": device.refresh("x")},
        {"session_identifier": sid},
    ):
        relay = _post(api, REFRESH, body)
        assert relay["status"] == 200
        assert relay["body"] == {"continue": False}
        assert relay["cookie"]["name"] == BOUND
        assert relay["cookie"]["max_age"] == 0
        assert relay["set_cookie"].startswith(f"{BOUND}=; ")
    registered = _post(api, REGISTER, {"token": token, "response": device.registration("x")})
    assert registered["status"] == 401
    assert registered["body"] == {"continue": False}


def test_the_relay_calls_need_an_issue_key_and_valid_options(api: Service) -> None:
    token, _ = _offer(api)
    body = {"token": token, "response": "x"}
    assert api.client.post(REGISTER, json=body, headers=api.auth("validate")).status_code == 403
    assert api.client.post(REFRESH, json={"session_identifier": "s"}).status_code == 401
    for options in (
        {"path": "no-slash"},
        {"path": ""},
        {"cookie_name": "__Host-x"},
        {"cookie_name": ""},
        {"other": "x"},
    ):
        refused = api.client.post(
            REGISTER, json={**body, "dbsc": options}, headers=api.auth("issue")
        )
        assert refused.status_code == 400, options
        assert refused.json()["error"]["code"] == "invalid_request"
    paths = openapi_document()["paths"]
    for path in (REGISTER, REFRESH):
        assert "Relay" in str(paths[path]["post"]["responses"]["200"])
    validate = paths["/v1/sessions/validate"]["post"]["requestBody"]["content"]
    assert "bound_cookie" in validate["application/json"]["schema"]["properties"]


def test_another_applications_key_cannot_relay_or_validate(api: Service) -> None:
    blog = {
        scope: create_key(api.runtime.state, scope, "blog", time.time(), "blog")[0]
        for scope in ("issue", "validate")
    }
    device = Device()
    token, offer = _offer(api)
    jwt = device.registration(offer["challenge"], offer["authorization"])

    def as_blog(path: str, body: dict[str, Any], scope: str = "issue") -> Any:
        headers = {"authorization": f"Bearer {blog[scope]}"}
        answer = api.client.post(path, json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    refused = as_blog(REGISTER, {"token": token, "response": jwt})
    assert refused["status"] == 401
    assert refused["cookie"] is None
    assert _validate(api, token)["session"]["binding"]["state"] == "offered"  # untouched
    ours = _post(api, REGISTER, {"token": token, "response": jwt})
    sid, cookie = ours["body"]["session_identifier"], ours["cookie"]["value"]
    ended = as_blog(REFRESH, {"token": token, "session_identifier": sid})
    assert ended["body"] == {"continue": False}
    body = {"token": token, "bound_cookie": cookie}
    assert as_blog("/v1/sessions/validate", body, "validate")["decision"] == "deny"
    assert _validate(api, token, cookie)["decision"] == "allow"


def test_a_copied_token_without_its_bound_cookie_is_reported(api: Service) -> None:
    token, _, _ = _register(api, Device())
    assert _validate(api, token)["decision"] == "deny"
    reasons = [e.get("reason") for e in api.runtime.activity.recent]
    assert reasons[-1] == "binding-cookie"


def test_the_calls_on_a_bound_session_need_its_bound_cookie(api: Service) -> None:
    token, _, cookie = _register(api, Device())
    calls: dict[str, dict[str, Any]] = {
        "/v1/sessions/rotate": {},
        "/v1/sessions/elevate": {"auth_level": 2},
        "/v1/sessions/data": {"set": {"cart": 3}},
    }
    store = SQLiteStore(str(api.path))
    try:
        before = _validate(api, token, cookie)["session"]
        record = store.get(before["id"])
        for path, extra in calls.items():
            bounds: tuple[dict[str, str], ...] = ({}, {"bound_cookie": "x" * 43})
            for bound in bounds:
                body = {"token": token, **extra, **bound}
                refused = api.client.post(path, json=body, headers=api.auth("issue"))
                assert refused.status_code == 401, (path, refused.text)
                assert refused.json()["error"]["code"] == "invalid_token"
        revoked = _post(api, "/v1/sessions/revoke", {"token": token})
        assert revoked == {"revoked": False}
        assert store.get(before["id"]) == record  # nothing written by any of them
        elevated = _post(
            api, "/v1/sessions/elevate", {"token": token, "auth_level": 2, "bound_cookie": cookie}
        )
        token = elevated["token"]
        assert elevated["session"]["auth_level"] == 2
        assert _validate(api, token, cookie)["decision"] == "allow"  # still bound, same cookie
        owner = {"token": token, "bound_cookie": cookie}
        assert _post(api, "/v1/sessions/revoke", owner) == {"revoked": True}
    finally:
        store.close()


def test_this_was_me_on_a_bound_session_needs_its_bound_cookie(scoring_api: Service) -> None:
    api = scoring_api
    token, _, cookie = _register(api, Device())
    context = {"ip": "198.51.100.7", "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"}
    store = SQLiteStore(str(api.path))
    try:
        before = _validate(api, token, cookie)["session"]
        record = store.get(before["id"])
        for bound in ({}, {"bound_cookie": "x" * 43}):
            body = {"token": token, "context": context, **bound}
            refused = api.client.post("/v1/sessions/confirm", json=body, headers=api.auth("issue"))
            assert refused.status_code == 401, refused.text
            assert store.get(before["id"]) == record  # nothing learned, nothing rotated
        owner = {"token": token, "context": context, "bound_cookie": cookie}
        confirmed = _post(api, "/v1/sessions/confirm", owner)
        assert confirmed["token"] != token  # rotated with no grace: a copy is cut off
        assert _validate(api, confirmed["token"], cookie)["decision"] == "allow"
    finally:
        store.close()
