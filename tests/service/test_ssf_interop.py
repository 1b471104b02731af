"""Two services over real HTTP: A transmits Shared Signals, B receives them (its
``/v1/ssf/events``, configured with A as its transmitter). A session B issued for a login at A
ends on B when A's session ends: transmitter and receiver agree on the SET, the keys, the
audience and the subject."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import WAIT

from sessionward import Policy
from sessionward.service import ServiceConfig, create_app
from sessionward.service.runtime import Runtime
from sessionward.signals.caep import SESSION_REVOKED
from sessionward.testing import FakeClock

from ._server import serve
from .conftest import Service, make_keys
from .test_ssf import ORIGIN, _service

SECRET = "Bearer stream-secret-b"  # noqa: S105 - a test's stream credential


@pytest.fixture
def transmitter(tmp_path: Path) -> Iterator[Service]:
    folder = tmp_path / "a"
    folder.mkdir()
    yield from _service(folder)


@pytest.fixture
def receiver(transmitter: Service, tmp_path: Path) -> Iterator[Service]:
    jwks_url = str(transmitter.client.base_url).rstrip("/") + "/.well-known/jwks.json"
    config = ServiceConfig(
        store=str(tmp_path / "b.db"),
        admin=False,
        demo=False,
        policy=Policy(idle_timeout=600, absolute_timeout=3600),
        key_cache_seconds=0,
        ssf_issuer=ORIGIN,  # A's issuer (its origin)
        ssf_jwks_url=jwks_url,
        ssf_audience="default",  # A's streams are addressed to the key's application
        ssf_authorization=SECRET,
    )
    clock = FakeClock(time.time())
    app = create_app(config, clock=clock)
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base, httpx.Client(base_url=base, timeout=10) as client:
            yield Service(app, runtime, clock, client, make_keys(runtime), tmp_path / "b.db")
    finally:
        asyncio.run(runtime.close())


def test_a_revocation_at_the_transmitter_ends_the_linked_session_at_the_receiver(
    transmitter: Service, receiver: Service
) -> None:
    a, b = transmitter, receiver
    a_auth, b_auth = a.auth("issue"), b.auth("issue")
    at_a = a.client.post("/v1/sessions", json={"user_id": "alice"}, headers=a_auth).json()
    link = {"iss": ORIGIN, "sid": at_a["session"]["id"], "sub": "alice"}
    at_b = b.client.post("/v1/sessions", json={"user_id": "alice", "idp": link}, headers=b_auth)
    assert at_b.status_code == 201, at_b.text
    b_token = at_b.json()["token"]

    def valid_at_b() -> bool:
        answer = b.client.post("/v1/sessions/validate", json={"token": b_token}, headers=b_auth)
        return bool(answer.json()["decision"] != "deny")

    assert valid_at_b()
    endpoint = str(b.client.base_url).rstrip("/") + "/v1/ssf/events"
    stream = {
        "delivery": {
            "method": "urn:ietf:rfc:8935",
            "endpoint_url": endpoint,
            "authorization_header": SECRET,
        },
        "events_requested": [SESSION_REVOKED],
    }
    assert a.client.post("/ssf/stream", json=stream, headers=a_auth).status_code == 201
    revoked = a.client.post("/v1/sessions/revoke", json={"token": at_a["token"]}, headers=a_auth)
    assert revoked.status_code == 200
    deadline = time.monotonic() + WAIT
    while valid_at_b():
        assert time.monotonic() < deadline, "the receiver never ended the session"
        time.sleep(0.1)
    consumers = a.runtime.webhooks.store if a.runtime.webhooks else None
    assert consumers is not None
    (consumer,) = consumers.consumers(kind="ssf")
    history = consumers.deliveries(consumer.id)
    assert [d.status for d in history] == [202]  # RFC 8935: accepted, first try
