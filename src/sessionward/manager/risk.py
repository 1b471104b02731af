"""The manager's hijack scoring: the risk engine, fed and remembered per session.

``SessionManager(store, risk=RiskAssessor())`` scores every ``validate`` that comes with a
request context (see docs/risk.md). Without ``risk`` nothing changes and the ``risk`` extra
is not needed.

What a session record keeps (its ``context`` field, JSON): the engine's session history
(networks as prefix, owner, country and kind; the parsed browser; the first language range;
the platform hint; the device signal), the user's history across sessions as it stood when
the session last wrote, and the last few decisions that were not a plain allow, with their
reasons. No address and no user-agent string. A new login takes the user's history from
their most recently active session, so it lives as long as the user has a live session;
logging out of every session starts it afresh.

Writes are throttled: the history is written only with the manager's own periodic write
(``touch_interval``) or a rotation, never because the context changed, so neither a thief nor
a phone hopping networks makes the store write per request. Between writes each process keeps
the newest history in memory (a bounded cache), so what it learned is not forgotten in the
meantime.

This module does no I/O: the manager reads and writes; the assessor scores and serialises.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from sessionward.core.context import RequestContext
from sessionward.core.decision import Risk
from sessionward.core.events import RiskAssessed
from sessionward.core.record import SessionRecord
from sessionward.core.risk import (
    LOGIN,
    Decision,
    Observation,
    SessionRisk,
    Verdict,
    assess,
    begin,
    confirm,
    learn,
    network_path,
    novelty,
    remember,
)
from sessionward.core.risk_history import PopulationCounter, UserRisk
from sessionward.core.risk_json import session_from_json, session_to_json
from sessionward.core.risk_policy import RiskPolicy
from sessionward.errors import RiskChallenge, RiskRevoked

if TYPE_CHECKING:
    from sessionward.risk import Enricher

__all__ = ["Assessment", "RiskAssessor", "RiskState", "decisions_of"]

_KEPT_DECISIONS = 8
_Found = TypeVar("_Found", RiskChallenge, RiskRevoked)
_MEMO_SIZE = 4096
_RISKS = {Decision.STEP_UP: Risk.STEP_UP, Decision.REVOKE: Risk.REVOKE}


class RiskState(NamedTuple):
    """A session's risk history in memory: the engine's, the user's, the recent decisions."""

    session: SessionRisk
    user: UserRisk
    decisions: tuple[dict[str, Any], ...] = ()


class Assessment(NamedTuple):
    """One request's verdict and the session's history after it."""

    verdict: Verdict
    state: RiskState
    observation: Observation

    def event(self, record: SessionRecord, now: float) -> RiskAssessed:
        """The event that reports this verdict (reason sentences, never an address)."""
        v = self.verdict
        reasons = tuple((str(r.signal), round(r.weight, 2), r.detail) for r in v.reasons)
        return RiskAssessed(
            record.id,
            record.user_id,
            now,
            decision=str(v.decision),
            score=round(v.score, 2),
            reasons=reasons,
        )

    def challenge(self, record: SessionRecord) -> RiskChallenge:
        """The error a step-up raises: the reasons as sentences, codes and weights."""
        return self._error(RiskChallenge, record)

    def revoked(self, record: SessionRecord) -> RiskRevoked:
        """The error a revoke raises (an ``InvalidToken``)."""
        return self._error(RiskRevoked, record)

    def _error(self, kind: type[_Found], record: SessionRecord) -> _Found:
        v = self.verdict
        return kind(
            record.id,
            tuple(r.detail for r in v.reasons),
            tuple(str(r.signal) for r in v.reasons),
            weights=tuple(round(r.weight, 2) for r in v.reasons),
            score=round(v.score, 2),
            user_id=record.user_id,
        )

    @property
    def risk(self) -> Risk:
        """The verdict as the manager's decision function takes it."""
        return _RISKS.get(self.verdict.decision, Risk.ALLOW)


def _summary(verdict: Verdict, now: float) -> dict[str, Any]:
    return {
        "t": now,
        "decision": str(verdict.decision),
        "score": round(verdict.score, 2),
        "reasons": [[str(r.signal), round(r.weight, 2), r.detail] for r in verdict.reasons],
    }


def decisions_of(stored: str) -> list[dict[str, Any]]:
    """The recent non-allow decisions a record's ``context`` holds (newest last), each
    ``{"t", "decision", "score", "reasons": [[code, weight, sentence], ...]}``, and the
    owner's confirmations after a step-up (``"decision": "confirmed"``, no reasons); empty
    for a record written without risk scoring."""
    try:
        loaded = json.loads(stored) if stored else None
    except ValueError:
        return []
    found = loaded.get("decisions") if isinstance(loaded, dict) else None
    return [d for d in found if isinstance(d, dict)] if isinstance(found, list) else []


class RiskAssessor:
    """Scores requests against their session's and user's history and the population.

    ``enricher`` turns a request context into signals (default: ``sessionward.risk.Enricher``,
    which needs the ``risk`` extra); ``policy`` sets thresholds and bounds. The population
    (what all users' logins look like) is counted in memory per process from the logins it
    sees, and read through a snapshot renewed every ``population_refresh`` logins.
    """

    def __init__(
        self,
        *,
        enricher: Enricher | None = None,
        policy: RiskPolicy | None = None,
        population_refresh: int = 100,
    ) -> None:
        if enricher is None:
            from sessionward.risk import Enricher  # the optional extra, loaded only when used

            enricher = Enricher()
        self.enricher = enricher
        self.policy = policy or RiskPolicy()
        self._counter = PopulationCounter()
        self._population = self._counter.snapshot()
        self._refresh = max(1, population_refresh)
        self._logins = 0
        self._memo: dict[tuple[str, str], RiskState] = {}

    # -- at login ---------------------------------------------------------------------------

    def login(
        self, context: RequestContext | None, now: float, others: Iterable[SessionRecord]
    ) -> str:
        """The ``context`` field of a new session signed in with ``context``; the user's
        history comes from the most recently active of ``others`` (their live sessions)."""
        if context is None:
            return ""
        obs = self.enricher.observe(context, now)
        user = UserRisk()
        newest = max(others, key=lambda r: r.last_seen, default=None)
        if newest is not None:
            state = self._state(newest)
            user = state.user if state is not None else user
        user = remember(user, None, obs, self.policy)
        self._counter.add(network_path(obs.signals.network))
        self._logins += 1
        if self._logins % self._refresh == 0 or self._logins == 1:
            self._population = self._counter.snapshot()
        return self.dump(RiskState(begin(obs), user))

    # -- on each request --------------------------------------------------------------------

    def assess(
        self,
        record: SessionRecord,
        context: RequestContext,
        now: float,
        *,
        previous_secret: bool = False,
    ) -> Assessment:
        """Score the request; the session's history after it is kept in memory (and returned)
        for the next write."""
        obs = self.enricher.observe(context, now, previous_secret=previous_secret)
        state = self._state(record)
        if state is None:
            # No history this engine can read (a session from before scoring was turned on):
            # this request starts it, as a login would.
            state = RiskState(begin(obs), remember(UserRisk(), None, obs, self.policy))
            after = Assessment(LOGIN, state, obs)
        else:
            verdict = assess(obs, state.session, state.user, self._population, self.policy)
            user = state.user
            if verdict.decision is Decision.ALLOW:
                depth = novelty(state.session, obs.signals.network)
                if depth:
                    self._counter.moved(depth)
                    user = remember(user, state.session, obs, self.policy)
            decisions = state.decisions
            if verdict.decision is not Decision.ALLOW:
                decisions = (*decisions, _summary(verdict, now))[-_KEPT_DECISIONS:]
            learned = learn(state.session, obs, verdict, self.policy)
            after = Assessment(verdict, RiskState(learned, user, decisions), obs)
        self._keep(record, after.state)
        return after

    def confirmed(self, record: SessionRecord, context: RequestContext, now: float) -> str:
        """The ``context`` field after the owner confirmed this request's context (signed in
        again after a step-up): it becomes the session's and the user's own."""
        obs = self.enricher.observe(context, now)
        state = self._state(record)
        if state is None:
            return self.dump(RiskState(begin(obs), remember(UserRisk(), None, obs, self.policy)))
        user = remember(state.user, state.session, obs, self.policy)
        # Shown with the decisions: the step-up was answered by the owner.
        mark = {"t": now, "decision": "confirmed", "score": None, "reasons": []}
        decisions = (*state.decisions, mark)[-_KEPT_DECISIONS:]
        return self.dump(RiskState(confirm(state.session, obs, self.policy), user, decisions))

    def stored(self, record: SessionRecord) -> str:
        """The ``context`` field to write for ``record`` now: its newest history in memory."""
        state = self._memo.get((record.id, record.context))
        return record.context if state is None else self.dump(state)

    @staticmethod
    def dump(state: RiskState) -> str:
        return json.dumps(
            {
                "session": session_to_json(state.session),
                "user": state.user.to_json(),
                "decisions": list(state.decisions),
            },
            separators=(",", ":"),
        )

    # -- memory -----------------------------------------------------------------------------

    def _state(self, record: SessionRecord) -> RiskState | None:
        key = (record.id, record.context)
        state = self._memo.get(key)
        if state is not None:
            return state
        try:
            loaded = json.loads(record.context) if record.context else None
            if not isinstance(loaded, dict):
                return None
            user = loaded.get("user")
            decisions = loaded.get("decisions")
            state = RiskState(
                session_from_json(loaded.get("session")),
                UserRisk.from_json(user) if isinstance(user, dict) else UserRisk(),
                tuple(d for d in decisions if isinstance(d, dict))
                if isinstance(decisions, list)
                else (),
            )
        except ValueError:
            return None
        self._keep(record, state)
        return state

    def _keep(self, record: SessionRecord, state: RiskState) -> None:
        memo = self._memo
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[(record.id, record.context)] = state
