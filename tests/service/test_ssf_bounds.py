"""The Shared Signals bodies at their bounds, over real HTTP: a body just inside each bound
the OpenAPI document states is valid there and accepted, one just outside is invalid there,
refused with ``400 invalid_request`` and changes nothing (no stream made, the stream's
configuration as it was, no SET acknowledged)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from sessionward.service.bounds import MAX_BODY_BYTES
from sessionward.service.openapi import openapi_document
from sessionward.service.ssf import MAX_ACK, MAX_ERR_DESCRIPTION, MAX_SET_ERRS
from sessionward.signals.caep import SESSION_REVOKED
from sessionward.signals.streams import (
    MAX_AUTHORIZATION,
    MAX_DESCRIPTION,
    MAX_EVENT_TYPE,
    MAX_EVENTS_REQUESTED,
    MAX_URL,
    POLL,
    PUSH,
)

from .conftest import Service
from .test_ssf import ORIGIN, _service, create_stream, issue_and_revoke, poll

DOC = openapi_document()


@pytest.fixture
def ssf(tmp_path: Path) -> Iterator[Service]:
    yield from _service(tmp_path)


def valid(path: str, method: str, body: Any) -> bool:
    """Whether the OpenAPI document allows ``body`` for ``method path``."""
    content = DOC["paths"][path][method]["requestBody"]["content"]
    schema = content["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": DOC["components"]})
    return bool(validator.is_valid(body))


def event_types(count: int, length: int) -> list[str]:
    return [f"urn:example:{i:03d}:".ljust(length, "x") for i in range(count)]


def url(length: int) -> str:
    return "https://127.0.0.1:9/".ljust(length, "a")


def push(endpoint: str, authorization: str = "Bearer t") -> dict[str, str]:
    return {"method": PUSH, "endpoint_url": endpoint, "authorization_header": authorization}


#: Receiver fields just inside their bounds.
INSIDE: list[dict[str, Any]] = [
    {"events_requested": [SESSION_REVOKED, *event_types(MAX_EVENTS_REQUESTED - 1, MAX_EVENT_TYPE)]},
    {"delivery": push(url(MAX_URL), "B" * MAX_AUTHORIZATION)},
    {"delivery": {"method": POLL, "endpoint_url": url(MAX_URL), "authorization_header": "x" * 9}},
    {"delivery": {"method": POLL, "authorization_header": "~" * MAX_AUTHORIZATION}},
    {"description": "\u00e9" * MAX_DESCRIPTION},
]

#: The same fields just outside, or with a character their pattern refuses, and the field
#: the refusal names.
OUTSIDE: list[tuple[str, dict[str, Any]]] = [
    ("events_requested", {"events_requested": event_types(MAX_EVENTS_REQUESTED + 1, 40)}),
    ("events_requested", {"events_requested": event_types(1, MAX_EVENT_TYPE + 1)}),
    ("events_requested", {"events_requested": ["urn:example:a b"]}),
    ("events_requested", {"events_requested": ['urn:example:"quoted"']}),
    ("events_requested", {"events_requested": ["urn:example:\u00e9"]}),
    ("events_requested", {"events_requested": [""]}),
    ("endpoint_url", {"delivery": push(url(MAX_URL + 1))}),
    ("authorization_header", {"delivery": push(url(100), "B" * (MAX_AUTHORIZATION + 1))}),
    ("authorization_header", {"delivery": push(url(100), "Bearer \u00e9")}),
    ("endpoint_url", {"delivery": {"method": POLL, "endpoint_url": url(MAX_URL + 1)}}),
    ("endpoint_url", {"delivery": {"method": POLL, "endpoint_url": "https://a.example/a b"}}),
    ("authorization_header", {"delivery": {"authorization_header": "x" * (MAX_AUTHORIZATION + 1)}}),
    ("description", {"description": "\u00e9" * (MAX_DESCRIPTION + 1)}),
]

#: Transmitter fields a PUT or PATCH may send back: outside what the transmitter ever has.
TRANSMITTER_OUTSIDE: list[dict[str, Any]] = [
    {"iss": ORIGIN + "/".ljust(MAX_URL, "a")},
    {"aud": "a" * 64},
    {"events_supported": [SESSION_REVOKED]},
    {"events_delivered": [SESSION_REVOKED, SESSION_REVOKED]},
    {"min_verification_interval": 86_401},
    {"unknown": 1},
]


def test_stream_fields_just_inside_their_bounds_are_kept(ssf: Service) -> None:
    auth = ssf.auth("issue")
    for fields in INSIDE:
        assert valid("/ssf/stream", "post", fields), fields
        assert len(json.dumps(fields)) < MAX_BODY_BYTES
        made = ssf.client.post("/ssf/stream", json=fields, headers=auth)
        assert made.status_code == 201, (fields, made.text)
        stream = made.json()
        for name in ("events_requested", "description"):
            if name in fields:
                assert stream[name] == fields[name]
        if fields.get("delivery", {}).get("method") == PUSH:
            assert stream["delivery"]["endpoint_url"] == fields["delivery"]["endpoint_url"]
        body = {"stream_id": stream["stream_id"], **fields}
        assert valid("/ssf/stream", "put", body)
        replaced = ssf.client.put("/ssf/stream", json=body, headers=auth)
        assert (replaced.status_code, replaced.json()) == (200, stream)
        ssf.client.delete("/ssf/stream", params={"stream_id": stream["stream_id"]}, headers=auth)
    echo = create_stream(ssf, events_requested=[SESSION_REVOKED])
    assert valid("/ssf/stream", "put", echo)  # the configuration comes back as it was given
    again = ssf.client.put("/ssf/stream", json=echo, headers=auth)
    assert (again.status_code, again.json()) == (200, echo)


def test_stream_fields_just_outside_are_refused_and_change_nothing(ssf: Service) -> None:
    auth = ssf.auth("issue")
    stream = create_stream(ssf, events_requested=[SESSION_REVOKED], description="kept")
    before = ssf.client.get("/ssf/stream", headers=auth).json()
    assert before == [stream]
    for name, fields in OUTSIDE:
        assert not valid("/ssf/stream", "post", fields), fields
        made = ssf.client.post("/ssf/stream", json=fields, headers=auth)
        assert made.status_code == 400, (fields, made.text)
        assert made.json()["error"]["code"] == "invalid_request"
        assert made.json()["error"]["message"].startswith(name)
    for fields in [*(f for _, f in OUTSIDE), *TRANSMITTER_OUTSIDE]:
        body = {"stream_id": stream["stream_id"], **fields}
        for method in ("patch", "put"):
            assert not valid("/ssf/stream", method, body), (method, fields)
            answer = ssf.client.request(method.upper(), "/ssf/stream", json=body, headers=auth)
            assert answer.status_code == 400, (method, fields, answer.text)
            assert answer.json()["error"]["code"] == "invalid_request"
    assert ssf.client.get("/ssf/stream", headers=auth).json() == before


def _jti(i: int) -> str:
    return f"{i:x}".rjust(64, "f")


def test_a_poll_just_inside_its_bounds_acknowledges(ssf: Service) -> None:
    stream = create_stream(ssf)
    issue_and_revoke(ssf)
    (jti,) = poll(ssf, stream)["sets"]
    errors = {
        _jti(i): {"err": "E" * 64, "description": "\U0001f600" * MAX_ERR_DESCRIPTION}
        for i in range(MAX_SET_ERRS)
    }
    body = {
        "maxEvents": 2**31 - 1,
        "returnImmediately": True,
        "ack": [jti, *(_jti(1000 + i) for i in range(MAX_ACK - 1))],
        "setErrs": errors,
    }
    path = "/ssf/poll/{stream_id}"
    assert valid(path, "post", body)
    assert len(json.dumps(body)) <= MAX_BODY_BYTES  # escaped as json.dumps does: the worst case
    assert poll(ssf, stream, **body) == {"sets": {}, "moreAvailable": False}
    assert poll(ssf, stream)["sets"] == {}  # acknowledged


def test_a_poll_just_outside_its_bounds_is_refused_and_acknowledges_nothing(ssf: Service) -> None:
    stream = create_stream(ssf)
    issue_and_revoke(ssf)
    first = poll(ssf, stream)["sets"]
    (jti,) = first
    err = {"err": "invalid_key", "description": "d"}
    outside: list[dict[str, Any]] = [
        {"ack": [jti, *(_jti(i) for i in range(MAX_ACK))]},
        {"ack": [jti, "a" * 65]},
        {"ack": [jti, "a/b"]},
        {"ack": [jti, 'a"b']},
        {"ack": [jti, ""]},
        {"setErrs": {jti: err, **{_jti(i): err for i in range(MAX_SET_ERRS)}}},
        {"setErrs": {jti: {**err, "description": "d" * (MAX_ERR_DESCRIPTION + 1)}}},
        {"setErrs": {jti: {**err, "err": "e" * 65}}},
        {"setErrs": {jti: {**err, "err": "invalid key"}}},
        {"setErrs": {"a b": err}, "ack": [jti]},
        {"maxEvents": 2**31, "ack": [jti]},
    ]
    path = f"/ssf/poll/{stream['stream_id']}"
    for body in outside:
        assert not valid("/ssf/poll/{stream_id}", "post", body), body
        answer = ssf.client.post(path, json=body, headers=ssf.auth("issue"))
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error"]["code"] == "invalid_request"
        assert answer.json()["error"]["message"].startswith(next(iter(body)))
    assert poll(ssf, stream)["sets"] == first  # nothing was acknowledged
