"""The Shared Signals transmitter over real HTTP (uvicorn on loopback, a real SQLite file, a
key file on disk): metadata, stream management, status, verification, poll delivery with
acknowledgements, and every SET checked with PyJWT against the service's JWKS."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from servers import WAIT

from sessionward import Policy
from sessionward.jwt import KeySet, save_keyset_file
from sessionward.service import ServiceConfig, create_app
from sessionward.service.runtime import Runtime
from sessionward.signals.caep import SESSION_REVOKED, TOKEN_CLAIMS_CHANGE
from sessionward.signals.set import VERIFICATION
from sessionward.testing import FakeClock

from ._server import serve
from .conftest import Service, make_keys

ORIGIN = "http://127.0.0.1:8000"


def _service(
    tmp_path: Path,
    alg: str | None = "ES256",
    *,
    private_targets: bool = True,
    default_subjects: str = "ALL",
) -> Iterator[Service]:
    """The service in the JWT mode; ``private_targets`` lets push streams aim at the
    loopback receivers of these tests."""
    clock = FakeClock(time.time())
    path = tmp_path / "service.db"
    jwt_keys = None
    if alg is not None:
        key_path = tmp_path / "jwt-keys.json"
        save_keyset_file(key_path, KeySet.generate(alg, now=time.time()))
        jwt_keys = str(key_path)
    config = ServiceConfig(
        store=str(path),
        admin=False,
        demo=False,
        policy=Policy(idle_timeout=600, absolute_timeout=3600),
        key_cache_seconds=0,
        jwt_keys=jwt_keys,
        webhook_private_targets=private_targets,
        ssf_default_subjects=default_subjects,
    )
    app = create_app(config, clock=clock)
    runtime: Runtime = app.state.runtime
    if runtime.transmitter is not None:
        runtime.transmitter.long_poll = 0.5
    runtime.start_background()  # the deliverer (the app's lifespan starts it when served)
    try:
        with serve(app) as base, httpx.Client(base_url=base, timeout=10) as client:
            yield Service(app, runtime, clock, client, make_keys(runtime), path)
    finally:
        asyncio.run(runtime.close())


@pytest.fixture
def ssf(tmp_path: Path) -> Iterator[Service]:
    yield from _service(tmp_path)


def jwks(service: Service) -> pyjwt.PyJWKSet:
    response = service.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return pyjwt.PyJWKSet.from_dict(response.json())


def decode(service: Service, token: str, audience: str = "default") -> dict[str, Any]:
    """PyJWT checks signature, ``iss`` and ``aud``; the SSF header rules are checked here."""
    header = pyjwt.get_unverified_header(token)
    assert header["typ"] == "secevent+jwt"
    key = jwks(service)[header["kid"]]
    claims: dict[str, Any] = pyjwt.decode(
        token,
        key,
        algorithms=[header["alg"]],
        audience=audience,
        issuer=ORIGIN,
        options={"require": ["iss", "iat", "jti", "aud"]},
        leeway=60,
    )
    assert "sub" not in claims
    assert "exp" not in claims
    return claims


def create_stream(service: Service, **body: Any) -> dict[str, Any]:
    response = service.client.post("/ssf/stream", json=body, headers=service.auth("issue"))
    assert response.status_code == 201, response.text
    config: dict[str, Any] = response.json()
    return config


def poll(service: Service, stream: dict[str, Any], **body: Any) -> dict[str, Any]:
    assert service.runtime.recorder is not None
    assert service.runtime.recorder.flush(WAIT)  # events reach the log from a background thread
    url = stream["delivery"]["endpoint_url"].removeprefix(ORIGIN)
    body.setdefault("returnImmediately", True)
    response = service.client.post(url, json=body, headers=service.auth("issue"))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def issue_and_revoke(service: Service, user: str = "alice") -> str:
    issued = service.client.post(
        "/v1/sessions", json={"user_id": user}, headers=service.auth("issue")
    )
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    revoked = service.client.post(
        "/v1/sessions/revoke", json={"token": token}, headers=service.auth("issue")
    )
    assert revoked.status_code == 200, revoked.text
    return str(token)


def test_metadata_names_every_endpoint_and_the_jwks(ssf: Service) -> None:
    response = ssf.client.get("/.well-known/ssf-configuration")  # no API key
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == ORIGIN
    assert meta["jwks_uri"] == ORIGIN + "/.well-known/jwks.json"
    assert meta["delivery_methods_supported"] == ["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"]
    for name, path in (
        ("configuration_endpoint", "/ssf/stream"),
        ("status_endpoint", "/ssf/status"),
        ("verification_endpoint", "/ssf/verify"),
    ):
        assert meta[name] == ORIGIN + path
    assert ssf.client.get(meta["jwks_uri"].removeprefix(ORIGIN)).json()["keys"]


def test_off_without_an_asymmetric_key_and_says_why(tmp_path: Path) -> None:
    for alg, words in ((None, "jwt_keys"), ("HS256", "ES256 or EdDSA")):
        folder = tmp_path / str(alg)
        folder.mkdir()
        for service in _service(folder, alg):
            meta = service.client.get("/.well-known/ssf-configuration")
            assert meta.status_code == 404
            assert words in meta.json()["error"]["message"]
            created = service.client.post("/ssf/stream", json={}, headers=service.auth("issue"))
            assert created.status_code == 404


def test_stream_management_needs_an_issue_key_of_the_same_application(ssf: Service) -> None:
    assert ssf.client.post("/ssf/stream", json={}).status_code == 401
    assert ssf.client.post("/ssf/stream", json={}, headers=ssf.auth("validate")).status_code == 403
    stream = create_stream(ssf)
    assert stream["iss"] == ORIGIN
    assert stream["aud"] == "default"
    assert stream["delivery"]["method"] == "urn:ietf:rfc:8936"  # no delivery: poll
    from sessionward.service.keys import create_key

    other = create_key(ssf.runtime.state, "issue", "other app", time.time(), "other")[0]
    foreign = {"authorization": f"Bearer {other}"}
    got = ssf.client.get("/ssf/stream", params={"stream_id": stream["stream_id"]}, headers=foreign)
    assert got.status_code == 404
    assert ssf.client.get("/ssf/stream", headers=foreign).json() == []


def test_stream_read_update_replace_delete(ssf: Service) -> None:
    stream = create_stream(
        ssf, events_requested=[SESSION_REVOKED, "urn:example:unknown"], description="receiver A"
    )
    assert stream["events_delivered"] == [SESSION_REVOKED]
    auth = ssf.auth("issue")
    listed = ssf.client.get("/ssf/stream", headers=auth).json()
    assert [s["stream_id"] for s in listed] == [stream["stream_id"]]
    patched = ssf.client.patch(
        "/ssf/stream",
        json={"stream_id": stream["stream_id"], "description": "receiver B"},
        headers=auth,
    ).json()
    assert patched["description"] == "receiver B"
    assert patched["events_requested"] == stream["events_requested"]  # untouched by PATCH
    replaced = ssf.client.put(
        "/ssf/stream",
        json={"stream_id": stream["stream_id"], "events_requested": [SESSION_REVOKED]},
        headers=auth,
    ).json()
    assert "description" not in replaced  # PUT: a missing receiver field is removed
    bad = ssf.client.patch(
        "/ssf/stream",
        json={"stream_id": stream["stream_id"], "iss": "https://evil.example"},
        headers=auth,
    )
    assert bad.status_code == 400
    gone = ssf.client.delete("/ssf/stream", params={"stream_id": stream["stream_id"]}, headers=auth)
    assert gone.status_code == 204
    again = ssf.client.get("/ssf/stream", params={"stream_id": stream["stream_id"]}, headers=auth)
    assert again.status_code == 404


def test_poll_delivers_session_revoked_and_ack_removes_it(ssf: Service) -> None:
    stream = create_stream(ssf)
    token = issue_and_revoke(ssf)
    first = poll(ssf, stream)
    assert len(first["sets"]) == 1
    assert first["moreAvailable"] is False
    ((jti, set_token),) = first["sets"].items()
    claims = decode(ssf, set_token)
    assert claims["jti"] == jti
    assert list(claims["events"]) == [SESSION_REVOKED]
    assert claims["sub_id"]["user"] == {"format": "iss_sub", "iss": ORIGIN, "sub": "alice"}
    assert claims["events"][SESSION_REVOKED]["initiating_entity"] == "user"
    assert token not in set_token
    assert token[20:62] not in set_token + json.dumps(claims)  # nor its secret part
    again = poll(ssf, stream)  # not acknowledged: delivered again, same jti and text
    assert again["sets"] == first["sets"]
    acked = poll(ssf, stream, ack=[jti])
    assert acked["sets"] == {}
    assert poll(ssf, stream)["sets"] == {}


def test_poll_max_events_more_available_and_set_errors(ssf: Service) -> None:
    stream = create_stream(ssf)
    for user in ("u1", "u2", "u3"):
        issue_and_revoke(ssf, user)
    page = poll(ssf, stream, maxEvents=2)
    assert len(page["sets"]) == 2
    assert page["moreAvailable"] is True
    first, second = page["sets"]
    rest = poll(ssf, stream, maxEvents=5, ack=[first], setErrs={second: {"err": "invalid_key"}})
    assert len(rest["sets"]) == 1
    assert rest["moreAvailable"] is False
    users = {decode(ssf, t)["sub_id"]["user"]["sub"] for t in rest["sets"].values()}
    assert users == {"u3"}
    only_ack = poll(ssf, stream, maxEvents=0, ack=list(rest["sets"]))
    assert only_ack == {"sets": {}, "moreAvailable": False}


def test_long_poll_waits_then_answers_empty(ssf: Service) -> None:
    stream = create_stream(ssf)
    started = time.monotonic()
    result = poll(ssf, stream, returnImmediately=False)
    assert result["sets"] == {}
    assert time.monotonic() - started >= 0.4


def test_paused_stream_holds_events_and_disabled_drops_them(ssf: Service) -> None:
    stream = create_stream(ssf)
    auth, stream_id = ssf.auth("issue"), stream["stream_id"]

    def status(value: str) -> None:
        body = {"stream_id": stream_id, "status": value, "reason": "maintenance"}
        answer = ssf.client.post("/ssf/status", json=body, headers=auth)
        assert answer.status_code == 200
        assert answer.json()["status"] == value
        read = ssf.client.get("/ssf/status", params={"stream_id": stream_id}, headers=auth)
        assert read.json() == {"stream_id": stream_id, "status": value, "reason": "maintenance"}

    issue_and_revoke(ssf, "queued")
    assert ssf.runtime.recorder is not None
    assert ssf.runtime.recorder.flush(WAIT)
    assert ssf.runtime.transmitter is not None
    ssf.runtime.transmitter.fill(ssf.runtime.transmitter.get("default", stream_id))
    status("paused")
    issue_and_revoke(ssf, "held")
    assert poll(ssf, stream)["sets"] == {}  # neither what was queued nor what came since
    status("enabled")
    held = poll(ssf, stream)["sets"]
    assert [decode(ssf, t)["sub_id"]["user"]["sub"] for t in held.values()] == ["queued", "held"]
    poll(ssf, stream, maxEvents=0, ack=list(held))
    status("disabled")
    ssf.clock.advance(1)
    issue_and_revoke(ssf, "dropped")
    ssf.clock.advance(1)
    status("enabled")
    issue_and_revoke(ssf, "after")
    after = poll(ssf, stream)["sets"]
    assert [decode(ssf, t)["sub_id"]["user"]["sub"] for t in after.values()] == ["after"]


def test_verification_event_carries_the_state_and_the_stream_as_subject(ssf: Service) -> None:
    stream = create_stream(ssf)
    body = {"stream_id": stream["stream_id"], "state": "VGhpcyBpcyBhIHN0YXRl"}
    auth = ssf.auth("issue")
    assert ssf.client.post("/ssf/verify", json=body, headers=auth).status_code == 204
    assert ssf.client.post("/ssf/verify", json=body, headers=auth).status_code == 429
    (token,) = poll(ssf, stream)["sets"].values()
    claims = decode(ssf, token)
    assert claims["events"] == {VERIFICATION: {"state": "VGhpcyBpcyBhIHN0YXRl"}}
    assert claims["sub_id"] == {"format": "opaque", "id": stream["stream_id"]}
    unknown = ssf.client.post("/ssf/verify", json={"stream_id": "nope"}, headers=auth)
    assert unknown.status_code == 404


def test_elevation_becomes_token_claims_change(ssf: Service) -> None:
    stream = create_stream(ssf, events_requested=[TOKEN_CLAIMS_CHANGE])
    auth = ssf.auth("issue")
    token = ssf.client.post("/v1/sessions", json={"user_id": "bob"}, headers=auth).json()["token"]
    elevated = ssf.client.post(
        "/v1/sessions/elevate", json={"token": token, "auth_level": 2}, headers=auth
    )
    assert elevated.status_code == 200, elevated.text
    ssf.client.post("/v1/sessions/revoke", json={"token": elevated.json()["token"]}, headers=auth)
    (set_token,) = poll(ssf, stream)["sets"].values()  # the revocation is not requested
    claims = decode(ssf, set_token)
    assert claims["events"][TOKEN_CLAIMS_CHANGE]["claims"] == {"auth_level": 2}
    assert claims["sub_id"]["format"] == "complex"
    assert claims["sub_id"]["user"]["sub"] == "bob"


def test_no_token_or_receiver_secret_in_logs_or_answers(
    ssf: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    credential = "Bearer receiver-secret-value-1"
    body = {
        "delivery": {
            "method": "urn:ietf:rfc:8935",
            "endpoint_url": "http://127.0.0.1:9/events",  # discard port: every push fails
            "authorization_header": credential,
        }
    }
    auth = ssf.auth("issue")
    pushed = ssf.client.post("/ssf/stream", json=body, headers=auth)
    assert pushed.status_code == 201
    polled = create_stream(ssf)
    token = issue_and_revoke(ssf, "carol")
    answers = [poll(ssf, polled), ssf.client.get("/ssf/stream", headers=auth).json()]
    ssf.client.post("/ssf/verify", json={"stream_id": pushed.json()["stream_id"]}, headers=auth)
    time.sleep(1.5)  # a delivery round or two, and the verification's first try
    secret = token[4 + 16 : 4 + 58]  # sw1_, the 16-character id, then the secret
    seen = caplog.text + json.dumps(answers) + pushed.text
    ((set_token),) = answers[0]["sets"].values()
    session_id = decode(ssf, set_token)["sub_id"]["session"]["id"]
    assert session_id in caplog.text  # the public id is logged: the capture works
    for leak in (token, secret, credential, "receiver-secret-value-1"):
        assert leak not in seen


def test_an_application_has_at_most_twenty_streams(ssf: Service) -> None:
    from sessionward.signals.transmitter import MAX_STREAMS

    for _ in range(MAX_STREAMS):
        create_stream(ssf)
    refused = ssf.client.post("/ssf/stream", json={}, headers=ssf.auth("issue"))
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "conflict"


def test_a_poll_stream_holds_at_most_max_pending_and_the_log_keeps_the_rest(
    ssf: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessionward.signals import transmitter

    monkeypatch.setattr(transmitter, "MAX_PENDING", 2)
    stream = create_stream(ssf)
    for user in ("q1", "q2", "q3", "q4"):
        issue_and_revoke(ssf, user)
    first = poll(ssf, stream, maxEvents=10)
    assert len(first["sets"]) == 2  # the queue is full: nothing more was read from the log
    second = poll(ssf, stream, maxEvents=10, ack=list(first["sets"]))
    users = [decode(ssf, t)["sub_id"]["user"]["sub"] for t in second["sets"].values()]
    assert users == ["q3", "q4"]


def test_a_poll_asks_for_any_number_of_events_up_to_the_documented_maximum(ssf: Service) -> None:
    from sessionward.service.ssf import MAX_POLL_ASKED

    stream = create_stream(ssf)
    issue_and_revoke(ssf)
    assert len(poll(ssf, stream, maxEvents=MAX_POLL_ASKED)["sets"]) == 1
    url = stream["delivery"]["endpoint_url"].removeprefix(ORIGIN)
    body = {"maxEvents": MAX_POLL_ASKED + 1, "returnImmediately": True}
    answer = ssf.client.post(url, json=body, headers=ssf.auth("issue"))
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith("maxEvents")


def test_push_targets_on_private_addresses_are_refused_by_default(tmp_path: Path) -> None:
    for service in _service(tmp_path, private_targets=False):
        for url in ("http://127.0.0.1:9/events", "https://10.1.2.3/events", "https://[::1]/"):
            body = {"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": url}}
            answer = service.client.post("/ssf/stream", json=body, headers=service.auth("issue"))
            assert answer.status_code == 400, url
            assert "webhook_private_targets" in answer.json()["error"]["message"]
        assert create_stream(service)["delivery"]["method"] == "urn:ietf:rfc:8936"  # poll is fine


def test_a_set_waiting_through_a_key_revocation_is_signed_again(ssf: Service) -> None:
    from sessionward.jwt import generate_key

    stream = create_stream(ssf)
    issue_and_revoke(ssf, "dave")
    (first,) = poll(ssf, stream)["sets"].items()
    assert ssf.runtime.tokens is not None
    keyset = ssf.runtime.tokens.verifier.keyset
    old_kid = keyset.signing_key.kid
    keyset.revoke(old_kid, now=time.time(), replacement=generate_key("ES256"))
    (again,) = poll(ssf, stream)["sets"].items()
    assert again[0] == first[0]  # the same SET (jti), under a key the JWKS still has
    assert pyjwt.get_unverified_header(again[1])["kid"] != old_kid
    assert decode(ssf, again[1]) == decode_unverified(first[1])


def decode_unverified(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = pyjwt.decode(token, options={"verify_signature": False})
    return claims
