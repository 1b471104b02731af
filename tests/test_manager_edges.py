"""Manager edge cases found in review: re-login at the cap, invalid Unicode in data."""

from __future__ import annotations

import pytest
from conftest import MakeHarness

from sessionward import InvalidArgument, InvalidToken, Policy


@pytest.mark.parametrize("action", ["evict_oldest", "reject"])
def test_relogin_at_the_cap_replaces_only_the_previous_session(
    make_harness: MakeHarness, action: str
) -> None:
    h = make_harness(Policy(max_sessions_per_user=2, on_session_limit=action))  # type: ignore[arg-type]
    laptop = h.m.issue("alice")
    phone = h.m.issue("alice")
    h.clock.advance(1)
    again = h.m.issue("alice", previous=phone)  # the phone logs in again
    assert again.token is not None
    assert laptop.token is not None
    assert phone.token is not None
    assert h.m.validate(laptop.token).id == laptop.id  # the other device is untouched
    assert h.m.validate(again.token).user_id == "alice"
    with pytest.raises(InvalidToken):
        h.m.validate(phone.token)
    assert [s.id for s in h.m.list_user("alice")] == [laptop.id, again.id]
    assert "session-limit" not in [getattr(e, "reason", None) for e in h.events.events]


def test_lone_surrogate_in_data_is_our_error(make_harness: MakeHarness) -> None:
    h = make_harness()
    session = h.m.issue("alice", data={"cart": []})
    with pytest.raises(InvalidArgument):
        h.m.update_data(session, lambda d: d.update(x="\ud800"))
    with pytest.raises(InvalidArgument):
        h.m.issue("bob", data={"x": "\udfff"})
    assert h.m.get(session.id) is not None
    assert h.m.get(session.id).data == {"cart": []}  # type: ignore[union-attr]


def test_admit_refuses_a_record_before_it_is_authenticated_or_renewed(tmp_path: object) -> None:
    from sessionward import EventBus, MemoryStore, SessionManager
    from sessionward.testing import EventRecorder, FakeClock

    store = MemoryStore()
    clock = FakeClock()
    recorder = EventRecorder()
    plain = SessionManager(store, clock=clock, policy=Policy(rotate_after=60))
    guarded = SessionManager(
        store,
        clock=clock,
        policy=Policy(rotate_after=60),
        events=EventBus([recorder]),
        admit=lambda record: "family" not in record.data,
    )
    family = plain.issue("alice", data={"family": 1})
    ordinary = plain.issue("alice")
    assert family.token is not None
    assert ordinary.token is not None
    clock.advance(120)  # renewal due for both
    with pytest.raises(InvalidToken) as refused:
        guarded.validate(family.token)
    assert refused.value.reason == "refused"
    assert store.get(family.id) == family.record  # not rotated, not touched
    assert guarded.validate(ordinary.token).rotated  # others still renew
    assert next(getattr(e, "reason", None) for e in recorder.events) == "refused"


def test_every_store_gets_the_16_byte_verifier_and_no_store_hook_is_read() -> None:
    import hashlib

    from sessionward import MemoryStore, SessionManager
    from sessionward.core.token import parse
    from sessionward.testing import FakeClock

    class OldHooks(MemoryStore):
        """The optional attributes stores once had: the manager must ignore both."""

        verifier_size = 32

        def new_session_id(self, user_id: str | None) -> str:
            raise AssertionError("the manager mints ids itself")

    store = OldHooks()
    clock = FakeClock()
    manager = SessionManager(store, clock=clock, policy=Policy(rotation_grace=30))
    first = manager.issue("alice")
    assert first.token is not None
    secret = parse(first.token).secret
    assert first.record.secret_hash == hashlib.sha256(secret).digest()[:16]
    second = manager.rotate(manager.validate(first.token))
    assert second.token is not None
    assert len(second.record.secret_hash) == 16
    assert second.record.prev_secret_hash == first.record.secret_hash
    assert manager.validate(first.token).token == second.token  # inside the grace
    clock.advance(31)
    with pytest.raises(InvalidToken) as caught:
        manager.validate(first.token)  # after it: theft, the session is gone
    assert caught.value.reason == "reused"
    assert store.get(first.id) is None


@pytest.mark.parametrize("size", [0, 1, 15, 17, 31, 32, 33])
def test_a_stored_verifier_of_another_length_never_matches(size: int) -> None:
    # Only the 16-byte verifier is compared: a record whose hash was cut or padded (corrupt
    # store, hand-written row) or holds the full digest authenticates nobody.
    import hashlib

    from sessionward import MemoryStore, SessionManager
    from sessionward.core.token import parse
    from sessionward.testing import FakeClock

    store = MemoryStore()
    manager = SessionManager(store, clock=FakeClock())
    session = manager.issue("alice")
    assert session.token is not None
    digest = hashlib.sha256(parse(session.token).secret).digest()
    stored = (digest + bytes(1))[:size]
    assert len(stored) == size
    store.replace(
        session.record._replace(secret_hash=stored, version=session.record.version + 1),
        expected_version=session.record.version,
    )
    with pytest.raises(InvalidToken) as caught:
        manager.validate(session.token)
    assert caught.value.reason == "mismatch"


def test_a_locality_store_starts_a_users_ids_with_its_bytes() -> None:
    import base64

    from sessionward import MemoryStore, SessionManager, StoreCorrupt
    from sessionward.stores.locality import Locality
    from sessionward.testing import FakeClock

    class Placed(MemoryStore):
        answer: object = b"\x01\x02\x03\x04"

        def user_locality(self, user_id: str) -> bytes:
            return self.answer  # type: ignore[return-value]

    store = Placed()
    assert isinstance(store, Locality)
    manager = SessionManager(store, clock=FakeClock())
    ids = [manager.issue("alice").id for _ in range(20)]
    raw = [base64.urlsafe_b64decode(i) for i in ids]
    assert all(r[:4] == b"\x01\x02\x03\x04" and len(r) == 12 for r in raw)
    assert len({r[4:] for r in raw}) == 20  # random after the locality
    anonymous = [base64.urlsafe_b64decode(manager.issue().id) for _ in range(20)]
    assert sum(r[:4] == b"\x01\x02\x03\x04" for r in anonymous) < 2  # no locality: random
    store.answer = b""
    assert manager.issue("bob").token is not None
    for bad in (b"\x00" * 5, "abcd", bytearray(b"ab")):
        store.answer = bad
        with pytest.raises(StoreCorrupt):
            manager.issue("alice")
