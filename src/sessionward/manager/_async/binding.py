"""Key-bound sessions against the manager's store: DBSC registrations and refreshes (native or
the page-script fallback) and the shared replay cache of DPoP proofs.

Each step is one read of the session (the caller validated it already) and one conditional
``replace`` of its record, so a challenge is spent once even when two nodes race; a lost race
is re-read and retried, never answered from stale state. This file is the source;
``sessionward.manager._sync.binding`` is generated from it.
"""

from __future__ import annotations

import hmac
import json
from typing import Any, Literal, NamedTuple

from sessionward.core import binding as states
from sessionward.core import dbsc
from sessionward.core.binding import BindingPolicy, Method
from sessionward.core.decision import Proof, idle_deadline
from sessionward.core.dpop import DpopPolicy, DpopProof
from sessionward.core.events import SessionBound, TheftSuspected, TokenRejected
from sessionward.core.jwk import ClientKey
from sessionward.core.record import Session, SessionRecord, encode_data, revised
from sessionward.errors import (
    AlreadyExists,
    InvalidProof,
    NotFound,
    UpdateConflict,
    VersionConflict,
)
from sessionward.manager._async.manager import AsyncSessionManager

__all__ = ["AsyncBinder", "AsyncCookieCheck", "AsyncDpopCheck", "Refresh", "Registered", "dpop_key"]

_ATTEMPTS = 4
# Proof failures that only the holder of a copied cookie or token (and not of the key) produces.
_FORGERY = frozenset(
    (
        "signature",
        "alg",
        "typ",
        "jwk-malformed",
        "jwk-mismatch",
        "jwk-private",
        "jkt",
        "dpop-missing",
    )
)


class Registered(NamedTuple):
    """A registration that bound the session: the first bound cookie and the DBSC ids."""

    session: Session
    cookie: str
    sid: str


class Refresh(NamedTuple):
    """What a refresh request gets: ``refreshed`` (a new ``cookie`` and the next
    ``challenge``), ``challenge`` (answer 403 with ``challenge``) or ``end`` (the browser
    must drop its bound session: the session is gone or not bound to that identifier)."""

    outcome: Literal["refreshed", "challenge", "end"]
    sid: str | None = None
    challenge: str | None = None
    cookie: str | None = None
    session: Session | None = None


_END = Refresh("end")
_UNBOUND = Proof.UNBOUND
_MARK = states.MARK
_COOKIE_BOUND = ("dbsc", "webcrypto")


def dpop_key(record: SessionRecord) -> str | None:
    """The thumbprint of the DPoP key ``record``'s session is bound to, if any."""
    if states.MARK not in record.data:  # the common case: no JSON parse
        return None
    state = states.state_of(json.loads(record.data))
    jkt = state.get("jkt") if state is not None and state.get("method") == "dpop" else None
    return jkt if isinstance(jkt, str) else None


class AsyncCookieCheck:
    """The DBSC precondition of ``validate``: a cookie-bound session is proven by a live bound
    cookie (``presented``); without one it is pending, served without any write until the
    browser's refresh proves the key (the adapter decides whether to serve it at all)."""

    __slots__ = ("binder", "presented")

    def __init__(self, binder: AsyncBinder, presented: str | None) -> None:
        self.binder = binder
        self.presented = presented

    async def __call__(self, record: SessionRecord) -> Proof:
        if _MARK not in record.data:  # the common case: not bound, no JSON parse
            return _UNBOUND
        ok = self.binder.stored_cookie_ok(record.data, self.presented)
        if ok is None:
            return Proof.UNBOUND
        return Proof.PROVEN if ok else Proof.PENDING


class AsyncDpopCheck:
    """The DPoP precondition of ``validate``: a session bound to a DPoP key is served only
    with a valid proof of that key for this request (``scheme`` ``dpop``); anything else
    raises ``InvalidProof`` before the session is written. ``checked`` is the spent proof,
    checked once however often a lost write race calls again."""

    __slots__ = ("access_token", "binder", "checked", "method", "policy", "proof", "scheme", "url")

    def __init__(
        self,
        binder: AsyncBinder,
        policy: DpopPolicy,
        proof: str | None,
        *,
        method: str,
        url: str,
        access_token: str | None,
        scheme: str = "dpop",
    ) -> None:
        self.binder, self.policy, self.proof = binder, policy, proof
        self.method, self.url, self.access_token = method, url, access_token
        self.scheme = scheme
        self.checked: DpopProof | None = None

    async def __call__(self, record: SessionRecord) -> Proof:
        jkt = dpop_key(record)
        if jkt is None:
            return Proof.UNBOUND
        if self.checked is not None and hmac.compare_digest(self.checked.jkt, jkt):
            return Proof.PROVEN
        if self.scheme != "dpop":
            raise InvalidProof("dpop-scheme", record.id)  # a bound token sent as a bearer token
        self.checked = await self.binder.check_dpop(
            self.policy,
            self.proof,
            method=self.method,
            url=self.url,
            access_token=self.access_token,
            jkt=jkt,
            session=Session(record),
        )
        return Proof.PROVEN


class AsyncBinder:
    """Binds sessions of ``manager`` to keys (see :mod:`sessionward.core.binding`)."""

    def __init__(self, manager: AsyncSessionManager, policy: BindingPolicy | None = None) -> None:
        self.manager = manager
        self.policy = policy or BindingPolicy()
        # The fields of the binding last read, by the identity of the record's data text: a
        # refresh request reads them in its validation (the bound-cookie check) and again in
        # the refresh, of the very same record. A tuple, replaced whole: safe across threads.
        self._last: tuple[str, tuple[states.Stored, list[str]] | None] = ("", None)

    def fields(self, data: str) -> tuple[states.Stored, list[str]] | None:
        """:func:`~sessionward.core.binding.bound_fields` of ``data``, read once per record."""
        last = self._last
        if last[0] is data:
            return last[1]
        fields = states.bound_fields(data)
        self._last = (data, fields)
        return fields

    # -- DBSC -------------------------------------------------------------------------------

    async def reoffer(self, session: Session) -> tuple[str, str] | None:
        """A fresh registration challenge for a logged-in session that is not bound (what the
        fallback script asks for); ``(challenge, authorization)``, or ``None`` when the
        session is bound already or anonymous."""
        record = session.record
        for _ in range(_ATTEMPTS):
            state = states.state_of(json.loads(record.data))
            if record.user_id is None or (state is not None and state["state"] == "bound"):
                return None
            now = self.manager.clock.now()
            if state is None or states.authorization_of(state) is None:
                fresh, challenge, authorization = states.offer(now)
            else:
                fresh, challenge = states.add_challenge(state, now, self.policy)
                authorization = states.authorization_of(state) or ""
            written = await self._write(record, fresh, now)
            if isinstance(written, Session):
                return challenge, authorization
            if written is None:
                return None
            record = written
        return None

    async def register(
        self,
        session: Session,
        response: str | None,
        *,
        method: Method = "dbsc",
        audience: str | None = None,
    ) -> Registered:
        """Bind ``session`` to the key in the registration JWT ``response``; raises
        :class:`~sessionward.errors.InvalidProof` (the session stays as it was)."""
        record = session.record
        for _ in range(_ATTEMPTS):
            now = self.manager.clock.now()
            state = states.state_of(json.loads(record.data))
            if record.user_id is None or state is None or state["state"] != "offered":
                raise self._refused(record, now, "not-offered")
            try:
                registration = dbsc.verify_registration(
                    response,
                    algorithms=self.policy.algorithms,
                    authorization=states.authorization_of(state),
                    audience=audience,
                )
            except InvalidProof as exc:
                raise self._refused(record, now, exc.reason) from None
            if states.take_challenge(state, registration.jti, now, self.policy) is None:
                raise self._refused(record, now, "challenge")
            bound = states.bound_state(registration.key, method, now)
            bound, cookie = states.new_cookie(bound, now, self.policy)
            written = await self._write(record, bound, now)
            if isinstance(written, Session):
                self.manager.events.emit(
                    SessionBound(record.id, record.user_id, now, method=method, jkt=bound["jkt"])
                )
                return Registered(written, cookie, bound["sid"])
            if written is None:
                break
            record = written
        raise InvalidProof("gone", record.id)

    async def refresh(self, session: Session, sid: str | None, proof: str | None) -> Refresh:
        """Answer a refresh of the DBSC session ``sid`` held by ``session``'s browser."""
        record = session.record
        # A lost race re-reads the record; the proof is verified again only if the stored key
        # changed in between (keys are cached, one object per stored key).
        verified: tuple[ClientKey, str | None] | None = None
        policy = self.policy
        for _ in range(_ATTEMPTS):
            now = self.manager.clock.now()
            fields = self.fields(record.data)
            if fields is None or fields[1][2] not in _COOKIE_BOUND or sid is None:
                return _END
            stored, parts = fields
            if not hmac.compare_digest(parts[5].encode(), sid.encode()):
                return _END
            key = states.stored_key(parts)
            if key is None:
                return _END
            jti = None
            if proof is not None:
                if verified is None or verified[0] is not key:
                    verified = (key, self._proof_jti(record, key, proof, now))
                jti = verified[1]
            step = states.refresh_step(parts, jti, now, policy)
            cookie = step.cookie
            if jti is not None and cookie is None:
                self._refused(record, now, "challenge")
            limit = self.manager.policy.max_data_bytes
            data = states.replace_stored(record.data, stored, step.value, limit)
            written = await self._replace(record, data, now, active=cookie is not None)
            if isinstance(written, Session):
                if cookie is None:
                    return Refresh("challenge", sid, step.challenge, None, written)
                return Refresh("refreshed", sid, step.challenge, cookie, written)
            if written is None:
                return _END
            record = written
        raise UpdateConflict("refresh kept losing races")  # answered 503: the browser retries

    def _proof_jti(
        self, record: SessionRecord, key: ClientKey, proof: str, now: float
    ) -> str | None:
        """The challenge a refresh proof signed with ``key`` answers, or ``None`` (an event
        says why)."""
        try:
            return dbsc.verify_refresh(proof, key)
        except InvalidProof as exc:
            self._refused(record, now, exc.reason)
            return None

    def cookie_ok(self, session: Session, presented: str | None) -> bool | None:
        """Whether a request of ``session`` proves the key through its bound cookie: ``None``
        when the session does not need one (not bound, or bound by DPoP)."""
        return self.stored_cookie_ok(session.record.data, presented)

    def stored_cookie_ok(self, data: str, presented: str | None) -> bool | None:
        """:meth:`cookie_ok` of a record's data JSON text, read in place (once per record:
        the validation's check and the adapter's admission read the same one)."""
        fields = self.fields(data)
        if fields is None or fields[1][2] == "dpop":
            return None
        return states.presented_ok(fields[1], presented, self.manager.clock.now())

    def _refused(self, record: SessionRecord, now: float, reason: str) -> InvalidProof:
        events = self.manager.events
        if reason in _FORGERY:
            events.emit(
                TheftSuspected(record.id, record.user_id, now, detail=f"binding-proof-{reason}")
            )
        else:
            events.emit(TokenRejected(record.id, record.user_id, now, reason=f"binding-{reason}"))
        return InvalidProof(reason, record.id)

    async def _write(
        self, record: SessionRecord, state: dict[str, Any] | None, now: float
    ) -> Session | SessionRecord | None:
        """Store ``state`` in ``record`` (see :meth:`_replace`)."""
        data = states.with_state(json.loads(record.data), state)
        return await self._replace(
            record, encode_data(data, self.manager.policy.max_data_bytes), now
        )

    async def _replace(
        self, record: SessionRecord, data: str, now: float, *, active: bool = True
    ) -> Session | SessionRecord | None:
        """Write ``data`` (JSON text) into ``record`` with one conditional ``replace``: the new
        session, or the fresh record after a lost race, or ``None`` when it is gone. Not
        ``active`` (a challenge sent, the key not proven): the activity time stays as it was."""
        if active:
            deadline = idle_deadline(now, record.absolute_expires_at, self.manager.policy)
            updated = revised(record, data, record.version + 1, now, deadline)
        else:
            updated = revised(record, data, record.version + 1, record.last_seen, record.expires_at)
        try:
            await self.manager.store.replace(updated, expected_version=record.version)
        except VersionConflict:
            fresh = await self.manager.store.get(record.id)
            return fresh if fresh is not None and now < fresh.expires_at else None
        except NotFound:
            return None
        return Session(updated)

    # -- DPoP -------------------------------------------------------------------------------

    async def first_use(self, kind: str, jti: str, until: float) -> bool:
        """Remember ``jti`` until ``until`` in the store; ``False`` when some node already
        did (a replay). One create-only write."""
        record = states.replay_record(kind, jti, until, self.manager.clock.now())
        try:
            await self.manager.store.add(record)
        except AlreadyExists:
            return False
        return True

    async def check_dpop(
        self,
        policy: DpopPolicy,
        proof: str | None,
        *,
        method: str,
        url: str,
        access_token: str | None = None,
        jkt: str | None = None,
        session: Session | None = None,
    ) -> DpopProof:
        """Verify a DPoP proof for this request and spend its ``jti``; raises
        :class:`~sessionward.errors.InvalidProof` (``replayed`` for a ``jti`` seen before).

        With the ``session`` bound to the key ``jkt``, a refusal is also an event of that
        session: ``TheftSuspected`` when the key was not proven at all (no proof, another
        key's, a bad signature), ``TokenRejected`` otherwise; a request for the server's
        nonce is part of the protocol and not reported."""
        now = self.manager.clock.now()
        try:
            if proof is None:
                raise InvalidProof("dpop-missing")
            checked = policy.verify(
                proof, method=method, url=url, now=now, access_token=access_token, jkt=jkt
            )
            spent = f"{checked.jkt}.{checked.jti}"
            if not await self.first_use("dpop", spent, checked.replay_until):
                raise InvalidProof("replayed")
        except InvalidProof as exc:
            if session is not None and jkt is not None and exc.reason != "use_dpop_nonce":
                self._refused(session.record, now, exc.reason)
            raise
        return checked
