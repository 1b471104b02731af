"""``KeyRing``: what counts as a key, the cache keyed by the key's sha256, and revocation
with the cache off (the tests' default) and on (the lag it allows), on a real state file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionward.service.keys import KeyRing, create_key, mint_key
from sessionward.service.state import ServiceState
from sessionward.testing import FakeClock


@pytest.fixture
def state(tmp_path: Path) -> Iterator[ServiceState]:
    opened = ServiceState(tmp_path / "state.db")
    try:
        yield opened
    finally:
        opened.close()


def test_only_live_stored_keys_authenticate(state: ServiceState) -> None:
    raw, row = create_key(state, "issue", "backend", time.time())
    ring = KeyRing(state, cache_seconds=0)
    key = ring.authenticate(raw)
    assert key is not None
    assert (key.id, key.scope) == (row.id, "issue")
    assert raw not in repr(key)
    wrong_secret = raw[:-1] + ("A" if raw[-1] != "A" else "B")
    near_misses: list[object] = [
        None,
        b"bytes",
        raw.encode(),
        "",
        raw[:-1],
        raw + "A",
        raw.upper(),
        wrong_secret,
        mint_key(),  # well formed, never stored
        raw[:-1] + "é",  # right length, not ASCII
        raw.replace("swk_", "swx_"),
        raw[:20] + "=" + raw[21:],  # right length, outside the alphabet
    ]
    for presented in near_misses:
        assert ring.authenticate(presented) is None, presented


def test_revocation_is_seen_at_once_without_cache(state: ServiceState) -> None:
    raw, row = create_key(state, "validate", "", time.time())
    ring = KeyRing(state, cache_seconds=0)
    assert ring.authenticate(raw) is not None
    assert state.revoke_key(row.id, time.time())
    assert ring.authenticate(raw) is None


def test_cached_keys_outlive_revocation_by_at_most_the_cache_time(state: ServiceState) -> None:
    clock = FakeClock()
    raw, row = create_key(state, "validate", "", clock.now())
    ring = KeyRing(state, cache_seconds=1.0, clock=clock)
    assert ring.authenticate(raw) is not None
    assert state.revoke_key(row.id, clock.now())
    clock.advance(0.999)
    assert ring.authenticate(raw) is not None  # the documented lag: this process trusts its cache
    assert ring.cached(raw) is not None
    clock.advance(0.001)
    assert ring.cached(raw) is None
    assert ring.authenticate(raw) is None  # and never beyond it
    # A wrong secret for a cached key id is no key, cache or not.
    other, _ = create_key(state, "validate", "", clock.now())
    assert ring.authenticate(other) is not None
    assert ring.authenticate(other[:-1] + ("A" if other[-1] != "A" else "B")) is None


def test_a_clock_set_back_does_not_extend_the_cache(state: ServiceState) -> None:
    clock = FakeClock()
    raw, row = create_key(state, "validate", "", clock.now())
    ring = KeyRing(state, cache_seconds=5.0, clock=clock)
    assert ring.authenticate(raw) is not None
    assert state.revoke_key(row.id, clock.now())
    clock.advance(-3600.0)  # the wall clock stepped back: the entry's age is unknown
    assert ring.cached(raw) is None
    assert ring.authenticate(raw) is None


def test_the_default_clock_is_the_system_clock(state: ServiceState) -> None:
    raw, row = create_key(state, "validate", "", time.time())
    ring = KeyRing(state, cache_seconds=3600.0)
    assert ring.authenticate(raw) is not None
    assert state.revoke_key(row.id, time.time())
    assert ring.authenticate(raw) is not None  # cached for an hour of the wall clock
