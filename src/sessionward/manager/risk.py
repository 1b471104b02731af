"""The manager's hijack scoring: the risk engine, fed and remembered per session.

``SessionManager(store, risk=RiskAssessor())`` scores every ``validate`` that comes with a
request context (see docs/risk.md). Without ``risk`` nothing changes and the ``risk`` extra
is not needed.

What a session record keeps (its ``context`` field, JSON): the engine's session history
(networks as prefix, owner, country and kind; the parsed browser; the first language range;
the platform hint; the device signal), the user's history across sessions as it stood when
the session last wrote, and the last few decisions that were not a plain allow, with their
reasons. No address and no user-agent string.

The user's history belongs to the user, not to one session: what one session learns (a
network allowed or confirmed) counts for the user's other sessions at once. Each process
keeps the newest copy per user in memory; the store keeps one internal record per user
(:func:`user_record_id`, ``history_retention`` after its last write), written at sign-in, at a
confirmation and with a session's periodic write when the copy in memory has learned
something since. A sign-in starts from that record; before a request is challenged, the
record is read again, so no process challenges a request that the user's newest history,
wherever it was learned, would allow. Ending every session of the user
(``revoke_user``) deletes it.

Writes are throttled: the history is written only with the manager's own periodic write
(``touch_interval``) or a rotation, never because the context changed, so neither a thief nor
a phone hopping networks makes the store write per request. Between writes each process keeps
the newest history in memory (a bounded cache), so what it learned is not forgotten in the
meantime.

This module does no I/O: the manager reads and writes; the assessor scores and serialises.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from sessionward.core.context import RequestContext
from sessionward.core.decision import Risk
from sessionward.core.events import RiskAssessed
from sessionward.core.record import SessionRecord, internal_id, internal_record, internal_value
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

__all__ = ["Assessment", "RiskAssessor", "RiskState", "decisions_of", "user_record_id"]

_KEPT_DECISIONS = 8
_Found = TypeVar("_Found", RiskChallenge, RiskRevoked)
_MEMO_SIZE = 4096
_RISKS = {Decision.STEP_UP: Risk.STEP_UP, Decision.REVOKE: Risk.REVOKE}
_CHALLENGES = frozenset(_RISKS)
_USER_KEY = "sessionward.risk_user"


def user_record_id(user_id: str) -> str:
    """The id of the internal record that holds ``user_id``'s risk history: in the session
    id alphabet and length, in a namespace of its own."""
    return internal_id("risk-user", user_id)


def _stored_user(record: SessionRecord | None, now: float) -> UserRisk | None:
    """The history a live user record holds (``None`` for a missing, expired, foreign or
    damaged one)."""
    found = internal_value(record, _USER_KEY, now)
    return UserRisk.from_json(found) if isinstance(found, dict) else None


class RiskState(NamedTuple):
    """A session's risk history in memory: the engine's, the user's, the recent decisions."""

    session: SessionRisk
    user: UserRisk
    decisions: tuple[dict[str, Any], ...] = ()


class Assessment(NamedTuple):
    """One request's verdict and the session's history after it (``before``: the history
    it was scored against)."""

    verdict: Verdict
    state: RiskState
    observation: Observation
    before: RiskState | None = None

    @property
    def challenging(self) -> bool:
        """Whether the verdict is a step-up or a revoke."""
        return self.verdict.decision in _CHALLENGES

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
        # Per session id: the stored ``context`` a history was read from or learned over, and
        # the history; the least recently used session goes first.
        self._memo: OrderedDict[str, tuple[str, RiskState]] = OrderedDict()
        self._users: OrderedDict[str, UserRisk] = OrderedDict()  # each user's newest copy
        self._saved: dict[str, float] = {}  # the ``latest`` of each user's record as written
        # What confirmed() made per session, until the manager has written it (see adopt).
        self._confirming: OrderedDict[str, tuple[str, int, UserRisk]] = OrderedDict()

    # -- at login ---------------------------------------------------------------------------

    def login(
        self,
        context: RequestContext | None,
        now: float,
        others: Iterable[SessionRecord],
        stored: SessionRecord | None = None,
        user_id: str | None = None,
    ) -> str:
        """The ``context`` field of a new session of ``user_id`` signed in with ``context``;
        the user's history is the newest of their record (``stored``, see
        :func:`user_record_id`), this process's copy and the most recently active of
        ``others`` (their live sessions, written before the user record existed)."""
        if context is None:
            return ""
        obs = self.enricher.observe(context, now)
        user = _stored_user(stored, now) or UserRisk()
        newest = max(others, key=lambda r: r.last_seen, default=None)
        if newest is not None:
            state = self._state(newest)
            if state is not None and state.user.latest > user.latest:
                user = state.user
        if user_id is not None:
            user = self._freshest(user_id, user)
        user = remember(user, None, obs, self.policy)
        if user_id is not None:
            self._own(user_id, user)
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
            user = UserRisk()
            if record.user_id is not None:
                user = self._freshest(record.user_id, user)
            state = RiskState(begin(obs), remember(user, None, obs, self.policy))
            if record.user_id is not None:
                self._own(record.user_id, state.user)
            after = Assessment(LOGIN, state, obs)
        else:
            user = state.user
            if record.user_id is not None:
                user = self._freshest(record.user_id, user)
            after = self._scored(record, state, user, obs, now)
        self._keep(record, after.state)
        return after

    def reconsider(
        self, record: SessionRecord, scored: Assessment, stored: SessionRecord | None, now: float
    ) -> Assessment:
        """``scored`` (a challenge) scored again against the user's record as the store holds
        it (``stored``, see :func:`user_record_id`), if that knows more than the history it
        was scored against: another process may have learned what this one has not."""
        before, user = scored.before, _stored_user(stored, now)
        if before is None or user is None or user.latest <= before.user.latest:
            return scored
        if record.user_id is not None:
            user = self._freshest(record.user_id, user)
        after = self._scored(record, before, user, scored.observation, now)
        self._keep(record, after.state)
        return after

    def _scored(
        self,
        record: SessionRecord,
        state: RiskState,
        user: UserRisk,
        obs: Observation,
        now: float,
    ) -> Assessment:
        verdict = assess(obs, state.session, user, self._population, self.policy)
        before = RiskState(state.session, user, state.decisions)
        if verdict.decision is Decision.ALLOW:
            depth = novelty(state.session, obs.signals.network)
            if depth:
                self._counter.moved(depth)
                user = remember(user, state.session, obs, self.policy)
                if record.user_id is not None:
                    self._own(record.user_id, user)
        decisions = state.decisions
        if verdict.decision is not Decision.ALLOW:
            decisions = (*decisions, _summary(verdict, now))[-_KEPT_DECISIONS:]
        learned = learn(state.session, obs, verdict, self.policy)
        return Assessment(verdict, RiskState(learned, user, decisions), obs, before)

    def confirmed(self, record: SessionRecord, context: RequestContext, now: float) -> str:
        """The ``context`` field after the owner confirmed this request's context (signed in
        again after a step-up): it becomes the session's and the user's own."""
        obs = self.enricher.observe(context, now)
        state = self._state(record)
        if state is None:
            fresh = remember(UserRisk(), None, obs, self.policy)
            learned = self.dump(RiskState(begin(obs), fresh))
            _put(self._confirming, record.id, (learned, 0, fresh))
            return learned
        user = state.user
        if record.user_id is not None:  # kept only once the confirmation is written (adopt)
            user = self._newest(record.user_id, user)
        user = remember(user, state.session, obs, self.policy)
        # Shown with the decisions: the step-up was answered by the owner.
        mark = {"t": now, "decision": "confirmed", "score": None, "reasons": []}
        decisions = (*state.decisions, mark)[-_KEPT_DECISIONS:]
        learned = self.dump(RiskState(confirm(state.session, obs, self.policy), user, decisions))
        # A legitimate move for the population, counted once the confirmation is written.
        depth = novelty(state.session, obs.signals.network)
        _put(self._confirming, record.id, (learned, depth, user))
        return learned

    def stored(self, record: SessionRecord) -> str:
        """The ``context`` field to write for ``record`` now: its newest history in memory."""
        state = self._held(record)
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

    # -- the user's record ------------------------------------------------------------------

    def user_record(
        self, user_id: str, stored: SessionRecord | None, now: float
    ) -> SessionRecord | None:
        """The user's record to write now (a new version of ``stored``, or a first one), or
        ``None`` when this process's copy of the history has learned nothing that the record
        (as last written from here) or ``stored`` lacks."""
        user = self._users.get(user_id)
        if user is None or not self.unsaved(user_id):
            return None
        held = _stored_user(stored, now)
        if held is not None and (
            held.latest > user.latest
            or (held.latest == user.latest and held.tallies == user.tallies)
        ):
            self._saved[user_id] = held.latest
            return None
        data = json.dumps({_USER_KEY: user.to_json()}, separators=(",", ":"))
        until = now + self.policy.history_retention
        version = 1 if stored is None else stored.version + 1
        return internal_record(user_record_id(user_id), data, until, now, version)

    def adopt(self, record: SessionRecord, stored: str) -> None:
        """``stored`` (what :meth:`confirmed` made for ``record``) is written: its user's
        history becomes this process's copy if it is the newest, and the confirmed request
        counts as a legitimate move."""
        pending = self._confirming.pop(record.id, None)
        if pending is None or pending[0] is not stored:
            return
        _, depth, user = pending
        self._counter.moved(depth)
        if record.user_id is not None:
            self._freshest(record.user_id, user)

    def unsaved(self, user_id: str) -> bool:
        """Whether this process's copy of the user's history learned something it has not
        written (a dictionary lookup: called with every periodic write)."""
        user = self._users.get(user_id)
        return user is not None and user.latest > self._saved.get(user_id, 0.0)

    def user_saved(self, user_id: str, record: SessionRecord) -> None:
        """``record`` (from :meth:`user_record`) is in the store."""
        user = _stored_user(record, record.created_at)
        if user is not None:
            self._saved[user_id] = user.latest

    def forget_user(self, user_id: str) -> None:
        """Drop this process's copy of the user's history (their record was deleted)."""
        self._users.pop(user_id, None)
        self._saved.pop(user_id, None)

    def _newest(self, user_id: str, user: UserRisk) -> UserRisk:
        """Of ``user`` and this process's copy of the user's history, the one that learned
        last."""
        held = self._users.get(user_id)
        return held if held is not None and held.latest >= user.latest else user

    def _freshest(self, user_id: str, user: UserRisk) -> UserRisk:
        """:meth:`_newest`, kept as this process's copy."""
        newest = self._newest(user_id, user)
        self._own(user_id, newest)
        return newest

    def _own(self, user_id: str, user: UserRisk) -> None:
        """``user`` becomes this process's copy of the user's history; past the bound, the
        least recently used user's copy goes (their record in the store keeps it)."""
        gone = _put(self._users, user_id, user)
        if gone is not None:
            self._saved.pop(gone, None)

    # -- memory -----------------------------------------------------------------------------

    def _held(self, record: SessionRecord) -> RiskState | None:
        """The history this process holds for ``record``, if it was read from or learned
        over the ``context`` the record holds now (another process's write makes it stale)."""
        entry = self._memo.get(record.id)
        if entry is None or not (entry[0] is record.context or entry[0] == record.context):
            return None
        return entry[1]

    def _state(self, record: SessionRecord) -> RiskState | None:
        state = self._held(record)
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
        _put(self._memo, record.id, (record.context, state))


_V = TypeVar("_V")


def _put(memo: OrderedDict[str, _V], key: str, value: _V) -> str | None:
    """``memo[key] = value`` as its most recently used entry; past ``_MEMO_SIZE`` the least
    recently used goes, and its key is returned. Each step is one dictionary operation, so
    threads sharing the assessor cannot make another's step fail."""
    memo.pop(key, None)
    memo[key] = value
    if len(memo) > _MEMO_SIZE:
        try:
            return memo.popitem(last=False)[0]
        except KeyError:  # another thread emptied it first
            return None
    return None
