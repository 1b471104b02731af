"""The precondition :meth:`AsyncSessionManager.validate` takes for key-bound sessions.

A proof check runs once the record is read and the presented secret matched, before the
decision is carried out: a refused proof raises (``InvalidProof``) and a pending one holds,
so a copied token without the key's proof writes nothing (no renewal, no activity, no context
learned). :mod:`sessionward.manager._async.binding` has the DBSC and DPoP checks. This file
is the source; ``sessionward.manager._sync.proof`` is generated from it.
"""

from __future__ import annotations

from typing import Protocol

from sessionward.core.decision import Proof
from sessionward.core.record import SessionRecord

__all__ = ["AsyncProofCheck"]


class AsyncProofCheck(Protocol):
    """Called with the authenticated, live record; returns its :class:`Proof` verdict or
    raises ``InvalidProof``. It may be called again with a fresh record after a lost write
    race, so it must not spend a proof twice."""

    async def __call__(self, record: SessionRecord, /) -> Proof: ...
