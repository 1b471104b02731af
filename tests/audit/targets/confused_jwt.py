"""A JSON API with RS256 JWTs whose verifier trusts the token's own ``alg``, for the
auditor's tests. Do not copy it.

``POST /api/login`` answers ``{"token": <JWT>}`` (RS256, key ``k1``, 10-minute lifetime);
the public key is at ``/.well-known/jwks.json``; ``GET /api/me`` with ``Authorization:
Bearer`` answers ``{"user": ...}``; ``POST /api/logout`` ends the token (a denylist).

Planted flaws (finding id after each):

1. For ``HS*`` tokens the verifier uses the public key's PEM text as the HMAC secret: anyone
   can sign with it (``jwt-key-confusion``).
2. A token with an empty signature is accepted unchecked (``jwt-signature-unchecked``),
   whatever its ``alg`` says, ``none`` included (``jwt-alg-none``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

USERS = {"alice": "wonderland"}


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def create_app(base_url: str) -> Starlette:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    numbers = public.public_numbers()
    jwk = {
        "kty": "RSA",
        "kid": "k1",
        "alg": "RS256",
        "use": "sig",
        "n": b64e(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
        "e": b64e(numbers.e.to_bytes(3, "big")),
    }
    revoked: set[str] = set()
    lock = threading.Lock()

    def sign(claims: dict[str, Any]) -> str:
        head = b64e(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k1"}).encode())
        body = b64e(json.dumps(claims).encode())
        signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{head}.{body}.{b64e(signature)}"

    def verify(token: str) -> dict[str, Any] | None:
        try:
            head, body, signature = token.split(".")
            header, claims = json.loads(b64d(head)), json.loads(b64d(body))
        except ValueError:
            return None
        signing = f"{head}.{body}".encode()
        alg = str(header.get("alg"))
        if not signature:
            pass  # planted: nothing to check, so nothing is checked
        elif alg == "RS256":
            try:
                public.verify(b64d(signature), signing, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                return None
        elif alg == "HS256":  # planted: the public key's PEM text as the HMAC secret
            mac = hmac.new(pem, signing, hashlib.sha256).digest()
            if not hmac.compare_digest(mac, b64d(signature)):
                return None
        else:
            return None
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            return None
        with lock:
            if claims.get("jti") in revoked:
                return None
        return dict(claims)

    async def login(request: Request) -> Response:
        data = json.loads(await request.body() or b"{}")
        name = data.get("username")
        if not isinstance(name, str) or USERS.get(name) != data.get("password"):
            return JSONResponse({"error": "wrong credentials"}, status_code=401)
        now = int(time.time())
        claims = {
            "sub": name,
            "iat": now,
            "exp": now + 600,
            "aud": base_url,
            "jti": b64e(hashlib.sha256(f"{now}{time.perf_counter_ns()}".encode()).digest()),
        }
        return JSONResponse({"token": sign(claims)}, headers={"cache-control": "no-store"})

    def bearer(request: Request) -> dict[str, Any] | None:
        auth = request.headers.get("authorization", "")
        return verify(auth[7:]) if auth.startswith("Bearer ") else None

    async def me(request: Request) -> Response:
        claims = bearer(request)
        if claims is None:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse({"user": claims.get("sub")}, headers={"cache-control": "no-store"})

    async def logout(request: Request) -> Response:
        claims = bearer(request)
        if claims is not None:
            with lock:
                revoked.add(str(claims.get("jti")))
        return Response(status_code=204)

    async def jwks(request: Request) -> Response:
        return JSONResponse({"keys": [jwk]})

    return Starlette(
        routes=[
            Route("/api/login", login, methods=["POST"]),
            Route("/api/me", me),
            Route("/api/logout", logout, methods=["POST"]),
            Route("/.well-known/jwks.json", jwks),
        ]
    )


#: Flaw number -> the findings that must report it.
EXPECTED = {
    1: {"jwt-key-confusion"},
    2: {"jwt-signature-unchecked", "jwt-alg-none"},
}

SCENARIO = """
[session]
transport = "bearer"

[login]
json = "/api/login"
token = "token"
username_env = "JWT_USER"
password_env = "JWT_PASSWORD"

[authenticated]
path = "/api/me"
contains = '"user"'

[logout]
path = "/api/logout"
"""
