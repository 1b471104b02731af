"""add with a UserCap: evict oldest or reject, atomically with the insert."""

from __future__ import annotations

import pytest

from sessionward.core.record import SessionRecord
from sessionward.errors import AlreadyExists, SessionLimitReached
from sessionward.stores import UserCap
from sessionward.testing import FakeClock

from .conftest import IndexedStore
from .records import make_record


def _seed(
    store: IndexedStore, now: float, ages: list[float], user_id: str = "alice"
) -> list[SessionRecord]:
    records = [make_record(now - age, user_id=user_id) for age in ages]
    for record in records:
        store.add(record)
    return records


def test_under_the_cap_evicts_nothing(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    existing = _seed(store, now, [20, 10])
    new = make_record(now)
    assert store.add(new, cap=UserCap(3, True, now)) == []
    assert store.list_user("alice") == [*existing, new]


def test_full_cap_evicts_the_oldest_by_created_at(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    # Inserted newest first, so eviction cannot be by insertion order.
    newer, oldest, middle = _seed(store, now, [10, 30, 20])
    new = make_record(now)
    assert store.add(new, cap=UserCap(3, True, now)) == [oldest.id]
    assert store.get(oldest.id) is None
    assert store.list_user("alice") == [middle, newer, new]


def test_over_the_cap_evicts_down_to_room_for_one(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    records = _seed(store, now, [50, 40, 30, 20, 10])
    new = make_record(now)
    assert store.add(new, cap=UserCap(2, True, now)) == [r.id for r in records[:4]]
    assert store.list_user("alice") == [records[4], new]


def test_cap_of_one(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    (old,) = _seed(store, now, [5])
    new = make_record(now)
    assert store.add(new, cap=UserCap(1, True, now)) == [old.id]
    assert store.list_user("alice") == [new]


def test_reject_raises_and_writes_nothing(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    existing = _seed(store, now, [20, 10])
    new = make_record(now)
    with pytest.raises(SessionLimitReached):
        store.add(new, cap=UserCap(2, False, now))
    assert store.get(new.id) is None
    assert store.list_user("alice") == existing


def test_reject_under_the_cap_adds(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    _seed(store, now, [10])
    new = make_record(now)
    assert store.add(new, cap=UserCap(2, False, now)) == []
    assert store.get(new.id) == new


def test_expired_records_do_not_count(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    expired = make_record(now - 3000, expires_at=now - 1)
    at_deadline = make_record(now - 2000, expires_at=now)  # expires_at <= now: expired
    live = make_record(now - 10)
    for record in (expired, at_deadline, live):
        store.add(record)
    new = make_record(now)
    assert store.add(new, cap=UserCap(2, False, now)) == []
    # Expired records are neither counted nor evicted; purging is purge_expired's job.
    assert store.list_user("alice") == [expired, at_deadline, live, new]


def test_eviction_skips_expired_records(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    expired = make_record(now - 3000, expires_at=now - 1)
    live = _seed(store, now, [30, 20])
    store.add(expired)
    new = make_record(now)
    assert store.add(new, cap=UserCap(2, True, now)) == [live[0].id]
    assert store.get(expired.id) == expired


def test_cap_uses_the_given_now(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    records = _seed(store, now, [20, 10])
    later = records[0].expires_at  # the oldest record is expired at this instant
    new = make_record(later)
    assert store.add(new, cap=UserCap(2, False, later)) == []


def test_anonymous_records_are_ignored(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    anonymous = [make_record(now - i, user_id=None) for i in (30, 20, 10)]
    for record in anonymous:
        store.add(record)
    assert store.add(make_record(now, user_id=None), cap=UserCap(1, False, now)) == []
    (old,) = _seed(store, now, [5])
    new = make_record(now)
    assert store.add(new, cap=UserCap(1, True, now)) == [old.id]
    assert all(store.get(r.id) == r for r in anonymous)


def test_other_users_do_not_count(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    bob = _seed(store, now, [30, 20, 10], user_id="bob")
    new = make_record(now)
    assert store.add(new, cap=UserCap(1, False, now)) == []
    assert store.list_user("bob") == bob


def test_duplicate_id_with_cap_evicts_nothing(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    existing = _seed(store, now, [20, 10])
    duplicate = make_record(now, id=existing[1].id)
    with pytest.raises(AlreadyExists):
        store.add(duplicate, cap=UserCap(2, True, now))
    assert store.list_user("alice") == existing
