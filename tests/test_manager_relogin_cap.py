"""A re-login that replaces the user's own session must not be counted against the cap."""

from __future__ import annotations

import pytest
from conftest import MakeHarness

from sessionward import InvalidToken, Policy


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
