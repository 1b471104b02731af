"""purge_expired: deletes exactly the records whose idle deadline passed."""

from __future__ import annotations

from sessionward.testing import FakeClock

from .conftest import IndexedStore
from .records import make_record


def test_purge_empty_store(store: IndexedStore, clock: FakeClock) -> None:
    assert store.purge_expired(clock.now()) == 0


def test_purge_counts_and_leaves_live_records(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    expired = [
        make_record(now - 4000, expires_at=now - 100),
        make_record(now - 4000, user_id=None, expires_at=now - 0.001),
        make_record(now - 4000, user_id="bob", expires_at=now),  # the deadline itself
    ]
    live = [
        make_record(now, expires_at=now + 0.001),
        make_record(now, user_id=None),
        make_record(now, user_id="bob", expires_at=now + 1800),
    ]
    for record in (*expired, *live):
        store.add(record)
    assert store.purge_expired(now) == 3
    assert all(store.get(r.id) is None for r in expired)
    assert all(store.get(r.id) == r for r in live)
    assert store.list_user("bob") == [live[2]]
    assert store.purge_expired(now) == 0


def test_purge_ignores_absolute_deadline_field(store: IndexedStore, clock: FakeClock) -> None:
    # Stores purge on expires_at (which the manager keeps <= absolute_expires_at).
    now = clock.now()
    record = make_record(now, expires_at=now + 10, absolute_expires_at=now + 5)
    store.add(record)
    assert store.purge_expired(now + 6) == 0
    assert store.purge_expired(now + 10) == 1


def test_purge_sees_touch(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    record = make_record(now, expires_at=now + 10)
    store.add(record)
    store.touch(record.id, last_seen=now + 5, expires_at=now + 20)
    assert store.purge_expired(now + 15) == 0
    assert store.purge_expired(now + 20) == 1


def test_purge_many(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    for i in range(1203):
        store.add(make_record(now - 5000, user_id=f"u{i % 7}", expires_at=now - i))
    keeper = make_record(now)
    store.add(keeper)
    assert store.purge_expired(now) == 1203
    assert store.list_user("alice") == [keeper]
    assert all(store.list_user(f"u{i}") == [] for i in range(7))
