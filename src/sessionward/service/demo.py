"""The demo shop (``/demo``): the whole session story in a small, real web app.

Browse and fill a cart anonymously (a guest session starts with the first item in the
cart: until then the forms' CSRF token is bound to a nonce cookie, and page views store
nothing), register or sign in (argon2id; the cart survives: the login carries the anonymous
session's data into a new session and kills the old token), an account page with optional
TOTP for step-up (checkout then needs a code from the last five minutes), "Your devices" (every
session of the account with device, place and last activity; sign out one or all others),
and logout (the account pages are ``sessionward.service.demo_account``). Cookie transport
with CSRF, through ``sessionward.web``; no logic of its own beyond the shop.

Registration says the same whether or not the name was free (the account is created only if
it was; the password is hashed either way), so it tells nobody which names exist: sign in
afterwards. New passwords follow ``sessionward.service.password_policy``. Every password and
code check is throttled, a code works once, and each check is a security event
(``sessionward.service.factors``). Guest sessions started and registrations are counted per
client address in the same windows (docs/throttling.md): over the limit, the form answers
429 and nothing is stored.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sessionward.errors import AlreadyExists, StepUpRequired
from sessionward.service.demo_account import DEMO_MIN_PASSWORD, ShopAccount, orders_placed
from sessionward.service.factors import NAME, check_code, check_password
from sessionward.service.forms import (
    WRONG_CODE,
    form_fields,
    redirect,
    too_many,
    try_again,
    with_retry_after,
)
from sessionward.service.html import Page, attr, esc, hidden_csrf
from sessionward.service.password_policy import MAX_LENGTH, password_problem
from sessionward.service.passwords import hash_password_async
from sessionward.service.runtime import RESERVED_PREFIX, Runtime
from sessionward.service.session_views import challenge_notice
from sessionward.service.shop_catalogue import (
    MAX_CART,
    PRODUCTS,
    asset_routes,
    cart_view,
    product_card,
    product_view,
)
from sessionward.service.state import UserRow
from sessionward.service.tenancy import DEMO_APP
from sessionward.service.throttle import Throttled
from sessionward.web import CookiePolicy, CsrfPolicy, DeviceSignal
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.binding import DeviceBinding
from sessionward.web.starlette import get_handle

__all__ = ["PRODUCTS", "demo_app"]

ROOT = "/demo"
REALM = "demo"
STEP_UP_SECONDS = 300
STYLESHEETS = (f"{ROOT}/static/shop.css",)
LOGO = (
    '<svg class="logo" viewBox="0 0 32 32" width="32" height="32" aria-hidden="true">'
    '<circle cx="16" cy="16" r="16" fill="#f7e7c6"/><path d="M8 14h14v5a6 6 0 0 1-6 6h-2a6'
    ' 6 0 0 1-6-6z" fill="#7a3b12"/><path d="M22 15h2a3 3 0 0 1 0 6h-2" fill="none"'
    ' stroke="#7a3b12" stroke-width="2"/><path d="M12 11c-1-2 1-3 0-5M16 11c-1-2 1-3 0-5"'
    ' stroke="#7a3b12" stroke-width="1.6" fill="none" stroke-linecap="round"/></svg>'
)
DEVICE_SCRIPT = f"{ROOT}/sessionward/device.js"


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
        scripts = (DEVICE_SCRIPT,) if self.rt.config.demo_device_signal else ()
        return Page(
            title,
            "Tea & Things",
            f"{ROOT}/",
            nav,
            stylesheets=STYLESHEETS,
            logo=LOGO,
            script_files=scripts,
        )

    # -- shop --------------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        csrf = await get_handle(request).csrf_token()
        user = self.user(request)
        cards = "".join(product_card(key, csrf) for key in PRODUCTS)
        greeting = (
            f"<p>Welcome back, <strong>{esc(user)}</strong>.</p>"
            if user
            else "<p>You are browsing as a guest. Your cart is kept when you sign in.</p>"
        )
        hero = (
            '<section class="hero" aria-label="About the shop"><p class="kicker">'
            "Loose-leaf tea and the things to brew it</p>"
            "<p>Small batches, fair prices, delivered to your door. This shop is the"
            " sessionward demo: every page runs on its sessions.</p>"
            f"{greeting}</section>"
        )
        message = _message(request)
        page = await self.page(request, "Shop")
        return page.response(f'{message}{hero}<ul class="products">{cards}</ul>')

    async def product(self, request: Request) -> Response:
        key = request.path_params["key"]
        if key not in PRODUCTS:
            page = await self.page(request, "Not found")
            body = f'<p>No such product. <a href="{ROOT}/">Back to the shop</a></p>'
            return page.response(body, status=404)
        csrf = await get_handle(request).csrf_token()
        page = await self.page(request, PRODUCTS[key].name)
        return page.response(product_view(key, csrf))

    async def cart_add(self, request: Request) -> Response:
        item = (await form_fields(request)).get("item", "")
        if item in PRODUCTS:
            handle = get_handle(request)
            if handle.session is None and self.rt.config.demo_guest_limit:
                # The first item starts a guest session: counted.
                refused = await self._over_limit(request, "guest-session", f"{ROOT}/")
                if refused is not None:
                    return refused
            await handle.update_data(
                lambda data: {**data, "cart": [*_cart(data), item][-MAX_CART:]}
            )
        return redirect(f"{ROOT}/cart")

    async def cart_remove(self, request: Request) -> Response:
        item = (await form_fields(request)).get("item", "")
        handle = get_handle(request)
        if item in PRODUCTS and handle.session is not None:
            await handle.update_data(
                lambda data: {**data, "cart": [i for i in _cart(data) if i != item]}
            )
        return redirect(f"{ROOT}/cart")

    async def cart(self, request: Request) -> Response:
        session = get_handle(request).session
        cart = _cart(session.data) if session else []
        csrf = await get_handle(request).csrf_token()
        body = _message(request) + cart_view(cart, csrf)
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
                return redirect(f"{ROOT}/step-up?next=checkout")
        return await _place_order(handle)

    # -- accounts ----------------------------------------------------------------------------

    async def register(self, request: Request) -> Response:
        handle = get_handle(request)
        error, back = "", f"{ROOT}/register"
        fields: dict[str, str] = {}
        if request.method == "POST":
            fields = await form_fields(request)
            name = fields.get("username", "").strip().lower()
            password = fields.get("password", "")
            problem = password_problem(password, min_length=DEMO_MIN_PASSWORD, name=name)
            if not NAME.fullmatch(name):
                error = "Choose a user name of 3 to 32 letters, digits, '.', '_' or '-'."
            elif problem is not None:
                error = problem
            elif (refused := await self._over_limit(request, "registration", back)) is not None:
                return refused
            else:
                hashed = await hash_password_async(password)  # a taken name costs the same
                with contextlib.suppress(AlreadyExists):
                    self.rt.state.add_user(UserRow(REALM, name, hashed, None, time.time()))
                return redirect(f"{ROOT}/login?msg=registered")
        csrf = await handle.csrf_token()
        name = fields.get("username", "").strip() if request.method == "POST" else ""
        rule = (
            f"At least {DEMO_MIN_PASSWORD} characters; long pass phrases are welcome. Not one"
            " of the most common passwords, and not your user name or the shop's name with a"
            " few characters added."
        )
        body = (
            _error(error)
            + _account_form(
                f"{ROOT}/register", csrf, "Create account", "new-password", name=name, rule=rule
            )
            + f'<p>Already have an account? <a href="{ROOT}/login">Sign in</a>.</p>'
        )
        return (await self.page(request, "Register")).response(body, status=400 if error else 200)

    async def _over_limit(self, request: Request, kind: str, back: str) -> Response | None:
        """Count an action that stores something without a secret (``kind``: a guest session
        started, a registration) for the client's address: ``None`` when it may go ahead,
        else the 429 page (the action is then neither counted nor done)."""
        try:
            await self.rt.guard.count(kind, get_handle(request).context.ip)
        except Throttled as exc:
            page = await self.page(request, "Too many attempts")
            return too_many(page, exc.retry_after, back)
        return None

    async def login(self, request: Request) -> Response:
        handle = get_handle(request)
        error, wait = "", 0
        if request.method == "POST":
            fields = await form_fields(request)
            name = fields.get("username", "").strip().lower()
            proven = await check_password(self.rt, handle, REALM, name, fields.get("password", ""))
            challenge = handle.challenge
            if proven.ok and challenge is not None and challenge.user_id == name:
                await handle.confirm()  # "this was me": the session goes on, its context learned
                return redirect(f"{ROOT}/")
            if proven.ok:
                await handle.login(name)  # the cart comes along; the guest token dies
                target = "cart" if request.query_params.get("next") == "cart" else ""
                return redirect(f"{ROOT}/{target}")
            wait = proven.wait
            error = try_again(wait) if wait else "Wrong user name or password."
        csrf = await handle.csrf_token()
        action = f"{ROOT}/login" + ("?next=cart" if request.query_params.get("next") else "")
        body = (
            _message(request)
            + challenge_notice(handle.challenge)
            + _error(error)
            + _account_form(action, csrf, "Sign in", "current-password")
            + f'<p>New here? <a href="{ROOT}/register">Create an account</a>.</p>'
        )
        page = await self.page(request, "Sign in")
        status = 429 if wait else 401 if error else 200
        return with_retry_after(page.response(body, status=status), wait)

    async def logout(self, request: Request) -> Response:
        await get_handle(request).logout()
        return redirect(f"{ROOT}/?msg=signed-out")

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
            checked = await check_code(self.rt, handle, account, code)
            if checked.ok:
                await handle.elevate(auth_level=2)
                # The code was asked for to place the order: place it, as the user meant.
                if request.query_params.get("next") == "checkout":
                    session = handle.session
                    if session is not None and _cart(session.data):
                        return await _place_order(handle)
                return redirect(f"{ROOT}/cart")
            wait = checked.wait
            error = try_again(wait) if wait else WRONG_CODE
        csrf = await handle.csrf_token()
        query = "?next=checkout" if request.query_params.get("next") == "checkout" else ""
        body = (
            _error(error)
            + "<p>Placing an order needs a fresh code from your authenticator app. Your order"
            " is placed as soon as the code is right.</p>"
            f'<form method="post" action="{ROOT}/step-up{query}" class="panel">'
            f"{hidden_csrf(csrf)}"
            '<label for="code">Code</label><input type="text" id="code" name="code"'
            ' inputmode="numeric" autocomplete="one-time-code" required>'
            ' <button type="submit">Verify and place the order</button></form>'
        )
        page = await self.page(request, "Confirm it is you")
        return with_retry_after(page.response(body, status=429 if wait else 200), wait)


_MESSAGES = {
    "ordered": "Thank you: your order is placed.",
    "signed-out": "You are signed out.",
    "registered": "If that user name was free, your account is ready: sign in.",
}


# Session data is JSON that any API client with an issue key may have written: the pages
# read it defensively and show only what they recognise.


async def _place_order(handle: Any) -> Response:
    await handle.update_data(lambda data: {**data, "cart": [], "orders": orders_placed(data) + 1})
    return redirect(f"{ROOT}/?msg=ordered")


def _cart(data: Mapping[str, Any]) -> list[str]:
    raw = data.get("cart")
    return [i for i in raw if isinstance(i, str) and i in PRODUCTS] if isinstance(raw, list) else []


def _message(request: Request) -> str:
    text = _MESSAGES.get(request.query_params.get("msg", ""), "")
    return f'<p class="msg" role="status">{esc(text)}</p>' if text else ""


def _error(text: str) -> str:
    return f'<p class="msg error" role="alert">{esc(text)}</p>' if text else ""


def _account_form(
    action: str, csrf: str, label: str, password_kind: str, *, name: str = "", rule: str = ""
) -> str:
    hint = f'<p class="muted" id="password-rule">{esc(rule)}</p>' if rule else ""
    described = ' aria-describedby="password-rule"' if rule else ""
    return (
        f'<form method="post" action={attr(action)} class="panel auth">{hidden_csrf(csrf)}'
        '<label for="username">User name</label>'
        f'<input type="text" id="username" name="username" autocomplete="username"'
        f" value={attr(name[:64])} required>"
        '<label for="password">Password</label>'
        f'<input type="password" id="password" name="password" autocomplete="{password_kind}"'
        f' maxlength="{MAX_LENGTH}"{described} required>{hint}'
        f'<p><button type="submit">{esc(label)}</button></p></form>'
    )


def demo_app(rt: Runtime) -> Any:
    shop = Shop(rt)
    account = ShopAccount(shop)
    routes = [
        Route("/", shop.home, methods=["GET"]),
        Route("/cart", shop.cart, methods=["GET"]),
        Route("/cart/add", shop.cart_add, methods=["POST"]),
        Route("/cart/remove", shop.cart_remove, methods=["POST"]),
        Route("/products/{key}", shop.product, methods=["GET"]),
        *asset_routes(),
        Route("/checkout", shop.checkout, methods=["POST"]),
        Route("/register", shop.register, methods=["GET", "POST"]),
        Route("/login", shop.login, methods=["GET", "POST"]),
        Route("/logout", shop.logout, methods=["POST"]),
        Route("/account", account.account, methods=["GET"]),
        Route("/account/totp", account.change_totp, methods=["POST"]),
        Route("/account/password", account.change_password, methods=["POST"]),
        Route("/step-up", shop.step_up, methods=["GET", "POST"]),
        Route("/devices", account.devices, methods=["GET"]),
        Route("/devices/sign-out-others", account.sign_out_others, methods=["POST"]),
        Route("/devices/{session_id}/sign-out", account.sign_out_device, methods=["GET", "POST"]),
    ]
    csrf = CsrfPolicy(rt.config.origins, keys=[rt.state.secret("demo-csrf")])
    device = None
    if rt.config.demo_device_signal:  # off by default; docs/risk.md, "Device signal"
        device = DeviceSignal(secret=rt.state.secret("demo-device"), path=DEVICE_SCRIPT)
    middleware = [
        Middleware(
            SessionMiddleware,
            manager=rt.manager_for(DEMO_APP),  # admits no API application's session
            cookie=CookiePolicy(name="shop"),
            csrf=csrf,
            trusted_proxies=list(rt.config.trusted_proxies),
            step_up_paths=[f"{ROOT}/login"],  # a challenged session signs in again there
            binding=DeviceBinding(path=f"{ROOT}/dbsc"),  # browsers with DBSC bind the session
            device_signal=device,
        )
    ]
    return Starlette(routes=routes, middleware=middleware)
