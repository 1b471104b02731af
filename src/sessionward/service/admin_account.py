"""The admin account's own pages: the second factor at sign-in, setting it up, changing the
password, and ending every session of every user.

An admin session starts at level 1 once the password is proven and reaches level 2 with the
current TOTP code; the console answers only at level 2. An account without TOTP (just created)
can do nothing but set it up. Sensitive operations ask for both factors again on their own
form (full re-authentication) and rotate the session's token. Every check goes through
``sessionward.service.factors``: throttled (429 with ``Retry-After`` while guesses are), a
code good once.
"""

from __future__ import annotations

from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from sessionward.core.events import RevokeReason
from sessionward.errors import ConfigError
from sessionward.service.admin_sessions import plural
from sessionward.service.factors import check_code, factor_changed, reauthenticate
from sessionward.service.forms import (
    WRONG_CODE,
    checked,
    form_fields,
    redirect,
    try_again,
    with_retry_after,
)
from sessionward.service.html import Page, esc, hidden_csrf
from sessionward.service.password_policy import MAX_LENGTH, password_problem
from sessionward.service.passwords import (
    hash_password_async,
    is_totp_secret,
    new_totp_secret,
    totp_uri,
)
from sessionward.service.runtime import ADMIN_SCOPE, ADMIN_USER_PREFIX, Runtime
from sessionward.service.state import UserRow
from sessionward.web._async.handle import AsyncSessionHandle
from sessionward.web.starlette import get_handle

__all__ = ["ADMIN_MIN_PASSWORD", "ROOT", "AdminAccount", "Console", "second_factor_next"]

ROOT = "/admin"
ADMIN_MIN_PASSWORD = 12
#: How long a proven password waits for its one-time code.
PENDING_SECONDS = 300.0
_PENDING = "admin_pending"  # session data: [name, when the password was proven]
_NEW_TOTP = "admin_new_totp"  # session data: the key being set up


class Console(Protocol):
    """What these pages need of the admin console."""

    rt: Runtime

    def signed_in(self, request: Request) -> str | None: ...

    def admin_name(self, request: Request) -> str | None: ...

    def sign_in_first(self, request: Request) -> Response: ...

    async def page(self, request: Request, title: str, name: str | None = None) -> Page: ...


async def second_factor_next(rt: Runtime, handle: AsyncSessionHandle, user: UserRow) -> Response:
    """After the password: ask for the code, or (no TOTP yet) open a session that may only
    set it up."""
    if user.totp_secret:
        proven = [user.name, rt.manager.clock.now()]
        await handle.update_data(lambda data: {**data, _PENDING: proven})
        return redirect(f"{ROOT}/login/code")
    await handle.login(ADMIN_USER_PREFIX + user.name, auth_level=1, scopes=[ADMIN_SCOPE])
    return redirect(f"{ROOT}/enrol")


def _error(text: str) -> str:
    return f'<p class="msg error" role="alert">{esc(text)}</p>' if text else ""


def _code_field(label: str = "Code from your authenticator app", name: str = "code") -> str:
    return (
        f'<label for="{name}">{esc(label)}</label><input type="text" id="{name}" name="{name}"'
        ' inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" required>'
    )


def _password_field(label: str, name: str, kind: str = "current-password") -> str:
    return (
        f'<label for="{name}">{esc(label)}</label><input type="password" id="{name}"'
        f' name="{name}" autocomplete="{kind}" maxlength="{MAX_LENGTH}" required>'
    )


class AdminAccount:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.rt = console.rt

    def _pending(self, handle: AsyncSessionHandle) -> UserRow | None:
        session = handle.session
        pending: Any = None if session is None else session.data.get(_PENDING)
        if not (isinstance(pending, list) and len(pending) == 2):
            return None
        name, proven_at = pending
        fresh = isinstance(proven_at, int | float)
        if not fresh or self.rt.manager.clock.now() - proven_at > PENDING_SECONDS:
            return None
        account = self.rt.state.get_user("admin", name) if isinstance(name, str) else None
        return account if account is not None and account.totp_secret else None

    async def second_factor(self, request: Request) -> Response:
        handle = get_handle(request)
        account = self._pending(handle)
        if account is None:
            return redirect(f"{ROOT}/login")
        error, wait = "", 0
        if request.method == "POST":
            code = (await form_fields(request)).get("code", "")
            proven = await check_code(self.rt, handle, account, code)
            if proven.ok:
                user_id = ADMIN_USER_PREFIX + account.name
                await handle.login(
                    user_id, auth_level=2, scopes=[ADMIN_SCOPE], data={_PENDING: None}
                )
                return redirect(f"{ROOT}/")
            wait = proven.wait
            error = try_again(wait) if wait else WRONG_CODE
        csrf = await handle.csrf_token()
        body = (
            _error(error)
            + f'<form method="post" action="{ROOT}/login/code" class="panel">{hidden_csrf(csrf)}'
            + _code_field()
            + '<p><button type="submit">Sign in</button></p></form>'
        )
        page = await self.console.page(request, "Your one-time code")
        status = 429 if wait else 401 if error else 200
        return with_retry_after(page.response(body, status=status), wait)

    async def enrol(self, request: Request) -> Response:
        handle = get_handle(request)
        name = self.console.signed_in(request)
        session = handle.session
        if name is None or session is None:
            return redirect(f"{ROOT}/login")
        account = self.rt.state.get_user("admin", name)
        if account is None or account.totp_secret:
            return redirect(f"{ROOT}/")
        secret = session.data.get(_NEW_TOTP)
        if not is_totp_secret(secret):
            secret = new_totp_secret()
            await handle.update_data(lambda data: {**data, _NEW_TOTP: secret})
        error, wait = "", 0
        if request.method == "POST":
            code = (await form_fields(request)).get("code", "")
            proven = await check_code(self.rt, handle, account._replace(totp_secret=secret), code)
            if proven.ok:
                self.rt.state.set_totp("admin", name, secret)
                factor_changed(self.rt, handle, "admin", name, "totp", "enrolled")
                await handle.update_data(lambda data: {**data, _NEW_TOTP: None})
                await handle.elevate(auth_level=2)  # both factors proven: a new token
                return redirect(f"{ROOT}/")
            wait = proven.wait
            error = try_again(wait) if wait else WRONG_CODE
        csrf = await handle.csrf_token()
        body = (
            _error(error)
            + "<p>The admin page needs a second factor. Add this key to an authenticator app "
            "(TOTP, 6 digits, 30 seconds), then enter the code it shows.</p>"
            f'<p>Key: <code id="totp-secret">{esc(secret)}</code></p>'
            f'<p class="muted">URI: <code>{esc(totp_uri(secret, name, "sessionward admin"))}'
            "</code></p>"
            f'<form method="post" action="{ROOT}/enrol" class="panel">{hidden_csrf(csrf)}'
            + _code_field()
            + '<p><button type="submit">Turn on</button></p></form>'
        )
        page = await self.console.page(request, "Set up two-step verification", name)
        status = 429 if wait else 400 if error else 200
        return with_retry_after(page.response(body, status=status), wait)

    async def account(self, request: Request) -> Response:
        handle = get_handle(request)
        name = self.console.admin_name(request)
        if name is None:
            return self.console.sign_in_first(request)
        error, status, message, wait = "", 200, "", 0
        if request.method == "POST":
            fields = await form_fields(request)
            new = fields.get("new_password", "")
            password, code = fields.get("password", ""), fields.get("code", "")
            # The new password first: one that is refused does not use up the code.
            problem = password_problem(new, min_length=ADMIN_MIN_PASSWORD, name=name)
            if problem is not None:
                error, status = problem, 400
            elif (
                proven := await reauthenticate(self.rt, handle, "admin", name, password, code)
            ).throttled:
                wait = proven.wait
                error, status = try_again(wait), 429
            elif not proven.ok:
                error, status = "Your current password or code is not right.", 401
            else:
                self.rt.state.set_password_hash("admin", name, await hash_password_async(new))
                factor_changed(self.rt, handle, "admin", name, "password", "replaced")
                current = await handle.elevate()
                message = "Your password is changed."
                if checked(fields, "sign_out_others"):
                    count = await self.rt.manager.revoke_user(
                        ADMIN_USER_PREFIX + name, keep=current, reason=RevokeReason.PASSWORD_CHANGE
                    )
                    message += f" Signed out {plural(count, 'other admin session')}."
        csrf = await handle.csrf_token()
        body = (
            _error(error)
            + (f'<p class="msg" role="status">{esc(message)}</p>' if message else "")
            + "<h2>Change your password</h2>"
            f'<form method="post" action="{ROOT}/account" class="panel">{hidden_csrf(csrf)}'
            + _password_field("Current password", "password")
            + _code_field()
            + _password_field(
                f"New password ({ADMIN_MIN_PASSWORD} characters or more)",
                "new_password",
                "new-password",
            )
            + '<p><input type="checkbox" id="sign_out_others" name="sign_out_others" checked>'
            ' <label for="sign_out_others" class="inline">Also sign out my other admin sessions'
            "</label></p>"
            '<p><button type="submit">Change password</button></p></form>'
        )
        page = await self.console.page(request, "Your admin account", name)
        return with_retry_after(page.response(body, status=status), wait)

    async def revoke_all(self, request: Request) -> Response:
        handle = get_handle(request)
        name = self.console.admin_name(request)
        if name is None:
            return self.console.sign_in_first(request)
        error, status, message, wait = "", 200, "", 0
        if request.method == "POST":
            fields = await form_fields(request)
            proven = await reauthenticate(
                self.rt, handle, "admin", name, fields.get("password", ""), fields.get("code", "")
            )
            if proven.throttled:
                wait = proven.wait
                error, status = try_again(wait) + " Nothing was ended.", 429
            elif not proven.ok:
                error, status = "Your password or code is not right: nothing was ended.", 401
            else:
                current = await handle.elevate()
                try:
                    count = await self.rt.manager.revoke_all(keep=current)
                except ConfigError:
                    error, status = "This session store cannot end every session at once.", 409
                else:
                    message = f"Ended {plural(count, 'session')}. Yours is the only one left."
        csrf = await handle.csrf_token()
        stored = await self.rt.session_count()
        scale = "every stored session" if stored is None else f"all {stored} stored sessions"
        body = (
            _error(error)
            + (f'<p class="msg" role="status">{esc(message)}</p>' if message else "")
            + f"<p>This ends {scale} of every user, signed in or anonymous, at once: everyone "
            "must sign in again. Only this admin session stays. In the JWT mode every access "
            "token issued until now stops working too.</p>"
            f'<form method="post" action="{ROOT}/revoke-all" class="panel">{hidden_csrf(csrf)}'
            + _password_field("Your password", "password")
            + _code_field()
            + '<p><button class="danger" type="submit">End every session</button></p></form>'
        )
        page = await self.console.page(request, "End every session", name)
        return with_retry_after(page.response(body, status=status), wait)
