"""Records come back exactly as they went in: every field, type and value."""

from __future__ import annotations

import json

import pytest

from sessionward.core.record import FIELDS, SessionRecord, encode_data
from sessionward.testing import FakeClock

from .conftest import IndexedStore
from .records import make_record

UNICODE_DATA = {
    "cart": ["☕ coffee", "𝄞 clef", "Zürich", "東京", "שָׁלוֹם", "e\u0301", "🇺🇦"],
    "quote": 'he said "hi"\\n\n\t',
    "control": "\x00\x01\x1f\x7f",
    "nested": {"deep": [1, 2.5, -3, True, False, None]},
}


def test_record_has_eighteen_fields() -> None:
    assert len(FIELDS) == 18  # a new field needs a new round-trip case below


def _assert_same(stored: SessionRecord | None, sent: SessionRecord) -> None:
    assert stored is not None
    assert tuple(stored) == tuple(sent)
    for name, got, want in zip(FIELDS, stored, sent, strict=True):
        assert type(got) is type(want), name


def test_every_field_round_trips(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.advance(0.123456789)
    record = SessionRecord(
        id="abcdefghijklmn-_",
        secret_hash=bytes(range(224, 256)),
        prev_secret_hash=b"\x00" * 31 + b"\xff",
        grace_until=now + 29.999999999,
        generation=41,
        user_id="ünïcødé@例え.jp",
        auth_level=3,
        auth_time=now - 0.5,
        scopes="admin orders:write read",
        data=encode_data(UNICODE_DATA, 1 << 16),
        created_at=now - 100.25,
        rotated_at=now - 7.000001,
        last_seen=now,
        expires_at=now + 1799.9,
        absolute_expires_at=now + 28_800.000_000_1,
        version=123_456,
        context='[{"ip":"2001:db8::/56","ua":"Firefox 128","since":1.5}]',
        successor=bytes(range(80)),
    )
    store.add(record)
    stored = store.get(record.id)
    _assert_same(stored, record)
    assert stored is not None
    assert json.loads(stored.data) == UNICODE_DATA
    _assert_same(store.list_user(record.user_id or "")[0], record)


def test_none_values_round_trip(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(
        clock.now(), user_id=None, prev_secret_hash=None, auth_time=None, successor=None
    )
    store.add(record)
    _assert_same(store.get(record.id), record)


def test_empty_strings_round_trip(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now(), scopes="", context="", data="{}")
    store.add(record)
    _assert_same(store.get(record.id), record)


@pytest.mark.parametrize(
    "value",
    [0.0, 1.0, 1_800_000_000.000_000_2, 4_102_444_800.5, 1e-300, 2.0**53 + 2],
    ids=repr,
)
def test_floats_round_trip_exactly(store: IndexedStore, clock: FakeClock, value: float) -> None:
    record = make_record(clock.now(), grace_until=value, auth_time=value)
    store.add(record)
    _assert_same(store.get(record.id), record)


def test_replace_round_trips_every_field(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now(), user_id=None)
    store.add(record)
    now = clock.advance(1.1)
    updated = record._replace(
        secret_hash=b"\xfe" * 32,
        prev_secret_hash=record.secret_hash,
        grace_until=now + 0.1,
        generation=1,
        user_id="zoë",
        auth_level=2,
        auth_time=now,
        scopes="read",
        data=encode_data(UNICODE_DATA, 1 << 16),
        rotated_at=now,
        last_seen=now,
        expires_at=now + 900.5,
        version=2,
        context='[{"ua":"Chrome 126"}]',
        successor=b"\xff" * 16,
    )
    store.replace(updated, expected_version=1)
    _assert_same(store.get(record.id), updated)
    # ... and back to None values.
    cleared = updated._replace(
        prev_secret_hash=None, auth_time=None, user_id=None, version=3, successor=None
    )
    store.replace(cleared, expected_version=2)
    _assert_same(store.get(record.id), cleared)


def test_large_data_round_trips(store: IndexedStore, clock: FakeClock) -> None:
    data = encode_data({"blob": "x" * 60_000, "items": list(range(1000))}, 1 << 20)
    record = make_record(clock.now(), data=data)
    store.add(record)
    _assert_same(store.get(record.id), record)
