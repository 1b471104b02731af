"""The interactive API documentation at ``/v1/``: a small page of our own that renders the
OpenAPI document and sends requests with an API key typed into it.

Its script and stylesheet come from the package (``service/static``), so the page works with
no network beyond this service; its policy lets it load them and call this origin only. The
key the user types stays in the page's memory (no storage, no cookie, never in a URL).
"""

from __future__ import annotations

import secrets
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

__all__ = ["DOCS_PATHS", "apidocs_routes"]

#: Served besides the API (this page, its assets, the site's icon): not API operations.
DOCS_PATHS = ("/v1", "/v1/", "/v1/docs.js", "/v1/docs.css", "/favicon.svg", "/favicon.ico")

_CSP = (
    "default-src 'none'; object-src 'none'; script-src 'nonce-{nonce}'; style-src 'self'; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sessionward API</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/v1/docs.css">
<script src="/v1/docs.js" nonce="{nonce}" defer></script>
</head><body>
<header><h1 id="title">sessionward API</h1>
<p>Interactive reference built from <a href="/openapi.json">the OpenAPI document</a>.</p></header>
<main>
<p id="about"></p>
<div class="key"><label for="api-key">API key</label>
<input id="api-key" type="password" autocomplete="off" spellcheck="false" placeholder="swk_...">
<p>Create one with <code>sessionward api-keys create --scope issue</code> (the exact command,
with this service's options, is printed by <code>sessionward serve</code>). It stays in this
page and is sent only to this service.</p></div>
<div id="operations" aria-busy="true">Loading the operations…</div>
<noscript><p>This page needs JavaScript; the plain document is at
<a href="/openapi.json">/openapi.json</a>.</p></noscript>
</main></body></html>
"""


def _asset(name: str) -> bytes:
    return resources.files("sessionward.service").joinpath("static", name).read_bytes()


def apidocs_routes() -> list[Route]:
    script, style, icon = _asset("apidocs.js"), _asset("apidocs.css"), _asset("favicon.svg")
    cache = {"cache-control": "no-cache"}

    async def page(request: Request) -> Response:
        nonce = secrets.token_urlsafe(16)  # scripts run by nonce only, as on every page
        policy = _CSP.format(nonce=nonce)
        return HTMLResponse(
            _PAGE.replace("{nonce}", nonce), headers={"content-security-policy": policy, **cache}
        )

    async def js(request: Request) -> Response:
        return Response(script, media_type="text/javascript", headers=cache)

    async def css(request: Request) -> Response:
        return Response(style, media_type="text/css", headers=cache)

    async def favicon(request: Request) -> Response:
        # Every page links it; /favicon.ico is where browsers look without a link.
        headers = {"cache-control": "public, max-age=86400"}
        return Response(icon, media_type="image/svg+xml", headers=headers)

    async def slash(request: Request) -> Response:
        return RedirectResponse("/v1/", status_code=307)

    return [
        Route("/v1", slash, methods=["GET"]),
        Route("/v1/", page, methods=["GET"]),
        Route("/v1/docs.js", js, methods=["GET"]),
        Route("/v1/docs.css", css, methods=["GET"]),
        Route("/favicon.svg", favicon, methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
    ]
