"""Events as data and the bus that delivers them."""

from __future__ import annotations

import logging

import pytest

from sessionward.core.events import (
    Event,
    EventBus,
    RevokeReason,
    SessionCreated,
    SessionRevoked,
    TheftSuspected,
    TokenRejected,
    log_event,
)


def test_to_dict_carries_the_kind_and_fields() -> None:
    event = SessionRevoked("abc", "alice", 5.0, reason=RevokeReason.THEFT)
    assert event.to_dict() == {
        "session_id": "abc",
        "user_id": "alice",
        "at": 5.0,
        "reason": "theft",
        "kind": "revoked",
    }


def test_delivery_in_order_to_every_subscriber_and_unsubscribe() -> None:
    seen: list[tuple[str, str]] = []
    bus = EventBus([lambda e: seen.append(("first", e.kind))])
    remove = bus.subscribe(lambda e: seen.append(("second", e.kind)))
    bus.emit(SessionCreated("a", None, 1.0))
    bus.emit(TokenRejected(None, None, 2.0))
    remove()
    remove()  # idempotent
    bus.emit(SessionCreated("b", None, 3.0))
    assert seen == [
        ("first", "created"),
        ("second", "created"),
        ("first", "rejected"),
        ("second", "rejected"),
        ("first", "created"),
    ]


def test_a_raising_subscriber_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Event] = []

    def boom(event: Event) -> None:
        raise RuntimeError("down")

    bus = EventBus([boom, seen.append])
    with caplog.at_level(logging.ERROR, logger="sessionward.events"):
        bus.emit(SessionCreated("a", None, 1.0))
    assert [e.kind for e in seen] == ["created"]
    records = [r for r in caplog.records if r.name == "sessionward.events"]
    assert [r.levelno for r in records] == [logging.ERROR]
    assert records[0].exc_info is not None


def test_default_subscriber_logs_at_the_documented_levels(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="sessionward.events"):
        bus = EventBus()
        bus.emit(TheftSuspected("a", "alice", 1.0, generation=2))
        bus.emit(TokenRejected(None, None, 1.0, reason="malformed"))
        bus.emit(SessionCreated("b", "bob", 1.0))
    # Only this logger's records: a background thread another test left may log meanwhile.
    records = [r for r in caplog.records if r.name == "sessionward.events"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.DEBUG, logging.INFO]
    fields = getattr(records[0], "sessionward_event")  # noqa: B009 - an "extra" field
    assert fields["kind"] == "theft-suspected"
    assert "kind=theft-suspected" in records[0].getMessage()


def test_log_event_skips_formatting_when_disabled(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="sessionward.events"):
        log_event(SessionCreated("a", None, 1.0))
    assert [r for r in caplog.records if r.name == "sessionward.events"] == []
