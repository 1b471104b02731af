"""The record helpers: a data write builds the same record ``_replace`` would."""

from __future__ import annotations

from sessionward.core.record import FIELDS, SessionRecord, revised


def test_revised_changes_exactly_the_written_fields() -> None:
    record = SessionRecord._make(f"v{i}" for i in range(len(FIELDS)))
    written = revised(record, "data", 7, 8.0, 9.0)
    assert type(written) is SessionRecord
    assert written == record._replace(data="data", version=7, last_seen=8.0, expires_at=9.0)
    assert revised(record._replace(successor=None), "d", 1, 2.0, 3.0).successor is None
