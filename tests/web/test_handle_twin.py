"""The sync request handle is generated from the async one (``scripts/unasync.py``)."""

from __future__ import annotations


def test_both_handles_offer_the_same_methods() -> None:
    from sessionward.web._async.handle import AsyncSessionHandle
    from sessionward.web._sync.handle import SessionHandle

    public = {n for n in dir(AsyncSessionHandle) if not n.startswith("__")}
    assert public == {n for n in dir(SessionHandle) if not n.startswith("__")}
