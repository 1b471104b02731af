"""A clean JWT target: bearer access tokens from sessionward's own JWT mode
(``sessionward.jwt``: one algorithm per key, exact allowlist, claims checked), a jti
denylist at logout, and the JWK set published. The JWT probes must find nothing above info.

``POST /api/login`` with ``{"username": "alice", "password": "wonderland"}`` answers
``{"access_token": <JWT>}``; ``GET /api/me`` answers ``{"user": ...}``; ``POST /api/logout``
denies the token's ``jti``; ``/.well-known/jwks.json`` lists the public keys (HS256 has none).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward.errors import InvalidToken
from sessionward.jwt import (
    AccessClaims,
    AccessTokenIssuer,
    AccessTokenVerifier,
    KeySet,
    Revocations,
)

USERS = {"alice": "wonderland"}
NO_STORE = {"cache-control": "no-store"}


def create_app(base_url: str, alg: str) -> Starlette:
    keyset = KeySet.generate(alg, now=time.time())
    revocations = Revocations()
    issuer = AccessTokenIssuer(keyset, issuer=base_url, audience=base_url)
    verifier = AccessTokenVerifier(
        keyset, issuer=base_url, audience=base_url, revocations=revocations
    )

    def bearer(request: Request) -> AccessClaims | None:
        auth = request.headers.get("authorization", "")
        try:
            return verifier.verify(auth[7:]) if auth.startswith("Bearer ") else None
        except InvalidToken:
            return None

    async def login(request: Request) -> Response:
        data: dict[str, Any] = json.loads(await request.body() or b"{}")
        name = data.get("username")
        if not isinstance(name, str) or USERS.get(name) != data.get("password"):
            return JSONResponse({"error": "wrong credentials"}, status_code=401, headers=NO_STORE)
        issued = issuer.issue(subject=name, session_id=secrets.token_urlsafe(12))
        return JSONResponse({"access_token": issued.token}, headers=NO_STORE)

    async def me(request: Request) -> Response:
        claims = bearer(request)
        if claims is None:
            return JSONResponse({"error": "unauthorized"}, status_code=401, headers=NO_STORE)
        return JSONResponse({"user": claims.sub}, headers=NO_STORE)

    async def logout(request: Request) -> Response:
        claims = bearer(request)
        if claims is not None:
            revocations.deny(claims.iss, claims.jti, exp=claims.exp, now=time.time())
        return Response(status_code=204, headers=NO_STORE)

    async def jwks(request: Request) -> Response:
        return JSONResponse(keyset.jwks())

    return Starlette(
        routes=[
            Route("/api/login", login, methods=["POST"]),
            Route("/api/me", me),
            Route("/api/logout", logout, methods=["POST"]),
            Route("/.well-known/jwks.json", jwks),
        ]
    )


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
