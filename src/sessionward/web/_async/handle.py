"""The per-request handle an application uses to read and change its session.

The async handle is the source; the sync one is generated from it (see
tests/web/test_handle_twin.py). Every method is a thin call into the manager plus a note of what the
response must carry; the middleware turns that note into headers. The handle also owns the
request's :class:`~sessionward.web.mapping.SessionMapping` (``request.session``,
``flask.session``) and writes it back in :meth:`commit`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sessionward.core import binding as states
from sessionward.core.context import RequestContext
from sessionward.core.events import RevokeReason
from sessionward.core.record import Session
from sessionward.errors import RiskChallenge
from sessionward.manager._async.manager import AsyncSessionManager
from sessionward.manager._async.proof import AsyncProofCheck
from sessionward.web._core import REMEMBER_KEY, AdapterConfig, DataChange, Outcome
from sessionward.web.mapping import SessionMapping

__all__ = ["AsyncSessionHandle"]


class AsyncSessionHandle:
    """The request's session (``None`` if none or invalid) and the actions that change it."""

    __slots__ = (
        "_challenged_proof",
        "_challenged_token",
        "_mapping",
        "_session",
        "challenge",
        "config",
        "context",
        "manager",
        "outcome",
        "presented",
        "proof_jkt",
        "proven",
    )

    def __init__(
        self,
        manager: AsyncSessionManager,
        config: AdapterConfig,
        session: Session | None,
        context: RequestContext,
        outcome: Outcome,
        *,
        presented: bool,
        proven: bool = False,
        proof_jkt: str | None = None,
        challenge: RiskChallenge | None = None,
        challenged_token: str | None = None,
        challenged_proof: AsyncProofCheck | None = None,
    ) -> None:
        self.manager = manager
        self.config = config
        self.context = context
        self.outcome = outcome
        self.presented = presented
        #: The request proved possession of the session's bound key (a live DBSC bound cookie
        #: or a DPoP proof); ``False`` for unbound sessions. Require it for sensitive actions.
        self.proven = proven
        #: The thumbprint of the key a DPoP proof on this request was signed with: a login
        #: binds the new session (and its tokens) to that key.
        self.proof_jkt = proof_jkt
        self._session = session
        self._mapping: SessionMapping | None = None
        #: The risk engine's challenge when this request was let through to a sign-in page
        #: (``step_up_paths``) without its session: ``reasons``, ``codes``, ``user_id``. The
        #: session survives; :meth:`confirm` restores it once the user has signed in again.
        self.challenge = challenge
        # The presented token and the proof check its validation ran (a key-bound session is
        # confirmed only with its key's proof), kept for ``confirm`` only, while challenged.
        self._challenged_token = challenged_token if challenge is not None else None
        self._challenged_proof = challenged_proof if challenge is not None else None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._session!r}>"

    @property
    def session(self) -> Session | None:
        """The validated session; reading it makes the response ``Vary`` on the token."""
        self.outcome.accessed = True
        return self._session

    @property
    def user_id(self) -> str | None:
        session = self.session
        return None if session is None else session.user_id

    @property
    def mapping(self) -> SessionMapping:
        """The session's data as a mutable mapping (``request.session``), decoded on first use
        and written back by :meth:`commit`."""
        mapping = self._mapping
        if mapping is None:
            mapping = self.attach(SessionMapping())
        return mapping

    def attach(self, mapping: SessionMapping) -> SessionMapping:
        """Make ``mapping`` (a framework's subclass) this request's mapping."""
        mapping._bind(self._current)
        mapping.default_permanent = self.config.remember_by_default
        self._mapping = mapping
        return mapping

    def _current(self) -> Session | None:
        return self._session

    def _data(self, remember: bool | None) -> dict[str, Any]:
        if remember is None:
            remember = self.config.remember_by_default
        if remember and self.config.cookie.remember_max_age is None:
            self.config.cookie.header("x", max_age=1)  # raises the ConfigError that explains
        return {REMEMBER_KEY: True} if remember else {}

    def _adopt(self, session: Session) -> Session:
        self._session = session
        self.outcome.accessed = True
        self.outcome.minted(session, self.manager.clock.now())
        return session

    async def login(
        self,
        user_id: str,
        *,
        auth_level: int = 1,
        scopes: Iterable[str] = (),
        data: Mapping[str, Any] | None = None,
        remember: bool | None = None,
    ) -> Session:
        """Start an authenticated session with a new token; the current one (e.g. the
        anonymous cart) is carried over and killed. ``remember`` makes the cookie persist
        (``None``: the adapter's ``remember_by_default``)."""
        extra = self._data(remember)
        await self._settle_clear()
        if not extra and self._session is not None and REMEMBER_KEY in self._session.data:
            extra = {REMEMBER_KEY: False}  # the carried-over data must not keep it persistent
        if self.proof_jkt is not None:
            bound = states.dpop_state(self.proof_jkt, self.manager.clock.now())
            extra[states.BINDING_KEY] = states.encode(bound)
        session = await self.manager.issue(
            user_id,
            auth_level=auth_level,
            scopes=scopes,
            data={**(data or {}), **extra},
            context=self.context,
            previous=self._session,
        )
        # After the new session: it takes the user's history from their live sessions.
        await self._end_challenged(user_id)
        return self._adopt(session)

    async def confirm(self) -> Session:
        """ "This was me": call it once the user of a challenged request has signed in
        again (password, passkey, second factor). The request's context becomes the
        session's and the user's own, and the session continues under a new token (whoever
        else holds the old one is cut off)."""
        token = self._challenged_token
        if self.challenge is None or token is None:
            raise RuntimeError("no risk challenge on this request")
        proof = self._challenged_proof
        session = await self.manager.confirm(token, context=self.context, proof=proof)
        self.challenge, self._challenged_token, self._challenged_proof = None, None, None
        return self._adopt(session)

    async def _end_challenged(self, user_id: str) -> None:
        """The owner's new sign-in replaces their challenged session: end it rather than
        leave its token alive for whoever else holds it. Another user's sign-in on this
        browser leaves it alone (the owner's other requests still use it)."""
        challenge = self.challenge
        if challenge is None:
            return
        if challenge.user_id == user_id:
            await self.manager.revoke(challenge.session_id, reason=RevokeReason.NEW_LOGIN)
        self.challenge, self._challenged_token, self._challenged_proof = None, None, None

    async def ensure(self) -> Session:
        """The current session, or a new anonymous one (for something to store, such as a
        cart; a form's CSRF token needs none, see :meth:`csrf_token`)."""
        if self._session is not None:
            return self._session
        data = self._data(None)
        return self._adopt(await self.manager.issue(data=data, context=self.context))

    async def regenerate(self) -> Session | None:
        """A new session id and secret for the current session, same user, authentication and
        data; the old token dies at once (against fixation, e.g. at a login the application
        records in the session data itself). ``None`` when there is no session yet: the first
        write will create one with a fresh token anyway."""
        await self._settle_clear()
        current = self._session
        if current is None:
            return None
        session = await self.manager.issue(
            current.user_id,
            auth_level=current.auth_level,
            auth_time=current.auth_time,
            scopes=current.scopes,
            context=self.context,
            previous=current,
        )
        return self._adopt(session)

    async def rotate(self) -> Session:
        """New secret for the current session (the old one lives on for the grace window)."""
        return self._adopt(await self.manager.rotate(self._require(), context=self.context))

    async def elevate(
        self, *, auth_level: int | None = None, scopes: Iterable[str] | None = None
    ) -> Session:
        """Record a fresh re-authentication (step-up); the old token dies at once."""
        session = await self.manager.elevate(self._require(), auth_level=auth_level, scopes=scopes)
        return self._adopt(session)

    async def update_data(self, change: DataChange) -> Session:
        """Change session data (creating an anonymous session first if there is none)."""
        self._session = await self.manager.update_data(await self.ensure(), change)
        if self._mapping is not None:
            self._mapping._refresh(self._current)
        return self._session

    async def logout(self) -> None:
        """End this session server-side; the response expires the cookie and clears site data."""
        if self._session is not None:
            await self.manager.revoke(self._session)
        self._session = None
        self.outcome.end()
        if self._mapping is not None:
            self._mapping._reset()

    async def logout_everywhere(self) -> int:
        """End every session of this user (this one included); returns how many ended."""
        session = self._require()
        count = 0
        if session.user_id is not None:
            count = await self.manager.revoke_user(session.user_id)
        await self.logout()
        return count

    async def csrf_token(self) -> str:
        """The form token: bound to the session, or without one to a random nonce that the
        response sets in a cookie of its own. It never creates a session, so anonymous page
        views store nothing."""
        policy = self.config.csrf_policy
        if policy is None:
            raise RuntimeError("CSRF tokens need cookie transport with a CsrfPolicy")
        session = self.session
        if session is not None:
            return policy.token_for(session.id)
        return policy.anonymous_token(self.outcome.anonymous_nonce(policy))

    async def commit(self) -> None:
        """Write the mapping's changes back (the adapters call this before the response
        starts): nothing when it is unmodified; a new anonymous session for the first write;
        after ``clear()`` the session ends; a changed ``permanent`` rotates the token so the
        cookie's persistence can change with it."""
        mapping = self._mapping
        if mapping is None:
            return
        if mapping.accessed:
            self.outcome.accessed = True
        await self._settle_clear()
        changes = mapping._take_changes()
        if changes is None:
            return
        session = self._session
        if session is None:
            if changes.values:
                data = {**changes.values, **self._data(changes.permanent)}
                self._adopt(await self.manager.issue(data=data, context=self.context))
            return
        remembered = session.data.get(REMEMBER_KEY) is True
        if changes.permanent:
            self._data(True)  # refuses remember-me when the cookie policy does not allow it
        self._session = await self.manager.update_data(session, changes.apply)
        if changes.permanent is not None and changes.permanent != remembered:
            await self.rotate()

    async def _settle_clear(self) -> None:
        """End the session the application cleared through the mapping, before anything else
        happens to it."""
        if self._mapping is None or not self._mapping._take_clear() or self._session is None:
            return
        await self.manager.revoke(self._session)
        self._session = None
        self.outcome.end()

    def _require(self) -> Session:
        if self._session is None:
            raise RuntimeError("no session on this request")
        return self._session
