"""Adapter configuration is validated, and the edge answers (outage as 401, oversized form,
header merging) behave as documented. In-process ASGI calls through httpx's ASGITransport."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sessionward import AsyncSessionManager, AsyncSQLiteStore, ConfigError
from sessionward.web import CsrfPolicy
from sessionward.web._core import AdapterConfig, Outcome, merge_headers
from sessionward.web.asgi import SessionMiddleware

KEY = secrets.token_bytes(32)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"transport": "query"},
        {"transport": "cookie"},  # cookie transport without a CSRF decision
        {"transport": "bearer", "unavailable_status": 500},
        {"transport": "bearer", "realm": 'a"b'},
        {"transport": "bearer", "token_header": "bad header"},
    ],
)
def test_unsafe_adapter_configuration_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        AdapterConfig(**kwargs)  # type: ignore[arg-type]


def test_explicit_csrf_opt_out_is_allowed() -> None:
    assert AdapterConfig(transport="cookie", csrf=False).csrf_policy is None
    bearer = AdapterConfig(transport="bearer", csrf=CsrfPolicy(["https://a.example"], keys=[KEY]))
    assert bearer.csrf_policy is None  # never applied to bearer transport


def test_merge_replaces_cache_control_and_merges_vary() -> None:
    merged = merge_headers(
        [("Cache-Control", "public, max-age=60"), ("Vary", "Accept-Encoding"), ("X", "1")],
        [("cache-control", "no-store"), ("vary", "Cookie"), ("set-cookie", "a=b")],
    )
    assert ("cache-control", "no-store") in merged
    assert all(v != "public, max-age=60" for _, v in merged)
    assert ("vary", "Accept-Encoding, Cookie") in merged
    assert ("X", "1") in merged
    assert merge_headers([("vary", "cookie")], [("vary", "Cookie")]) == [("vary", "cookie")]


def test_untouched_outcome_needs_no_headers() -> None:
    config = AdapterConfig(transport="cookie", csrf=False)
    assert config.response_headers(Outcome()) == []
    assert config.response_headers(Outcome(accessed=True)) == [("vary", "Cookie")]


def _app(manager: AsyncSessionManager, **options: object) -> SessionMiddleware:
    async def me(request: Request) -> Response:
        session = request.state.sessionward.session
        return PlainTextResponse(session.user_id if session else "nobody")

    async def post(request: Request) -> Response:
        return PlainTextResponse("posted")

    routes = [Route("/me", me), Route("/post", post, methods=["POST"])]
    return SessionMiddleware(Starlette(routes=routes), manager, **options)  # type: ignore[arg-type]


def test_outage_can_answer_401_with_a_bearer_challenge(tmp_path: Path) -> None:
    async def scenario() -> httpx.Response:
        manager = AsyncSessionManager(AsyncSQLiteStore(str(tmp_path / "o.db")))
        token = (await manager.issue("alice")).token
        app = _app(manager, transport="bearer", unavailable_status=401, realm="api")
        await manager.close()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/me", headers={"authorization": f"Bearer {token}"})

    response = asyncio.run(scenario())
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'
    assert response.text != "alice"


def test_oversized_form_is_refused_before_the_app(tmp_path: Path) -> None:
    async def scenario() -> httpx.Response:
        manager = AsyncSessionManager(AsyncSQLiteStore(str(tmp_path / "f.db")))
        csrf = CsrfPolicy(["http://t"], keys=[KEY])
        app = _app(manager, csrf=csrf)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body = {"csrf_token": "x", "blob": "a" * (1024 * 1024 + 1)}
            response = await client.post("/post", data=body, headers={"origin": "http://t"})
        await manager.close()
        return response

    response = asyncio.run(scenario())
    assert response.status_code == 413
    assert response.text != "posted"
