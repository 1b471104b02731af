"""A small shop on FastAPI + sessionward: an anonymous cart in ``request.session`` that survives
login, an account page listing the user's sessions, logout and logout everywhere.

    python examples/fastapi_shop.py            # http://localhost:8003 (Chromium, Firefox)
    python examples/fastapi_shop.py --dev-http # any browser: plain-http cookie, loud warning

Demo users: alice / wonderland, bob / builder.
"""

from __future__ import annotations

import argparse
import hmac
import html
import os
import secrets
from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sessionward import AsyncSessionManager, AsyncSQLiteStore
from sessionward.web import CookiePolicy, CsrfPolicy
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.starlette import get_handle

PRODUCTS = {"book": 12, "pen": 2, "mug": 8}
USERS = {"alice": "wonderland", "bob": "builder"}  # demo only; use a password hasher


def page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><title>{title}</title><h1>{title}</h1>{body}")


async def form(request: Request, action: str, fields: str, button: str) -> str:
    token = await get_handle(request).csrf_token()
    return (
        f'<form method="post" action="{action}">{fields}'
        f'<input type="hidden" name="csrf_token" value="{token}"><button>{button}</button></form>'
    )


def create_app(
    db: str = "shop-sessions.db",
    origins: tuple[str, ...] = ("http://localhost:8003", "http://127.0.0.1:8003"),
    dev_http: bool = False,
) -> FastAPI:
    manager = AsyncSessionManager(AsyncSQLiteStore(db))
    key = bytes.fromhex(os.environ["SHOP_CSRF_KEY"]) if "SHOP_CSRF_KEY" in os.environ else None
    app = FastAPI(title="sessionward shop")
    app.add_middleware(
        SessionMiddleware,
        manager=manager,
        cookie=CookiePolicy(insecure_http_localhost=dev_http),
        csrf=CsrfPolicy(origins, keys=[key or secrets.token_bytes(32)]),
    )

    @app.get("/")
    async def home(request: Request) -> Response:
        session = get_handle(request).session
        cart = request.session.get("cart", [])
        who = (
            f"Signed in as {html.escape(session.user_id)}. <a href='/account'>Account</a>"
            if (session and session.user_id)
            else "<a href='/login'>Sign in</a>"
        )
        items = "".join(
            [
                await form(
                    request,
                    "/cart",
                    f'<input type="hidden" name="product" value="{p}">',
                    f"Add {p} (${price})",
                )
                for p, price in PRODUCTS.items()
            ]
        )
        return page(
            "Shop", f"<p>{who}</p>{items}<p>Cart: {html.escape(', '.join(cart)) or 'empty'}</p>"
        )

    @app.post("/cart")
    async def add(request: Request, product: Annotated[str, Form()]) -> Response:
        if product in PRODUCTS:  # the first write starts an (anonymous) session
            request.session["cart"] = [*request.session.get("cart", []), product]
        return RedirectResponse("/", status_code=303)

    @app.get("/login")
    async def login_page(request: Request) -> Response:
        fields = '<input name="username"> <input name="password" type="password">'
        return page("Sign in", await form(request, "/login", fields, "Sign in"))

    @app.post("/login")
    async def login(
        request: Request, username: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> Response:
        expected = USERS.get(username, secrets.token_hex(16))
        if not hmac.compare_digest(expected.encode(), password.encode()):
            return page("Sign in", "<p>Wrong username or password.</p><a href='/login'>Again</a>")
        await get_handle(request).login(username)  # new token; the anonymous cart carries over
        return RedirectResponse("/account", status_code=303)

    @app.get("/account")
    async def account(request: Request) -> Response:
        session = get_handle(request).session
        if session is None or session.user_id is None:
            return RedirectResponse("/login", status_code=303)
        rows = "".join(
            f"<li>{s.id}{' (this one)' if s.id == session.id else ''}</li>"
            for s in await manager.list_user(session.user_id)
        )
        body = (
            f"<p>Hello {html.escape(session.user_id)}. Cart: "
            f"{html.escape(', '.join(request.session.get('cart', []))) or 'empty'}</p>"
            f"<p>Your sessions:</p><ul>{rows}</ul>"
            + await form(request, "/logout", "", "Log out")
            + await form(request, "/logout-everywhere", "", "Log out everywhere")
            + "<p><a href='/'>Shop</a></p>"
        )
        return page("Account", body)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        request.session.clear()  # ends the session server-side and expires the cookie
        return RedirectResponse("/", status_code=303)

    @app.post("/logout-everywhere")
    async def logout_everywhere(request: Request) -> Response:
        handle = get_handle(request)
        if handle.user_id is not None:
            await handle.logout_everywhere()
        return RedirectResponse("/", status_code=303)

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8003, help="default 8003")
    parser.add_argument("--dev-http", action="store_true", help="insecure cookie for plain http")
    args = parser.parse_args()
    origins = (f"http://localhost:{args.port}", f"http://127.0.0.1:{args.port}")
    uvicorn.run(
        create_app(origins=origins, dev_http=args.dev_http), host="127.0.0.1", port=args.port
    )


if __name__ == "__main__":
    main()
