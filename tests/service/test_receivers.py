"""The service's receivers, end to end over HTTP: two service nodes on one store (a SQLite
file both open, as two processes would; tests/signals/test_nodes.py runs two nodes on
PostgreSQL and Redis), sessions issued with an ``idp`` link on one, a logout token or a SET
posted to the other, and the first node's next validation denied. A test provider (PyJWT,
keys and discovery document over HTTP) signs the tokens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from signals.idp import CLIENT_ID, TestIdp

from sessionward.errors import ConfigError
from sessionward.service import ServiceConfig, create_app
from sessionward.service.config import load_config
from sessionward.service.openapi import openapi_document
from sessionward.service.runtime import Runtime
from sessionward.signals._async.receiver import MAX_FORM_NAME, MAX_FORM_VALUE
from sessionward.signals.claims import SESSION_REVOKED
from sessionward.signals.keys import MAX_TOKEN
from sessionward.testing import FakeClock

from ._server import serve
from .conftest import make_keys

AUDIENCE = "https://shop.example"
FORM = "application/x-www-form-urlencoded"


@dataclass
class Node:
    client: httpx.Client
    keys: dict[str, str]
    runtime: Runtime

    def issue(self, user: str, idp: dict[str, str] | None) -> httpx.Response:
        body: dict[str, Any] = {"user_id": user, **({"idp": idp} if idp else {})}
        return self.client.post("/v1/sessions", json=body, headers=self._auth("issue"))

    def decision(self, token: str) -> str:
        answer = self.client.post(
            "/v1/sessions/validate", json={"token": token}, headers=self._auth("validate")
        )
        return str(answer.json()["decision"])

    def _auth(self, scope: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[scope]}"}


@pytest.fixture(scope="module")
def idp() -> Iterator[TestIdp]:
    provider = TestIdp("ES256")
    with provider.serve():
        yield provider


def _config(store: str, state: Path, idp: TestIdp | None) -> ServiceConfig:
    signals: dict[str, Any] = {}
    if idp is not None:
        signals = {
            "oidc_issuer": idp.issuer,
            "oidc_client_id": CLIENT_ID,
            "ssf_issuer": idp.issuer,
            "ssf_audience": AUDIENCE,
        }
    return ServiceConfig(store=store, state=str(state), admin=False, demo=False, **signals)


@pytest.fixture
def nodes(idp: TestIdp, tmp_path: Path) -> Iterator[list[Node]]:
    store = str(tmp_path / "sessions.db")
    clock = FakeClock(time.time())
    made: list[Node] = []
    with ExitStack() as stack:
        for name in ("a", "b"):
            app = create_app(_config(store, tmp_path / f"{name}.db", idp), clock=clock)
            runtime: Runtime = app.state.runtime
            stack.callback(asyncio.run, runtime.close())
            base = stack.enter_context(serve(app))
            client = stack.enter_context(httpx.Client(base_url=base, timeout=10))
            made.append(Node(client, make_keys(runtime), runtime))
        yield made


def test_a_logout_token_posted_to_one_node_ends_the_session_on_the_other(
    nodes: list[Node], idp: TestIdp
) -> None:
    a, b = nodes
    link = {"iss": idp.issuer, "sid": "sid-A", "sub": "sub-alice"}
    target = a.issue("alice", link).json()["token"]
    other = a.issue("alice", {**link, "sid": "sid-B"}).json()["token"]
    plain = a.issue("carol", None).json()["token"]
    token = idp.logout_token(time.time(), sid="sid-A")
    answer = b.client.post("/v1/oidc/backchannel-logout", data={"logout_token": token})
    assert (answer.status_code, answer.headers["cache-control"]) == (200, "no-store")
    assert a.decision(target) == "deny"
    assert a.decision(other) == "allow"
    assert a.decision(plain) == "allow"
    again = a.client.post("/v1/oidc/backchannel-logout", data={"logout_token": token})
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_request", "error_description": "replayed"}
    metrics = b.client.get("/metrics", headers=b._auth("validate")).text
    assert 'sessionward_api_requests_total{route="backchannel_logout",status="200"} 1' in metrics


def test_a_set_posted_to_one_node_ends_the_session_on_the_other(
    nodes: list[Node], idp: TestIdp
) -> None:
    a, b = nodes
    target = a.issue("alice", {"iss": idp.issuer, "sub": "sub-alice"}).json()["token"]
    bob = a.issue("bob", {"iss": idp.issuer, "sub": "sub-bob"}).json()["token"]
    subject = {"format": "iss_sub", "iss": idp.issuer, "sub": "sub-alice"}
    token = idp.set_token(time.time(), {SESSION_REVOKED: {}}, audience=AUDIENCE, sub_id=subject)
    headers = {"content-type": "application/secevent+jwt"}
    answer = b.client.post("/v1/ssf/events", content=token, headers=headers)
    assert answer.status_code == 202
    assert a.decision(target) == "deny"
    assert a.decision(bob) == "allow"
    wrong = idp.set_token(time.time(), {SESSION_REVOKED: {}}, audience="x", sub_id=subject)
    refused = b.client.post("/v1/ssf/events", content=wrong, headers=headers)
    assert (refused.status_code, refused.json()["err"]) == (400, "invalid_audience")


def test_an_idp_link_needs_a_user_and_a_sid_or_sub(nodes: list[Node], idp: TestIdp) -> None:
    a, _ = nodes
    no_user = a.client.post(
        "/v1/sessions",
        json={"idp": {"iss": idp.issuer, "sid": "s"}},
        headers={"authorization": f"Bearer {a.keys['issue']}"},
    )
    assert no_user.status_code == 400
    assert a.issue("alice", {"iss": idp.issuer}).status_code == 400
    assert a.issue("alice", {"iss": idp.issuer, "sid": "s", "x": "y"}).status_code == 400


def test_receivers_answer_501_until_configured(tmp_path: Path) -> None:
    app = create_app(_config(str(tmp_path / "s.db"), tmp_path / "state.db", None))
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base:
            logout = httpx.post(f"{base}/v1/oidc/backchannel-logout", data={"logout_token": "x"})
            events = httpx.post(f"{base}/v1/ssf/events", content=b"x")
    finally:
        asyncio.run(runtime.close())
    assert (logout.status_code, logout.json()["error"]) == (501, "not_configured")
    assert (events.status_code, events.json()["error"]) == (501, "not_configured")


def test_the_receiver_settings_load_from_the_environment() -> None:
    environ = {
        "SESSIONWARD_OIDC_ISSUER": "https://login.example",
        "SESSIONWARD_OIDC_CLIENT_ID": "shop",
        "SESSIONWARD_SSF_ISSUER": "https://signals.example",
        "SESSIONWARD_SSF_AUTHORIZATION": "Bearer stream-secret",
        "SESSIONWARD_SSF_CREDENTIAL_COMPROMISE": "step-up",
    }
    config = load_config(environ=environ)
    assert (config.oidc_issuer, config.oidc_client_id) == ("https://login.example", "shop")
    assert config.ssf_credential_compromise == "step-up"
    assert "stream-secret" not in repr(config)
    with pytest.raises(ConfigError):
        load_config(environ={"SESSIONWARD_OIDC_ISSUER": "https://login.example"})
    with pytest.raises(ConfigError):
        load_config(environ={"SESSIONWARD_SSF_CREDENTIAL_COMPROMISE": "ignore"})


def _padded(make: Callable[[str], str], low: int, high: int) -> str:
    """A token from ``make(padding)`` whose length is within ``low..high`` (base64url grows
    by one or two characters per byte: a range of 3 is always reachable)."""
    size = max(0, (low - len(make(""))) * 3 // 4 - 8)
    while len(token := make("x" * size)) < low:
        size += 1
    assert len(token) <= high
    return token


def _form_schema() -> dict[str, Any]:
    operation = openapi_document()["paths"]["/v1/oidc/backchannel-logout"]["post"]
    schema: dict[str, Any] = operation["requestBody"]["content"][FORM]["schema"]
    return schema


def test_a_logout_form_just_outside_its_bounds_is_refused_and_ends_nothing(
    nodes: list[Node], idp: TestIdp
) -> None:
    a, b = nodes
    target = a.issue("alice", {"iss": idp.issuer, "sid": "sid-A"}).json()["token"]
    schema = jsonschema_rs.Draft202012Validator(_form_schema())

    def logout(pad: str) -> str:
        return idp.logout_token(time.time(), sid="sid-A", pad=pad)

    inside = _padded(logout, MAX_TOKEN - 2, MAX_TOKEN)
    extra = {f"x{i}".ljust(MAX_FORM_NAME, "n"): "v" * MAX_FORM_VALUE for i in range(7)}
    too_long = _padded(logout, MAX_TOKEN + 1, MAX_TOKEN + 3)
    outside = [
        ("too-large", {"logout_token": too_long}),
        ("form-value-too-long", {"logout_token": inside, "n" * (MAX_FORM_NAME + 1): "v"}),
        ("form-value-too-long", {"logout_token": inside, "x": "v" * (MAX_FORM_VALUE + 1)}),
        ("not-a-form", {"logout_token": inside, **extra, "y": "v"}),
    ]
    for reason, form in outside:
        assert not schema.is_valid(form)
        answer = b.client.post("/v1/oidc/backchannel-logout", data=form)
        assert answer.status_code == 400, reason
        assert answer.json() == {"error": "invalid_request", "error_description": reason}
        assert a.decision(target) == "allow"
    form = {"logout_token": inside, **extra}  # the same token: a refusal spent nothing
    assert schema.is_valid(form)
    assert b.client.post("/v1/oidc/backchannel-logout", data=form).status_code == 200
    assert a.decision(target) == "deny"


def test_a_set_just_outside_its_bound_is_refused_and_changes_nothing(
    nodes: list[Node], idp: TestIdp
) -> None:
    a, b = nodes
    target = a.issue("alice", {"iss": idp.issuer, "sub": "sub-alice"}).json()["token"]
    operation = openapi_document()["paths"]["/v1/ssf/events"]["post"]
    schema = operation["requestBody"]["content"]["application/secevent+jwt"]["schema"]
    check = jsonschema_rs.Draft202012Validator(schema)
    subject = {"format": "iss_sub", "iss": idp.issuer, "sub": "sub-alice"}

    def event(pad: str) -> str:
        events: dict[str, Any] = {SESSION_REVOKED: {}}
        return idp.set_token(time.time(), events, audience=AUDIENCE, sub_id=subject, pad=pad)

    headers = {"content-type": "application/secevent+jwt"}
    too_long = _padded(event, MAX_TOKEN + 1, MAX_TOKEN + 3)
    assert not check.is_valid(too_long)
    refused = b.client.post("/v1/ssf/events", content=too_long, headers=headers)
    assert refused.status_code == 400
    assert refused.json() == {"err": "invalid_request", "description": "too-large"}
    assert a.decision(target) == "allow"
    inside = _padded(event, MAX_TOKEN - 2, MAX_TOKEN)
    assert check.is_valid(inside)
    assert b.client.post("/v1/ssf/events", content=inside, headers=headers).status_code == 202
    assert a.decision(target) == "deny"
