"""Starlette and FastAPI helpers on top of :class:`sessionward.web.asgi.SessionMiddleware`.

Each ``require_*`` is an async callable taking the request, usable as a FastAPI dependency
(``session: Session = Depends(require_user)``) or awaited in a Starlette endpoint. Failures
raise ``HTTPException``: 401 when there is no (valid) session or its authentication is too old,
403 when it lacks a scope. In bearer transport the exception carries ``WWW-Authenticate``
(RFC 6750; step-up per RFC 9470 ``insufficient_user_authentication`` with ``max_age``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from sessionward.core.record import Session
from sessionward.errors import StepUpRequired
from sessionward.web._async.handle import AsyncSessionHandle

__all__ = [
    "get_handle",
    "require_recent_auth",
    "require_scope",
    "require_session",
    "require_user",
]

Dependency = Callable[[HTTPConnection], Awaitable[Session]]


def get_handle(request: HTTPConnection) -> AsyncSessionHandle:
    """The request's session handle (the middleware must be installed)."""
    handle = request.scope.get("sessionward")
    if not isinstance(handle, AsyncSessionHandle):
        raise RuntimeError("sessionward.web.asgi.SessionMiddleware is not installed")
    return handle


def _unauthorized(handle: AsyncSessionHandle, error: str | None, **params: str) -> HTTPException:
    headers = handle.config.challenge(error, **params)
    return HTTPException(401, "authentication required", headers=headers or None)


async def require_session(request: HTTPConnection) -> Session:
    """Any valid session, anonymous included."""
    handle = get_handle(request)
    session = handle.session
    if session is None:
        raise _unauthorized(handle, "invalid_token" if handle.presented else None)
    return session


async def require_user(request: HTTPConnection) -> Session:
    """A valid, authenticated (non-anonymous) session."""
    session = await require_session(request)
    if session.is_anonymous:
        raise _unauthorized(get_handle(request), None)
    return session


def require_scope(*scopes: str) -> Dependency:
    """A dependency demanding an authenticated session holding every one of ``scopes``."""
    wanted = frozenset(scopes)

    async def dependency(request: HTTPConnection) -> Session:
        session = await require_user(request)
        if not wanted <= session.scopes:
            config = get_handle(request).config
            headers = config.challenge("insufficient_scope", scope=" ".join(sorted(wanted)))
            raise HTTPException(403, "insufficient scope", headers=headers or None)
        return session

    return dependency


def require_recent_auth(*, max_age: float, min_level: int = 1) -> Dependency:
    """A dependency demanding authentication within ``max_age`` seconds (step-up, ASVS 7.5.1)."""

    async def dependency(request: HTTPConnection) -> Session:
        session = await require_user(request)
        handle = get_handle(request)
        try:
            handle.manager.require_recent_auth(session, max_age=max_age, min_level=min_level)
        except StepUpRequired:
            raise _unauthorized(
                handle,
                "insufficient_user_authentication",
                error_description="a more recent authentication is required",
                max_age=str(int(max_age)),
            ) from None
        return session

    return dependency
