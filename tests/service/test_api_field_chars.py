"""The service refuses (400) the characters the OpenAPI document rules out of a field, and
accepts the largest body the document allows: within the body limit, whatever its characters
(tests/service/test_openapi_body_bounds.py computes that bound from the document)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sessionward.service.api_fields import MAX_BODY

from .conftest import Service

SMILE = "\U0001f600"  # 12 bytes of JSON once escaped: the most a character can take


def post(service: Service, body: dict[str, Any]) -> Any:
    return service.client.post(
        "/v1/sessions",
        content=json.dumps(body),  # ensure_ascii: every non-ASCII character escaped
        headers={**service.auth("issue"), "content-type": "application/json"},
    )


PROOF = {"proof": "eyJ.eyJ.sig", "method": "POST", "url": "https://app.example/api"}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"user_id": "u", "idp": {"iss": "https://idp.example/é", "sid": "s"}}, "iss"),
        ({"user_id": "u", "idp": {"iss": "https://idp.example", "sub": "ü"}}, "sub"),
        ({"context": {"client_hints": {"sec-ch-ua": '"Chrömium";v="124"'}}}, "client_hints"),
        ({"context": {"client_hints": {"sec ch ua": '"Chromium";v="124"'}}}, "client_hints"),
        ({"dpop": {**PROOF, "proof": "eyJ.eyJ.s ig"}}, "proof"),
        ({"dpop": {**PROOF, "method": "PÖST"}}, "method"),
        ({"dpop": {**PROOF, "url": 'https://app.example/"api"'}}, "url"),
        ({"scopes": ['orders:"read"']}, "scopes"),
    ],
)
def test_a_character_the_document_rules_out_is_refused(
    service: Service, body: Any, named: str
) -> None:
    response = post(service, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(named)


def test_the_largest_body_the_document_allows_is_read(service: Service) -> None:
    """Every field at its maximum in its costliest characters: the user agent, say, in 4-byte
    ones. The body is read (no 413): what answers is the fake proof (401)."""
    body = {
        "user_id": SMILE * 192,
        "auth_level": 100,
        "scopes": ["~" * 128] * 64,
        "data": {},
        "context": {
            "ip": SMILE * 64,
            "user_agent": SMILE * 512,
            "accept_language": SMILE * 512,
            "client_hints": {f"{i:02}" + "x" * 62: '"' * 512 for i in range(16)},
            "device_signal": SMILE * 128,
        },
        "previous_token": SMILE * 256,
        "idp": {"iss": '"' * 512, "sid": SMILE * 512, "sub": '"' * 512},
        "dpop": {"proof": "A" * 8192, "method": '"' * 16, "url": "a" * 2048},
        "dbsc": {"path": "/" + "a" * 255, "cookie_name": "c" * 58},
    }
    size = len(json.dumps(body))
    assert 60_000 < size <= MAX_BODY
    response = post(service, body)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_token"
