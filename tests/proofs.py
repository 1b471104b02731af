"""A client-side key for tests: signs DBSC registration and refresh JWTs and DPoP proofs the way
a browser or an API client does (ES256 as raw ``r || s``, RS256 PKCS #1 v1.5), with knobs to
make every kind of bad proof."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int(value: int, size: int | None = None) -> str:
    length = size if size is not None else (value.bit_length() + 7) // 8
    return b64(value.to_bytes(length, "big"))


class Device:
    """A key pair the "device" keeps; ``alg`` is ``ES256`` or ``RS256``."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        if alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def jwk(self) -> dict[str, str]:
        public = self.private.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            numbers = public.public_numbers()
            return {"crv": "P-256", "kty": "EC", "x": _int(numbers.x, 32), "y": _int(numbers.y, 32)}
        assert isinstance(public, rsa.RSAPublicKey)
        rsa_numbers = public.public_numbers()
        return {"e": _int(rsa_numbers.e), "kty": "RSA", "n": _int(rsa_numbers.n)}

    @property
    def thumbprint(self) -> str:
        canonical = json.dumps(self.jwk, separators=(",", ":"), sort_keys=True).encode()
        return b64(hashlib.sha256(canonical).digest())

    def signature(self, data: bytes) -> bytes:
        if isinstance(self.private, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def sign(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        head = b64(json.dumps(header, separators=(",", ":")).encode())
        body = b64(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{head}.{body}"
        return f"{signing_input}.{b64(self.signature(signing_input.encode()))}"

    def registration(
        self,
        jti: str,
        authorization: str | None = None,
        *,
        typ: str = "dbsc+jwt",
        alg: str | None = None,
        jwk: dict[str, str] | None = None,
        **claims: Any,
    ) -> str:
        """A registration JWT as Chromium sends it (``jwk`` in the header, ``jti`` and
        ``authorization`` in the payload)."""
        header = {"alg": alg or self.alg, "jwk": jwk or self.jwk, "typ": typ}
        body: dict[str, Any] = {"jti": jti, **claims}
        if authorization is not None:
            body["authorization"] = authorization
        return self.sign(header, body)

    def refresh(self, jti: str, *, typ: str = "dbsc+jwt", alg: str | None = None) -> str:
        """A refresh proof: ``{"alg", "typ"}`` header (no ``jwk``), ``{"jti"}`` payload."""
        return self.sign({"alg": alg or self.alg, "typ": typ}, {"jti": jti})

    def dpop(
        self,
        method: str,
        url: str,
        *,
        iat: float,
        token: str | None = None,
        nonce: str | None = None,
        jti: str | None = None,
        typ: str = "dpop+jwt",
    ) -> str:
        """A DPoP proof (RFC 9449 §4.2)."""
        claims: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(iat),
        }
        if token is not None:
            claims["ath"] = b64(hashlib.sha256(token.encode()).digest())
        if nonce is not None:
            claims["nonce"] = nonce
        return self.sign({"typ": typ, "alg": self.alg, "jwk": self.jwk}, claims)
