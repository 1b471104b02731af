"""``/v1/webhooks`` on a real uvicorn with a SQLite file: management through the API, and
the events of API calls reaching a real receiver, signed, checked by ``standardwebhooks``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import WAIT
from signals._receiver import Receiver

from sessionward.service import ServiceConfig, create_app
from sessionward.service.keys import create_key
from sessionward.service.openapi import openapi_document
from sessionward.service.runtime import Runtime
from sessionward.testing import FakeClock

from ._server import serve
from .conftest import POLICY, Service, make_keys


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Service]:
    clock = FakeClock(time.time())  # the receiver checks timestamps against the wall clock
    path = tmp_path / "service.db"
    config = ServiceConfig(
        store=str(path),
        admin=False,
        demo=False,
        policy=POLICY,
        key_cache_seconds=0,
        webhook_private_targets=True,  # the receivers listen on loopback
    )
    app = create_app(config, clock=clock)
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base, httpx.Client(base_url=base, timeout=10) as client:
            yield Service(app, runtime, clock, client, make_keys(runtime), path)
    finally:
        asyncio.run(runtime.close())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    rx.start()
    try:
        yield rx
    finally:
        rx.close()


def deliver(service: Service) -> int:
    assert service.runtime.recorder is not None
    assert service.runtime.recorder.flush(WAIT)
    assert service.runtime.webhooks is not None
    return service.runtime.webhooks.deliverer.run_once()


def test_manage_endpoints_and_the_secret_is_shown_once(live: Service) -> None:
    admin = live.auth("admin")
    made = live.client.post(
        "/v1/webhooks",
        json={"url": "https://hooks.example.test/in", "events": ["revoked"], "description": "x"},
        headers=admin,
    )
    assert made.status_code == 201
    assert made.headers["cache-control"] == "no-store"
    hook, secret = made.json()["webhook"], made.json()["secret"]
    assert secret.startswith("whsec_")
    assert (hook["url"], hook["events"], hook["state"]) == (
        "https://hooks.example.test/in", ["revoked"], "active",
    )  # fmt: skip
    listed = live.client.get("/v1/webhooks", headers=admin)
    assert [h["id"] for h in listed.json()["webhooks"]] == [hook["id"]]
    assert secret not in listed.text
    one = live.client.get(f"/v1/webhooks/{hook['id']}", headers=admin)
    assert one.json()["webhook"] == hook
    assert secret not in one.text
    rotated = live.client.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=admin)
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != secret
    gone = live.client.delete(f"/v1/webhooks/{hook['id']}", headers=admin)
    assert gone.json() == {"deleted": True}
    assert live.client.get(f"/v1/webhooks/{hook['id']}", headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"url": "ftp://x.test/"}, "https://"),
        ({"url": "https://user:pw@x.test/"}, "user"),
        ({"url": "https://x.test/", "events": ["nonsense"]}, "unknown event kind"),
        ({"url": "https://x.test/", "extra": 1}, "extra"),
    ],
)
def test_bad_endpoints_are_refused(live: Service, body: dict[str, object], fragment: str) -> None:
    answer = live.client.post("/v1/webhooks", json=body, headers=live.auth("admin"))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"
    assert fragment in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/",
        "http://localhost/hook",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://100.64.0.1/",
        "https://no-such-host.invalid/",
    ],
)
def test_by_default_a_key_cannot_aim_the_service_at_its_own_network(
    service: Service, url: str
) -> None:
    answer = service.client.post("/v1/webhooks", json={"url": url}, headers=service.auth("admin"))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"
    listed = service.client.get("/v1/webhooks", headers=service.auth("admin"))
    assert listed.json() == {"webhooks": []}


def test_a_public_address_is_accepted_by_default(service: Service) -> None:
    answer = service.client.post(
        "/v1/webhooks", json={"url": "https://93.184.215.14/hook"}, headers=service.auth("admin")
    )
    assert answer.status_code == 201


def test_scope_and_application_fence_the_endpoints(live: Service) -> None:
    made = live.client.post(
        "/v1/webhooks", json={"url": "https://a.test/"}, headers=live.auth("admin")
    ).json()["webhook"]
    refused = live.client.get("/v1/webhooks", headers=live.auth("issue"))
    assert refused.status_code == 403
    other, _ = create_key(live.runtime.state, "admin", "shop admin", time.time(), "shop")
    theirs = {"authorization": f"Bearer {other}"}
    assert live.client.get("/v1/webhooks", headers=theirs).json() == {"webhooks": []}
    for method, path in [
        ("GET", f"/v1/webhooks/{made['id']}"),
        ("DELETE", f"/v1/webhooks/{made['id']}"),
        ("GET", f"/v1/webhooks/{made['id']}/deliveries"),
        ("POST", f"/v1/webhooks/{made['id']}/rotate-secret"),
    ]:
        assert live.client.request(method, path, headers=theirs).status_code == 404
    assert live.client.get("/v1/webhooks", headers=live.auth("admin")).json()["webhooks"]


def test_api_events_reach_the_receiver_signed_and_without_tokens(
    live: Service, receiver: Receiver
) -> None:
    admin = live.auth("admin")
    made = live.client.post("/v1/webhooks", json={"url": receiver.url}, headers=admin).json()
    receiver.secret = made["secret"]
    issued = live.client.post(
        "/v1/sessions", json={"user_id": "alice"}, headers=live.auth("issue")
    ).json()
    token = issued["token"]
    live.client.post("/v1/sessions/revoke", json={"token": token}, headers=live.auth("issue"))
    assert deliver(live) == 2
    kinds = [(p["type"], p["data"]["user_id"]) for p in receiver.payloads()]
    assert kinds == [("session.created", "alice"), ("session.revoked", "alice")]
    assert receiver.refused == 0
    assert all(token not in m["raw"].decode() for m in receiver.received)
    history = live.client.get(f"/v1/webhooks/{made['webhook']['id']}/deliveries", headers=admin)
    rows = history.json()["deliveries"]
    assert [(r["ok"], r["status"], r["attempt"]) for r in rows] == [(True, 204, 1)] * 2
    assert [r["message_id"] for r in rows][::-1] == receiver.ids()


def test_a_disabled_endpoint_is_enabled_again_and_catches_up(
    live: Service, receiver: Receiver
) -> None:
    admin = live.auth("admin")
    made = live.client.post("/v1/webhooks", json={"url": receiver.url}, headers=admin).json()
    receiver.secret = made["secret"]
    hooks = live.runtime.webhooks
    assert hooks is not None
    hooks.store.set_state(made["webhook"]["id"], "disabled", "repeated_failure", time.time())
    live.client.post("/v1/sessions", json={"user_id": "bob"}, headers=live.auth("issue"))
    assert deliver(live) == 0
    shown = live.client.get(f"/v1/webhooks/{made['webhook']['id']}", headers=admin).json()
    assert shown["webhook"]["state"] == "disabled"
    again = live.client.post(f"/v1/webhooks/{made['webhook']['id']}/enable", headers=admin)
    assert again.json()["webhook"]["state"] == "active"
    assert deliver(live) == 1
    assert receiver.payloads()[0]["data"]["user_id"] == "bob"


def test_the_openapi_document_describes_the_webhook_operations() -> None:
    paths = openapi_document()["paths"]
    assert set(paths["/v1/webhooks"]) == {"get", "post"}
    assert set(paths["/v1/webhooks/{webhook_id}"]) == {"get", "delete"}
    for tail in ("deliveries", "rotate-secret", "enable"):
        assert f"/v1/webhooks/{{webhook_id}}/{tail}" in paths


def test_a_hanging_endpoint_never_slows_the_requests(live: Service) -> None:
    import socket

    hanging = socket.socket()  # accepts connections (the backlog) and never answers
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(16)
    try:
        url = f"http://127.0.0.1:{hanging.getsockname()[1]}/hook"
        live.client.post("/v1/webhooks", json={"url": url}, headers=live.auth("admin"))
        live.runtime.start_background()  # the deliverer thread, as the app's lifespan starts it
        slowest = 0.0
        for n in range(20):
            started = time.perf_counter()
            answer = live.client.post(
                "/v1/sessions", json={"user_id": f"u{n}"}, headers=live.auth("issue")
            )
            slowest = max(slowest, time.perf_counter() - started)
            assert answer.status_code == 201
            time.sleep(0.05)
        # The deliverer waits up to 10 s on the endpoint meanwhile; a request that waited with
        # it would take that long (a loaded machine may take a second or two on its own).
        assert slowest < 5.0, slowest
    finally:
        hanging.close()


def test_endpoints_and_their_cursor_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    config = ServiceConfig(
        store=str(tmp_path / "s.db"),
        admin=False,
        demo=False,
        policy=POLICY,
        key_cache_seconds=0,
        webhook_private_targets=True,
    )
    clock = FakeClock(time.time())
    for round_ in range(2):
        app = create_app(config, clock=clock)
        runtime: Runtime = app.state.runtime
        try:
            with serve(app) as base, httpx.Client(base_url=base, timeout=10) as client:
                keys = make_keys(runtime)
                service = Service(app, runtime, clock, client, keys, Path(config.store))
                if round_ == 0:
                    made = client.post(
                        "/v1/webhooks", json={"url": receiver.url}, headers=service.auth("admin")
                    )
                    receiver.secret = made.json()["secret"]
                client.post(
                    "/v1/sessions", json={"user_id": f"u{round_}"}, headers=service.auth("issue")
                )
                assert deliver(service) == 1
        finally:
            asyncio.run(runtime.close())
    assert [p["data"]["user_id"] for p in receiver.payloads()] == ["u0", "u1"]


def test_a_receiver_down_for_a_minute_gets_every_api_event_once_back(
    live: Service, receiver: Receiver
) -> None:
    admin, issue = live.auth("admin"), live.auth("issue")
    made = live.client.post("/v1/webhooks", json={"url": receiver.url}, headers=admin).json()
    receiver.secret = made["secret"]
    receiver.stop()
    users = []
    for step in range(6):  # a minute of the service's (injected) clock, sessions still issued
        users.append(f"down{step}")
        live.client.post("/v1/sessions", json={"user_id": users[-1]}, headers=issue)
        assert deliver(live) == 0
        live.clock.advance(10)
    receiver.start()
    users.append("back")
    live.client.post("/v1/sessions", json={"user_id": "back"}, headers=issue)
    for _ in range(20):
        deliver(live)
        live.clock.advance(5)
    assert [p["data"]["user_id"] for p in receiver.payloads()] == users  # in order, each once
    assert len(set(receiver.ids())) == len(users)
    history = live.client.get(
        f"/v1/webhooks/{made['webhook']['id']}/deliveries?limit=100", headers=admin
    ).json()["deliveries"]
    failed = [d for d in history if not d["ok"]]
    assert failed
    assert {d["error"] for d in failed} == {"connect"}


def test_this_process_s_events_leave_at_once_not_at_the_next_poll(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorder wakes the service's deliverer after each batch: with a poll once an hour,
    each event still reaches the receiver within seconds of the request that caused it."""
    import sessionward.service.webhooks as service_webhooks

    monkeypatch.setattr(service_webhooks, "POLL_SECONDS", 3600.0)
    config = ServiceConfig(
        store=str(tmp_path / "service.db"), admin=False, demo=False, policy=POLICY,
        key_cache_seconds=0, webhook_private_targets=True,
    )  # fmt: skip
    clock = FakeClock(time.time())
    app = create_app(config, clock=clock)
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base, httpx.Client(base_url=base, timeout=10) as client:
            live = Service(app, runtime, clock, client, make_keys(runtime), tmp_path)
            runtime.start_background()  # the deliverer thread, as the app's lifespan starts it
            made = client.post(
                "/v1/webhooks", json={"url": receiver.url}, headers=live.auth("admin")
            )
            receiver.secret = made.json()["secret"]
            for n, user in enumerate(("alice", "bob"), start=1):
                # The second event comes after the deliverer's first round has sent the
                # first: only a wake-up brings it before the hour is up.
                client.post("/v1/sessions", json={"user_id": user}, headers=live.auth("issue"))
                # The next poll is an hour away: WAIT s allows for a loaded machine.
                assert receiver.wait_for(n, timeout=WAIT), f"event {n} not delivered"
    finally:
        asyncio.run(runtime.close())
    users = [p["data"]["user_id"] for p in receiver.payloads()]
    assert users == ["alice", "bob"]
