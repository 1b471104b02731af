"""The validate endpoint's fast path answers exactly as the routed endpoint would.

Two apps share one runtime (store, keys, fake clock): ``fast`` is the service as served,
``routed`` is built with ``fast_validate=False`` so validate goes through Starlette's
middleware, router and the ``Request``-based endpoint. Each case sends the same raw bytes
over a real socket to both (uvicorn, loopback) and compares status, headers (all but
``date``) and body byte for byte.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sessionward import Policy
from sessionward.core import token as tokens
from sessionward.service import ServiceConfig, create_app
from sessionward.service.api import MAX_BODY
from sessionward.service.app import ServiceApp
from sessionward.service.keys import create_key
from sessionward.service.runtime import Runtime, open_runtime
from sessionward.service.state import ApiKeyRow
from sessionward.testing import FakeClock

from ._server import serve

POLICY = Policy(idle_timeout=600, absolute_timeout=3600, rotate_after=300, rotation_grace=30)
PATH = "/v1/sessions/validate"


@dataclass
class Pair:
    runtime: Runtime
    clock: FakeClock
    fast: ServiceApp
    routed: ServiceApp
    fast_port: int
    routed_port: int
    keys: dict[str, str]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    clock = FakeClock()
    config = ServiceConfig(
        store=str(tmp_path / "s.db"), admin=False, demo=False, policy=POLICY, key_cache_seconds=0
    )
    runtime = open_runtime(config, clock=clock)
    fast = create_app(config, runtime=runtime)
    routed = create_app(config, runtime=runtime, fast_validate=False)
    assert fast.fast_validate is not None
    assert routed.fast_validate is None
    keys = {
        scope: create_key(runtime.state, scope, scope, time.time())[0]
        for scope in ("validate", "issue", "admin")
    }
    try:
        with serve(fast) as fast_base, serve(routed) as routed_base:
            yield Pair(
                runtime,
                clock,
                fast,
                routed,
                int(fast_base.rsplit(":", 1)[1]),
                int(routed_base.rsplit(":", 1)[1]),
                keys,
            )
    finally:
        asyncio.run(runtime.close())


def exchange(
    port: int, raw: bytes, limit: int | None = None
) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
    """Send ``raw`` (ending with ``Connection: close``), or its first ``limit`` bytes, and read
    the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw[:limit])
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = []
    for line in lines:
        name, _, value = line.partition(b": ")
        if name.lower() != b"date":
            headers.append((name.lower(), value))
    return status, headers, body


def request(
    body: bytes | None = b"",
    *,
    method: str = "POST",
    target: str = PATH,
    key: str | None = None,
    headers: list[str] | None = None,
    content_type: str | None = "application/json",
    chunks: list[bytes] | None = None,
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if key is not None:
        lines.append(f"Authorization: Bearer {key}")
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines += headers or []
    if chunks is not None:
        lines.append("Transfer-Encoding: chunked")
        payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    else:
        payload = body or b""
        if body is not None:
            lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def both(
    pair: Pair, raw: bytes, limit: int | None = None
) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
    fast = exchange(pair.fast_port, raw, limit)
    routed = exchange(pair.routed_port, raw, limit)
    assert fast == routed
    return fast


def issue(pair: Pair, user: str = "alice") -> str:
    async def run() -> str:
        token = (await pair.runtime.manager.issue(user, data={"cart": ["tea"]})).token
        assert token is not None
        return token

    return asyncio.run(run())


def body_of(token: str, **extra: Any) -> bytes:
    return json.dumps({"token": token, **extra}).encode()


def test_valid_token_answers_identically(pair: Pair) -> None:
    token = issue(pair)
    status, headers, body = both(pair, request(body_of(token), key=pair.keys["validate"]))
    assert status == b"HTTP/1.1 200 OK"
    assert (b"cache-control", b"no-store") in headers
    assert (b"content-type", b"application/json") in headers
    answer = json.loads(body)
    assert answer["decision"] == "allow"
    assert answer["session"]["user_id"] == "alice"
    assert answer["session"]["data"] == {"cart": ["tea"]}
    assert "token" not in answer


@pytest.mark.parametrize("scope", ["validate", "issue", "admin"])
def test_every_scope_may_validate_and_query_strings_are_ignored(pair: Pair, scope: str) -> None:
    token = issue(pair)
    plain = both(pair, request(body_of(token), key=pair.keys[scope]))
    queried = both(pair, request(body_of(token), key=pair.keys[scope], target=PATH + "?a=1&b"))
    assert plain[0] == queried[0] == b"HTTP/1.1 200 OK"
    assert plain[2] == queried[2]


def test_denied_tokens_answer_identically(pair: Pair) -> None:
    good = issue(pair)
    wrong = tokens.token_from_parts(tokens.parse(good).session_id, b"\x00" * 32)
    for token in (wrong, "nonsense", good[:-1] + ("A" if good[-1] != "A" else "B")):
        status, _, body = both(pair, request(body_of(token), key=pair.keys["validate"]))
        assert (status, json.loads(body)) == (
            b"HTTP/1.1 200 OK",
            {"decision": "deny", "reason": "invalid"},
        )


def test_step_up_and_context_answer_identically(pair: Pair) -> None:
    token = issue(pair)
    pair.clock.advance(100)
    context = {"ip": "192.0.2.1", "user_agent": "curl/8"}
    raw = request(body_of(token, max_auth_age=10, context=context), key=pair.keys["validate"])
    _, _, body = both(pair, raw)
    assert json.loads(body)["decision"] == "step-up"
    _, _, body = both(pair, request(body_of(token, min_level=1), key=pair.keys["validate"]))
    assert json.loads(body)["decision"] == "allow"


def test_rotation_decision_and_token_in_the_same_shape(pair: Pair) -> None:
    first, second = issue(pair), issue(pair, "bob")
    pair.clock.advance(400)  # rotate_after is due for both
    answers = []
    for port, token in ((pair.fast_port, first), (pair.routed_port, second)):
        status, headers, body = exchange(port, request(body_of(token), key=pair.keys["validate"]))
        answer = json.loads(body)
        assert status == b"HTTP/1.1 200 OK"
        assert answer["decision"] == "rotate"
        assert tokens.parse(answer["token"]).session_id == answer["session"]["id"]
        assert list(answer) == ["decision", "session", "token"]
        answers.append((dict(headers)[b"content-type"], list(answer["session"])))
    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Authorization: Basic dXNlcjpwYXNz",
        "Authorization: Bearer",
        "Authorization: Bearer swk_short",
        "Authorization: Bearer swk_AAAAAAAAAAAAAAAA_" + "A" * 43,
        "Authorization: bearer    ",
    ],
)
def test_missing_or_invalid_keys_answer_identically(pair: Pair, header: str | None) -> None:
    token = issue(pair)
    status, headers, body = both(
        pair, request(body_of(token), headers=[header] if header else None)
    )
    assert status == b"HTTP/1.1 401 Unauthorized"
    assert (b"www-authenticate", b'Bearer realm="sessionward-api"') in headers
    assert json.loads(body)["error"]["code"] == "unauthenticated"


def test_first_authorization_header_counts_on_both(pair: Pair) -> None:
    token = issue(pair)
    good = f"Authorization: Bearer {pair.keys['validate']}"
    status, _, _ = both(pair, request(body_of(token), headers=[good, "Authorization: Basic x"]))
    assert status == b"HTTP/1.1 200 OK"
    status, _, _ = both(pair, request(body_of(token), headers=["Authorization: Basic x", good]))
    assert status == b"HTTP/1.1 401 Unauthorized"


def test_revoked_and_unknown_scope_keys_answer_identically(pair: Pair) -> None:
    token = issue(pair)
    state = pair.runtime.state
    key = pair.keys["issue"]
    key_id = key[4:20]
    assert state.revoke_key(key_id, time.time())
    status, _, _ = both(pair, request(body_of(token), key=key))
    assert status == b"HTTP/1.1 401 Unauthorized"
    # A stored key whose scope this version does not know (a later version's, say) is no key.
    odd = "swk_" + "B" * 16 + "_" + "C" * 43
    state.add_key(ApiKeyRow("B" * 16, _digest(odd), "superuser", "odd", time.time(), None))
    status, _, body = both(pair, request(body_of(token), key=odd))
    assert status == b"HTTP/1.1 401 Unauthorized"
    assert json.loads(body)["error"]["code"] == "unauthenticated"


def _digest(key: str) -> bytes:
    import hashlib

    return hashlib.sha256(key.encode()).digest()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_request"),
        (b"", "application/json", 400, "invalid_request"),
        (b"[1, 2]", "application/json", 400, "invalid_request"),
        (b'{"token": null}', "application/json", 400, "invalid_request"),
        (b'{"token": "x", "extra": 1}', "application/json", 400, "invalid_request"),
        (b'{"token": "' + b"a" * 300 + b'"}', "application/json", 400, "invalid_request"),
        (b'{"token": "\\ud800"}', "application/json", 400, "invalid_request"),
        (b'{"token": NaN}', "application/json", 400, "invalid_request"),
        (b'{"token": "x"}', "text/plain", 415, "unsupported_media"),
        (b'{"token": "x"}', None, 415, "unsupported_media"),
        (b'{"token": "x"}', "application/jsonx", 415, "unsupported_media"),
        (b"\xff\xfe", "application/json", 400, "invalid_request"),
        (b'{"token": "x", "context": {"ip": 7}}', "application/json", 400, "invalid_request"),
        (b'{"token": "x", "max_auth_age": -1}', "application/json", 400, "invalid_request"),
    ],
)
def test_bad_bodies_answer_identically(
    pair: Pair, body: bytes, content_type: str | None, status: int, code: str
) -> None:
    got_status, headers, answer = both(
        pair, request(body, key=pair.keys["validate"], content_type=content_type)
    )
    assert got_status.split(b" ")[1] == str(status).encode()
    assert (b"cache-control", b"no-store") in headers
    assert json.loads(answer)["error"]["code"] == code


@pytest.mark.parametrize("content_type", ["Application/JSON", "application/json; charset=utf-8"])
def test_media_type_parameters_and_case_are_accepted(pair: Pair, content_type: str) -> None:
    token = issue(pair)
    status, _, _ = both(
        pair, request(body_of(token), key=pair.keys["validate"], content_type=content_type)
    )
    assert status == b"HTTP/1.1 200 OK"


def test_chunked_bodies_answer_identically(pair: Pair) -> None:
    token = issue(pair)
    whole = body_of(token)
    pieces = [whole[:1], whole[1:10], whole[10:50], whole[50:]]
    status, _, body = both(pair, request(None, key=pair.keys["validate"], chunks=pieces))
    assert status == b"HTTP/1.1 200 OK"
    assert json.loads(body)["decision"] == "allow"


@pytest.mark.parametrize("chunked", [False, True])
def test_huge_bodies_are_refused_identically(pair: Pair, chunked: bool) -> None:
    huge = b'{"token": "' + b"a" * (MAX_BODY + 10) + b'"}'
    raw = (
        request(
            None,
            key=pair.keys["validate"],
            chunks=[huge[i : i + 8192] for i in range(0, len(huge), 8192)],
        )
        if chunked
        else request(huge, key=pair.keys["validate"])
    )
    status, _, body = both(pair, raw)
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert json.loads(body)["error"]["code"] == "request_too_large"
    # Just at the limit is read (and then refused as a token too long, not as too large).
    exact = b'{"token": "' + b"a" * (MAX_BODY - 13) + b'"}'
    assert len(exact) == MAX_BODY
    status, _, body = both(pair, request(exact, key=pair.keys["validate"]))
    assert json.loads(body)["error"]["code"] == "invalid_request"


def test_unauthenticated_huge_body_is_refused_before_reading_it(pair: Pair) -> None:
    huge = b"x" * (MAX_BODY * 2)
    raw = request(huge)
    # Only the head and a little of the body are sent: the answer must not wait for the rest.
    status, _, body = both(pair, raw, limit=len(raw) - len(huge) + 100)
    # A declared length over the limit is refused first (RequestBounds), key or no key.
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert json.loads(body)["error"]["code"] == "request_too_large"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "OPTIONS"])
def test_other_methods_answer_identically(pair: Pair, method: str) -> None:
    token = issue(pair)
    status, headers, body = both(
        pair, request(body_of(token), method=method, key=pair.keys["validate"])
    )
    assert status == b"HTTP/1.1 405 Method Not Allowed"
    assert (b"allow", b"POST") in headers
    assert json.loads(body)["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
@pytest.mark.parametrize(("scope", "status"), [("validate", 403), ("admin", 404)])
def test_get_head_delete_reach_the_session_id_route_on_both(
    pair: Pair, method: str, scope: str, status: int
) -> None:
    """``/v1/sessions/validate`` is also ``/v1/sessions/{session_id}`` (admin; GET, HEAD,
    DELETE), where ``validate`` is not a session id: 403 for a lesser key, else 404."""
    token = issue(pair)
    got, headers, body = both(pair, request(body_of(token), method=method, key=pair.keys[scope]))
    assert got.split(b" ")[1] == str(status).encode()
    assert (b"cache-control", b"no-store") in headers
    if method == "HEAD":
        assert body == b""
    else:
        assert json.loads(body)["error"]["code"] == ("forbidden" if status == 403 else "not_found")


@pytest.mark.parametrize("target", [PATH + "/", PATH.upper(), "/v1/sessions/validatex"])
def test_neighbouring_paths_answer_identically(pair: Pair, target: str) -> None:
    token = issue(pair)
    status, _, _ = both(pair, request(body_of(token), target=target, key=pair.keys["validate"]))
    assert not status.startswith(b"HTTP/1.1 2")


def test_metrics_and_decisions_count_fast_path_answers(pair: Pair) -> None:
    token = issue(pair)
    metrics, activity = pair.runtime.metrics, pair.runtime.activity
    before = (
        metrics.requests[("validate", "200")],
        metrics.requests[("validate", "401")],
        activity.decisions_total["allow"],
        activity.decisions_total["deny"],
    )
    exchange(pair.fast_port, request(body_of(token), key=pair.keys["validate"]))
    exchange(pair.fast_port, request(body_of("nonsense"), key=pair.keys["validate"]))
    exchange(pair.fast_port, request(body_of(token)))
    after = (
        metrics.requests[("validate", "200")],
        metrics.requests[("validate", "401")],
        activity.decisions_total["allow"],
        activity.decisions_total["deny"],
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1, 1, 1]


def _call(
    app: ServiceApp, scope_extra: dict[str, Any], key: str, body: bytes | list[bytes]
) -> dict[str, Any]:
    """Call the app in-process; returns the scope as the app left it and the answer."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"authorization", b"Bearer " + key.encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        **scope_extra,
    }
    pieces = body if isinstance(body, list) else [body]
    messages = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ][::-1]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    asyncio.run(app(scope, receive, send))
    return {"scope": scope, "status": sent[0]["status"], "body": sent[1]["body"]}


@pytest.mark.skip(reason="every request now passes RequestBounds (app middleware), which turns "
    "the fast path off; service/fast.py and this file are being removed")
def test_fast_path_skips_the_router_only_where_it_may(pair: Pair) -> None:
    token = issue(pair)
    key = pair.keys["validate"]
    taken = _call(pair.fast, {}, key, body_of(token))
    routed = _call(pair.routed, {}, key, body_of(token))
    assert taken["status"] == routed["status"] == 200
    assert taken["body"] == routed["body"]
    assert "endpoint" not in taken["scope"]  # the router never saw it
    assert "endpoint" in routed["scope"]
    # Mounted under a root path, the fast path steps aside and the router answers.
    mounted = _call(pair.fast, {"root_path": "/api", "path": "/api" + PATH}, key, body_of(token))
    assert mounted["status"] == 200
    assert "endpoint" in mounted["scope"]


def test_disconnect_before_the_body_gets_no_answer(pair: Pair) -> None:
    assert pair.fast.fast_validate is not None
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": PATH,
        "headers": [(b"authorization", b"Bearer " + pair.keys["validate"].encode())],
    }
    before = sum(pair.runtime.metrics.requests.values())
    asyncio.run(pair.fast.fast_validate(scope, receive, send))
    assert sent == []
    assert sum(pair.runtime.metrics.requests.values()) == before


def test_body_in_many_messages_in_process(pair: Pair) -> None:
    token = issue(pair)
    whole = body_of(token)
    pieces = [b"", whole[:5], b"", whole[5:40], whole[40:], b""]
    key = pair.keys["validate"]
    taken = _call(pair.fast, {}, key, pieces)
    routed = _call(pair.routed, {}, key, pieces)
    assert taken["status"] == routed["status"] == 200
    assert taken["body"] == routed["body"]
    too_big = [b"{" + b" " * (MAX_BODY // 2)] * 3
    taken = _call(pair.fast, {}, key, too_big)
    routed = _call(pair.routed, {}, key, too_big)
    assert taken["status"] == routed["status"] == 413
    assert taken["body"] == routed["body"]


def test_expect_100_continue_is_honoured_on_both(pair: Pair) -> None:
    token = issue(pair)
    body = body_of(token)
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Authorization: Bearer {pair.keys['validate']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    answers = []
    for port in (pair.fast_port, pair.routed_port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(head)
            interim = b""
            while b"\r\n\r\n" not in interim:  # the server asks for the body before reading it
                interim += sock.recv(4096)
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(body)
            received = b""
            while chunk := sock.recv(4096):
                received += chunk
        status, _, rest = received.partition(b"\r\n")
        answers.append((status, rest.split(b"\r\n\r\n", 1)[1]))
    assert answers[0] == answers[1]
    assert answers[0][0] == b"HTTP/1.1 200 OK"
    assert json.loads(answers[0][1])["decision"] == "allow"


def test_validate_answers_follow_every_change_of_the_session(pair: Pair) -> None:
    """The encoded session is remembered per record: a change must show in the next answer."""
    token = issue(pair)
    key = pair.keys["validate"]

    def seen() -> dict[str, Any]:
        _, _, body = both(pair, request(body_of(token), key=key))
        session: dict[str, Any] = json.loads(body)["session"]
        return session

    first = seen()
    assert seen() == first  # unchanged: the same answer (from memory)

    async def change(data: dict[str, Any]) -> None:
        manager = pair.runtime.manager
        session = await manager.validate(token)
        await manager.update_data(session, lambda d: d.update(data))

    asyncio.run(change({"cart": ["tea", "cake"]}))
    assert seen()["data"] == {"cart": ["tea", "cake"]}
    pair.clock.advance(120)  # past the touch interval: last_seen and expires_at move
    touched = seen()
    assert touched["last_seen"] == pair.clock.now()
    assert touched["expires_at"] > first["expires_at"]
    asyncio.run(change({"theme": "dark"}))
    assert seen()["data"] == {"cart": ["tea", "cake"], "theme": "dark"}
