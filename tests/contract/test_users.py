"""The per-user index: list_user, delete_user, and user_id changes through replace."""

from __future__ import annotations

import pytest

from sessionward.errors import VersionConflict
from sessionward.testing import FakeClock

from .conftest import IndexedStore
from .records import make_record


def _ids(store: IndexedStore, user_id: str) -> list[str]:
    return [r.id for r in store.list_user(user_id)]


def test_list_user_unknown_is_empty(store: IndexedStore) -> None:
    assert store.list_user("nobody") == []


def test_list_user_oldest_first(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    # Inserted out of order: the order comes from created_at, not from insertion.
    middle = make_record(now - 50)
    newest = make_record(now)
    oldest = make_record(now - 100)
    for record in (middle, newest, oldest):
        store.add(record)
    assert store.list_user("alice") == [oldest, middle, newest]


def test_list_user_isolates_users(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    alice = [make_record(now - i, user_id="alice") for i in (3, 2, 1)]
    bob = make_record(now, user_id="bob")
    anonymous = make_record(now, user_id=None)
    prefix = make_record(now, user_id="alice2")
    for record in (*alice, bob, anonymous, prefix):
        store.add(record)
    assert store.list_user("alice") == alice
    assert store.list_user("bob") == [bob]
    assert store.list_user("alice2") == [prefix]
    assert store.list_user("ALICE") == []


def test_list_user_includes_expired_until_purged(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    expired = make_record(now - 4000, expires_at=now - 1)
    live = make_record(now)
    store.add(expired)
    store.add(live)
    assert store.list_user("alice") == [expired, live]
    store.purge_expired(now)
    assert store.list_user("alice") == [live]


def test_delete_removes_from_user_index(store: IndexedStore, clock: FakeClock) -> None:
    first = make_record(clock.now() - 1)
    second = make_record(clock.now())
    store.add(first)
    store.add(second)
    store.delete(first.id)
    assert store.list_user("alice") == [second]
    store.delete(second.id)
    assert store.list_user("alice") == []


def test_delete_user_deletes_every_record_of_the_user(
    store: IndexedStore, clock: FakeClock
) -> None:
    now = clock.now()
    alice = [make_record(now - i) for i in range(3)]
    expired = make_record(now - 9000, expires_at=now - 10)
    bob = make_record(now, user_id="bob")
    anonymous = make_record(now, user_id=None)
    for record in (*alice, expired, bob, anonymous):
        store.add(record)
    deleted = store.delete_user("alice")
    assert sorted(deleted) == sorted(r.id for r in (*alice, expired))
    assert all(store.get(r.id) is None for r in (*alice, expired))
    assert store.list_user("alice") == []
    assert store.get(bob.id) == bob
    assert store.get(anonymous.id) == anonymous
    assert store.delete_user("alice") == []


def test_delete_user_keeps_one(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    records = [make_record(now - i) for i in range(4)]
    for record in records:
        store.add(record)
    keep = records[2]
    deleted = store.delete_user("alice", keep=keep.id)
    assert sorted(deleted) == sorted(r.id for r in records if r is not keep)
    assert store.list_user("alice") == [keep]
    assert store.delete_user("alice", keep=keep.id) == []
    assert store.get(keep.id) == keep


def test_delete_user_keep_of_another_user_protects_nothing(
    store: IndexedStore, clock: FakeClock
) -> None:
    alice = make_record(clock.now())
    bob = make_record(clock.now(), user_id="bob")
    store.add(alice)
    store.add(bob)
    assert store.delete_user("alice", keep=bob.id) == [alice.id]
    assert store.get(bob.id) == bob


def test_delete_user_unknown_is_empty(store: IndexedStore) -> None:
    assert store.delete_user("nobody") == []
    assert store.delete_user("nobody", keep="AAAAAAAAAAAAAAAA") == []


def test_replace_changing_user_moves_the_index(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now(), user_id="alice")
    store.add(record)
    moved = record._replace(user_id="bob", version=2)
    store.replace(moved, expected_version=1)
    assert store.list_user("alice") == []
    assert store.list_user("bob") == [moved]
    assert store.delete_user("alice") == []
    assert store.get(record.id) == moved
    assert store.delete_user("bob") == [record.id]


def test_replace_from_anonymous_to_user_and_back(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now(), user_id=None)
    store.add(record)
    owned = record._replace(user_id="carol", version=2)
    store.replace(owned, expected_version=1)
    assert store.list_user("carol") == [owned]
    released = owned._replace(user_id=None, version=3)
    store.replace(released, expected_version=2)
    assert store.list_user("carol") == []
    assert store.get(record.id) == released


def test_failed_replace_does_not_move_the_index(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now(), version=2)
    store.add(record)
    with pytest.raises(VersionConflict):
        store.replace(record._replace(user_id="bob", version=3), expected_version=1)
    assert store.list_user("alice") == [record]
    assert store.list_user("bob") == []
