"""Checking the factors of the admin page's and the demo shop's accounts: throttled, single
use where it applies, and as security events.

Every check of a password, a one-time code or the setup code goes through this module, so
every pathway has the same controls (docs/throttling.md):

* **Throttled.** The attempt is first reserved in the guessing windows of its kind, for the
  account and the client's address (:mod:`sessionward.service.throttle`); when a window is
  full the factor is not checked at all and the outcome says how long to wait. A right answer
  clears that address's failures on the account; a wrong one counts.
* **Once.** A TOTP code is accepted once per account and key (RFC 6238 section 5.2): the
  time step it belongs to is claimed in the service state, atomically, so the same code from
  another session or process is refused.
* **Events.** Every check is an :class:`AuthenticationAttempt` on the manager's event bus
  (logged on ``sessionward.events``, failures at WARNING, and shown on the admin page); every
  change of a factor is a :class:`FactorChanged` (the user's notice). The account named in a
  failed attempt is recorded as typed when it is a well-formed name, the client's address
  from the request's context; passwords and codes never are. An attempt refused by the
  throttle checks nothing and is no event of its own (the window filling was one).

Re-authentication (:func:`reauthenticate`) asks for every factor the account has: the
password, and the current one-time code when two-step verification is on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sessionward.core.events import AuthenticationAttempt, FactorChanged
from sessionward.service.passwords import totp_step, verify_password_async
from sessionward.service.runtime import ADMIN_USER_PREFIX, Runtime
from sessionward.service.setup import consume_setup_code
from sessionward.service.state import UserRow
from sessionward.service.throttle import reserve
from sessionward.web._async.handle import AsyncSessionHandle

__all__ = [
    "NAME",
    "SETUP_ACCOUNT",
    "Checked",
    "attempted",
    "check_code",
    "check_password",
    "check_setup_code",
    "factor_changed",
    "guarded_account",
    "reauthenticate",
]

NAME = re.compile(r"[a-z0-9_.-]{3,32}")
#: The setup code is one secret for the whole service: its guesses count against this.
SETUP_ACCOUNT = "sessionward:setup"


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of one check: right (``ok``; ``account`` is the account it proved, when
    the factor belongs to one), wrong, or not checked because there were too many attempts
    (``wait``: the seconds until the next one is)."""

    ok: bool
    wait: int = 0
    account: UserRow | None = None

    @property
    def throttled(self) -> bool:
        return self.wait > 0


_WRONG = Checked(ok=False)


def guarded_account(realm: str, name: str) -> str | None:
    """The account guesses at ``name`` count against: the user id an administrator signs in
    as, ``realm:name`` for the shop. ``None`` for a name that cannot be an account: counted
    for the address only. Any other name counts alike whether or not it exists."""
    if not NAME.fullmatch(name):
        return None
    return ADMIN_USER_PREFIX + name if realm == "admin" else f"{realm}:{name}"


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


async def _counted(
    rt: Runtime, kind: str, account: str | None, address: str | None, ok: bool
) -> None:
    if ok:
        await rt.guard.succeeded(kind, account, address)
    else:
        await rt.guard.failed(kind, account, address)


async def check_password(
    rt: Runtime, handle: AsyncSessionHandle, realm: str, name: str, password: str
) -> Checked:
    """Whether ``password`` is the password of the account ``name`` (the same work when
    there is no such account); one event either way, unless throttled."""
    guarded, address = guarded_account(realm, name), handle.context.ip
    if wait := await reserve(rt.guard, "password", guarded, address):
        return Checked(ok=False, wait=wait)
    account = rt.state.get_user(realm, name) if guarded else None
    stored = None if account is None else account.password_hash
    ok = await verify_password_async(stored, password)
    attempted(rt, handle, realm, name, "password", ok)
    await _counted(rt, "password", guarded, address, ok)
    return Checked(ok=True, account=account) if ok else _WRONG


async def check_code(
    rt: Runtime, handle: AsyncSessionHandle, account: UserRow, code: str
) -> Checked:
    """Whether ``code`` is a one-time code of ``account.totp_secret`` (the account's key, or
    one being set up) by the server's clock, not accepted before."""
    guarded, address = guarded_account(account.realm, account.name), handle.context.ip
    if wait := await reserve(rt.guard, "totp", guarded, address):
        return Checked(ok=False, wait=wait)
    secret = account.totp_secret
    step = None if secret is None else totp_step(secret, code, rt.manager.clock.now())
    ok = (
        secret is not None
        and step is not None
        and rt.state.claim_totp_step(account.realm, account.name, secret, step)
    )
    attempted(rt, handle, account.realm, account.name, "totp", ok)
    await _counted(rt, "totp", guarded, address, ok)
    return Checked(ok=True, account=account) if ok else _WRONG


async def check_setup_code(rt: Runtime, handle: AsyncSessionHandle, code: str) -> Checked:
    """Whether ``code`` is the one-time admin setup code, which it consumes."""
    address = handle.context.ip
    if wait := await reserve(rt.guard, "setup-code", SETUP_ACCOUNT, address):
        return Checked(ok=False, wait=wait)
    ok = consume_setup_code(rt.state, code)
    attempted(rt, handle, "admin", "", "setup-code", ok)
    await _counted(rt, "setup-code", SETUP_ACCOUNT, address, ok)
    return Checked(ok=True) if ok else _WRONG


async def reauthenticate(
    rt: Runtime, handle: AsyncSessionHandle, realm: str, name: str, password: str, code: str
) -> Checked:
    """Full re-authentication: the password and, if the account has one, the TOTP code."""
    proven = await check_password(rt, handle, realm, name, password)
    account = proven.account
    if account is None or not account.totp_secret:
        return proven
    second = await check_code(rt, handle, account, code)
    return proven if second.ok else second


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
