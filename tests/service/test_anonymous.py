"""Anonymous traffic stores nothing: 10,000 cookieless views of the service's pages (forms
with CSRF tokens included) leave the session store as they found it and set no session
cookie (tests/web/test_anonymous.py holds the same for the adapters)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionward.service import ServiceConfig, create_app
from sessionward.service.runtime import Runtime
from sessionward.service.state import UserRow

VIEWS = 10_000
ORIGIN = "http://testserver"

pytestmark = pytest.mark.slow


async def _views(app: Any, paths: list[str], views: int) -> set[str]:
    """``views`` cookieless GETs over ``paths``; the names of every cookie set."""
    names: set[str] = set()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
        for path in itertools.islice(itertools.cycle(paths), views):
            response = await client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            names |= {c.partition("=")[0] for c in response.headers.get_list("set-cookie")}
            client.cookies.clear()  # every view is a new visitor
    return names


def test_service_pages_store_nothing_for_anonymous_views(tmp_path: Path) -> None:
    config = ServiceConfig(store=str(tmp_path / "anon.db"), public_url=ORIGIN)
    app = create_app(config)
    runtime: Runtime = app.state.runtime
    pages = ["/", "/demo/", "/demo/cart", "/demo/login", "/demo/register"]

    async def run() -> None:
        try:
            assert await runtime.session_count() == 0
            # No admin account yet: the setup form; then one: the sign-in form.
            names = await _views(app, [*pages, "/admin/setup"], VIEWS // 2)
            runtime.state.add_user(UserRow("admin", "root", "not-a-hash", None, 0))
            names |= await _views(app, [*pages, "/admin/login"], VIEWS - VIEWS // 2)
            assert await runtime.session_count() == 0
            assert names == {"__Host-shop-csrf", "__Host-admin-csrf"}  # nonces, no session
        finally:
            await runtime.close()

    asyncio.run(run())
