"""The per-request handle an application uses to read and change its session.

The async handle is the source; the sync one is generated from it (see
tests/web/test_handle_twin.py). Every method is a thin call into the manager plus a note of what the
response must carry; the middleware turns that note into headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sessionward.core.context import RequestContext
from sessionward.core.record import Session
from sessionward.manager._async.manager import AsyncSessionManager
from sessionward.web._core import REMEMBER_KEY, AdapterConfig, DataChange, Outcome

__all__ = ["AsyncSessionHandle"]


class AsyncSessionHandle:
    """The request's session (``None`` if none or invalid) and the actions that change it."""

    __slots__ = ("_session", "config", "context", "manager", "outcome", "presented")

    def __init__(
        self,
        manager: AsyncSessionManager,
        config: AdapterConfig,
        session: Session | None,
        context: RequestContext,
        outcome: Outcome,
        *,
        presented: bool,
    ) -> None:
        self.manager = manager
        self.config = config
        self.context = context
        self.outcome = outcome
        self.presented = presented
        self._session = session

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
        remember: bool = False,
    ) -> Session:
        """Start an authenticated session with a new token; the current one (e.g. the
        anonymous cart) is carried over and killed. ``remember`` makes the cookie persist."""
        if remember and self.config.cookie.remember_max_age is None:
            self.config.cookie.header("x", max_age=1)  # raises the ConfigError that explains
        extra = {REMEMBER_KEY: True} if remember else {}
        session = await self.manager.issue(
            user_id,
            auth_level=auth_level,
            scopes=scopes,
            data={**(data or {}), **extra},
            context=self.context,
            previous=self._session,
        )
        return self._adopt(session)

    async def ensure(self) -> Session:
        """The current session, or a new anonymous one (for something to store, such as a
        cart; a form's CSRF token needs none, see :meth:`csrf_token`)."""
        if self._session is not None:
            return self._session
        return self._adopt(await self.manager.issue(context=self.context))

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
        return self._session

    async def logout(self) -> None:
        """End this session server-side; the response expires the cookie and clears site data."""
        if self._session is not None:
            await self.manager.revoke(self._session)
        self._session = None
        self.outcome.end()

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

    def _require(self) -> Session:
        if self._session is None:
            raise RuntimeError("no session on this request")
        return self._session
