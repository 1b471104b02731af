"""The replay-cache record (a spent DPoP ``jti``) on every store: create-only, kept exactly
(empty verifier included) until it expires, then purged like any record."""

from __future__ import annotations

import pytest

from sessionward.core.binding import replay_record
from sessionward.errors import AlreadyExists
from sessionward.testing import FakeClock

from .conftest import IndexedStore


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
