"""The session manager: the one entry point adapters and applications use.

It composes the pure core (token format, policy, events) with a store and a clock. This file
is the source of truth; ``sessionward.manager._sync.manager.SessionManager`` is generated from it.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sessionward._backoff import async_pause
from sessionward.clock import Clock, SystemClock
from sessionward.core import decision as decisions
from sessionward.core import token as tokens
from sessionward.core.context import ContextHistory, RequestContext
from sessionward.core.decision import (
    Action,
    Decision,
    Match,
    Proof,
    deadline_passed,
    decide,
    idle_deadline,
    match_secret,
    step_up,
)
from sessionward.core.events import (
    EventBus,
    RevokeReason,
    SessionCreated,
    SessionElevated,
    SessionRotated,
    SessionValidatedWithRotation,
    TokenRejected,
)
from sessionward.core.policy import Policy
from sessionward.core.record import (
    Session,
    SessionRecord,
    check_user_id,
    encode_data,
    encode_scopes,
    session_id_of,
)
from sessionward.core.risk_types import Decision as RiskDecision
from sessionward.core.successor import links_after_rotation, successor_of
from sessionward.errors import (
    AlreadyExists,
    InvalidArgument,
    InvalidToken,
    NotFound,
    StepUpRequired,
    StoreCorrupt,
    UpdateConflict,
    VersionConflict,
)
from sessionward.manager._async.confirming import AsyncConfirming
from sessionward.manager._async.ending import AsyncEnding
from sessionward.manager._async.proof import AsyncProofCheck
from sessionward.manager._async.remembering import AsyncRemembering
from sessionward.manager.risk import Assessment, RiskAssessor
from sessionward.stores._async.base import AsyncStore, AsyncUserIndex, UserCap
from sessionward.stores.locality import MAX_LOCALITY_BYTES, Locality

__all__ = ["AsyncSessionManager"]

_ID_ATTEMPTS = 4
_SERVE = decisions.ALLOW
_ROTATE = Action.ROTATE
_CURRENT = Match.CURRENT
_NONE = Match.NONE
_SCORED = frozenset({Action.ALLOW, Action.TOUCH, Action.ROTATE, Action.SUCCESSOR})
_HOLD = Action.HOLD
_PENDING = Proof.PENDING
_RISK_ALLOW = RiskDecision.ALLOW
_compare = hmac.compare_digest
DataUpdate = Callable[[dict[str, Any]], Mapping[str, Any] | None]


class AsyncSessionManager(AsyncEnding, AsyncConfirming, AsyncRemembering):
    """Issues, validates, rotates and revokes sessions kept in ``store``.

    ``policy`` sets lifetimes and renewal, ``clock`` supplies the time (inject a fake one in
    tests), ``events`` receives lifecycle events (default: structured logging). ``admit``, if
    given, must accept a record before ``validate`` authenticates it (or renews it): a store
    shared by two kinds of session, such as ordinary sessions and JWT refresh families,
    keeps each kind's tokens out of the other's manager. A refused record is rejected as
    ``refused``, untouched. ``risk`` turns on hijack scoring (see ``manager.risk``).
    """

    def __init__(
        self,
        store: AsyncStore,
        *,
        policy: Policy | None = None,
        clock: Clock | None = None,
        events: EventBus | None = None,
        admit: Callable[[SessionRecord], bool] | None = None,
        risk: RiskAssessor | None = None,
    ) -> None:
        self.store = store
        self._index: AsyncUserIndex | None = store if isinstance(store, AsyncUserIndex) else None
        self._locality: Locality | None = store if isinstance(store, Locality) else None
        self._admit = admit
        self.policy = policy or Policy()
        self.clock: Clock = clock or SystemClock()
        self.events = events or EventBus()
        self._history = ContextHistory(self.policy.context_history).after
        self._risk = risk

    @property
    def risk(self) -> RiskAssessor | None:
        """The risk assessor scoring requests, or ``None`` when hijack scoring is off."""
        return self._risk

    def _locality_of(self, user_id: str | None) -> bytes:
        """The leading bytes of a new id of ``user_id``'s: what a ``Locality`` store asks."""
        if user_id is None or self._locality is None:
            return b""
        locality = self._locality.user_locality(user_id)
        if type(locality) is not bytes or len(locality) > MAX_LOCALITY_BYTES:
            raise StoreCorrupt(f"user_locality must return at most {MAX_LOCALITY_BYTES} bytes")
        return locality

    # -- creating ---------------------------------------------------------------------------

    async def issue(
        self,
        user_id: str | None = None,
        *,
        auth_level: int = 1,
        auth_time: float | None = None,
        scopes: Iterable[str] = (),
        data: Mapping[str, Any] | None = None,
        context: RequestContext | None = None,
        previous: Session | None = None,
    ) -> Session:
        """Start a session: a login when ``user_id`` is given, an anonymous session otherwise.

        ``previous`` is the session the client held before (for example the anonymous one with
        the cart): its data is carried over when it was anonymous or the same user's (``data``
        keys win), and its token is killed, so a
        fixed or leaked pre-login token is worthless afterwards. The new session always gets a
        new id and secret. ``session.token`` of the result must be sent to the client.
        """
        now = self.clock.now()
        if user_id is not None:
            check_user_id(user_id)
        if isinstance(auth_level, bool) or not isinstance(auth_level, int) or auth_level < 0:
            raise InvalidArgument("auth_level must be a non-negative integer")
        merged = await self._carried_data(previous, user_id)
        if data is not None:
            if not isinstance(data, Mapping):
                raise InvalidArgument("session data must be a mapping")
            merged.update(data)
        encoded = encode_data(merged, self.policy.max_data_bytes)
        scope_text = encode_scopes(scopes)
        if self._risk is None:
            history = self._history("", context, now)
        else:
            scoring = context is not None and user_id is not None  # else: nothing to read
            stored = await self._user_history(user_id) if scoring else None
            # Sessions written before the user's record existed hold the history themselves.
            listed = scoring and stored is None and self._index is not None
            others = await self.list_user(user_id) if user_id and listed else []
            history = self._risk.login(context, now, (o.record for o in others), stored, user_id)
            if user_id is not None and scoring:
                await self._write_user_history(self._risk, user_id, now, stored)
        cap = self._cap(user_id, now)
        replaced_first = False
        if previous is not None and cap is not None and previous.user_id == user_id:
            # A re-login replaces the user's own session: free its slot before the cap counts
            # it, or the cap would reject the login or evict another device.
            replaced_first = await self.store.delete(previous.id)
        locality = self._locality_of(user_id)
        for _ in range(_ID_ATTEMPTS):
            raw, parsed = tokens.mint(locality=locality)
            record = SessionRecord(
                id=parsed.session_id,
                secret_hash=tokens.verifier(parsed.secret),
                prev_secret_hash=None,
                grace_until=0.0,
                generation=0,
                user_id=user_id,
                auth_level=0 if user_id is None else auth_level,
                auth_time=None if user_id is None else (now if auth_time is None else auth_time),
                scopes=scope_text,
                data=encoded,
                created_at=now,
                rotated_at=now,
                last_seen=now,
                expires_at=idle_deadline(now, now + self.policy.absolute_timeout, self.policy),
                absolute_expires_at=now + self.policy.absolute_timeout,
                version=1,
                context=history,
            )
            try:
                evicted = await self.store.add(record, cap=cap)
            except AlreadyExists:
                continue
            break
        else:  # pragma: no cover - 96 random bits colliding four times in a row
            raise StoreCorrupt("could not allocate a unique session id")
        for session_id in evicted:
            self._emit_revoked(session_id, user_id, now, RevokeReason.SESSION_LIMIT)
        upgraded = None
        if previous is not None and (replaced_first or await self.store.delete(previous.id)):
            upgraded = previous.id
            self._emit_revoked(previous.id, previous.user_id, now, RevokeReason.LOGIN_UPGRADE)
        self.events.emit(
            SessionCreated(
                record.id, user_id, now, anonymous=user_id is None, upgraded_from=upgraded
            )
        )
        return Session(record, raw, presented=parsed.secret)

    async def _carried_data(self, previous: Session | None, user_id: str | None) -> dict[str, Any]:
        # Data follows an anonymous session into a login, or the same user's re-login; never
        # one user's data into another user's session.
        if previous is None or not (previous.is_anonymous or previous.user_id == user_id):
            return {}
        # Re-read: the cart may have changed since ``previous`` was validated.
        current = await self.store.get(previous.id)
        return dict(Session(current).data) if current is not None else {}

    def _cap(self, user_id: str | None, now: float) -> UserCap | None:
        limit = self.policy.max_sessions_per_user
        if user_id is None or limit is None:
            return None
        return UserCap(limit, self.policy.on_session_limit == "evict_oldest", now)

    # -- validating -------------------------------------------------------------------------

    async def validate(
        self,
        token: object,
        *,
        context: RequestContext | None = None,
        proof: AsyncProofCheck | None = None,
    ) -> Session:
        """Return the session ``token`` authenticates, or raise ``InvalidToken``.

        Malformed tokens are rejected before any store access. Idle and absolute deadlines are
        enforced (``SessionExpired``). A secret rotated out less than ``rotation_grace``
        seconds ago still works, and the returned session carries the current token (its
        successor) for the client to switch to; presented after the window, it revokes the
        session as stolen. When the policy's ``rotate_after`` is due, the returned session
        carries a new ``token``. ``proof`` checks a key-bound session's proof of possession
        before anything is written (see ``manager._async.proof``).
        """
        now = self.clock.now()
        try:
            session_id, secret = tokens.parse(token)
        except InvalidToken as exc:
            self.events.emit(TokenRejected(None, None, now, reason=exc.reason))
            raise
        verifier = tokens.verifier(secret)
        lost = 0
        while True:
            record = await self.store.get(session_id)
            if record is None:
                raise self._rejected("unknown", session_id, None, now)
            if _compare(verifier, record.secret_hash):  # the common case, inlined
                match, successor = _CURRENT, None
            else:
                match, successor = match_secret(record, secret, now)
            admitted = self._admit is None or match is _NONE or self._admit(record)
            decision = decide(record, now, self.policy, match, admitted=admitted)
            if proof is not None and decision.action in _SCORED:
                verdict = await proof(record)  # a refused proof raises: nothing written
                if verdict is _PENDING:
                    decision = decide(record, now, self.policy, match, proof=verdict)
            if decision is _SERVE and context is None:
                return Session(record, None, secret)  # the hot path: nothing to write
            scored, risk = None, self._risk
            if risk and context and record.user_id and decision.action in _SCORED:
                scored = risk.assess(record, context, now, previous_secret=match is not _CURRENT)
                if scored.challenging:  # unless the user's newest history says otherwise
                    scored = await self._reconsidered(risk, record, scored, now)
                if scored.verdict.decision is not _RISK_ALLOW:
                    self.events.emit(scored.event(record, now))
                    decision = decide(record, now, self.policy, match, risk=scored.risk)
            if decision.action is not _ROTATE:
                served = await self._carry_out(
                    decision, record, secret, successor, now, context, scored
                )
                if scored is not None:
                    served.risk = scored.verdict
                return served
            renewed = await self._rotate_record(record, now, secret, context=context)
            if renewed is not None:
                if scored is not None:
                    renewed.risk = scored.verdict
                self.events.emit(
                    SessionValidatedWithRotation(
                        record.id, record.user_id, now, generation=renewed.generation
                    )
                )
                return renewed
            lost += 1
            if lost == _ID_ATTEMPTS:  # still losing to other writers: renew on a later request
                return Session(record, None, secret)
            # Another request wrote first; read again: if it rotated, its secret is ours too.

    async def _carry_out(
        self,
        decision: Decision,
        record: SessionRecord,
        secret: bytes,
        successor: bytes | None,
        now: float,
        context: RequestContext | None,
        scored: Assessment | None = None,
    ) -> Session:
        action = decision.action
        if action is _HOLD:
            return Session(record, None, secret)
        if action is Action.ALLOW or action is Action.TOUCH:
            return await self._note_activity(
                record, now, secret, context, touch=action is Action.TOUCH
            )
        if action is Action.STEP_UP and scored is not None:
            raise scored.challenge(record)
        if action is Action.REVOKE:
            if await self.store.delete(record.id):
                self._emit_revoked(record.id, record.user_id, now, RevokeReason.RISK)
            if scored is not None:
                raise scored.revoked(record)
            raise InvalidToken("risk", record.id)
        if action is Action.SUCCESSOR:
            return self._handover(record, secret, successor, now)
        if action is Action.EXPIRE:
            await self._expire(record, now, decision.reason)
        if action is Action.THEFT:
            await self._theft(record, now)
            raise InvalidToken(decision.reason, record.id)
        raise self._rejected(decision.reason, record.id, record.user_id, now)

    def _handover(
        self, record: SessionRecord, secret: bytes, successor: bytes | None, now: float
    ) -> Session:
        """The session for a secret rotated out inside its grace window, with the current
        secret's token when a successor link leads there (none does after a rotation by a
        caller that did not hold the previous secret)."""
        if successor is None:
            successor = successor_of(record, secret, now)
        token = None if successor is None else tokens.token_from_parts(record.id, successor)
        return Session(record, token, presented=secret)

    def _context_after(
        self, record: SessionRecord, context: RequestContext | None, now: float
    ) -> str:
        """The ``context`` field to write with ``record``'s next write."""
        if self._risk is None:
            return self._history(record.context, context, now)
        return self._risk.stored(record)

    def _rejected(
        self, reason: str, session_id: str, user_id: str | None, now: float
    ) -> InvalidToken:
        self.events.emit(TokenRejected(session_id, user_id, now, reason=reason))
        return InvalidToken(reason, session_id)

    async def _note_activity(
        self,
        record: SessionRecord,
        now: float,
        secret: bytes,
        context: RequestContext | None,
        *,
        touch: bool,
    ) -> Session:
        history = record.context  # scored history rides on the periodic write only
        if touch and self._risk is not None:
            await self._save_user_history(record.user_id, now)
        if touch or self._risk is None:
            history = self._context_after(record, context, now)
        expires_at = idle_deadline(now, record.absolute_expires_at, self.policy)
        if history is not record.context:
            updated = record._replace(
                last_seen=now, expires_at=expires_at, context=history, version=record.version + 1
            )
            try:
                await self.store.replace(updated, expected_version=record.version)
            except VersionConflict:
                # Another request wrote first; its write counts.
                return Session(record, presented=secret)
            except NotFound:
                raise InvalidToken("unknown", record.id) from None
            return Session(updated, presented=secret)
        if touch:
            await self.store.touch(record.id, last_seen=now, expires_at=expires_at)
            record = record._replace(last_seen=now, expires_at=expires_at)
        return Session(record, presented=secret)

    # -- rotating and stepping up -----------------------------------------------------------

    async def rotate(self, session: Session, *, context: RequestContext | None = None) -> Session:
        """Give the session a new secret (same public id). The previous secret keeps working
        for ``policy.rotation_grace`` seconds, resolving to the current one; presented later,
        it revokes the session.

        Idempotent per presented secret: when another request already rotated the session
        away from the secret ``session`` was authenticated with, this returns the current
        session with that rotation's token instead of rotating again. A session that carries
        no secret (one from ``get``) comes back current and without a token if another
        request rotated it first.
        """
        now = self.clock.now()
        record, secret = session.record, session._presented
        for _ in range(_ID_ATTEMPTS):
            if secret is not None:
                match, successor = match_secret(record, secret, now)
                decision = decide(record, now, self.policy, match)
                if decision.action is Action.SUCCESSOR:
                    return self._handover(record, secret, successor, now)
                if decision.action is Action.EXPIRE:
                    await self._expire(record, now, decision.reason)
                if match is not Match.CURRENT:
                    # Validated once, rotated out since, and its window closed: not theft.
                    raise self._rejected("stale", record.id, record.user_id, now)
            elif record.generation != session.generation:
                return Session(record)
            rotated = await self._rotate_record(record, now, secret, context=context)
            if rotated is not None:
                self.events.emit(
                    SessionRotated(record.id, record.user_id, now, generation=rotated.generation)
                )
                return rotated
            record = await self._live(record.id, now)
        raise UpdateConflict("rotation kept losing races")

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
    ) -> Session | None:
        """Write ``record`` with a new secret; ``None`` when another writer got there first.

        ``secret`` is the record's current secret when the caller holds it: the successor
        links are then written (and older ones carried forward) for its grace window."""
        raw, parsed = tokens.mint(record.id)
        window = self.policy.rotation_grace if grace else 0.0
        links = None
        if grace and secret is not None:
            links = links_after_rotation(record, secret, parsed.secret, now, window)
        updated = record._replace(
            secret_hash=tokens.verifier(parsed.secret),
            prev_secret_hash=record.secret_hash if grace else None,
            grace_until=now + window if grace else 0.0,
            generation=record.generation + 1,
            rotated_at=now,
            last_seen=now,
            expires_at=idle_deadline(now, record.absolute_expires_at, self.policy),
            context=self._context_after(record, context, now) if stored is None else stored,
            version=record.version + 1,
            successor=links,
            **changes,
        )
        try:
            await self.store.replace(updated, expected_version=record.version)
        except VersionConflict:
            return None
        except NotFound:
            raise InvalidToken("unknown", record.id) from None
        return Session(updated, raw, presented=parsed.secret)

    async def _live(self, session_id: str, now: float) -> SessionRecord:
        record = await self.store.get(session_id)
        if record is None or record.is_internal:  # an internal record is no session
            raise InvalidToken("unknown", session_id)
        passed = deadline_passed(record, now)
        if passed is not None:
            await self._expire(record, now, passed.reason)
        return record

    async def elevate(
        self,
        session: Session,
        *,
        auth_level: int | None = None,
        scopes: Iterable[str] | None = None,
    ) -> Session:
        """Record a fresh (re-)authentication: ``auth_time`` becomes now, the level and scopes
        may change, and the secret is rotated with no grace window (a privilege change).

        Call it after the user proved a factor again (step-up). The result carries the new
        token; the old one is dead at once.
        """
        now = self.clock.now()
        if session.is_anonymous:
            raise InvalidArgument("an anonymous session cannot be elevated; issue one instead")
        changes: dict[str, Any] = {"auth_time": now}
        if auth_level is not None:
            if isinstance(auth_level, bool) or not isinstance(auth_level, int) or auth_level < 0:
                raise InvalidArgument("auth_level must be a non-negative integer")
            changes["auth_level"] = auth_level
        if scopes is not None:
            changes["scopes"] = encode_scopes(scopes)
        record = await self._live(session.id, now)
        for _ in range(_ID_ATTEMPTS):
            if record.generation != session.generation:
                raise InvalidToken("stale", record.id)
            elevated = await self._rotate_record(record, now, None, grace=False, **changes)
            if elevated is not None:
                self.events.emit(
                    SessionElevated(record.id, record.user_id, now, auth_level=elevated.auth_level)
                )
                return elevated
            record = await self._live(session.id, now)
        raise UpdateConflict("elevation kept losing races")

    def require_recent_auth(
        self, session: Session, *, max_age: float | None = None, min_level: int = 1
    ) -> None:
        """Raise ``StepUpRequired`` unless the session authenticated at ``min_level`` or higher
        within the last ``max_age`` seconds (``None``: any age)."""
        decision = step_up(session.record, self.clock.now(), max_age=max_age, min_level=min_level)
        if decision.action is not Action.ALLOW:
            raise StepUpRequired(max_age=max_age, min_level=min_level)

    async def update_data(
        self, session: Session | str, change: DataUpdate, *, retries: int = 32
    ) -> Session:
        """Change the session's data without losing concurrent updates.

        ``change`` receives a copy of the current data and mutates it (or returns a new
        mapping). On a concurrent write it is called again on the fresh data, so it must
        depend only on its argument. Each lost race is followed by a short random pause that
        grows with every loss (at most 10 ms), so writers hammering one session do not fall
        into lockstep. Raises ``UpdateConflict`` after ``retries`` lost races,
        ``DataTooLarge`` over the size limit, ``InvalidToken`` if the session is gone.
        """
        session_id = session_id_of(session)
        now = self.clock.now()
        record, secret = None, None
        if isinstance(session, Session):
            record, secret = session.record, session._presented
        for lost in range(max(1, retries)):
            if record is None or now >= record.expires_at:
                record = await self._live(session_id, now)
            data = dict(Session(record).data)
            result = change(data)
            encoded = encode_data(data if result is None else result, self.policy.max_data_bytes)
            # A change is activity. ``record`` may predate a touch (which keeps the version):
            # writing its deadline back would shorten the session.
            updated = record._replace(
                data=encoded,
                version=record.version + 1,
                last_seen=now,
                expires_at=idle_deadline(now, record.absolute_expires_at, self.policy),
            )
            try:
                await self.store.replace(updated, expected_version=record.version)
            except VersionConflict:
                record = None
                await async_pause(lost)  # break a lockstep with another writer
                continue
            except NotFound:
                raise InvalidToken("unknown", session_id) from None
            return Session(updated, presented=secret)
        raise UpdateConflict(f"data update lost {retries} races")

    # -- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        await self.store.close()

    async def __aenter__(self) -> AsyncSessionManager:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
