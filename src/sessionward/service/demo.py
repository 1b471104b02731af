"""The demo shop (``/demo``): the whole session story in a small, real web app.

Browse and fill a cart anonymously (a guest session starts with the first page, whose forms
need a session-bound CSRF token),
register or sign in (argon2id; the cart survives: the login carries the anonymous session's
data into a new session and kills the old token), an account page with optional TOTP for
step-up (checkout then needs a code from the last five minutes), "Your devices" (every
session of the account with device, place and last activity; sign out one or all others),
and logout. Cookie transport with CSRF, through ``sessionward.web``; no logic of its own
beyond the shop.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, TypeGuard

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sessionward.core import token as tokens
from sessionward.core.events import RevokeReason
from sessionward.core.record import Session
from sessionward.errors import AlreadyExists, StepUpRequired
from sessionward.service.admin import form_fields, reserve, try_again, with_retry_after
from sessionward.service.html import Page, attr, esc, fmt_time, hidden_csrf
from sessionward.service.passwords import (
    hash_password_async,
    new_totp_secret,
    totp_step,
    totp_uri,
    verify_password_async,
)
from sessionward.service.runtime import RESERVED_PREFIX, Runtime
from sessionward.service.state import UserRow
from sessionward.web import CookiePolicy, CsrfPolicy
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.starlette import get_handle

__all__ = ["PRODUCTS", "demo_app"]

ROOT = "/demo"
REALM = "demo"
STEP_UP_SECONDS = 300
_NAME = re.compile(r"[a-z0-9_.-]{3,32}")
_TOTP_SECRET = re.compile(r"[A-Z2-7]{32}")  # new_totp_secret(): 160 bits in base32
PRODUCTS = {
    "tea": ("Green tea", 4.50),
    "mug": ("Stoneware mug", 12.00),
    "kettle": ("Kettle", 35.00),
    "biscuits": ("Oat biscuits", 3.20),
}


def redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


def device_of(user_agent: str | None) -> str:
    """A short, human name for a user agent (browser and platform)."""
    if not user_agent:
        return "Unknown device"
    browser = next(
        (
            name
            for key, name in (
                ("Edg/", "Edge"),
                ("Firefox/", "Firefox"),
                ("Chrome/", "Chrome"),
                ("Safari/", "Safari"),
                ("curl/", "curl"),
            )
            if key in user_agent
        ),
        "Browser",
    )
    platform = next(
        (
            name
            for key, name in (
                ("Android", "Android"),
                ("iPhone", "iPhone"),
                ("Windows", "Windows"),
                ("Mac OS", "macOS"),
                ("Linux", "Linux"),
            )
            if key in user_agent
        ),
        None,
    )
    return f"{browser} on {platform}" if platform else browser


class Shop:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.manager = rt.manager

    def user(self, request: Request) -> str | None:
        """The signed-in shop user, or ``None`` (anonymous, or not a shop account)."""
        session = get_handle(request).session
        if (
            session is None
            or session.user_id is None
            or session.user_id.startswith(RESERVED_PREFIX)
        ):
            return None
        if self.rt.state.get_user(REALM, session.user_id) is None:
            return None
        return session.user_id

    async def page(self, request: Request, title: str) -> Page:
        user = self.user(request)
        session = get_handle(request).session
        cart = len(_cart(session.data)) if session else 0
        nav = [f'<a href="{ROOT}/">Shop</a>', f'<a href="{ROOT}/cart">Cart ({cart})</a>']
        if user:
            csrf = await get_handle(request).csrf_token()
            nav += [
                f'<a href="{ROOT}/account">Account</a>',
                f'<a href="{ROOT}/devices">Your devices</a>',
                f'<form method="post" action="{ROOT}/logout" class="inline">{hidden_csrf(csrf)}'
                '<button class="secondary" type="submit">Sign out</button></form>',
            ]
        else:
            nav += [
                f'<a href="{ROOT}/login">Sign in</a>',
                f'<a href="{ROOT}/register">Register</a>',
            ]
        return Page(title, "Tea & Things (sessionward demo)", f"{ROOT}/", nav)

    # -- shop --------------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        csrf = await get_handle(request).csrf_token()
        user = self.user(request)
        items = "".join(
            f'<li class="panel"><h2>{esc(name)}</h2><p>€{price:.2f}</p>'
            f'<form method="post" action="{ROOT}/cart/add">{hidden_csrf(csrf)}'
            f'<input type="hidden" name="item" value={attr(key)}>'
            f'<button type="submit">Add to cart<span class="sr-only"> ({esc(name)})</span>'
            "</button>"
            "</form></li>"
            for key, (name, price) in PRODUCTS.items()
        )
        greeting = (
            f"<p>Welcome back, <strong>{esc(user)}</strong>.</p>"
            if user
            else "<p>You are browsing as a guest. Your cart is kept when you sign in.</p>"
        )
        message = _message(request)
        page = await self.page(request, "Shop")
        return page.response(f'{message}{greeting}<ul class="products">{items}</ul>')

    async def cart_add(self, request: Request) -> Response:
        item = (await form_fields(request)).get("item", "")
        if item in PRODUCTS:
            await get_handle(request).update_data(
                lambda data: {**data, "cart": [*_cart(data), item][-50:]}
            )
        return redirect(f"{ROOT}/cart")

    async def cart(self, request: Request) -> Response:
        session = get_handle(request).session
        cart = _cart(session.data) if session else []
        csrf = await get_handle(request).csrf_token()
        rows = "".join(
            f"<tr><td>{esc(PRODUCTS[i][0])}</td><td>€{PRODUCTS[i][1]:.2f}</td></tr>"
            for i in cart
            if i in PRODUCTS
        )
        total = sum(PRODUCTS[i][1] for i in cart if i in PRODUCTS)
        body = _message(request) + (
            '<table id="cart"><thead><tr><th scope="col">Item</th><th scope="col">Price</th>'
            f'</tr></thead><tbody>{rows}</tbody><tfoot><tr><th scope="row">Total</th>'
            f"<td>€{total:.2f}</td></tr></tfoot></table>"
            f'<form method="post" action="{ROOT}/checkout">{hidden_csrf(csrf)}'
            '<button type="submit">Place order</button></form>'
            if cart
            else "<p>Your cart is empty.</p>"
        )
        return (await self.page(request, "Your cart")).response(body)

    async def checkout(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return redirect(f"{ROOT}/login?next=cart")
        handle = get_handle(request)
        account = self.rt.state.get_user(REALM, user)
        session = handle.session
        if account is not None and account.totp_secret and session is not None:
            try:
                self.manager.require_recent_auth(session, max_age=STEP_UP_SECONDS, min_level=2)
            except StepUpRequired:
                return redirect(f"{ROOT}/step-up")
        await handle.update_data(lambda data: {**data, "cart": [], "orders": _orders(data) + 1})
        return redirect(f"{ROOT}/?msg=ordered")

    # -- accounts ----------------------------------------------------------------------------

    async def register(self, request: Request) -> Response:
        handle = get_handle(request)
        error = ""
        if request.method == "POST":
            fields = await form_fields(request)
            name = fields.get("username", "").strip().lower()
            password = fields.get("password", "")
            if not _NAME.fullmatch(name):
                error = "Choose a user name of 3 to 32 letters, digits, '.', '_' or '-'."
            elif len(password) < 8:
                error = "Choose a password of at least 8 characters."
            else:
                hashed = await hash_password_async(password)
                try:
                    self.rt.state.add_user(UserRow(REALM, name, hashed, None, time.time()))
                except AlreadyExists:
                    error = "That user name is taken."
                else:
                    await handle.login(name)
                    return redirect(f"{ROOT}/account")
        csrf = await handle.csrf_token()
        body = _error(error) + _account_form(
            f"{ROOT}/register", csrf, "Create account", "new-password"
        )
        return (await self.page(request, "Register")).response(body, status=400 if error else 200)

    async def login(self, request: Request) -> Response:
        handle = get_handle(request)
        error, wait = "", 0
        if request.method == "POST":
            fields = await form_fields(request)
            name = fields.get("username", "").strip().lower()
            guarded = f"{REALM}:{name}" if _NAME.fullmatch(name) else None  # see admin.login
            guard, address = self.rt.guard, handle.context.ip
            if wait := await reserve(guard, "password", guarded, address):
                error = try_again(wait)
            else:
                account = self.rt.state.get_user(REALM, name) if guarded else None
                stored = None if account is None else account.password_hash
                if await verify_password_async(stored, fields.get("password", "")):
                    await guard.succeeded("password", guarded, address)
                    await handle.login(name)  # the cart comes along; the guest token dies
                    target = "cart" if request.query_params.get("next") == "cart" else ""
                    return redirect(f"{ROOT}/{target}")
                await guard.failed("password", guarded, address)
                error = "Wrong user name or password."
        csrf = await handle.csrf_token()
        action = f"{ROOT}/login" + ("?next=cart" if request.query_params.get("next") else "")
        body = _error(error) + _account_form(action, csrf, "Sign in", "current-password")
        status = 429 if wait else 401 if error else 200
        return with_retry_after(
            (await self.page(request, "Sign in")).response(body, status=status), wait
        )

    async def logout(self, request: Request) -> Response:
        await get_handle(request).logout()
        return redirect(f"{ROOT}/?msg=signed-out")

    async def account(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return redirect(f"{ROOT}/login")
        handle = get_handle(request)
        session = handle.session
        assert session is not None  # noqa: S101 - user() found one
        account = self.rt.state.get_user(REALM, user)
        csrf = await handle.csrf_token()
        if account is not None and account.totp_secret:
            totp = (
                "<p>Two-step verification is <strong>on</strong>. Placing an order asks for "
                "a code when you have not entered one in the last five minutes.</p>"
            )
        else:
            pending = session.data.get("pending_totp")
            secret = pending if _is_totp_secret(pending) else new_totp_secret()
            if pending != secret:
                await handle.update_data(lambda d: {**d, "pending_totp": secret})
            totp = (
                "<p>Two-step verification is off. Add this key to an authenticator app, then "
                "enter the code it shows.</p>"
                f'<p>Key: <code id="totp-secret">{esc(secret)}</code></p>'
                f'<p class="muted">URI: <code>{esc(totp_uri(secret, user))}</code></p>'
                f'<form method="post" action="{ROOT}/account/totp">{hidden_csrf(csrf)}'
                '<label for="code">Code from your app</label>'
                '<input type="text" id="code" name="code" inputmode="numeric"'
                ' autocomplete="one-time-code" required>'
                ' <button type="submit">Turn on</button></form>'
            )
        body = (
            _message(request)
            + f'<dl class="panel"><dt>User name</dt><dd id="account-user">{esc(user)}</dd>'
            f"<dt>Signed in</dt><dd>{fmt_time(session.auth_time)}</dd>"
            f"<dt>Orders placed</dt><dd>{_orders(session.data)}</dd></dl>"
            f"<h2>Two-step verification</h2>{totp}"
            f'<p><a href="{ROOT}/devices">See the devices signed in to your account</a></p>'
        )
        return (await self.page(request, "Your account")).response(body)

    async def enable_totp(self, request: Request) -> Response:
        user = self.user(request)
        handle = get_handle(request)
        session = handle.session
        if user is None or session is None:
            return redirect(f"{ROOT}/login")
        secret = session.data.get("pending_totp")
        code = (await form_fields(request)).get("code", "")
        if not _is_totp_secret(secret):
            return redirect(f"{ROOT}/account?msg=bad-code")
        if await self._totp(handle.context.ip, user, secret, code) != "ok":
            return redirect(f"{ROOT}/account?msg=bad-code")
        self.rt.state.set_totp(REALM, user, secret)
        await handle.update_data(lambda d: {k: v for k, v in d.items() if k != "pending_totp"})
        await handle.elevate(auth_level=2)  # the code was just proven
        return redirect(f"{ROOT}/account?msg=totp-on")

    async def step_up(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return redirect(f"{ROOT}/login")
        handle = get_handle(request)
        account = self.rt.state.get_user(REALM, user)
        if account is None or not account.totp_secret:
            return redirect(f"{ROOT}/cart")
        error, wait = "", 0
        if request.method == "POST":
            code = (await form_fields(request)).get("code", "")
            outcome = await self._totp(handle.context.ip, user, account.totp_secret, code)
            if outcome == "ok":
                await handle.elevate(auth_level=2)
                return redirect(f"{ROOT}/cart")
            if isinstance(outcome, int):
                wait = outcome
                error = try_again(wait)
            else:
                error = "That code is not right, or it was used already. Try the next one."
        csrf = await handle.csrf_token()
        body = (
            _error(error)
            + "<p>Placing an order needs a fresh code from your authenticator app.</p>"
            f'<form method="post" action="{ROOT}/step-up" class="panel">{hidden_csrf(csrf)}'
            '<label for="code">Code</label><input type="text" id="code" name="code"'
            ' inputmode="numeric" autocomplete="one-time-code" required>'
            ' <button type="submit">Verify</button></form>'
        )
        page = await self.page(request, "Confirm it is you")
        return with_retry_after(page.response(body, status=429 if wait else 200), wait)

    async def _totp(self, address: str | None, user: str, secret: str, code: str) -> str | int:
        """``"ok"`` for a right code not used before (it is then used up), ``"bad"``, or the
        seconds to wait when the account's code guesses are throttled."""
        guard, guarded = self.rt.guard, f"{REALM}:{user}"
        if wait := await reserve(guard, "totp", guarded, address):
            return wait
        step = totp_step(secret, code, self.manager.clock.now())
        if step is not None and self.rt.state.claim_totp_step(REALM, user, step):
            await guard.succeeded("totp", guarded, address)
            return "ok"
        await guard.failed("totp", guarded, address)
        return "bad"

    # -- devices -----------------------------------------------------------------------------

    async def devices(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return redirect(f"{ROOT}/login")
        handle = get_handle(request)
        current = handle.session
        csrf = await handle.csrf_token()
        sessions = await self.manager.list_user(user)
        rows = "".join(_device_row(s, current, csrf) for s in sessions)
        others = len([s for s in sessions if current is None or s.id != current.id])
        body = (
            _message(request)
            + '<table id="devices"><caption class="sr-only">Signed-in devices</caption><thead>'
            '<tr><th scope="col">Device</th><th scope="col">Place</th>'
            '<th scope="col">Last activity</th><th scope="col">Signed in</th>'
            '<th scope="col"><span class="sr-only">Actions</span></th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
            + (
                f'<form method="post" action="{ROOT}/devices/sign-out-others">{hidden_csrf(csrf)}'
                f'<button class="danger" type="submit">Sign out other devices ({others})'
                "</button></form>"
                if others
                else "<p>No other devices are signed in.</p>"
            )
        )
        return (await self.page(request, "Your devices")).response(body)

    async def sign_out_others(self, request: Request) -> Response:
        user = self.user(request)
        current = get_handle(request).session
        if user is None or current is None:
            return redirect(f"{ROOT}/login")
        count = await self.manager.revoke_user(
            user, keep=current, reason=RevokeReason.LOGOUT_EVERYWHERE
        )
        return redirect(f"{ROOT}/devices?msg=signed-out-{count}")

    async def sign_out_device(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return redirect(f"{ROOT}/login")
        session_id = str(request.path_params["session_id"])
        if tokens.is_session_id(session_id):
            target = await self.manager.get(session_id)
            if target is not None and target.user_id == user:  # only the user's own sessions
                await self.manager.revoke(target, reason=RevokeReason.LOGOUT)
        return redirect(f"{ROOT}/devices")


_MESSAGES = {
    "ordered": "Thank you: your order is placed.",
    "signed-out": "You are signed out.",
    "totp-on": "Two-step verification is on.",
    "bad-code": "That code is not right; try the current one.",
}


# Session data is JSON that any API client with an issue key may have written: the pages
# read it defensively and show only what they recognise.


def _cart(data: Mapping[str, Any]) -> list[str]:
    raw = data.get("cart")
    return [i for i in raw if isinstance(i, str) and i in PRODUCTS] if isinstance(raw, list) else []


def _orders(data: Mapping[str, Any]) -> int:
    raw = data.get("orders")
    return raw if type(raw) is int and 0 <= raw < 10**9 else 0


def _is_totp_secret(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _TOTP_SECRET.fullmatch(value) is not None


def _message(request: Request) -> str:
    key = request.query_params.get("msg", "")
    if key.startswith("signed-out-") and key[11:].isdigit():
        text = f"Signed out {int(key[11:])} other device(s)."
    else:
        text = _MESSAGES.get(key, "")
    return f'<p class="msg" role="status">{esc(text)}</p>' if text else ""


def _error(text: str) -> str:
    return f'<p class="msg error" role="alert">{esc(text)}</p>' if text else ""


def _account_form(action: str, csrf: str, label: str, password_kind: str) -> str:
    return (
        f'<form method="post" action={attr(action)} class="panel">{hidden_csrf(csrf)}'
        '<label for="username">User name</label>'
        '<input type="text" id="username" name="username" autocomplete="username" required>'
        '<label for="password">Password</label>'
        f'<input type="password" id="password" name="password" autocomplete="{password_kind}"'
        " required>"
        f'<p><button type="submit">{esc(label)}</button></p></form>'
    )


def _device_row(session: Session, current: Session | None, csrf: str) -> str:
    latest: dict[str, Any] = session.context_history[-1] if session.context_history else {}
    this = current is not None and current.id == session.id
    action = (
        '<span class="tag">This device</span>'
        if this
        else f'<form method="post" action="{ROOT}/devices/{esc(session.id)}/sign-out" '
        f'class="inline">{hidden_csrf(csrf)}<button class="secondary" type="submit" '
        f'aria-label="Sign out {esc(device_of(latest.get("user_agent")))} '
        f'({esc(session.id)})">Sign out</button></form>'
    )
    return (
        f"<tr data-session={attr(session.id)}><td>{esc(device_of(latest.get('user_agent')))}"
        f"</td><td>{esc(latest.get('ip') or 'unknown')}</td>"
        f"<td>{fmt_time(session.last_seen)}</td><td>{fmt_time(session.created_at)}</td>"
        f"<td>{action}</td></tr>"
    )


def demo_app(rt: Runtime) -> Any:
    shop = Shop(rt)
    routes = [
        Route("/", shop.home, methods=["GET"]),
        Route("/cart", shop.cart, methods=["GET"]),
        Route("/cart/add", shop.cart_add, methods=["POST"]),
        Route("/checkout", shop.checkout, methods=["POST"]),
        Route("/register", shop.register, methods=["GET", "POST"]),
        Route("/login", shop.login, methods=["GET", "POST"]),
        Route("/logout", shop.logout, methods=["POST"]),
        Route("/account", shop.account, methods=["GET"]),
        Route("/account/totp", shop.enable_totp, methods=["POST"]),
        Route("/step-up", shop.step_up, methods=["GET", "POST"]),
        Route("/devices", shop.devices, methods=["GET"]),
        Route("/devices/sign-out-others", shop.sign_out_others, methods=["POST"]),
        Route("/devices/{session_id}/sign-out", shop.sign_out_device, methods=["POST"]),
    ]
    csrf = CsrfPolicy(rt.config.origins, keys=[rt.state.secret("demo-csrf")])
    middleware = [
        Middleware(
            SessionMiddleware,
            manager=rt.manager,
            cookie=CookiePolicy(name="shop"),
            csrf=csrf,
            trusted_proxies=list(rt.config.trusted_proxies),
        )
    ]
    return Starlette(routes=routes, middleware=middleware)
