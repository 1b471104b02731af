"""A test identity provider / Shared Signals transmitter: keys from ``cryptography``, tokens
signed by PyJWT (an implementation independent of ours), its JWK set served over real HTTP."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from servers import uvicorn_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward.signals.claims import BACKCHANNEL_LOGOUT

CLIENT_ID = "shop-client"

_ALGS = {
    "RS256": lambda: rsa.generate_private_key(65537, 2048),
    "PS256": lambda: rsa.generate_private_key(65537, 2048),
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
}


class TestIdp:
    """Signs logout tokens and SETs; serves ``/jwks.json`` and both configuration documents.
    ``issuer`` is the base URL once :meth:`serve` runs."""

    __test__ = False

    def __init__(self, alg: str = "RS256") -> None:
        self.alg = alg
        self.kid = f"k-{secrets.token_hex(4)}"
        self.private: Any = _ALGS[alg]()
        self.published: list[tuple[str, str, Any]] = [(self.kid, alg, self.private)]
        self.issuer = ""
        self.jwks_hits = 0
        self.cache_control = "max-age=600"
        self._lock = threading.Lock()

    def rotate(self, alg: str | None = None) -> None:
        """Sign with a new key from now on, and publish it beside the old ones."""
        self.alg = alg or self.alg
        self.kid = f"k-{secrets.token_hex(4)}"
        self.private = _ALGS[self.alg]()
        self.published.append((self.kid, self.alg, self.private))

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, alg, private in self.published:
            jwk = json.loads(pyjwt.get_algorithm_by_name(alg).to_jwk(private.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": alg})
        return {"keys": keys}

    def app(self, base: str) -> Starlette:
        self.issuer = base

        async def jwks(request: Request) -> Response:
            with self._lock:
                self.jwks_hits += 1
            return JSONResponse(self.jwks(), headers={"cache-control": self.cache_control})

        async def configuration(request: Request) -> Response:
            return JSONResponse({"issuer": self.issuer, "jwks_uri": f"{base}/jwks.json"})

        async def big(request: Request) -> Response:
            with self._lock:
                self.jwks_hits += 1
            padding = [{"kty": "oct", "kid": f"pad-{i}", "k": "A" * 64} for i in range(4000)]
            return JSONResponse({"keys": [*self.jwks()["keys"], *padding]})

        async def slow(request: Request) -> Response:
            await asyncio.sleep(2)
            return JSONResponse(self.jwks())

        async def moved(request: Request) -> Response:
            return Response(status_code=302, headers={"location": f"{base}/jwks.json"})

        return Starlette(
            routes=[
                Route("/jwks.json", jwks),
                Route("/big.json", big),
                Route("/moved", moved),
                Route("/slow.json", slow),
                Route("/.well-known/openid-configuration", configuration),
                Route("/.well-known/ssf-configuration", configuration),
            ]
        )

    @contextmanager
    def serve(self) -> Iterator[str]:
        with uvicorn_thread(self.app) as base:
            yield base

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        headers = {"kid": self.kid, **header}
        return pyjwt.encode(claims, self.private, algorithm=self.alg, headers=headers)

    def logout_token(self, now: float, *, drop: tuple[str, ...] = (), **claims: Any) -> str:
        """A valid logout token for ``sid``/``sub`` (override or drop any claim)."""
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": int(now),
            "exp": int(now) + 120,
            "jti": secrets.token_hex(8),
            "events": {BACKCHANNEL_LOGOUT: {}},
            **claims,
        }
        for name in drop:
            body.pop(name, None)
        return self.sign(body, typ="logout+jwt")

    def set_token(self, now: float, events: dict[str, Any], *, audience: str, **claims: Any) -> str:
        body = {
            "iss": self.issuer,
            "aud": audience,
            "iat": int(now),
            "jti": secrets.token_hex(8),
            "events": events,
            **claims,
        }
        return self.sign(body, typ="secevent+jwt")
