"""The ``DeleteAll`` capability: every record gone at once, one optionally kept. Stores
without the capability skip (the manager then refuses ``revoke_all`` with a ConfigError)."""

from __future__ import annotations

import pytest

from sessionward.stores import AsyncDeleteAll, DeleteAll
from sessionward.testing import FakeClock

from .conftest import IndexedStore, RunnerFacade
from .records import make_record


def _capable(store: IndexedStore) -> DeleteAll:
    inner = store.wrapped if isinstance(store, RunnerFacade) else store
    if not isinstance(inner, DeleteAll | AsyncDeleteAll):
        pytest.skip(f"{type(inner).__name__} has no DeleteAll capability")
    assert isinstance(store, DeleteAll)
    return store


def test_delete_all_removes_every_kind_of_record(store: IndexedStore, clock: FakeClock) -> None:
    deleter = _capable(store)
    now = clock.now()
    records = [
        make_record(now, user_id="alice"),
        make_record(now - 5, user_id="alice"),
        make_record(now, user_id="bob"),
        make_record(now, user_id=None),
        make_record(now - 4000, user_id="carol", expires_at=now - 1),  # expired, not purged
    ]
    for record in records:
        store.add(record)
    assert deleter.delete_all() == len(records)
    assert all(store.get(r.id) is None for r in records)
    assert store.list_user("alice") == []
    assert store.list_user("carol") == []
    assert deleter.delete_all() == 0


def test_delete_all_keeps_the_one_asked_for(store: IndexedStore, clock: FakeClock) -> None:
    deleter = _capable(store)
    now = clock.now()
    admin = make_record(now, user_id="sessionward:admin:root")
    others = [make_record(now, user_id=u) for u in ("alice", "bob", None)]
    for record in (admin, *others):
        store.add(record)
    assert deleter.delete_all(keep=admin.id) == len(others)
    assert store.get(admin.id) == admin
    assert store.list_user("sessionward:admin:root") == [admin]
    assert all(store.get(r.id) is None for r in others)
    assert deleter.delete_all(keep=make_record(now).id) == 1  # an unknown keep spares nothing


def test_deleted_ids_can_be_added_again(store: IndexedStore, clock: FakeClock) -> None:
    deleter = _capable(store)
    record = make_record(clock.now())
    store.add(record)
    deleter.delete_all()
    store.add(record)
    assert store.get(record.id) == record
    assert store.list_user("alice") == [record]
