"""The demo shop's account pages: how an application handles factors and devices.

* The account page: two-step verification (TOTP) turned on, replaced or off, and the password
  changed, each on a form that asks again for every factor the account has (full
  re-authentication), rotates the session's token, tells the user (``FactorChanged``) and
  offers to sign out every other device (ticked by default). "Recent security activity"
  lists those changes, failed sign-ins and every session of the account that ended, saying
  why in plain words (``sessionward.service.activity_text``), from the durable event log.
* "Your devices": every session of the account; signing out one device or all the others
  asks for the password first.

Every check goes through ``sessionward.service.factors``: throttled (a 429 page with
``Retry-After`` while guesses are, and nothing changed), a code good once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from sessionward.core import token as tokens
from sessionward.core.binding import binding_of, last_proof
from sessionward.core.events import RevokeReason
from sessionward.core.policy import Policy
from sessionward.core.record import Session
from sessionward.service import history
from sessionward.service.activity_text import NOTICE_KINDS, notice_sentence
from sessionward.service.factors import (
    Checked,
    check_code,
    check_password,
    factor_changed,
    reauthenticate,
)
from sessionward.service.forms import checked, form_fields, redirect, too_many
from sessionward.service.html import Page, attr, esc, fmt_time, hidden_csrf
from sessionward.service.password_policy import MAX_LENGTH, password_problem
from sessionward.service.passwords import (
    hash_password_async,
    is_totp_secret,
    new_totp_secret,
    totp_uri,
)
from sessionward.service.qr import qr_svg
from sessionward.service.runtime import Runtime
from sessionward.service.session_views import device_name, owner_cells, title_of
from sessionward.web._async.handle import AsyncSessionHandle
from sessionward.web.starlette import get_handle

__all__ = ["DEMO_MIN_PASSWORD", "ShopAccount", "device_of", "orders_placed"]

ROOT = "/demo"
REALM = "demo"
DEMO_MIN_PASSWORD = 8
_NEW_TOTP = "pending_totp"  # session data: the key being set up
_TOTP_DONE = {"on": "totp-on", "replace": "totp-replaced", "off": "totp-off"}


class Shop(Protocol):
    rt: Runtime

    def user(self, request: Request) -> str | None: ...

    async def page(self, request: Request, title: str) -> Page: ...


def device_of(user_agent: str | None) -> str:
    """A short, human name for a user agent (browser and platform)."""
    if not user_agent:
        return "Unknown device"
    browsers = (
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    )
    platforms = (
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("Windows", "Windows"),
        ("Mac OS", "macOS"),
        ("Linux", "Linux"),
    )
    browser = next((name for key, name in browsers if key in user_agent), "Browser")
    platform = next((name for key, name in platforms if key in user_agent), None)
    return f"{browser} on {platform}" if platform else browser


def orders_placed(data: Mapping[str, Any]) -> int:
    """The session's order count. Session data is JSON any API client with an issue key may
    have written: the pages read it defensively and show only what they recognise."""
    raw = data.get("orders")
    return raw if type(raw) is int and 0 <= raw < 10**9 else 0


def _password_field(label: str, name: str = "password", kind: str = "current-password") -> str:
    return (
        f'<label for="{name}">{esc(label)}</label><input type="password" id="{name}"'
        f' name="{name}" autocomplete="{kind}" maxlength="{MAX_LENGTH}" required>'
    )


def _code_field(label: str, name: str = "code") -> str:
    return (
        f'<label for="{name}">{esc(label)}</label><input type="text" id="{name}" name="{name}"'
        ' inputmode="numeric" autocomplete="one-time-code" required>'
    )


def _others_box(prefix: str) -> str:
    return (
        f'<p><input type="checkbox" id="{prefix}-others" name="sign_out_others" checked> '
        f'<label for="{prefix}-others" class="inline">Also sign out every other device</label></p>'
    )


def _notice(entry: dict[str, Any], policy: Policy) -> str:
    text = notice_sentence(entry, policy) or ""
    where = f" from {entry['ip']}" if entry.get("ip") else ""
    return f"<li>{fmt_time(entry.get('at'))}: {esc(text + where)}</li>"


class ShopAccount:
    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.rt = shop.rt

    async def _finish(
        self, handle: AsyncSessionHandle, user: str, fields: dict[str, str], done: str
    ) -> Response:
        """After a factor changed: sign out the other devices if asked, else offer to."""
        current = handle.session
        others = 0
        if checked(fields, "sign_out_others") and current is not None:
            others = await self.rt.manager.revoke_user(
                user, keep=current, reason=RevokeReason.PASSWORD_CHANGE
            )
        return redirect(f"{ROOT}/account?msg={done}&others={others}")

    # -- the account page --------------------------------------------------------------------

    async def account(self, request: Request) -> Response:
        user = self.shop.user(request)
        handle = get_handle(request)
        session = handle.session
        if user is None or session is None:
            return redirect(f"{ROOT}/login")
        account = self.rt.state.get_user(REALM, user)
        csrf = await handle.csrf_token()
        totp_on = account is not None and bool(account.totp_secret)
        secret = session.data.get(_NEW_TOTP)
        if not is_totp_secret(secret):
            secret = new_totp_secret()
            await handle.update_data(lambda data: {**data, _NEW_TOTP: secret})
        current_code = _code_field("Code from your current app", "code") if totp_on else ""
        new_key = (
            '<figure class="qr-box">'
            + qr_svg(totp_uri(secret, user), "QR code of the new key for your authenticator app")
            + "<figcaption>Scan this with your authenticator app, or type the key: "
            f'<code id="totp-secret">{esc(secret)}</code></figcaption></figure>'
        )

        def totp_form(action: str, intro: str, button: str, new_code: bool) -> str:
            return (
                f'<form method="post" action="{ROOT}/account/totp" class="panel" '
                f'id="totp-{action}">{hidden_csrf(csrf)}<p>{intro}</p>'
                f'<input type="hidden" name="action" value="{action}">'
                + (new_key + _code_field("Code the new key shows", f"new_code_{action}")) * new_code
                + _password_field("Your password", f"password_{action}")
                + current_code.replace('id="code"', f'id="code_{action}"').replace(
                    'for="code"', f'for="code_{action}"'
                )
                + _others_box(f"totp-{action}")
                + f'<p><button type="submit">{esc(button)}</button></p></form>'
            )

        if totp_on:
            totp = (
                "<p>Two-step verification is <strong>on</strong>. Placing an order asks for "
                "a code when you have not entered one in the last five minutes.</p>"
                + totp_form("replace", "New phone? Move to a new key:", "Replace the key", True)
                + totp_form("off", "No longer want it?", "Turn off", False)
            )
        else:
            totp = "<p>Two-step verification is off.</p>" + totp_form(
                "on", "Add this key to an authenticator app, then enter its code.", "Turn on", True
            )
        policy = self.rt.manager.policy
        found = await history.user_events(self.rt, user, NOTICE_KINDS, 50)
        notices = [e for e in found if notice_sentence(e, policy) is not None][:10]
        body = (
            _message(request)
            + f'<dl class="panel"><dt>User name</dt><dd id="account-user">{esc(user)}</dd>'
            f"<dt>Signed in</dt><dd>{fmt_time(session.created_at)}</dd>"
            f"<dt>Identity last confirmed</dt><dd>{fmt_time(session.auth_time)}</dd>"
            f"<dt>Orders placed</dt><dd>{orders_placed(session.data)}</dd></dl>"
            f"<h2>Two-step verification</h2>{totp}"
            "<h2>Change your password</h2>"
            f'<form method="post" action="{ROOT}/account/password" class="panel"'
            f' id="password-change">{hidden_csrf(csrf)}'
            + _password_field("Current password", "password")
            + current_code
            + _password_field(
                f"New password ({DEMO_MIN_PASSWORD} characters or more)",
                "new_password",
                "new-password",
            )
            + _others_box("password")
            + '<p><button type="submit">Change password</button></p></form>'
            '<h2>Recent security activity</h2><ul id="notices">'
            + ("".join(_notice(e, policy) for e in notices) or "<li>Nothing recent.</li>")
            + f'</ul><p><a href="{ROOT}/devices">See the devices signed in to your account</a></p>'
        )
        return (await self.shop.page(request, "Your account")).response(body)

    async def change_totp(self, request: Request) -> Response:
        user = self.shop.user(request)
        handle = get_handle(request)
        session = handle.session
        if user is None or session is None:
            return redirect(f"{ROOT}/login")
        fields = await form_fields(request)
        action = fields.get("action", "")
        if action not in _TOTP_DONE:
            return redirect(f"{ROOT}/account")
        password, code = fields.get(f"password_{action}", ""), fields.get("code", "")
        proven = await reauthenticate(self.rt, handle, REALM, user, password, code)
        account = proven.account
        if proven.throttled:
            return await self._too_many(request, proven, "account")
        if account is None or (action == "on") == bool(account.totp_secret):
            return redirect(f"{ROOT}/account?msg=reauth-failed")
        secret = session.data.get(_NEW_TOTP)
        if action != "off":
            if not is_totp_secret(secret):
                return redirect(f"{ROOT}/account?msg=bad-code")
            new = fields.get(f"new_code_{action}", "")
            enrolled = await check_code(self.rt, handle, account._replace(totp_secret=secret), new)
            if enrolled.throttled:
                return await self._too_many(request, enrolled, "account")
            if not enrolled.ok:
                return redirect(f"{ROOT}/account?msg=bad-code")
        self.rt.state.set_totp(REALM, user, None if action == "off" else secret)
        change = {"on": "enrolled", "replace": "replaced", "off": "removed"}[action]
        factor_changed(self.rt, handle, REALM, user, "totp", change)
        await handle.update_data(lambda data: {**data, _NEW_TOTP: None})
        await handle.elevate(auth_level=1 if action == "off" else 2)  # a new token
        return await self._finish(handle, user, fields, _TOTP_DONE[action])

    async def change_password(self, request: Request) -> Response:
        user = self.shop.user(request)
        handle = get_handle(request)
        if user is None or handle.session is None:
            return redirect(f"{ROOT}/login")
        fields = await form_fields(request)
        password, code = fields.get("password", ""), fields.get("code", "")
        new = fields.get("new_password", "")
        # The new password first: one that is refused does not use up the code.
        problem = password_problem(new, min_length=DEMO_MIN_PASSWORD, name=user)
        if problem is not None:
            page = await self.shop.page(request, "Change your password")
            body = f'<p class="msg error" role="alert">{esc(problem)}</p>'
            back = f'<p><a href="{ROOT}/account">Back to your account</a></p>'
            return page.response(body + back, status=400)
        proven = await reauthenticate(self.rt, handle, REALM, user, password, code)
        if proven.throttled:
            return await self._too_many(request, proven, "account")
        if not proven.ok:
            return redirect(f"{ROOT}/account?msg=reauth-failed")
        self.rt.state.set_password_hash(REALM, user, await hash_password_async(new))
        factor_changed(self.rt, handle, REALM, user, "password", "replaced")
        await handle.elevate()  # a new token after re-authentication
        return await self._finish(handle, user, fields, "password-changed")

    # -- devices -----------------------------------------------------------------------------

    async def devices(self, request: Request) -> Response:
        user = self.shop.user(request)
        if user is None:
            return redirect(f"{ROOT}/login")
        handle = get_handle(request)
        current = handle.session
        csrf = await handle.csrf_token()
        sessions = await self.rt.manager.list_user(user)
        activity = self.rt.activity
        rows = "".join(_device_row(s, current, activity.for_session(s.id)) for s in sessions)
        others = len([s for s in sessions if current is None or s.id != current.id])
        body = (
            _message(request)
            + '<table id="devices"><caption class="sr-only">Signed-in devices</caption><thead>'
            '<tr><th scope="col">Device</th><th scope="col">Network</th>'
            '<th scope="col">Security checks</th><th scope="col">Last activity</th>'
            '<th scope="col">Signed in</th>'
            '<th scope="col"><span class="sr-only">Actions</span></th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
            + (
                f'<form method="post" action="{ROOT}/devices/sign-out-others" class="panel">'
                f"{hidden_csrf(csrf)}"
                + _password_field("Your password, to confirm it is you")
                + f'<p><button class="danger" type="submit">Sign out other devices ({others})'
                "</button></p></form>"
                if others
                else "<p>No other devices are signed in.</p>"
            )
        )
        return (await self.shop.page(request, "Your devices")).response(body)

    async def _confirmed(self, request: Request, user: str) -> Checked:
        handle = get_handle(request)
        password = (await form_fields(request)).get("password", "")
        proven = await check_password(self.rt, handle, REALM, user, password)
        if proven.ok:
            await handle.elevate()  # re-authenticated: a new token
        return proven

    async def _too_many(self, request: Request, refused: Checked, back: str) -> Response:
        page = await self.shop.page(request, "Too many attempts")
        return too_many(page, refused.wait, f"{ROOT}/{back}")

    async def sign_out_others(self, request: Request) -> Response:
        user = self.shop.user(request)
        if user is None or get_handle(request).session is None:
            return redirect(f"{ROOT}/login")
        proven = await self._confirmed(request, user)
        if proven.throttled:
            return await self._too_many(request, proven, "devices")
        if not proven.ok:
            return redirect(f"{ROOT}/devices?msg=reauth-failed")
        current = get_handle(request).session
        count = await self.rt.manager.revoke_user(
            user, keep=current, reason=RevokeReason.LOGOUT_EVERYWHERE
        )
        return redirect(f"{ROOT}/devices?msg=signed-out-{count}")

    async def sign_out_device(self, request: Request) -> Response:
        user = self.shop.user(request)
        if user is None:
            return redirect(f"{ROOT}/login")
        handle = get_handle(request)
        session_id = str(request.path_params["session_id"])
        target = await self.rt.manager.get(session_id) if tokens.is_session_id(session_id) else None
        if target is None or target.user_id != user:  # only the user's own sessions
            return redirect(f"{ROOT}/devices")
        if request.method == "POST":
            proven = await self._confirmed(request, user)
            if proven.throttled:
                return await self._too_many(request, proven, "devices")
            if not proven.ok:
                return redirect(f"{ROOT}/devices?msg=reauth-failed")
            await self.rt.manager.revoke(target, reason=RevokeReason.LOGOUT)
            return redirect(f"{ROOT}/devices?msg=signed-out-1")
        latest = target.context_history[-1] if target.context_history else {}
        csrf = await handle.csrf_token()
        body = (
            f"<p>Sign out <strong>{esc(device_name(target, device_of(latest.get('user_agent'))))}"
            f"</strong> ({esc(title_of(target))}, last active "
            f"{fmt_time(target.last_seen)})?</p>"
            f'<form method="post" action="{ROOT}/devices/{esc(target.id)}/sign-out" '
            f'class="panel">{hidden_csrf(csrf)}'
            + _password_field("Your password, to confirm it is you")
            + '<p><button class="danger" type="submit">Sign out that device</button></p></form>'
        )
        return (await self.shop.page(request, "Sign out a device")).response(body)


_MESSAGES = {
    "totp-on": "Two-step verification is on.",
    "totp-replaced": "Your authenticator key is replaced.",
    "totp-off": "Two-step verification is off.",
    "password-changed": "Your password is changed.",
    "bad-code": "That code is not right, or it was used already: try the next one. "
    "Nothing was changed.",
    "reauth-failed": "Your password or code is not right. Nothing was changed.",
}


def _message(request: Request) -> str:
    key = request.query_params.get("msg", "")
    others = request.query_params.get("others", "")
    if key.startswith("signed-out-") and key[11:].isdigit():
        text = f"Signed out {int(key[11:])} other device(s)."
    else:
        text = _MESSAGES.get(key, "")
    if text and others.isdigit():
        text += (
            f" Signed out {int(others)} other device(s)."
            if int(others)
            else " Your other devices stay signed in: sign them out under Your devices."
        )
    return f'<p class="msg" role="status">{esc(text)}</p>' if text else ""


def _bound(session: Session) -> str:
    """Whether the session is bound to a key the browser keeps (a copied cookie is then
    worth minutes), or an ordinary, unbound one: the method, the start of the key's
    thumbprint and when the device last proved it."""
    binding = binding_of(session.data)
    if not binding.bound:
        return f' <span class="tag" data-binding={attr(binding.state)}>not key-bound</span>'
    key = f"{binding.jkt[:8]}…" if binding.jkt else "?"
    return (
        f' <span class="tag" data-binding="bound">key-bound ({esc(binding.method or "?")})'
        f'</span> <span class="muted">key <code>{esc(key)}</code>, last proof '
        f"{fmt_time(last_proof(binding, session.last_seen))}</span>"
    )


def _device_row(session: Session, current: Session | None, events: list[dict[str, Any]]) -> str:
    latest: dict[str, Any] = session.context_history[-1] if session.context_history else {}
    device = device_name(session, device_of(latest.get("user_agent")))
    this = current is not None and current.id == session.id
    action = (
        '<span class="tag">This device</span>'
        if this
        else f'<a href="{ROOT}/devices/{esc(session.id)}/sign-out" '
        f'aria-label="Sign out {esc(device)} ({esc(session.id)})">Sign out…</a>'
    )
    return (
        f"<tr data-session={attr(session.id)}><td>{esc(device)}{_bound(session)}</td>"
        f"{owner_cells(session, events)}"
        f"<td>{fmt_time(session.last_seen)}</td><td>{fmt_time(session.created_at)}</td>"
        f"<td>{action}</td></tr>"
    )
