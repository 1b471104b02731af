"""Checking the factors of the admin page's and the demo shop's accounts, as security events.

Every check of a password or a one-time code is an :class:`AuthenticationAttempt` on the
manager's event bus (logged on ``sessionward.events``, failures at WARNING, and shown on the
admin page); every change of a factor is a :class:`FactorChanged` (the user's notice). The
account named in a failed attempt is recorded as typed when it is a well-formed name, the
client's address from the request's context; passwords and codes never are.

Re-authentication (:func:`reauthenticate`) asks for every factor the account has: the
password, and the current one-time code when two-step verification is on.
"""

from __future__ import annotations

import re

from sessionward.core.events import AuthenticationAttempt, FactorChanged
from sessionward.service.passwords import verify_password_async, verify_totp
from sessionward.service.runtime import Runtime
from sessionward.service.state import UserRow
from sessionward.web._async.handle import AsyncSessionHandle

__all__ = [
    "NAME",
    "attempted",
    "check_code",
    "check_password",
    "factor_changed",
    "reauthenticate",
]

NAME = re.compile(r"[a-z0-9_.-]{3,32}")


def attempted(
    rt: Runtime, handle: AsyncSessionHandle, realm: str, name: str, factor: str, ok: bool
) -> None:
    """Record one check of a factor (``name``: the account the attempt named, if any)."""
    session = handle.session
    rt.manager.events.emit(
        AuthenticationAttempt(
            None if session is None else session.id,
            name if NAME.fullmatch(name) else None,
            rt.manager.clock.now(),
            realm=realm,
            factor=factor,
            succeeded=ok,
            ip=handle.context.ip,
        )
    )


async def check_password(
    rt: Runtime, handle: AsyncSessionHandle, realm: str, name: str, password: str
) -> UserRow | None:
    """The account if ``password`` is its password (the same work when there is no such
    account), else ``None``; one event either way."""
    account = rt.state.get_user(realm, name) if NAME.fullmatch(name) else None
    stored = None if account is None else account.password_hash
    ok = await verify_password_async(stored, password)
    attempted(rt, handle, realm, name, "password", ok)
    return account if ok else None


def check_code(
    rt: Runtime, handle: AsyncSessionHandle, account: UserRow, code: str
) -> bool:
    """Whether ``code`` is the account's current one-time code, by the server's clock."""
    secret = account.totp_secret
    ok = secret is not None and verify_totp(secret, code, rt.manager.clock.now())
    attempted(rt, handle, account.realm, account.name, "totp", ok)
    return ok


async def reauthenticate(
    rt: Runtime, handle: AsyncSessionHandle, realm: str, name: str, password: str, code: str
) -> UserRow | None:
    """Full re-authentication: the password and, if the account has one, the TOTP code."""
    account = await check_password(rt, handle, realm, name, password)
    if account is None:
        return None
    if account.totp_secret and not check_code(rt, handle, account, code):
        return None
    return account


def factor_changed(
    rt: Runtime, handle: AsyncSessionHandle, realm: str, name: str, factor: str, change: str
) -> None:
    """Tell the user (and the log) that a factor of their account changed."""
    session = handle.session
    rt.manager.events.emit(
        FactorChanged(
            None if session is None else session.id,
            name,
            rt.manager.clock.now(),
            realm=realm,
            factor=factor,
            change=change,
            ip=handle.context.ip,
        )
    )
