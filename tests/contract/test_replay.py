"""The internal records (a spent DPoP or logout-token ``jti``, the identity-provider index) on
every store: create-only, kept exactly (their mark, the empty verifier, included) until they
expire, then purged like any record; ``delete_all`` ends the sessions and leaves them."""

from __future__ import annotations

import pytest

from sessionward.core.binding import replay_record
from sessionward.errors import AlreadyExists
from sessionward.signals.links import index_id, index_record
from sessionward.stores import AsyncDeleteAll, DeleteAll
from sessionward.testing import FakeClock

from .conftest import IndexedStore, RunnerFacade
from .records import make_record


def test_a_spent_jti_is_taken_until_it_expires(store: IndexedStore, clock: FakeClock) -> None:
    now = clock.now()
    record = replay_record("dpop", "jkt.jti-1", now + 65, now)
    store.add(record)
    assert store.get(record.id) == record
    with pytest.raises(AlreadyExists):
        store.add(replay_record("dpop", "jkt.jti-1", now + 65, now))
    store.add(replay_record("dpop", "jkt.jti-2", now + 65, now))
    assert store.purge_expired(now + 64) == 0
    assert store.purge_expired(now + 65) == 2
    assert store.get(record.id) is None
    store.add(record)  # once purged, the id is free again (the proof is stale by then)


def test_an_index_record_keeps_its_mark_until_it_expires(
    store: IndexedStore, clock: FakeClock
) -> None:
    now = clock.now()
    record = index_record(index_id("sid", "https://idp.example", "s1"), ["alice"], now + 90, now)
    store.add(record)
    stored = store.get(record.id)
    assert stored == record
    assert stored is not None
    assert stored.is_internal
    assert not make_record(now).is_internal
    assert store.list_user("alice") == []  # no user: no per-user listing shows it
    assert store.purge_expired(now + 89) == 0
    assert store.purge_expired(now + 90) == 1
    assert store.get(record.id) is None


def test_delete_all_leaves_the_internal_records(store: IndexedStore, clock: FakeClock) -> None:
    inner = store.wrapped if isinstance(store, RunnerFacade) else store
    if not isinstance(inner, DeleteAll | AsyncDeleteAll):
        pytest.skip(f"{type(inner).__name__} has no DeleteAll capability")
    assert isinstance(store, DeleteAll)
    now = clock.now()
    internal = [
        replay_record("dpop", "jkt.jti-1", now + 65, now),
        replay_record("bcl", "iss.jti-1", now + 65, now),
        index_record(index_id("sub", "https://idp.example", "u1"), ["alice"], now + 900, now),
    ]
    sessions = [make_record(now, user_id="alice"), make_record(now, user_id=None)]
    for record in (*internal, *sessions):
        store.add(record)
    assert store.delete_all() == len(sessions)
    assert [store.get(r.id) for r in internal] == internal
    assert all(store.get(r.id) is None for r in sessions)
