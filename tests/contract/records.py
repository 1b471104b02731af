"""Building session records for store tests: every field set, overridable one by one."""

from __future__ import annotations

import hashlib
from typing import Any

from sessionward.core.record import SessionRecord
from sessionward.core.token import new_session_id

__all__ = ["make_record"]


def make_record(now: float, user_id: str | None = "alice", **fields: Any) -> SessionRecord:
    """A fresh, live record created at ``now`` (idle deadline in 30 min, absolute in 8 h)."""
    session_id = fields.pop("id", None) or new_session_id()
    base = SessionRecord(
        id=session_id,
        secret_hash=hashlib.sha256(session_id.encode()).digest(),
        prev_secret_hash=None,
        grace_until=0.0,
        generation=0,
        user_id=user_id,
        auth_level=0 if user_id is None else 1,
        auth_time=None if user_id is None else now,
        scopes="",
        data="{}",
        created_at=now,
        rotated_at=now,
        last_seen=now,
        expires_at=now + 1800.0,
        absolute_expires_at=now + 8 * 3600.0,
        version=1,
        context="[]",
    )
    return base._replace(**fields)
