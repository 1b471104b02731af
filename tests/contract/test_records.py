"""get / add / replace / touch / delete / close on single records."""

from __future__ import annotations

import pytest

from sessionward.errors import AlreadyExists, NotFound, VersionConflict
from sessionward.testing import FakeClock

from .conftest import IndexedStore
from .records import make_record


def test_get_missing_is_none(store: IndexedStore) -> None:
    assert store.get("AAAAAAAAAAAAAAAA") is None


def test_add_then_get(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now())
    assert store.add(record) == []
    assert store.get(record.id) == record


def test_add_is_create_only(store: IndexedStore, clock: FakeClock) -> None:
    original = make_record(clock.now())
    store.add(original)
    intruder = make_record(clock.now(), user_id="mallory", id=original.id, data='{"x":1}')
    with pytest.raises(AlreadyExists):
        store.add(intruder)
    assert store.get(original.id) == original
    assert store.list_user("mallory") == []


def test_add_anonymous(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now(), user_id=None)
    store.add(record)
    assert store.get(record.id) == record


def test_replace_writes_the_whole_record(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now())
    store.add(record)
    clock.advance(60)
    updated = record._replace(
        secret_hash=b"\x01" * 32,
        prev_secret_hash=record.secret_hash,
        grace_until=clock.now() + 30,
        generation=1,
        auth_level=2,
        auth_time=clock.now(),
        scopes="admin read",
        data='{"cart":[1,2]}',
        rotated_at=clock.now(),
        last_seen=clock.now(),
        expires_at=clock.now() + 1800,
        version=2,
        context='[{"ip":"192.0.2.0/24"}]',
    )
    store.replace(updated, expected_version=1)
    assert store.get(record.id) == updated


def test_replace_missing_raises_not_found(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now())
    with pytest.raises(NotFound):
        store.replace(record._replace(version=2), expected_version=1)
    assert store.get(record.id) is None


def test_replace_after_delete_raises_not_found(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now())
    store.add(record)
    store.delete(record.id)
    with pytest.raises(NotFound):
        store.replace(record._replace(version=2), expected_version=1)
    assert store.get(record.id) is None


def test_replace_with_stale_version_raises_conflict(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now())
    store.add(record)
    first = record._replace(data='{"by":"first"}', version=2)
    second = record._replace(data='{"by":"second"}', version=2)
    store.replace(first, expected_version=1)
    with pytest.raises(VersionConflict):
        store.replace(second, expected_version=1)
    assert store.get(record.id) == first


def test_replace_with_future_version_raises_conflict(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now(), version=3)
    store.add(record)
    with pytest.raises(VersionConflict):
        store.replace(record._replace(data='{"a":1}', version=5), expected_version=4)
    assert store.get(record.id) == record


def test_replace_chain_of_versions(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now())
    store.add(record)
    for version in range(2, 6):
        record = record._replace(data=f'{{"n":{version}}}', version=version)
        store.replace(record, expected_version=version - 1)
    assert store.get(record.id) == record


def test_touch_moves_forward_without_new_version(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now())
    store.add(record)
    later = clock.advance(120)
    store.touch(record.id, last_seen=later, expires_at=later + 1800)
    assert store.get(record.id) == record._replace(last_seen=later, expires_at=later + 1800)
    # The version did not move, so a writer holding the pre-touch record still wins.
    store.replace(record._replace(data='{"a":1}', version=2), expected_version=1)


@pytest.mark.parametrize("offset", [0.0, -1.0, -3600.0])
def test_touch_never_moves_back(store: IndexedStore, clock: FakeClock, offset: float) -> None:
    record = make_record(clock.advance(600))
    store.add(record)
    store.touch(record.id, last_seen=record.last_seen + offset, expires_at=record.expires_at + 99)
    assert store.get(record.id) == record


def test_touch_missing_is_ignored(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now())
    store.touch(record.id, last_seen=clock.now() + 1, expires_at=clock.now() + 1801)
    assert store.get(record.id) is None


def test_delete_is_idempotent(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now())
    other = make_record(clock.now())
    store.add(record)
    store.add(other)
    assert store.delete(record.id) is True
    assert store.get(record.id) is None
    assert store.delete(record.id) is False
    assert store.delete("AAAAAAAAAAAAAAAA") is False
    assert store.get(other.id) == other


def test_deleted_id_can_be_added_again(store: IndexedStore, clock: FakeClock) -> None:
    record = make_record(clock.now())
    store.add(record)
    store.delete(record.id)
    reborn = make_record(clock.now(), user_id="bob", id=record.id)
    store.add(reborn)
    assert store.get(record.id) == reborn
    assert store.list_user("alice") == []


def test_close_is_idempotent(store: IndexedStore, clock: FakeClock) -> None:
    store.add(make_record(clock.now()))
    store.close()
    store.close()
