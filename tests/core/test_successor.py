"""Successor links: only a holder of a rotated-out secret recovers the current one, across
several rotations, until its grace window closes; the field never holds a usable secret."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.core.record import SessionRecord
from sessionward.core.successor import MAX_LINKS, links_after_rotation, successor_of
from sessionward.core.token import mint, new_session_id, verifier

T0 = 1_800_000_000.0
GRACE = 30.0


def fresh(secret: bytes, session_id: str) -> SessionRecord:
    return SessionRecord(
        id=session_id,
        secret_hash=verifier(secret),
        prev_secret_hash=None,
        grace_until=0.0,
        generation=0,
        user_id="alice",
        auth_level=1,
        auth_time=T0,
        scopes="",
        data="{}",
        created_at=T0,
        rotated_at=T0,
        last_seen=T0,
        expires_at=T0 + 1000,
        absolute_expires_at=T0 + 10_000,
        version=1,
        context="[]",
    )


def rotate(record: SessionRecord, old: bytes, new: bytes, now: float) -> SessionRecord:
    return record._replace(
        secret_hash=verifier(new),
        prev_secret_hash=record.secret_hash,
        grace_until=now + GRACE,
        generation=record.generation + 1,
        successor=links_after_rotation(record, old, new, now, GRACE),
    )


def chain(length: int, step: float = 1.0) -> tuple[SessionRecord, list[bytes]]:
    """A record rotated ``length`` times, ``step`` seconds apart, and its secrets in order."""
    _, first = mint()
    secrets = [first.secret]
    record = fresh(first.secret, first.session_id)
    for i in range(length):
        _, nxt = mint(first.session_id)
        record = rotate(record, secrets[-1], nxt.secret, T0 + i * step)
        secrets.append(nxt.secret)
    return record, secrets


def test_the_rotated_out_secret_recovers_the_current_one_inside_its_window_only() -> None:
    record, (old, new) = chain(1)
    assert successor_of(record, old, T0) == new
    assert successor_of(record, old, T0 + GRACE - 1e-3) == new
    assert successor_of(record, old, T0 + GRACE) is None
    assert successor_of(record, new, T0) is None  # the current secret has no successor
    _, stranger = mint(record.id)
    assert successor_of(record, stranger.secret, T0) is None


def test_a_link_is_bound_to_its_session_id() -> None:
    record, (old, _) = chain(1)
    moved = record._replace(id=new_session_id())
    assert successor_of(moved, old, T0) is None


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=1, max_value=MAX_LINKS))
def test_every_secret_of_a_chain_inside_its_window_reaches_the_current_one(length: int) -> None:
    record, secrets = chain(length)
    now = T0 + length - 1
    for old in secrets[:-1]:
        assert successor_of(record, old, now) == secrets[-1]
    assert len(record.successor or b"") == length * 40


def test_links_are_bounded_and_the_oldest_falls_off_first() -> None:
    record, secrets = chain(MAX_LINKS + 3)
    assert len(record.successor or b"") == MAX_LINKS * 40
    now = T0 + MAX_LINKS + 2
    reached = [successor_of(record, s, now) == secrets[-1] for s in secrets[:-1]]
    assert reached == [False] * 3 + [True] * MAX_LINKS


def test_closed_windows_are_dropped_at_the_next_rotation() -> None:
    record, secrets = chain(3, step=20.0)  # rotations at T0, T0 + 20, T0 + 40
    deadlines = [d for d, _ in struct.iter_unpack(">d32s", record.successor or b"")]
    assert deadlines == [T0 + 40 + GRACE, T0 + 20 + GRACE]  # the one from T0 closed at T0 + 30
    assert successor_of(record, secrets[1], T0 + 45) == secrets[3]
    assert successor_of(record, secrets[0], T0 + 45) is None


def test_no_window_means_no_links() -> None:
    record, (old, new) = chain(1)
    assert links_after_rotation(record, old, new, T0, 0.0) is None


def test_the_field_holds_no_secret_and_no_secret_xor_another() -> None:
    record, secrets = chain(3)
    field = record.successor or b""
    pieces = [field[i : i + 40][8:] for i in range(0, len(field), 40)]
    for secret in secrets:
        assert secret not in field
        for other in secrets:
            mixed = bytes(a ^ b for a, b in zip(secret, other, strict=True))
            assert mixed not in pieces


def test_a_malformed_field_yields_nothing() -> None:
    record, (old, _) = chain(1)
    for damaged in (b"", b"\x00", (record.successor or b"")[:-1], bytes(40)):
        assert successor_of(record._replace(successor=damaged), old, T0) is None
