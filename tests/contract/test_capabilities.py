"""The optional capabilities, on every store that has them: ``Scan`` and ``Broadcast``.

A store without the capability skips these tests; one that has it must pass them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from servers import WAIT

from sessionward.stores import AsyncBroadcast, AsyncScan, Broadcast, Scan, UserCap
from sessionward.testing import FakeClock

from .conftest import IndexedStore, RunnerFacade
from .records import make_record


def _capable(store: IndexedStore, sync: type, async_: type) -> Any:
    """``(target, run)``: the object with the capability and how to call its methods."""
    if isinstance(store, RunnerFacade):
        target = store.capable(async_)
        run: Callable[[Any], Any] = store.run
    else:
        target = store if isinstance(store, sync) else None
        run = lambda value: value  # noqa: E731 - the sync call already ran
    if target is None:
        pytest.skip(f"this store has no {sync.__name__} capability")
    return target, run


# -- Scan --------------------------------------------------------------------------------------


def test_scan_walks_every_record_in_id_order(store: IndexedStore, clock: FakeClock) -> None:
    scanner, run = _capable(store, Scan, AsyncScan)
    records = [make_record(clock.now(), user_id=None if i % 3 else f"u{i}") for i in range(25)]
    for record in records:
        store.add(record)
    seen = []
    after = ""
    while page := run(scanner.scan(after=after, limit=7)):
        assert len(page) <= 7
        seen.extend(page)
        after = page[-1].id
    assert seen == sorted(records, key=lambda r: r.id)


def test_scan_of_an_empty_store_is_empty(store: IndexedStore) -> None:
    scanner, run = _capable(store, Scan, AsyncScan)
    assert run(scanner.scan()) == []


# -- Broadcast ---------------------------------------------------------------------------------


def _until(run: Callable[[Any], Any], subscription: Any, wanted: set[str]) -> list[str]:
    """What the subscription reports until every wanted id came (``WAIT`` s at most)."""
    got: list[str] = []
    deadline = time.monotonic() + WAIT
    while not wanted <= set(got) and time.monotonic() < deadline:
        ids: Sequence[str] | None = run(subscription.changed())
        assert ids is not None, "a healthy subscription reported a loss"
        got.extend(ids)
        time.sleep(0.001)
    return got


def test_every_change_is_announced(store: IndexedStore, clock: FakeClock) -> None:
    broadcaster, run = _capable(store, Broadcast, AsyncBroadcast)
    now = clock.now()
    replaced, touched, deleted, kept = (make_record(now, user_id="a") for _ in range(4))
    users = [make_record(now + i, user_id="b") for i in range(2)]
    expiring = make_record(now, user_id=None, expires_at=now + 1)
    capped = make_record(now, user_id="c")
    for record in (replaced, touched, deleted, kept, *users, expiring, capped):
        store.add(record)
    subscription = run(broadcaster.subscribe())
    try:
        store.replace(replaced._replace(version=2), expected_version=1)
        store.touch(touched.id, last_seen=now + 5, expires_at=now + 99)
        store.delete(deleted.id)
        store.delete_user("b")
        assert store.purge_expired(now + 2) == 1
        store.add(make_record(now + 3, user_id="c"), cap=UserCap(1, True, now + 3))
        changes = {replaced.id, touched.id, deleted.id, *(r.id for r in users), expiring.id}
        changes.add(capped.id)
        got = _until(run, subscription, changes)
        assert set(got) == changes  # and nothing for the untouched record or the new one
    finally:
        run(subscription.close())


def test_a_delete_is_announced_once_and_close_is_idempotent(
    store: IndexedStore, clock: FakeClock
) -> None:
    broadcaster, run = _capable(store, Broadcast, AsyncBroadcast)
    record = make_record(clock.now())
    store.add(record)
    subscription = run(broadcaster.subscribe())
    try:
        store.delete(record.id)
        got = _until(run, subscription, {record.id})
        assert got == [record.id]
        run(subscription.close())
        run(subscription.close())  # idempotent
    finally:
        run(subscription.close())
