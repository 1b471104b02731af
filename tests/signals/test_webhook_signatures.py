"""Standard Webhooks signatures: the specification's test vector, and interoperability with
the independent ``standardwebhooks`` package in both directions."""

from __future__ import annotations

import base64
import datetime
import time

import pytest
import standardwebhooks

from sessionward.errors import InvalidArgument
from sessionward.signals.webhooks import (
    Secret,
    WebhookVerificationError,
    sign,
    signed_headers,
    verify,
)

# The published test vector of the Standard Webhooks specification and reference libraries.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - published vector
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specification_vector_signs_to_the_published_signature() -> None:
    secret = Secret.parse(VECTOR_SECRET)
    assert sign(secret, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_the_specification_vector_verifies_and_a_changed_byte_does_not() -> None:
    secret = Secret.parse(VECTOR_SECRET)
    headers = {
        "Webhook-Id": VECTOR_ID,
        "Webhook-Timestamp": str(VECTOR_TIMESTAMP),
        "Webhook-Signature": VECTOR_SIGNATURE,
    }
    assert verify([secret], headers, VECTOR_BODY, now=VECTOR_TIMESTAMP + 10) == VECTOR_ID
    with pytest.raises(WebhookVerificationError) as caught:
        verify([secret], headers, b'{"test": 2432232315}', now=VECTOR_TIMESTAMP)
    assert caught.value.reason == "no_matching_signature"


def test_ours_verify_with_the_standardwebhooks_package() -> None:
    secret = Secret.generate()
    body = b'{"type":"session.revoked","data":{"session_id":"abc"}}'
    now = int(time.time())
    headers = signed_headers([secret], "evt_00000000000000000001", now, body)
    receiver = standardwebhooks.Webhook(secret.reveal())
    assert receiver.verify(body, headers) == {
        "type": "session.revoked",
        "data": {"session_id": "abc"},
    }


def test_theirs_verify_with_ours() -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    sender = standardwebhooks.Webhook("whsec_" + key)
    now = int(time.time())
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    body = '{"hello": "world"}'
    signature = sender.sign("msg_2", moment, body)
    headers = {"webhook-id": "msg_2", "webhook-timestamp": str(now), "webhook-signature": signature}
    assert verify([Secret.parse("whsec_" + key)], headers, body.encode(), now=now) == "msg_2"


def test_during_a_rotation_either_secret_verifies_the_message() -> None:
    old, new = Secret.generate(), Secret.generate()
    body = b"{}"
    now = int(time.time())
    headers = signed_headers([new, old], "evt_7", now, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for held in (old, new):
        assert standardwebhooks.Webhook(held.reveal()).verify(body, headers) == {}
        assert verify([held], headers, body, now=now) == "evt_7"
    with pytest.raises(WebhookVerificationError):
        verify([Secret.generate()], headers, body, now=now)


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_timestamp_outside_the_tolerance_is_refused(skew: int) -> None:
    secret = Secret.generate()
    headers = signed_headers([secret], "evt_1", 1_800_000_000, b"{}")
    with pytest.raises(WebhookVerificationError) as caught:
        verify([secret], headers, b"{}", now=1_800_000_000 - skew)
    assert caught.value.reason == "timestamp_outside_tolerance"
    assert verify([secret], headers, b"{}", now=1_800_000_000 + 299) == "evt_1"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webhook-id": ""}, "missing_headers"),
        ({"webhook-timestamp": "12a"}, "bad_timestamp"),
        ({"webhook-signature": "v1a,abcd v2,xyz"}, "no_matching_signature"),
        ({"webhook-signature": "v1,not*base64"}, "no_matching_signature"),
    ],
)
def test_malformed_headers_are_refused(change: dict[str, str], reason: str) -> None:
    secret = Secret.generate()
    headers = {**signed_headers([secret], "evt_1", 1_800_000_000, b"{}"), **change}
    with pytest.raises(WebhookVerificationError) as caught:
        verify([secret], headers, b"{}", now=1_800_000_000)
    assert caught.value.reason == reason
    assert "whsec" not in str(caught.value)


def test_a_secret_never_prints_and_refuses_short_keys() -> None:
    secret = Secret.generate()
    assert secret.reveal() not in repr(secret)
    assert secret.reveal() not in f"{secret} {[secret]}"
    assert Secret.parse(secret.reveal()) == secret
    with pytest.raises(InvalidArgument):
        Secret.parse("whsec_" + base64.b64encode(b"short").decode())
    with pytest.raises(InvalidArgument):
        Secret.parse("whsec_not base64!")
