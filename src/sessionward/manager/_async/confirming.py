""" "This was me": the owner's confirmation after a risk step-up, the manager's one write that
teaches a session (and its user) a context the risk engine doubted.

Because it rotates the secret and makes the request's context the owner's, a confirmation of a
key-bound session needs the same proof of the key as a validation of it: whoever holds a copy
of the token but not the key can neither confirm nor teach the history anything. This file is
the source; ``sessionward.manager._sync.confirming`` is generated from it.
``AsyncSessionManager`` inherits it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sessionward.clock import Clock
from sessionward.core import binding as states
from sessionward.core import token as tokens
from sessionward.core.context import RequestContext
from sessionward.core.decision import Match, Proof, match_secret
from sessionward.core.events import EventBus, SessionElevated, TokenRejected
from sessionward.core.record import Session, SessionRecord
from sessionward.errors import ConfigError, InvalidProof, InvalidToken, UpdateConflict
from sessionward.manager._async.proof import AsyncProofCheck
from sessionward.manager.risk import RiskAssessor

__all__ = ["AsyncConfirming", "key_bound"]

_ATTEMPTS = 4


def key_bound(record: SessionRecord) -> bool:
    """Whether ``record``'s session is bound to a key (DBSC, the page script or DPoP); a
    damaged bound state counts as bound, so it is confirmed only with a proof."""
    return states.bound_fields(record.data) is not None


class AsyncConfirming:
    """The owner's confirmation; the state and the writes are the manager's."""

    clock: Clock
    events: EventBus
    _risk: RiskAssessor | None
    _admit: Callable[[SessionRecord], bool] | None

    if TYPE_CHECKING:

        async def _live(self, session_id: str, now: float) -> SessionRecord: ...

        async def _rotate_record(
            self,
            record: SessionRecord,
            now: float,
            secret: bytes | None,
            *,
            grace: bool = True,
            context: RequestContext | None = None,
            stored: str | None = None,
            **changes: Any,
        ) -> Session | None: ...

        def _rejected(
            self, reason: str, session_id: str, user_id: str | None, now: float
        ) -> InvalidToken: ...

        async def _save_user_history(
            self, user_id: str | None, now: float, *, after_commit: bool = False
        ) -> None: ...

    async def confirm(
        self,
        token: object,
        *,
        context: RequestContext,
        proof: AsyncProofCheck | None = None,
    ) -> Session:
        """ "This was me": after a ``RiskChallenge``, once the user has signed in again, the
        request's context becomes the session's and the user's own, ``auth_time`` becomes now,
        and the secret is rotated with no grace window (whoever else holds the token is cut
        off). Returns the session with its new token.

        A session bound to a key is confirmed only when ``proof`` (the check ``validate``
        takes, for this request) proves that key: without one, or with a refused or pending
        proof, ``InvalidProof`` is raised and nothing is written."""
        if self._risk is None:
            raise ConfigError("this manager was given no risk assessor")
        now = self.clock.now()
        session_id, secret = tokens.parse(token)
        record = await self._live(session_id, now)
        for _ in range(_ATTEMPTS):
            if match_secret(record, secret, now)[0] is not Match.CURRENT:
                raise self._rejected("mismatch", record.id, record.user_id, now)
            if self._admit is not None and not self._admit(record):
                raise self._rejected("refused", record.id, record.user_id, now)
            await self._proven(record, proof, now)  # raises before anything is written
            learned = self._risk.confirmed(record, context, now)
            confirmed = await self._rotate_record(
                record, now, None, grace=False, stored=learned, auth_time=now
            )
            if confirmed is not None:
                self._risk.adopt(record, learned)  # what was confirmed is the user's own now
                await self._save_user_history(record.user_id, now, after_commit=True)
                self.events.emit(
                    SessionElevated(record.id, record.user_id, now, auth_level=record.auth_level)
                )
                return confirmed
            record = await self._live(session_id, now)
        raise UpdateConflict("confirmation kept losing races")

    async def _proven(
        self, record: SessionRecord, proof: AsyncProofCheck | None, now: float
    ) -> None:
        """Raise ``InvalidProof`` unless the request proves the key ``record`` is bound to (an
        unbound record needs nothing; a check given for it still runs, and may refuse)."""
        verdict = None if proof is None else await proof(record)
        if verdict is Proof.PROVEN or not key_bound(record):
            return
        reason = "unproven" if verdict is None else f"proof-{verdict.value}"
        self.events.emit(TokenRejected(record.id, record.user_id, now, reason=f"binding-{reason}"))
        raise InvalidProof(reason, record.id)
