"""Push delivery of Shared Signals (RFC 8935) to a real HTTP receiver (uvicorn on loopback)
that checks every SET with PyJWT against the service's JWKS and answers 202: delivery,
verification, a paused stream, and a receiver that is down and then back."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from servers import WAIT, reserved_port, uvicorn_thread, wait_until
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sessionward.signals.caep import SESSION_REVOKED
from sessionward.signals.set import VERIFICATION

from .conftest import Service
from .test_ssf import ORIGIN, _service

AUTHORIZATION = "Bearer receiver-credential-1"


class Receiver:
    """Keeps every SET that verifies (by ``jti``, in arrival order) and counts the rest."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.keys = pyjwt.PyJWKSet.from_dict(jwks)
        self.received: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.refused = 0
        self.lock = threading.Lock()

    def app(self, base: str) -> Starlette:
        async def events(request: Request) -> Response:
            body = (await request.body()).decode("ascii")
            ok = (
                request.headers.get("content-type") == "application/secevent+jwt"
                and request.headers.get("authorization") == AUTHORIZATION
            )
            try:
                header = pyjwt.get_unverified_header(body)
                claims = pyjwt.decode(
                    body, self.keys[header["kid"]], algorithms=[header["alg"]],
                    audience="default", issuer=ORIGIN, leeway=3600,
                )  # fmt: skip
            except pyjwt.PyJWTError:
                ok = False
            with self.lock:
                if not ok or header.get("typ") != "secevent+jwt":
                    self.refused += 1
                    return Response('{"err":"authentication_failed"}', 400)
                self.received.append(claims)
                self.raw.append(body)
            return Response(status_code=202)

        return Starlette(routes=[Route("/events", events, methods=["POST"])])

    def jtis(self) -> list[str]:
        with self.lock:
            return [c["jti"] for c in self.received]

    def wait_for(self, check: Callable[[], bool], seconds: float = WAIT) -> None:
        deadline = time.monotonic() + seconds
        while not check():
            assert time.monotonic() < deadline, f"timed out; received {self.jtis()}"
            time.sleep(0.05)


@pytest.fixture
def ssf(tmp_path: Path) -> Iterator[Service]:
    yield from _service(tmp_path)


def push_stream(service: Service, url: str) -> dict[str, Any]:
    body = {
        "delivery": {
            "method": "urn:ietf:rfc:8935",
            "endpoint_url": url,
            "authorization_header": AUTHORIZATION,
        },
        "events_requested": [SESSION_REVOKED],
    }
    response = service.client.post("/ssf/stream", json=body, headers=service.auth("issue"))
    assert response.status_code == 201, response.text
    stream: dict[str, Any] = response.json()
    assert "authorization_header" not in str(stream)  # the receiver's credential stays here
    assert AUTHORIZATION not in str(stream)
    return stream


def revoke_sessions(service: Service, users: list[str]) -> list[str]:
    auth, tokens = service.auth("issue"), []
    for user in users:
        token = service.client.post("/v1/sessions", json={"user_id": user}, headers=auth).json()[
            "token"
        ]
        answer = service.client.post("/v1/sessions/revoke", json={"token": token}, headers=auth)
        assert answer.status_code == 200
        tokens.append(token)
    return tokens


def test_push_delivers_verified_sets_and_a_verification_event(ssf: Service) -> None:
    receiver = Receiver(ssf.client.get("/.well-known/jwks.json").json())
    with uvicorn_thread(receiver.app) as base:
        stream = push_stream(ssf, base + "/events")
        tokens = revoke_sessions(ssf, ["p1", "p2", "p3"])
        receiver.wait_for(lambda: len(receiver.jtis()) >= 3)
        users = [c["sub_id"]["user"]["sub"] for c in receiver.received]
        assert users == ["p1", "p2", "p3"]  # in log order
        assert all(list(c["events"]) == [SESSION_REVOKED] for c in receiver.received)
        assert receiver.refused == 0

        state = {"stream_id": stream["stream_id"], "state": "push-state-1"}
        answer = ssf.client.post("/ssf/verify", json=state, headers=ssf.auth("issue"))
        assert answer.status_code == 204
        receiver.wait_for(lambda: any(VERIFICATION in c["events"] for c in receiver.received))
        verification = next(c for c in receiver.received if VERIFICATION in c["events"])
        assert verification["events"][VERIFICATION] == {"state": "push-state-1"}
        assert verification["sub_id"] == {"format": "opaque", "id": stream["stream_id"]}

        for token in tokens:  # no raw token in any SET, nor in the stored streams
            assert all(token not in raw for raw in receiver.raw)
            secret = token[4 + 16 : 4 + 58]  # sw1_, the 16-character id, then the secret
            assert all(secret not in raw for raw in receiver.raw)
        with sqlite3.connect(ssf.path) as db:
            stored = str(db.execute("SELECT * FROM ssf_streams").fetchall())
            stored += str(db.execute("SELECT * FROM ssf_pending").fetchall())
        assert all(token not in stored for token in tokens)
        assert AUTHORIZATION not in stored  # kept once, with the stream's consumer


def test_paused_push_stream_holds_events_until_enabled(ssf: Service) -> None:
    receiver = Receiver(ssf.client.get("/.well-known/jwks.json").json())
    auth = ssf.auth("issue")
    with uvicorn_thread(receiver.app) as base:
        stream = push_stream(ssf, base + "/events")
        body = {"stream_id": stream["stream_id"], "status": "paused"}
        assert ssf.client.post("/ssf/status", json=body, headers=auth).status_code == 200
        revoke_sessions(ssf, ["held1", "held2"])
        time.sleep(2.5)  # two rounds of the deliverer
        assert receiver.jtis() == []
        body["status"] = "enabled"
        assert ssf.client.post("/ssf/status", json=body, headers=auth).status_code == 200
        receiver.wait_for(lambda: len(receiver.jtis()) == 2)
        assert [c["sub_id"]["user"]["sub"] for c in receiver.received] == ["held1", "held2"]


def test_a_receiver_down_then_up_gets_every_set(ssf: Service) -> None:
    receiver = Receiver(ssf.client.get("/.well-known/jwks.json").json())
    with contextlib.closing(reserved_port()) as reserved:  # refused until the receiver is up
        port = reserved.getsockname()[1]
        stream = push_stream(ssf, f"http://127.0.0.1:{port}/events")
        users = [f"down{i}" for i in range(6)]
        revoke_sessions(ssf, users)
        transmitter = ssf.runtime.transmitter
        assert transmitter is not None
        consumers = transmitter.consumers
        assert consumers is not None

        def failures() -> int:
            consumer = consumers.get(stream["stream_id"])
            return 0 if consumer is None else consumer.failures

        wait_until(lambda: failures() >= 1, "the first attempt to find nobody listening")
        with uvicorn_thread(receiver.app, port=port):

            def all_received() -> bool:
                if len(set(receiver.jtis())) == len(users):
                    return True
                consumer = consumers.get(stream["stream_id"])
                if consumer is not None and consumer.next_attempt > ssf.clock.now():
                    ssf.clock.set(consumer.next_attempt)  # the backoff runs on this clock
                transmitter.wake()
                return False

            wait_until(all_received, f"every SET; received {receiver.jtis()}", interval=0.3)
            got = [c["sub_id"]["user"]["sub"] for c in receiver.received]
            assert sorted(set(got)) == sorted(users)  # every one, a duplicate only by jti
            assert len(set(receiver.jtis())) == len(users)
    status = ssf.client.get(
        "/ssf/status", params={"stream_id": stream["stream_id"]}, headers=ssf.auth("issue")
    )
    assert status.json()["status"] == "enabled"


def test_push_needs_https_except_to_loopback(ssf: Service) -> None:
    for url in ("http://receiver.example/events", "ftp://x", "https://u:p@h.example/"):
        body = {"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": url}}
        answer = ssf.client.post("/ssf/stream", json=body, headers=ssf.auth("issue"))
        assert answer.status_code == 400, url


def test_a_poll_stream_switched_to_push_and_to_another_receiver(ssf: Service) -> None:
    auth = ssf.auth("issue")
    created = ssf.client.post("/ssf/stream", json={}, headers=auth).json()
    stream_id = created["stream_id"]
    first = Receiver(ssf.client.get("/.well-known/jwks.json").json())
    second = Receiver(ssf.client.get("/.well-known/jwks.json").json())
    with uvicorn_thread(first.app) as one, uvicorn_thread(second.app) as two:
        delivery = {
            "method": "urn:ietf:rfc:8935",
            "endpoint_url": one + "/events",
            "authorization_header": AUTHORIZATION,
        }
        body = {"stream_id": stream_id, "delivery": delivery}
        patched = ssf.client.patch("/ssf/stream", json=body, headers=auth)
        assert patched.json()["delivery"]["endpoint_url"] == one + "/events"
        revoke_sessions(ssf, ["to-first"])
        first.wait_for(lambda: len(first.jtis()) == 1)
        body["delivery"] = {**delivery, "endpoint_url": two + "/events"}
        assert ssf.client.patch("/ssf/stream", json=body, headers=auth).status_code == 200
        revoke_sessions(ssf, ["to-second"])
        second.wait_for(lambda: len(second.jtis()) == 1)
        assert [c["sub_id"]["user"]["sub"] for c in second.received] == ["to-second"]
        assert len(first.jtis()) == 1
        replaced = ssf.client.put("/ssf/stream", json={"stream_id": stream_id}, headers=auth)
        assert replaced.json()["delivery"]["method"] == "urn:ietf:rfc:8936"  # PUT: back to poll
        revoke_sessions(ssf, ["polled"])
        time.sleep(1.5)
        assert len(second.jtis()) == 1
        assert ssf.runtime.recorder is not None
        assert ssf.runtime.recorder.flush(WAIT)
        url = f"/ssf/poll/{stream_id}"
        sets = ssf.client.post(url, json={"returnImmediately": True}, headers=auth).json()["sets"]
        assert len(sets) == 1


def test_a_stream_the_engine_disabled_reads_paused_until_enabled(ssf: Service) -> None:
    stream = push_stream(ssf, "http://127.0.0.1:9/events")
    webhooks = ssf.runtime.webhooks
    assert webhooks is not None
    revoke_sessions(ssf, ["unreachable"])  # something to fail on (nobody listens on port 9)

    def failed() -> bool:
        consumer = webhooks.store.get(stream["stream_id"])
        assert consumer is not None
        return consumer.failures >= 1

    wait_until(failed, "a failed delivery")
    # Failed once; its retry is due on the service's (fake, still) clock: no round holds it.
    webhooks.store.set_state(stream["stream_id"], "disabled", "repeated_failure", time.time())
    auth, query = ssf.auth("issue"), {"stream_id": stream["stream_id"]}
    status = ssf.client.get("/ssf/status", params=query, headers=auth).json()
    assert status["status"] == "paused"
    assert status["reason"] == "delivery failed: repeated_failure"
    body = {**query, "status": "enabled"}
    assert ssf.client.post("/ssf/status", json=body, headers=auth).status_code == 200
    enabled = webhooks.store.get(stream["stream_id"])
    assert enabled is not None
    assert enabled.state == "active"
    assert ssf.client.get("/ssf/status", params=query, headers=auth).json()["status"] == "enabled"


def _sender_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sessionward-ssf-verify"]


def test_closing_the_runtime_stops_a_verification_still_retrying(tmp_path: Path) -> None:
    attempts: list[float] = []

    def refusing(base: str) -> Starlette:
        async def events(request: Request) -> Response:
            attempts.append(time.monotonic())
            return Response(status_code=503)  # retried: 1 s, 2 s, 4 s apart

        return Starlette(routes=[Route("/events", events, methods=["POST"])])

    running = contextlib.ExitStack()
    ssf = running.enter_context(contextlib.contextmanager(_service)(tmp_path))
    with running, uvicorn_thread(refusing) as base:
        stream = push_stream(ssf, base + "/events")
        before = set(_sender_threads())
        body = {"stream_id": stream["stream_id"]}
        answer = ssf.client.post("/ssf/verify", json=body, headers=ssf.auth("issue"))
        assert answer.status_code == 204
        wait_until(lambda: attempts, "the first attempt of the verification")
        assert set(_sender_threads()) - before  # waiting to try again
        began = time.monotonic()
        running.close()  # closes the runtime, which stops and joins the sender
        assert time.monotonic() - began < WAIT / 3
        assert not _sender_threads()
