"""Browser security headers on every answer of the service, over real HTTP (ASVS V3.4, 3.5.8):
API answers (the validate fast path too), health checks, redirects, JSON and HTML errors, the
index page, the admin and demo pages, and a 500 from Starlette's own error handler."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sessionward.errors import ConfigError
from sessionward.service import ServiceConfig, create_app
from sessionward.service.keys import create_key
from sessionward.service.runtime import Runtime

from ._server import serve


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Runtime]]:
    options = getattr(request, "param", {})
    app = create_app(ServiceConfig(store=str(tmp_path / "headers.db"), **options))

    async def boom(request: Request) -> Response:
        raise RuntimeError("a bug")

    app.router.routes.append(Route("/test-boom", boom))
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base:
            yield base, runtime
    finally:
        asyncio.run(runtime.close())


def _answers(base: str, runtime: Runtime) -> list[httpx.Response]:
    key = create_key(runtime.state, "validate", "headers", time.time())[0]
    auth = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, timeout=10) as client:
        return [
            client.get("/"),
            client.get("/healthz"),
            client.get("/readyz"),
            client.get("/openapi.json"),
            client.get("/admin"),  # 307 redirect
            client.get("/admin/"),  # 303 to the setup page
            client.get("/admin/setup"),
            client.get("/demo/"),
            client.get("/demo/login"),
            client.get("/demo/nope"),  # the shop's own 404
            client.get("/nope"),  # JSON 404
            client.delete("/healthz"),  # 405
            client.head("/healthz"),
            client.get("/metrics"),  # 401 with a challenge
            client.get("/.well-known/jwks.json"),  # 404 without the JWT mode
            client.post("/v1/sessions/validate", json={"token": "x"}),  # fast path, 401
            client.post("/v1/sessions/validate", json={"token": "x"}, headers=auth),  # deny
            client.post("/v1/sessions", json={}, headers=auth),  # 403
            client.get("/test-boom"),  # 500 from Starlette's ServerErrorMiddleware
        ]


def test_every_answer_carries_the_headers(served: tuple[str, Runtime]) -> None:
    answers = _answers(*served)
    statuses = {r.status_code for r in answers}
    assert {200, 303, 307, 401, 403, 404, 405, 500} <= statuses
    for response in answers:
        where = f"{response.request.method} {response.request.url.path} {response.status_code}"
        headers = response.headers
        assert headers.get("x-content-type-options") == "nosniff", where
        assert headers.get("referrer-policy") == "no-referrer", where
        assert headers.get("cross-origin-opener-policy") == "same-origin", where
        assert headers.get("cross-origin-resource-policy") == "same-origin", where
        assert "strict-transport-security" not in headers, where  # plain HTTP, no https URL
        csp = [d.strip() for d in headers.get("content-security-policy", "").split(";")]
        for directive in ("frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"):
            assert directive in csp, where
        assert "default-src 'none'" in csp, where
        assert not any("unsafe-inline" in d or "unsafe-eval" in d for d in csp), where
        assert headers.get_list("content-security-policy") == [headers["content-security-policy"]]


def test_html_pages_run_scripts_only_by_nonce(served: tuple[str, Runtime]) -> None:
    base, _ = served
    for path in ("/", "/v1/", "/demo/", "/demo/login", "/admin/setup"):
        response = httpx.get(base + path)
        assert response.headers["content-type"].startswith("text/html")
        csp = response.headers["content-security-policy"]
        script = [d for d in csp.split(";") if d.strip().startswith("script-src")]
        assert all("'nonce-" in d and "'self'" not in d for d in script), path
        if "<script" in response.text:
            assert script, path


@pytest.mark.parametrize("served", [{"public_url": "https://sessions.example"}], indirect=True)
def test_hsts_behind_a_declared_https_url(served: tuple[str, Runtime]) -> None:
    for response in _answers(*served):
        value = response.headers.get("strict-transport-security", "")
        parts = [p.strip() for p in value.split(";")]
        assert "includeSubDomains" in parts, response.request.url
        max_age = next(int(p[8:]) for p in parts if p.startswith("max-age="))
        assert max_age >= 365 * 24 * 3600


def test_hsts_when_the_request_came_over_https(tmp_path: Path) -> None:
    """The scheme uvicorn puts in the scope (TLS, or a trusted proxy's X-Forwarded-Proto)."""
    app = create_app(ServiceConfig(store=str(tmp_path / "tls.db")))

    async def fetch(base: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base) as client:
            return await client.get("/healthz")

    try:
        secure = asyncio.run(fetch("https://sessions.example"))
        plain = asyncio.run(fetch("http://sessions.example"))
    finally:
        asyncio.run(app.state.runtime.close())
    assert secure.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert "strict-transport-security" not in plain.headers


@pytest.mark.parametrize("served", [{"csp_report_uri": "/csp-reports"}], indirect=True)
def test_csp_violations_are_reported_where_configured(served: tuple[str, Runtime]) -> None:
    for response in _answers(*served):
        csp = [d.strip() for d in response.headers["content-security-policy"].split(";")]
        assert "report-uri /csp-reports" in csp, response.request.url
        assert "report-to csp" in csp
        assert response.headers["reporting-endpoints"] == 'csp="/csp-reports"'


def test_no_cross_origin_grants(served: tuple[str, Runtime]) -> None:
    base, runtime = served
    key = create_key(runtime.state, "issue", "cors", time.time())[0]
    evil = {"origin": "https://evil.example"}
    answers = [
        httpx.get(base + "/healthz", headers=evil),
        httpx.post(
            base + "/v1/sessions",
            json={"user_id": "ann"},
            headers={**evil, "authorization": f"Bearer {key}"},
        ),
        httpx.options(
            base + "/v1/sessions",
            headers={**evil, "access-control-request-method": "POST"},
        ),
    ]
    assert answers[1].status_code == 201  # the API answers, but grants no browser access
    assert answers[2].status_code == 405  # no preflight handling at all
    for response in answers:
        assert not any(name.startswith("access-control-") for name in response.headers)


def test_bad_header_settings_are_refused() -> None:
    for options in (
        {"csp_report_uri": "https://r.example/a; script-src *"},
        {"csp_report_uri": "javascript:alert(1)"},
        {"admin_url": "https://admin.example/console"},
        {"admin_url": "ftp://admin.example"},
        {"admin_url": "https://sessions.example", "public_url": "https://sessions.example:8443"},
    ):
        with pytest.raises(ConfigError):
            ServiceConfig(**options)  # type: ignore[arg-type]
