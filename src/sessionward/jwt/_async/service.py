"""The token service: logins, refreshes, verification and revocation in stateless mode.

Short-lived signed access tokens (JWT) are verified without a store round trip; the refresh
token is an opaque sessionward token of a *backing session* in the session manager's store.
Every refresh rotates that session's secret (with the manager's grace window), so:

* a refresh token works once; the previous one keeps working for ``policy.rotation_grace``
  seconds and then yields exactly the same new pair (several tabs, a retried request);
* presenting a rotated refresh token after its grace window is theft: the whole session is
  revoked, a ``TheftSuspected`` event is emitted, and the access tokens naming the session
  are rejected by this process at once (and everywhere with ``check_session=True``).

With ``dpop=DpopPolicy(...)``, a login given the key thumbprint of a checked DPoP proof
(``dpop_jkt``) binds the family to that key (RFC 9449): its access tokens carry ``cnf.jkt``
and are accepted only with a fresh proof of that key, and its refresh token is exchanged only
with one. Proof ``jti`` values are remembered in the manager's store, shared by every node.

This file is the async source; ``sessionward.jwt._sync.service`` is generated from it.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping
from typing import Any

from sessionward.core import binding as states
from sessionward.core import token as tokens
from sessionward.core.context import RequestContext
from sessionward.core.decision import Proof
from sessionward.core.dpop import DpopPolicy, DpopProof, bound_jkt
from sessionward.core.events import (
    AllSessionsRevoked,
    Event,
    RevokeReason,
    SessionElevated,
    SessionExpired,
    SessionRevoked,
    SessionRotated,
    TheftSuspected,
)
from sessionward.core.record import Session, SessionRecord, encode_data
from sessionward.errors import (
    ConfigError,
    InvalidArgument,
    InvalidProof,
    InvalidToken,
    NotFound,
    StepUpRequired,
    UpdateConflict,
    VersionConflict,
)
from sessionward.jwt import refresh
from sessionward.jwt.access import (
    DEFAULT_LIFETIME,
    DEFAULT_TYP,
    AccessClaims,
    AccessTokenIssuer,
    AccessTokenVerifier,
)
from sessionward.jwt.keyset import KeySet
from sessionward.jwt.refresh import FAMILY_KEY, TokenPair
from sessionward.jwt.revocation import Revocations
from sessionward.manager._async.binding import AsyncBinder
from sessionward.manager._async.manager import AsyncSessionManager

__all__ = ["AsyncTokenService"]

_ATTEMPTS = 4


class AsyncTokenService:
    """Issues token pairs backed by sessions of ``manager`` and verifies access tokens.

    ``issuer`` and ``audience`` go into (and are required from) every access token;
    ``lifetime`` is the access-token lifetime (default 5 min, at most the key set's
    ``max_token_lifetime``, itself at most 15 min). The refresh token's idle and absolute
    lifetimes and its grace window are the manager's policy (``idle_timeout``,
    ``absolute_timeout``, ``rotation_grace``); give refresh sessions a manager of their own.
    The manager's clock is the clock of the tokens too.
    """

    def __init__(
        self,
        manager: AsyncSessionManager,
        keyset: KeySet,
        *,
        issuer: str,
        audience: str,
        typ: str = DEFAULT_TYP,
        lifetime: float = DEFAULT_LIFETIME,
        revocations: Revocations | None = None,
        cache_size: int = 4096,
        dpop: DpopPolicy | None = None,
    ) -> None:
        if manager.policy.rotate_after is not None:
            raise ConfigError("refresh sessions rotate on use; set the policy's rotate_after=None")
        self.manager = manager
        self.clock = manager.clock
        self.revocations = revocations or Revocations(
            retention=keyset.max_token_lifetime + keyset.skew, skew=keyset.skew
        )
        self.issuer = AccessTokenIssuer(
            keyset, issuer=issuer, audience=audience, typ=typ, lifetime=lifetime, clock=self.clock
        )
        self.verifier = AccessTokenVerifier(
            keyset,
            issuer=issuer,
            audience=audience,
            typ=typ,
            skew=keyset.skew,
            revocations=self.revocations,
            cache_size=cache_size,
            clock=self.clock,
        )
        self.dpop = dpop
        self._binder = AsyncBinder(manager)
        self._unsubscribe = manager.events.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        # However a backing session ends (logout, theft, expiry, admin, a cap eviction), the
        # access tokens naming it die in this process at once.
        if isinstance(event, SessionRevoked | SessionExpired) and event.session_id is not None:
            self.revocations.revoke_session(event.session_id, now=event.at)
        elif isinstance(event, AllSessionsRevoked):
            self.revocations.cut_off_everyone(now=event.at)

    # -- issuing ----------------------------------------------------------------------------

    async def login(
        self,
        user_id: str,
        *,
        scopes: Iterable[str] = (),
        auth_level: int = 1,
        auth_time: float | None = None,
        data: Mapping[str, Any] | None = None,
        context: RequestContext | None = None,
        end_other_sessions: bool = False,
        dpop_jkt: str | None = None,
    ) -> TokenPair:
        """Start a refresh family for an authenticated user; returns the first pair.

        ``end_other_sessions`` ends every other refresh family of the user and cuts off the
        access tokens issued to the user before this login (one session per user).
        ``dpop_jkt``, the thumbprint of the key of the login request's checked DPoP proof
        (:meth:`check_proof`), binds the family and its tokens to that key."""
        if not isinstance(user_id, str) or not user_id:
            raise InvalidArgument("a refresh family needs a user id (no anonymous tokens)")
        if dpop_jkt is not None and self.dpop is None:
            raise ConfigError("binding tokens to a DPoP key needs TokenService(dpop=...)")
        if end_other_sessions:  # first: the new pair's iat starts at or after the cut-off
            self.revocations.cut_off_user(user_id, now=self.clock.now())
        merged = {**(data or {}), FAMILY_KEY: refresh.new_family()}
        if dpop_jkt is not None:
            merged[states.BINDING_KEY] = states.encode(
                states.dpop_state(dpop_jkt, self.clock.now())
            )
        session = await self.manager.issue(
            user_id,
            auth_level=auth_level,
            auth_time=auth_time,
            scopes=scopes,
            data=merged,
            context=context,
        )
        if session.token is None:  # pragma: no cover - issue always mints
            raise InvalidToken("unknown", session.id)
        pair = self._pair(session.record, session.token)
        if end_other_sessions:
            await self.manager.revoke_user(user_id, keep=session, reason=RevokeReason.NEW_LOGIN)
        return pair

    def _pair(self, record: SessionRecord, refresh_token: str) -> TokenPair:
        user_id = record.user_id
        if user_id is None:
            raise InvalidToken("anonymous", record.id)
        jkt = _jkt_of(record)
        issued = self.issuer.issue(
            subject=user_id,
            session_id=record.id,
            scopes=record.scopes.split(),
            auth_level=record.auth_level,
            auth_time=record.auth_time,
            not_after=record.absolute_expires_at,
            not_before=self.revocations.cutoff_for(user_id),
            extra=None if jkt is None else {"cnf": {"jkt": jkt}},
        )
        return TokenPair(
            issued.token,
            refresh_token,
            issued.claims.exp,
            record.expires_at,
            record.id,
            "Bearer" if jkt is None else "DPoP",
        )

    async def refresh(
        self,
        refresh_token: object,
        *,
        context: RequestContext | None = None,
        dpop_jkt: str | None = None,
    ) -> TokenPair:
        """Trade a refresh token for a new pair; the presented token is rotated out.

        Raises ``InvalidToken`` (``reused`` when the token had already been rotated out before
        the grace window: the session is then revoked as stolen). A family bound to a DPoP key
        refreshes only when ``dpop_jkt``, the key of the request's checked proof, is that key
        (``InvalidProof`` otherwise, and nothing rotates).
        """
        now = self.clock.now()
        parsed = tokens.parse(refresh_token)  # malformed: InvalidToken before any store access
        try:
            session = await self.manager.validate(
                refresh_token, context=context, proof=KeyCheck(dpop_jkt)
            )
        except InvalidToken as exc:
            if exc.reason == "mismatch":
                await self._older_secret(parsed, now)
            raise
        record = session.record
        _check_key(_jkt_of(record), dpop_jkt, record.id)
        for _ in range(_ATTEMPTS):
            family = refresh.family_of(json.loads(record.data))
            if family is None:
                raise InvalidToken("not-refresh", record.id)
            if tokens.secret_matches(parsed.secret, record.secret_hash):
                pair = await self._rotate(record, family, parsed.secret, now)
                if pair is not None:
                    return pair
            else:
                handed = refresh.open_handoff(record, parsed.secret, now)
                if handed is None:
                    raise InvalidToken("stale", record.id)
                if _jkt_of(record) is not None:  # the handed pair names the key too
                    return handed._replace(token_type="DPoP")  # noqa: S106 - a scheme name
                return handed
            # Another request rotated the family first: read its result.
            fresh = await self.manager.store.get(record.id)
            if fresh is None or now >= fresh.expires_at:
                raise InvalidToken("unknown", record.id)
            record = fresh
        raise UpdateConflict("refresh kept losing races")

    async def _older_secret(self, parsed: tokens.ParsedToken, now: float) -> None:
        """A secret that is neither current nor previous: reuse of an older refresh token of
        the family is theft (the manager itself catches the previous one)."""
        record = await self.manager.store.get(parsed.session_id)
        family = None if record is None else refresh.family_of(json.loads(record.data))
        if record is None or family is None:
            return
        verdict = refresh.rotated_out(family, parsed.secret, now)
        if verdict == "stale":
            raise InvalidToken("stale", record.id)
        if verdict == "theft":
            self.manager.events.emit(
                TheftSuspected(
                    record.id,
                    record.user_id,
                    now,
                    generation=record.generation,
                    detail="rotated-refresh-token-reused",
                )
            )
            await self.manager.revoke(record.id, reason=RevokeReason.THEFT)
            raise InvalidToken("reused", record.id)

    async def _rotate(
        self,
        record: SessionRecord,
        family: dict[str, Any],
        old_secret: bytes,
        now: float,
        *,
        grace: bool = True,
        changes: Mapping[str, Any] | None = None,
    ) -> TokenPair | None:
        """Rotate in one conditional write that also stores the handoff; ``None`` when another
        writer got there first. ``grace=False`` (a step-up) kills the old token at once."""
        policy = self.manager.policy
        raw, minted = tokens.mint(record.id)
        generation = record.generation + 1
        grace_end = now + policy.rotation_grace if grace else now
        rotated = record._replace(
            expires_at=min(now + policy.idle_timeout, record.absolute_expires_at),
            **(changes or {}),
        )
        pair = self._pair(rotated, raw)
        family = refresh.family_after_rotation(
            family,
            old_secret,
            generation=generation,
            grace_end=grace_end,
            pair=pair,
            session_id=record.id,
        )
        data = json.loads(record.data)
        data[FAMILY_KEY] = family
        updated = rotated._replace(
            secret_hash=tokens.verifier(minted.secret),
            prev_secret_hash=record.secret_hash if grace else None,
            grace_until=grace_end if grace else 0.0,
            generation=generation,
            rotated_at=now,
            last_seen=now,
            data=encode_data(data, policy.max_data_bytes),
            version=record.version + 1,
        )
        try:
            await self.manager.store.replace(updated, expected_version=record.version)
        except VersionConflict:
            return None
        except NotFound:
            raise InvalidToken("unknown", record.id) from None
        if changes:
            self.manager.events.emit(
                SessionElevated(record.id, record.user_id, now, auth_level=updated.auth_level)
            )
        else:
            self.manager.events.emit(
                SessionRotated(
                    record.id, record.user_id, now, generation=generation, cause="refresh"
                )
            )
        return pair

    # -- stepping up -------------------------------------------------------------------------

    def require_recent_auth(
        self, claims: AccessClaims, *, max_age: float | None = None, min_level: int = 1
    ) -> None:
        """Raise ``StepUpRequired`` unless the access token's authentication was at
        ``min_level`` or higher within the last ``max_age`` seconds (``None``: any age)."""
        auth_time = claims.auth_time
        too_old = max_age is not None and (
            auth_time is None or self.clock.now() - auth_time > max_age
        )
        if claims.auth_level < min_level or too_old:
            raise StepUpRequired(max_age=max_age, min_level=min_level)

    async def step_up(
        self,
        refresh_token: object,
        *,
        auth_level: int | None = None,
        access: AccessClaims | None = None,
        context: RequestContext | None = None,
        dpop_jkt: str | None = None,
    ) -> TokenPair:
        """Record a fresh re-authentication of the family's user (the application has just
        checked a factor again): a new pair whose access token carries the new ``auth_time``
        (and ``auth_level``). The refresh token rotates with no grace window: the old one is
        dead at once, and presenting it later ends the family as stolen. ``access``, the
        access token the client held, is denied too. Only the family's current refresh token
        can step up (``InvalidToken("stale")`` otherwise). A family bound to a DPoP key steps
        up only when ``dpop_jkt``, the key of the request's checked proof, is that key
        (``InvalidProof`` otherwise, and nothing changes)."""
        now = self.clock.now()
        if auth_level is not None and (
            isinstance(auth_level, bool) or not isinstance(auth_level, int) or auth_level < 0
        ):
            raise InvalidArgument("auth_level must be a non-negative integer")
        parsed = tokens.parse(refresh_token)
        session = await self.manager.validate(
            refresh_token, context=context, proof=KeyCheck(dpop_jkt)
        )
        record = session.record
        family = refresh.family_of(json.loads(record.data))
        if family is None:
            raise InvalidToken("not-refresh", record.id)
        if not tokens.secret_matches(parsed.secret, record.secret_hash):
            raise InvalidToken("stale", record.id)
        _check_key(_jkt_of(record), dpop_jkt, record.id)
        changes: dict[str, Any] = {"auth_time": now}
        if auth_level is not None:
            changes["auth_level"] = auth_level
        pair = await self._rotate(record, family, parsed.secret, now, grace=False, changes=changes)
        if pair is None:
            raise UpdateConflict("another request rotated the family first; retry")
        if access is not None:
            self.revocations.deny(access.iss, access.jti, exp=access.exp, now=now)
        return pair

    # -- verifying --------------------------------------------------------------------------

    async def check_proof(
        self,
        proof: str | None,
        *,
        method: str,
        url: str,
        access_token: str | None = None,
        jkt: str | None = None,
    ) -> DpopProof:
        """Check a DPoP proof for this request (``method``, absolute ``url``, the presented
        ``access_token`` for ``ath``) and spend its ``jti`` in the store. Raises
        ``InvalidProof``; ``use_dpop_nonce`` asks for :meth:`dpop_nonce`."""
        if self.dpop is None:
            raise InvalidProof("dpop-off")
        return await self._binder.check_dpop(
            self.dpop, proof, method=method, url=url, access_token=access_token, jkt=jkt
        )

    def dpop_nonce(self) -> str | None:
        """The current server nonce for ``DPoP-Nonce`` (``None`` when nonces are off)."""
        return None if self.dpop is None else self.dpop.nonce(self.clock.now())

    async def authenticate(
        self,
        access_token: object,
        *,
        check_session: bool = False,
        proof: str | None = None,
        method: str = "GET",
        url: str | None = None,
        scheme: str = "bearer",
    ) -> AccessClaims:
        """The claims of a valid access token, or ``InvalidToken``.

        Without a store access by default (revocations seen by this process apply at once;
        others within the token's lifetime). ``check_session=True`` also reads the backing
        session and rejects the token when it has ended: revocation without lag, for one
        store read per request.

        A token bound to a DPoP key (``cnf.jkt``) must come with ``scheme="dpop"`` and a
        ``proof`` of that key for this ``method`` and ``url`` (``InvalidProof`` otherwise);
        checking it costs one signature check and one store write (the spent ``jti``).
        """
        claims = self.verifier.verify(access_token)
        jkt = bound_jkt(claims.claims)
        if jkt is not None or (proof is not None and self.dpop is not None):
            if jkt is not None and scheme.lower() != "dpop":
                raise InvalidProof("dpop-scheme", claims.sid)
            if url is None:
                raise InvalidArgument("checking a DPoP proof needs the request's url")
            token = access_token if isinstance(access_token, str) else None
            await self.check_proof(proof, method=method, url=url, access_token=token, jkt=jkt)
        if check_session:
            session = await self.manager.get(claims.sid)
            if session is None or session.user_id != claims.sub:
                raise InvalidToken("session-revoked", claims.sid)
        return claims

    # -- ending -----------------------------------------------------------------------------

    async def logout(
        self,
        *,
        refresh_token: object = None,
        access: AccessClaims | None = None,
        dpop_jkt: str | None = None,
    ) -> bool:
        """End the family of ``refresh_token`` (validated first) or of the verified ``access``
        claims; the presented access token's ``jti`` is denied until it expires. ``True`` if
        a session ended.

        A family bound to a DPoP key ends by its refresh token only when ``dpop_jkt``, the key
        of the request's checked proof, is that key (``InvalidProof`` otherwise, and nothing
        changes), as it refreshes: a stolen refresh token cannot even end its owner's
        session."""
        now = self.clock.now()
        session_id: str | None = None
        if refresh_token is not None:
            session: Session = await self.manager.validate(refresh_token, proof=KeyCheck(dpop_jkt))
            session_id = session.id
        if access is not None:
            self.revocations.deny(access.iss, access.jti, exp=access.exp, now=now)
            session_id = access.sid if session_id is None else session_id
        if session_id is None:
            return False
        ended = await self.manager.revoke(session_id, reason=RevokeReason.LOGOUT)
        self.revocations.revoke_session(session_id, now=now)
        return ended

    async def logout_everywhere(
        self,
        user_id: str,
        *,
        keep: str | None = None,
        reason: str = RevokeReason.LOGOUT_EVERYWHERE,
    ) -> int:
        """End every refresh family of the user (optionally keeping the session ``keep``) and
        cut off every access token issued to the user until now (the kept session's client
        gets a fresh access token on its next refresh)."""
        self.revocations.cut_off_user(user_id, now=self.clock.now())
        return await self.manager.revoke_user(user_id, keep=keep, reason=reason)

    def close(self) -> None:
        """Stop listening to the manager's events."""
        self._unsubscribe()


def _jkt_of(record: SessionRecord) -> str | None:
    """The DPoP key thumbprint a refresh family is bound to, if any."""
    if states.MARK not in record.data:
        return None
    state = states.state_of(json.loads(record.data))
    jkt = None if state is None or state.get("method") != "dpop" else state.get("jkt")
    return jkt if isinstance(jkt, str) else None


def _check_key(bound: str | None, presented: str | None, session_id: str) -> None:
    if bound is not None and (presented is None or not hmac.compare_digest(bound, presented)):
        raise InvalidProof("jkt", session_id)


class KeyCheck:
    """``validate``'s precondition for a refresh family bound to a DPoP key: ``presented``,
    the key of the request's checked proof, must be that key, or ``InvalidProof`` is raised
    before the family is written (no renewal, no activity, no context learned)."""

    __slots__ = ("presented",)

    def __init__(self, presented: str | None) -> None:
        self.presented = presented

    async def __call__(self, record: SessionRecord) -> Proof:
        bound = _jkt_of(record)
        if bound is None:
            return Proof.UNBOUND
        _check_key(bound, self.presented, record.id)
        return Proof.PROVEN
