"""Shared Signals stream management beyond the configuration, over real HTTP (uvicorn on
loopback, a real SQLite state file): the add/remove subject endpoints with ``default_subjects``
``ALL`` and ``NONE``, held and dropped events with subjects, the stream-updated event of the
transmitter's own status changes (poll and push), every SET checked with PyJWT against the
service's JWKS; and the streams' subjects surviving a restart."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from servers import PostgresServer, RedisServer, uvicorn_thread
from servers import postgres_server as postgres_server  # a fixture
from servers import redis_server as redis_server  # a fixture

from sessionward.clock import SystemClock
from sessionward.core.events import SessionRevoked
from sessionward.jwt import KeySet
from sessionward.service import ServiceConfig, create_app
from sessionward.service.keys import create_key
from sessionward.service.runtime import Runtime
from sessionward.signals.caep import SESSION_REVOKED
from sessionward.signals.delivery import Deliverer
from sessionward.signals.push import KIND, SetRenderer
from sessionward.signals.set import STREAM_UPDATED, VERIFICATION
from sessionward.signals.transmitter import Transmitter
from sessionward.stores.consumers import ConsumerStore
from sessionward.stores.eventlog.sqlite import SQLiteEventLog
from sessionward.stores.ssf import SQLiteStreamStore

from ._server import serve
from .conftest import Service
from .test_ssf import ORIGIN, _service, create_stream, decode, issue_and_revoke, poll
from .test_ssf_push import AUTHORIZATION, Receiver, push_stream, revoke_sessions

ADD, REMOVE = "/ssf/subjects:add", "/ssf/subjects:remove"


@pytest.fixture
def ssf(tmp_path: Path) -> Iterator[Service]:
    yield from _service(tmp_path)


@pytest.fixture
def ssf_none(tmp_path: Path) -> Iterator[Service]:
    yield from _service(tmp_path, default_subjects="NONE")


def user(name: str) -> dict[str, str]:
    return {"format": "iss_sub", "iss": ORIGIN, "sub": name}


def subject_call(
    service: Service, path: str, stream: dict[str, Any], subject: Any, **extra: Any
) -> httpx.Response:
    body = {"stream_id": stream["stream_id"], "subject": subject, **extra}
    return service.client.post(path, json=body, headers=service.auth("issue"))


def add(service: Service, stream: dict[str, Any], subject: Any) -> None:
    answer = subject_call(service, ADD, stream, subject, verified=True)
    assert answer.status_code == 200, answer.text
    assert answer.content == b""
    assert answer.headers["cache-control"] == "no-store"


def remove(service: Service, stream: dict[str, Any], subject: Any) -> None:
    answer = subject_call(service, REMOVE, stream, subject)
    assert answer.status_code == 204, answer.text


def users_of(service: Service, sets: dict[str, str]) -> list[str]:
    return [decode(service, t)["sub_id"]["user"]["sub"] for t in sets.values()]


def drain(service: Service, stream: dict[str, Any]) -> dict[str, str]:
    """Every SET waiting on a poll stream, acknowledged."""
    sets = poll(service, stream)["sets"]
    if sets:
        poll(service, stream, maxEvents=0, ack=list(sets))
    return dict(sets)


def test_metadata_names_the_subject_endpoints_and_the_default(ssf: Service, tmp_path: Path) -> None:
    meta = ssf.client.get("/.well-known/ssf-configuration").json()
    assert meta["add_subject_endpoint"] == ORIGIN + ADD
    assert meta["remove_subject_endpoint"] == ORIGIN + REMOVE
    assert meta["default_subjects"] == "ALL"
    folder = tmp_path / "none"
    folder.mkdir()
    for other in _service(folder, default_subjects="NONE"):
        assert other.client.get("/.well-known/ssf-configuration").json()["default_subjects"] == (
            "NONE"
        )


def test_subject_endpoints_need_an_issue_key_of_the_stream_application(ssf: Service) -> None:
    stream = create_stream(ssf)
    body = {"stream_id": stream["stream_id"], "subject": user("alice")}
    for path in (ADD, REMOVE):
        assert ssf.client.post(path, json=body).status_code == 401
        assert ssf.client.post(path, json=body, headers=ssf.auth("validate")).status_code == 403
        other = create_key(ssf.runtime.state, "issue", "other app", time.time(), "other")[0]
        foreign = ssf.client.post(path, json=body, headers={"authorization": f"Bearer {other}"})
        assert foreign.status_code == 404  # another application's stream does not exist for it
        unknown = {"stream_id": "nope", "subject": user("alice")}
        assert ssf.client.post(path, json=unknown, headers=ssf.auth("issue")).status_code == 404


@pytest.mark.parametrize(
    "subject",
    [
        "alice",
        {"format": "phone_number", "phone_number": "+12065550100"},
        {"format": "iss_sub", "iss": ORIGIN},
        {"format": "iss_sub", "iss": ORIGIN, "sub": "alice", "extra": 1},
        {"format": "opaque", "id": ""},
        {"format": "email", "email": "not-an-address"},
        {"format": "complex"},
        {"format": "complex", "group": {"format": "opaque", "id": "g"}},
        {"format": "complex", "user": {"format": "complex", "user": user("alice")}},
        {"format": "aliases", "identifiers": [user("alice")]},
    ],
)
def test_subjects_outside_the_supported_formats_are_refused(ssf: Service, subject: Any) -> None:
    stream = create_stream(ssf)
    for path in (ADD, REMOVE):
        answer = subject_call(ssf, path, stream, subject)
        assert answer.status_code == 400, (path, subject)
        assert answer.json()["error"]["code"] == "invalid_request"
    bad_flag = subject_call(ssf, ADD, stream, user("alice"), verified="yes")
    assert bad_flag.status_code == 400


def test_default_all_removing_a_subject_stops_its_events_and_adding_it_back_resumes(
    ssf: Service,
) -> None:
    stream = create_stream(ssf)
    remove(ssf, stream, user("alice"))
    remove(ssf, stream, user("alice"))  # twice: listed once
    remove(ssf, stream, {"format": "email", "email": "Carol@Example.com"})
    for name in ("alice", "bob", "carol@example.com"):
        issue_and_revoke(ssf, name)
    assert users_of(ssf, drain(ssf, stream)) == ["bob"]
    add(ssf, stream, user("alice"))  # undoes the removal of that same subject
    for name in ("alice", "bob", "carol@example.com"):
        issue_and_revoke(ssf, name)
    assert users_of(ssf, drain(ssf, stream)) == ["alice", "bob"]
    assert ssf.runtime.transmitter is not None
    mode, listed = ssf.runtime.transmitter.subjects_of("default", stream["stream_id"])
    assert (mode, listed) == ("ALL", [{"format": "email", "email": "carol@example.com"}])


def test_default_none_sends_only_the_added_subjects(ssf_none: Service) -> None:
    service = ssf_none
    stream = create_stream(service)
    issue_and_revoke(service, "alice")
    assert drain(service, stream) == {}  # nothing added: nothing sent
    add(service, stream, user("alice"))
    add(service, stream, {"format": "email", "email": "Carol@example.com"})
    for name in ("alice", "bob", "carol@example.com"):
        issue_and_revoke(service, name)
    assert users_of(service, drain(service, stream)) == ["alice", "carol@example.com"]

    # A complex subject: one session of dave's (its public id, from the issue answer).
    auth = service.auth("issue")
    first = service.client.post("/v1/sessions", json={"user_id": "dave"}, headers=auth).json()
    second = service.client.post("/v1/sessions", json={"user_id": "dave"}, headers=auth).json()
    session = {"format": "opaque", "id": first["session"]["id"]}
    add(service, stream, {"format": "complex", "session": session, "user": user("dave")})
    for issued in (first, second):
        answer = service.client.post(
            "/v1/sessions/revoke", json={"token": issued["token"]}, headers=auth
        )
        assert answer.status_code == 200
    (only,) = drain(service, stream).values()
    assert decode(service, only)["sub_id"]["session"] == session

    remove(service, stream, user("alice"))
    issue_and_revoke(service, "alice")
    issue_and_revoke(service, "carol@example.com")
    assert users_of(service, drain(service, stream)) == ["carol@example.com"]

    # The stream itself is always a subject of its own stream: verification still flows.
    verify = {"stream_id": stream["stream_id"], "state": "s1"}
    assert service.client.post("/ssf/verify", json=verify, headers=auth).status_code == 204
    (token,) = drain(service, stream).values()
    assert decode(service, token)["events"] == {VERIFICATION: {"state": "s1"}}


def test_a_tenant_subject_carries_the_whole_application(ssf_none: Service) -> None:
    stream = create_stream(ssf_none)
    add(ssf_none, stream, {"format": "complex", "tenant": {"format": "opaque", "id": "other"}})
    issue_and_revoke(ssf_none, "erin")
    assert drain(ssf_none, stream) == {}  # another application's tenant
    add(ssf_none, stream, {"format": "complex", "tenant": {"format": "opaque", "id": "default"}})
    issue_and_revoke(ssf_none, "erin")
    assert users_of(ssf_none, drain(ssf_none, stream)) == ["erin"]


def test_a_paused_stream_holds_the_added_subjects_events_and_a_disabled_one_drops_them(
    ssf_none: Service,
) -> None:
    service = ssf_none
    stream = create_stream(service)
    add(service, stream, user("held"))
    add(service, stream, user("dropped"))
    add(service, stream, user("after"))
    auth, stream_id = service.auth("issue"), stream["stream_id"]

    def status(value: str) -> None:
        body = {"stream_id": stream_id, "status": value}
        assert service.client.post("/ssf/status", json=body, headers=auth).status_code == 200

    status("paused")
    issue_and_revoke(service, "held")
    issue_and_revoke(service, "ignored")  # never added
    assert drain(service, stream) == {}
    status("enabled")
    assert users_of(service, drain(service, stream)) == ["held"]
    status("disabled")
    service.clock.advance(1)
    issue_and_revoke(service, "dropped")
    service.clock.advance(1)
    status("enabled")
    issue_and_revoke(service, "after")
    assert users_of(service, drain(service, stream)) == ["after"]
    assert poll(service, stream)["sets"] == {}  # the receiver's own changes: no stream-updated


def test_the_transmitters_own_pause_is_told_with_stream_updated_on_a_poll_stream(
    ssf: Service,
) -> None:
    stream = create_stream(ssf)
    stream_id = stream["stream_id"]
    body = {"stream_id": stream_id, "status": "paused", "reason": "maintenance"}
    refused = ssf.client.post("/v1/ssf/streams/status", json=body, headers=ssf.auth("issue"))
    assert refused.status_code == 403  # the operator's: a receiver's key cannot
    answer = ssf.client.post("/v1/ssf/streams/status", json=body, headers=ssf.auth("admin"))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"stream_id": stream_id, "status": "paused", "reason": "maintenance"}
    issue_and_revoke(ssf, "waiting")
    paused = poll(ssf, stream)["sets"]  # the notice only: the revocation is held
    (notice,) = paused.values()
    claims = decode(ssf, notice)
    assert claims["sub_id"] == {"format": "opaque", "id": stream_id}
    assert claims["events"] == {STREAM_UPDATED: {"status": "paused", "reason": "maintenance"}}
    assert claims["jti"] in paused
    poll(ssf, stream, maxEvents=0, ack=list(paused))
    assert poll(ssf, stream)["sets"] == {}

    again = ssf.client.post("/v1/ssf/streams/status", json=body, headers=ssf.auth("admin"))
    assert again.status_code == 200
    assert poll(ssf, stream)["sets"] == {}  # the same status: nothing to tell

    body = {"stream_id": stream_id, "status": "enabled"}
    enabled = ssf.client.post("/v1/ssf/streams/status", json=body, headers=ssf.auth("admin"))
    assert enabled.status_code == 200
    sets = drain(ssf, stream)
    events = [next(iter(decode(ssf, t)["events"].items())) for t in sets.values()]
    assert (STREAM_UPDATED, {"status": "enabled"}) in events
    assert [e for e, _ in events].count(SESSION_REVOKED) == 1  # the held one, released


def test_the_transmitters_own_disable_drops_the_queue_but_not_the_notice(ssf: Service) -> None:
    stream = create_stream(ssf)
    issue_and_revoke(ssf, "queued")
    assert ssf.runtime.recorder is not None
    assert ssf.runtime.recorder.flush()
    transmitter = ssf.runtime.transmitter
    assert transmitter is not None
    transmitter.fill(transmitter.get("default", stream["stream_id"]))
    body = {"stream_id": stream["stream_id"], "status": "disabled"}
    answer = ssf.client.post("/v1/ssf/streams/status", json=body, headers=ssf.auth("admin"))
    assert answer.status_code == 200
    (notice,) = poll(ssf, stream)["sets"].values()
    assert decode(ssf, notice)["events"] == {STREAM_UPDATED: {"status": "disabled"}}


def test_the_transmitters_own_pause_reaches_a_push_receiver_before_it_stops(
    ssf: Service,
) -> None:
    receiver = Receiver(ssf.client.get("/.well-known/jwks.json").json())
    admin = ssf.auth("admin")
    with uvicorn_thread(receiver.app) as base:
        stream = push_stream(ssf, base + "/events")
        body = {"stream_id": stream["stream_id"], "status": "paused", "reason": "upgrade"}
        assert ssf.client.post("/v1/ssf/streams/status", json=body, headers=admin).status_code == (
            200
        )
        receiver.wait_for(lambda: len(receiver.jtis()) == 1)
        (notice,) = receiver.received
        assert notice["events"] == {STREAM_UPDATED: {"status": "paused", "reason": "upgrade"}}
        assert notice["sub_id"] == {"format": "opaque", "id": stream["stream_id"]}
        revoke_sessions(ssf, ["held"])
        time.sleep(2.5)  # two rounds of the deliverer: the stream is paused
        assert len(receiver.jtis()) == 1
        body = {"stream_id": stream["stream_id"], "status": "enabled"}
        assert ssf.client.post("/v1/ssf/streams/status", json=body, headers=admin).status_code == (
            200
        )
        receiver.wait_for(lambda: len(receiver.jtis()) == 3)
        kinds = sorted(next(iter(c["events"])) for c in receiver.received[1:])
        assert kinds == sorted([SESSION_REVOKED, STREAM_UPDATED])
        assert receiver.refused == 0


def test_a_push_stream_filters_by_subject(ssf: Service) -> None:
    receiver = Receiver(ssf.client.get("/.well-known/jwks.json").json())
    with uvicorn_thread(receiver.app) as base:
        stream = push_stream(ssf, base + "/events")
        remove(ssf, stream, user("quiet"))
        revoke_sessions(ssf, ["quiet", "loud"])
        receiver.wait_for(lambda: len(receiver.jtis()) == 1)
        time.sleep(1.5)  # another round: nothing more comes
        assert [c["sub_id"]["user"]["sub"] for c in receiver.received] == ["loud"]


def _consumer_store(kind: str, request: pytest.FixtureRequest) -> ConsumerStore:
    if kind == "postgres":
        from sessionward.stores.consumers.postgres import PostgresConsumerStore

        server: PostgresServer = request.getfixturevalue("postgres_server")
        store: ConsumerStore = PostgresConsumerStore(server.conninfo)
    else:
        from sessionward.stores.consumers.redis import RedisConsumerStore

        redis: RedisServer = request.getfixturevalue("redis_server")
        store = RedisConsumerStore(f"redis://127.0.0.1:{redis.port}/11")
    return store


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_a_push_streams_subjects_ride_its_consumer_in_a_shared_store(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """With PostgreSQL or Redis holding the consumers (what every node's deliverer reads),
    a push stream's consumer carries the subjects; a change keeps its place and history."""
    log = SQLiteEventLog(str(tmp_path / "log.db"))
    keys = KeySet.generate("ES256", now=time.time())
    consumers = _consumer_store(kind, request)
    transmitter = Transmitter(
        issuer=ORIGIN, keys=keys, streams=SQLiteStreamStore(tmp_path / "s.db"), log=log,
        now=time.time, poll_url=ORIGIN + "/ssf/poll/", allow_http=True, consumers=consumers,
    )  # fmt: skip
    deliverer = Deliverer(log, consumers, {KIND: SetRenderer(transmitter)}, clock=SystemClock())
    receiver = Receiver(keys.jwks())
    quiet, loud = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("quiet", "loud"))

    def revoke(*names: str) -> None:
        log.append(
            [
                {**SessionRevoked(uuid.uuid4().hex[:16], n, time.time(), reason="logout").to_dict(),
                 "application": "default"}
                for n in names
            ]
        )  # fmt: skip

    def deliver_until(count: int) -> None:
        deadline = time.monotonic() + 15
        while len(receiver.jtis()) < count:
            assert time.monotonic() < deadline, receiver.jtis()
            deliverer.run_once()

    try:
        with uvicorn_thread(receiver.app) as base:
            fields = {
                "delivery": {
                    "method": "urn:ietf:rfc:8935",
                    "endpoint_url": base + "/events",
                    "authorization_header": AUTHORIZATION,
                }
            }
            stream = transmitter.create("default", fields)
            revoke(loud)
            deliver_until(1)
            transmitter.remove_subject("default", stream.stream_id, user(quiet))
            stored = consumers.get(stream.stream_id)
            assert stored is not None
            assert stored.config["subjects"] == [user(quiet)]
            assert len(consumers.deliveries(stream.stream_id)) == 1  # the history stays
            revoke(quiet, loud)
            deliver_until(2)
            deliverer.run_once()  # another round: nothing more comes
            assert [c["sub_id"]["user"]["sub"] for c in receiver.received] == [loud, loud]
            transmitter.add_subject("default", stream.stream_id, user(quiet))
            revoke(quiet)
            deliver_until(3)
            assert receiver.received[-1]["sub_id"]["user"]["sub"] == quiet
            transmitter.delete("default", stream.stream_id)
    finally:
        deliverer.stop()
        transmitter.close()
        consumers.close()
        log.close()


def test_subjects_and_mode_survive_a_restart(tmp_path: Path) -> None:
    for first in _service(tmp_path, default_subjects="NONE"):
        stream = create_stream(first)
        add(first, stream, user("kept"))
        keys = first.keys
    config = ServiceConfig(
        store=str(tmp_path / "service.db"),
        admin=False,
        demo=False,
        key_cache_seconds=0,
        jwt_keys=str(tmp_path / "jwt-keys.json"),
        ssf_default_subjects="ALL",  # a later setting applies to new streams only
    )
    app = create_app(config)
    runtime: Runtime = app.state.runtime
    try:
        assert runtime.transmitter is not None
        mode, listed = runtime.transmitter.subjects_of("default", stream["stream_id"])
        assert (mode, listed) == ("NONE", [user("kept")])
        with serve(app) as base, httpx.Client(base_url=base, timeout=10) as client:
            auth = {"authorization": f"Bearer {keys['issue']}"}
            for name in ("kept", "other"):
                token = client.post("/v1/sessions", json={"user_id": name}, headers=auth).json()
                client.post("/v1/sessions/revoke", json={"token": token["token"]}, headers=auth)
            assert runtime.recorder is not None
            assert runtime.recorder.flush()
            url = stream["delivery"]["endpoint_url"].removeprefix(ORIGIN)
            sets = client.post(url, json={"returnImmediately": True}, headers=auth).json()["sets"]
            jwks = pyjwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())
        (token,) = sets.values()
        kid = pyjwt.get_unverified_header(token)["kid"]
        claims = pyjwt.decode(
            token, jwks[kid], algorithms=["ES256"], audience="default", issuer=ORIGIN, leeway=60
        )
        assert claims["sub_id"]["user"]["sub"] == "kept"
    finally:
        asyncio.run(runtime.close())


def test_the_openapi_document_describes_subjects_and_the_operators_status() -> None:
    from sessionward.service.openapi import openapi_document

    document = openapi_document()
    paths = document["paths"]
    assert set(paths[ADD]["post"]["responses"]) >= {"200", "400", "401", "403", "404"}
    assert set(paths[REMOVE]["post"]["responses"]) >= {"204", "400", "401", "403", "404"}
    add_body = paths[ADD]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert add_body["required"] == ["stream_id", "subject"]
    assert add_body["properties"]["subject"] == {"$ref": "#/components/schemas/SsfSubject"}
    formats = [
        s["properties"]["format"]["const"]
        for s in document["components"]["schemas"]["SsfSubject"]["oneOf"]
    ]
    assert formats == ["opaque", "email", "iss_sub", "complex"]
    operator = paths["/v1/ssf/streams/status"]["post"]
    assert "`admin`" in operator["description"]
    assert "stream-updated" in operator["description"]
