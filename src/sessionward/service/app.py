"""``create_app``: the service as one Starlette application.

    /v1/...          the JSON API (API keys)            /healthz, /readyz, /metrics
    /v1/             its interactive documentation
    /openapi.json    its OpenAPI 3.1 document           /admin   the admin page
    /demo            the demo shop                      /        a short index page

Composition only: the session decisions are the manager's; the web adapters
(``sessionward.web``) carry the admin's and the shop's browser sessions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Host, Mount, Route, Router
from starlette.types import ASGIApp

from sessionward.clock import Clock
from sessionward.service.api import Api
from sessionward.service.api_errors import error_response
from sessionward.service.api_routes import api_routes
from sessionward.service.apidocs import apidocs_routes
from sessionward.service.bounds import RequestBounds
from sessionward.service.config import ServiceConfig
from sessionward.service.headers import SecurityHeaders
from sessionward.service.openapi import openapi_document
from sessionward.service.receivers import open_receivers, receiver_routes
from sessionward.service.runtime import Runtime, open_runtime
from sessionward.service.ssf import open_transmitter, ssf_routes
from sessionward.stores._async.base import AsyncStore

__all__ = ["ServiceApp", "create_app"]


class ServiceApp(Starlette):
    """Starlette with the security headers outermost, around Starlette's own error handler,
    so that its 500 answers carry them too."""

    secure: Callable[[ASGIApp], SecurityHeaders] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return stack if self.secure is None else self.secure(stack)


def create_app(
    config: ServiceConfig | None = None,
    *,
    clock: Clock | None = None,
    store: AsyncStore | None = None,
    runtime: Runtime | None = None,
) -> Starlette:
    """Build the service. ``clock`` and ``store`` are for tests (a fake clock, a given store);
    the runtime (manager, state, keys, activity) is on ``app.state.runtime``."""
    config = config or ServiceConfig()
    rt = runtime or open_runtime(config, clock=clock, store=store)
    api = Api(rt)
    if rt.transmitter is None:
        rt.transmitter, rt.ssf_off = open_transmitter(rt)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers={"cache-control": "no-store"})

    async def readyz(request: Request) -> Response:
        if await rt.store_ready():
            return JSONResponse({"status": "ready"}, headers={"cache-control": "no-store"})
        return error_response(503, "store_unavailable", "the session store is unavailable")

    document = openapi_document()

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def index(request: Request) -> Response:
        return HTMLResponse(_INDEX, headers={"content-security-policy": _INDEX_CSP})

    if rt.receivers is None:
        rt.receivers = open_receivers(config, rt.manager)
    routes: list[BaseRoute] = [
        *api_routes(rt, api),
        *receiver_routes(rt.receivers, rt.metrics),
        *apidocs_routes(),
        *ssf_routes(rt),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/", index, methods=["GET"]),
    ]
    if config.admin:
        from sessionward.service.admin import admin_app

        admin = [
            Route("/admin", _slash("/admin/"), methods=["GET"]),
            Mount("/admin", app=admin_app(rt)),
        ]
        if config.admin_host is None:
            routes += admin
        else:  # its own origin: nothing else answers there, and it answers nowhere else
            root = Route("/", _slash("/admin/"), methods=["GET"])
            routes.insert(0, Host(config.admin_host, app=Router([root, *admin])))
    if config.demo:
        from sessionward.service.demo import demo_app

        routes.append(Route("/demo", _slash("/demo/"), methods=["GET"]))
        routes.append(Mount("/demo", app=demo_app(rt)))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        rt.start_background()
        try:
            yield
        finally:
            if runtime is None:
                await rt.close()

    secure = partial(
        SecurityHeaders,
        https_origins=[config.origin, *([config.admin_url] if config.admin_url else [])],
        csp_report_uri=config.csp_report_uri,
    )
    app = ServiceApp(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(RequestBounds)],
        exception_handlers={HTTPException: _http_error},  # type: ignore[dict-item]
    )
    app.state.runtime = rt
    app.secure = secure
    return app


def _slash(target: str) -> Any:
    async def redirect(request: Request) -> Response:
        return RedirectResponse(target, status_code=307)

    return redirect


async def _http_error(request: Request, exc: HTTPException) -> Response:
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, "invalid_request")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


_INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sessionward</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/v1/docs.css"></head>
<body><header><h1>sessionward service</h1>
<p>Session tokens for web applications, over HTTP.</p></header>
<main><ul class="cards">
<li><a href="/demo/">Demo shop</a><span>Sign up, shop, step up with a code.</span></li>
<li><a href="/admin/">Admin</a><span>Browse and revoke sessions, watch events.</span></li>
<li><a href="/v1/">API documentation</a><span>Every operation, tried from the page.</span></li>
<li><a href="/openapi.json">OpenAPI 3.1 document</a><span>For client generators.</span></li>
</ul></main></body></html>
"""
#: The index loads the documentation page's stylesheet and nothing else.
_INDEX_CSP = (
    "default-src 'none'; object-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
