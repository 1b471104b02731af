"""The demo shop's catalogue and the HTML of its shop pages (product cards, a product's page,
the cart), with its illustrations and stylesheet from the package (``service/static``).

The illustrations are SVG files drawn for the shop and served by the shop itself, so its
pages load nothing from anywhere else. Prices are euros; the cart is a list of product keys
in the session's data (a key repeated is a quantity), at most :data:`MAX_CART` entries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from importlib import resources
from typing import NamedTuple

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sessionward.service.html import attr, esc, hidden_csrf

__all__ = [
    "MAX_CART",
    "PRODUCTS",
    "Product",
    "asset_routes",
    "cart_view",
    "product_card",
    "product_view",
]

ROOT = "/demo"
MAX_CART = 50


class Product(NamedTuple):
    name: str
    price: float
    blurb: str
    description: str
    picture: str  # what the illustration shows, for screen readers on the product's page


PRODUCTS: dict[str, Product] = {
    "tea": Product(
        "Green tea",
        4.50,
        "Sencha from Shizuoka, 100\u00a0g.",
        "A bright, grassy first-flush sencha. Brew one teaspoon for a minute at 75\u00a0°C;"
        " the leaves give three good cups.",
        "A green tin of tea with a leaf on its label, between two fresh tea leaves.",
    ),
    "mug": Product(
        "Stoneware mug",
        12.00,
        "Hand-glazed, 350\u00a0ml.",
        "Thrown and glazed in a small workshop; no two are quite alike. Holds 350\u00a0ml and"
        " keeps your tea warm a little longer. Dishwasher safe.",
        "A brown stoneware mug with steam rising from it.",
    ),
    "kettle": Product(
        "Kettle",
        35.00,
        "Enamelled steel, 1.5\u00a0l, for any hob.",
        "A classic enamelled kettle for gas, electric and induction hobs, with a heat-proof"
        " handle. Holds 1.5\u00a0litres.",
        "A red enamelled kettle with a dark handle.",
    ),
    "biscuits": Product(
        "Oat biscuits",
        3.20,
        "Baked with butter and a little honey.",
        "Crumbly oat biscuits, baked each week with butter and wildflower honey. A pack of"
        " twelve, made for dunking.",
        "A plate of three golden oat biscuits.",
    ),
    "teapot": Product(
        "Glass teapot",
        24.00,
        "800\u00a0ml, with a steel infuser.",
        "Watch the leaves unfurl: a borosilicate glass teapot with a removable steel"
        " infuser. Holds 800\u00a0ml, four cups.",
        "A glass teapot with tea inside it.",
    ),
    "honey": Product(
        "Wildflower honey",
        7.50,
        "Raw, from local hives, 250\u00a0g.",
        "Raw honey from hives at the edge of the town's meadows; its taste changes with the"
        " season. A 250\u00a0g jar.",
        "A jar of golden honey with a hexagon on its label.",
    ),
}


def _asset(name: str) -> bytes:
    return resources.files("sessionward.service").joinpath("static", name).read_bytes()


def asset_routes() -> list[Route]:
    """``/static/shop.css`` and ``/img/<product>.svg``, relative to the shop's mount."""
    style = _asset("shop.css")
    pictures = {key: _asset(f"shop-{key}.svg") for key in PRODUCTS}
    headers = {"cache-control": "public, max-age=3600", "x-content-type-options": "nosniff"}

    async def css(request: Request) -> Response:
        return Response(style, media_type="text/css", headers=headers)

    async def picture(request: Request) -> Response:
        body = pictures.get(request.path_params["name"].removesuffix(".svg"))
        if body is None or not request.path_params["name"].endswith(".svg"):
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(
            body,
            media_type="image/svg+xml",
            headers={**headers, "content-security-policy": "default-src 'none'"},
        )

    return [
        Route("/static/shop.css", css, methods=["GET"]),
        Route("/img/{name}", picture, methods=["GET"]),
    ]


def _price(value: float) -> str:
    return f"€{value:.2f}"


def _add_form(key: str, csrf: str, name: str) -> str:
    return (
        f'<form method="post" action="{ROOT}/cart/add">{hidden_csrf(csrf)}'
        f'<input type="hidden" name="item" value={attr(key)}>'
        f'<button type="submit">Add to cart<span class="sr-only"> ({esc(name)})</span>'
        "</button></form>"
    )


def product_card(key: str, csrf: str) -> str:
    p = PRODUCTS[key]
    return (
        f'<li class="card"><img src="{ROOT}/img/{key}.svg" alt="" width="240" height="180">'
        f'<div class="card-body"><h2><a href="{ROOT}/products/{key}">{esc(p.name)}</a></h2>'
        f'<p class="blurb">{esc(p.blurb)}</p>'
        f'<div class="buy"><p class="price">{_price(p.price)}</p>'
        f"{_add_form(key, csrf, p.name)}</div></div></li>"
    )


def product_view(key: str, csrf: str) -> str:
    p = PRODUCTS[key]
    return (
        f'<div class="product"><img src="{ROOT}/img/{key}.svg" alt={attr(p.picture)}'
        ' width="480" height="360">'
        f'<div><p class="lead">{esc(p.blurb)}</p><p>{esc(p.description)}</p>'
        f'<div class="buy"><p class="price">{_price(p.price)}</p>'
        f"{_add_form(key, csrf, p.name)}</div>"
        f'<p><a href="{ROOT}/">← Back to the shop</a></p></div></div>'
    )


def cart_view(cart: Sequence[str], csrf: str) -> str:
    """The cart: one line per product with its quantity, a total and the order button."""
    counts = Counter(i for i in cart if i in PRODUCTS)
    if not counts:
        return (
            '<div class="empty panel"><p>Your cart is empty.</p>'
            f'<p><a class="button" href="{ROOT}/">Browse the shop</a></p></div>'
        )
    lines = []
    for key, quantity in counts.items():
        p = PRODUCTS[key]
        lines.append(
            f'<tr><td class="item"><img src="{ROOT}/img/{key}.svg" alt="" width="64"'
            f' height="48"><a href="{ROOT}/products/{key}">{esc(p.name)}</a></td>'
            f'<td class="num">{quantity}</td><td class="num">{_price(p.price * quantity)}</td>'
            f'<td class="num"><form method="post" action="{ROOT}/cart/remove">'
            f'{hidden_csrf(csrf)}<input type="hidden" name="item" value={attr(key)}>'
            f'<button class="link" type="submit">Remove<span class="sr-only"> {esc(p.name)}'
            "</span></button></form></td></tr>"
        )
    total = sum(PRODUCTS[k].price * n for k, n in counts.items())
    items = sum(counts.values())
    return (
        '<div class="cart-layout"><table id="cart"><caption class="sr-only">Your cart</caption>'
        '<thead><tr><th scope="col">Item</th><th scope="col" class="num">Quantity</th>'
        '<th scope="col" class="num">Price</th>'
        '<th scope="col"><span class="sr-only">Remove</span></th></tr></thead>'
        f"<tbody>{''.join(lines)}</tbody></table>"
        f'<aside class="summary panel" aria-label="Order summary"><h2>Order summary</h2>'
        f'<p class="total"><span>{items} item{"" if items == 1 else "s"}</span>'
        f"<strong>Total {_price(total)}</strong></p>"
        '<p class="muted">Free delivery; pay on arrival.</p>'
        f'<form method="post" action="{ROOT}/checkout">{hidden_csrf(csrf)}'
        '<button class="wide" type="submit">Place order</button></form>'
        f'<p><a href="{ROOT}/">Continue shopping</a></p></aside></div>'
    )
