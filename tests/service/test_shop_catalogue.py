"""The demo shop's catalogue over real HTTP: product pages, the pictures and style sheet it
serves itself (and nothing else under those paths), and a cart with quantities and removal."""

from __future__ import annotations

import re

from sessionward.service.runtime import Runtime
from sessionward.service.shop_catalogue import PRODUCTS

from .test_pages import Client
from .test_pages import site as site  # a fixture


def test_every_product_has_a_page_and_a_picture(site: tuple[str, Runtime]) -> None:
    base, _ = site
    shopper = Client(base)
    home = shopper.request("GET", "/demo/").text
    for key, product in PRODUCTS.items():
        assert f'href="/demo/products/{key}"' in home
        page = shopper.request("GET", f"/demo/products/{key}")
        assert page.status_code == 200
        assert f"<h1>{product.name}</h1>" in page.text
        assert f"€{product.price:.2f}" in page.text
        picture = shopper.request("GET", f"/demo/img/{key}.svg")
        assert picture.status_code == 200
        assert picture.headers["content-type"] == "image/svg+xml"
        assert picture.headers["content-security-policy"] == "default-src 'none'"
        assert picture.text.startswith("<svg ")
        assert "<script" not in picture.text
        assert "http" not in picture.text.replace("http://www.w3.org/2000/svg", "")
    assert shopper.request("GET", "/demo/products/nothing").status_code == 404
    for path in ("/demo/img/nothing.svg", "/demo/img/tea.png", "/demo/img/..%2Fshop.css"):
        assert shopper.request("GET", path).status_code == 404, path


def test_the_pages_load_the_shops_own_style_sheet_only(site: tuple[str, Runtime]) -> None:
    base, _ = site
    shopper = Client(base)
    page = shopper.request("GET", "/demo/")
    assert re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.text) == [
        "/demo/static/shop.css"
    ]
    style_src = re.search(r"style-src ([^;]+);", page.headers["content-security-policy"])
    assert style_src is not None
    assert style_src.group(1).startswith("'self' 'nonce-")
    sheet = shopper.request("GET", "/demo/static/shop.css")
    assert sheet.headers["content-type"].startswith("text/css")
    assert "@media (max-width:640px)" in sheet.text
    assert "url(" not in sheet.text  # no fonts or images from anywhere


def test_the_cart_counts_quantities_and_removes_a_product(site: tuple[str, Runtime]) -> None:
    base, _ = site
    shopper = Client(base)
    for item in ("tea", "mug", "tea", "nothing"):
        added = shopper.post_form("/demo/cart/add", {"item": item}, csrf_from="/demo/")
        assert added.status_code == 303
    cart = shopper.request("GET", "/demo/cart").text
    rows = re.findall(r"<tr><td class=\"item\">.*?</tr>", cart)
    assert len(rows) == 2
    assert "Green tea" in rows[0]
    assert '<td class="num">2</td><td class="num">€9.00</td>' in rows[0]
    assert "3 items" in cart
    assert "Total €21.00" in cart
    assert "Cart (3)" in cart
    removed = shopper.post_form("/demo/cart/remove", {"item": "tea"}, csrf_from="/demo/cart")
    assert removed.headers["location"] == "/demo/cart"
    cart = shopper.request("GET", "/demo/cart").text
    assert "Green tea" not in cart
    assert "Total €12.00" in cart
    shopper.post_form("/demo/cart/remove", {"item": "mug"}, csrf_from="/demo/cart")
    assert "Your cart is empty." in shopper.request("GET", "/demo/cart").text
