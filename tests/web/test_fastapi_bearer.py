"""Bearer transport under FastAPI, over real HTTP (uvicorn): dependencies, challenges, no CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request

from sessionward import AsyncSessionManager, AsyncSQLiteStore, Policy, Session
from sessionward.testing import FakeClock
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.starlette import (
    get_handle,
    require_recent_auth,
    require_scope,
    require_session,
    require_user,
)

from ._servers import uvicorn_server

POLICY = Policy(idle_timeout=600, absolute_timeout=3600, rotate_after=120)


def build_app(manager: AsyncSessionManager) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, manager=manager, transport="bearer", realm="shop")

    @app.post("/login")
    async def login(request: Request, body: dict[str, Any]) -> dict[str, bool]:
        await get_handle(request).login(body["user"], scopes=body.get("scopes", []))
        return {"ok": True}

    @app.get("/me")
    async def me(session: Annotated[Session, Depends(require_user)]) -> dict[str, Any]:
        return {"user": session.user_id}

    @app.get("/any")
    async def any_session(session: Annotated[Session, Depends(require_session)]) -> dict[str, Any]:
        return {"anonymous": session.is_anonymous}

    @app.get("/admin", dependencies=[Depends(require_scope("admin"))])
    async def admin() -> dict[str, bool]:
        return {"admin": True}

    @app.post("/transfer", dependencies=[Depends(require_recent_auth(max_age=300))])
    async def transfer() -> dict[str, bool]:
        return {"done": True}

    @app.post("/logout")
    async def logout(request: Request) -> dict[str, bool]:
        await get_handle(request).logout()
        return {"ok": True}

    return app


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, FakeClock]]:
    clock = FakeClock()
    manager = AsyncSessionManager(
        AsyncSQLiteStore(str(tmp_path / "b.db")), policy=POLICY, clock=clock
    )
    with (
        uvicorn_server(lambda base: build_app(manager)) as base,
        httpx.Client(base_url=base) as client,
    ):
        yield client, clock


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def login(client: httpx.Client, user: str = "alice", scopes: tuple[str, ...] = ()) -> str:
    response = client.post("/login", json={"user": user, "scopes": list(scopes)})
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    token = response.headers["session-token"]
    assert token not in response.text
    return token


def test_login_and_use_bearer_token_without_csrf(served: tuple[httpx.Client, FakeClock]) -> None:
    client, _ = served
    token = login(client)  # no Origin, no Sec-Fetch-Site: CSRF checks do not apply
    response = client.get("/me", headers=bearer(token))
    assert response.json() == {"user": "alice"}
    assert response.headers["vary"] == "Authorization"
    assert "set-cookie" not in response.headers
    assert client.get("/me", headers={"cookie": f"__Host-id={token}"}).status_code == 401


def test_challenges(served: tuple[httpx.Client, FakeClock]) -> None:
    client, clock = served
    missing = client.get("/me")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="shop"'
    bad = client.get("/me", headers=bearer("sw1_" + "A" * 64))
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == 'Bearer realm="shop", error="invalid_token"'
    token = login(client)
    scoped = client.get("/admin", headers=bearer(token))
    assert scoped.status_code == 403
    assert scoped.headers["www-authenticate"] == (
        'Bearer realm="shop", error="insufficient_scope", scope="admin"'
    )
    assert client.get("/admin", headers=bearer(login(client, scopes=("admin",)))).status_code == 200
    assert client.post("/transfer", headers=bearer(token)).status_code == 200
    clock.advance(301)
    stale = client.post("/transfer", headers=bearer(token))
    assert stale.status_code == 401
    assert stale.headers["www-authenticate"] == (
        'Bearer realm="shop", error="insufficient_user_authentication", '
        'error_description="a more recent authentication is required", max_age=300'
    )


def test_renewal_hands_out_a_new_token_in_the_header(
    served: tuple[httpx.Client, FakeClock],
) -> None:
    client, clock = served
    token = login(client)
    clock.advance(POLICY.rotate_after or 0)
    response = client.get("/me", headers=bearer(token))
    assert response.status_code == 200
    renewed = response.headers["session-token"]
    assert renewed != token
    assert response.headers["cache-control"] == "no-store"
    assert client.get("/me", headers=bearer(renewed)).status_code == 200
    clock.advance(POLICY.rotation_grace + 1)
    assert client.get("/me", headers=bearer(token)).status_code == 401  # theft: session revoked
    assert client.get("/me", headers=bearer(renewed)).status_code == 401


def test_logout_kills_the_token_and_clears_storage(served: tuple[httpx.Client, FakeClock]) -> None:
    client, _ = served
    token = login(client)
    response = client.post("/logout", headers=bearer(token))
    assert response.headers["clear-site-data"] == '"cache", "cookies", "storage"'
    assert "set-cookie" not in response.headers
    assert client.get("/me", headers=bearer(token)).status_code == 401
    assert client.get("/any").status_code == 401
