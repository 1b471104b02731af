"""A JSON API with bearer JWTs and planted flaws, for the auditor's tests. Do not copy it.

``POST /api/login`` with ``{"username": "alice", "password": "wonderland"}`` answers
``{"access_token": <JWT>}``; ``GET /api/me`` with ``Authorization: Bearer`` answers
``{"user": ...}``; ``POST /api/logout`` does nothing.

Planted flaws (finding id after each):

1. HS256 with the secret ``your-256-bit-secret``, a famous placeholder (``jwt-weak-secret``).
2. ``alg: none`` in any letter case is accepted without a signature (``jwt-alg-none``).
3. ``exp`` is never checked (``jwt-expired-accepted``), the token lives two days
   (``jwt-long-lifetime``) and names no audience (``jwt-no-audience``).
4. Logout cannot end anything: the token still works (``logout-replay``).
5. The login answer, which carries the token, may be cached (``cache-missing``).
6. No ``jti``: two logins in the same second get the very same token (timing-dependent,
   so the tests do not count on it: ``token-reused-across-logins``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SECRET = b"your-256-bit-secret"
USERS = {"alice": "wonderland"}


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims: dict[str, Any]) -> str:
    head = b64e(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64e(json.dumps(claims).encode())
    mac = hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64e(mac)}"


def verify(token: str) -> dict[str, Any] | None:
    try:
        head, body, signature = token.split(".")
        header = json.loads(b64d(head))
        claims = json.loads(b64d(body))
    except ValueError:
        return None
    if str(header.get("alg", "")).lower() == "none":
        return dict(claims)  # planted: unsigned tokens accepted
    mac = hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(mac, b64d(signature)):
        return None
    return dict(claims)  # planted: exp never checked


def create_app() -> Starlette:
    async def login(request: Request) -> Response:
        data = json.loads(await request.body() or b"{}")
        name = data.get("username")
        if not isinstance(name, str) or USERS.get(name) != data.get("password"):
            return JSONResponse({"error": "wrong credentials"}, status_code=401)
        now = int(time.time())
        token = sign({"sub": name, "iat": now, "exp": now + 2 * 86_400})
        return JSONResponse({"access_token": token})

    async def me(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        claims = verify(auth[7:]) if auth.startswith("Bearer ") else None
        if claims is None:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse({"user": claims.get("sub")}, headers={"cache-control": "no-store"})

    async def logout(request: Request) -> Response:
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/api/login", login, methods=["POST"]),
            Route("/api/me", me),
            Route("/api/logout", logout, methods=["POST"]),
        ]
    )


#: Flaw number -> the findings that must report it.
EXPECTED = {
    1: {"jwt-weak-secret"},
    2: {"jwt-alg-none"},
    3: {"jwt-expired-accepted", "jwt-long-lifetime", "jwt-no-audience"},
    4: {"logout-replay"},
    5: {"cache-missing"},
}

SCENARIO = """
[session]
transport = "bearer"

[login]
json = "/api/login"
token = "access_token"
username_env = "JWT_USER"
password_env = "JWT_PASSWORD"

[authenticated]
path = "/api/me"
contains = '"user"'

[logout]
path = "/api/logout"
"""
