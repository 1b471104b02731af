"""An issuer's public keys and the strict check of the JWTs it signs (logout tokens, SETs).

:func:`parse_jwks` turns a fetched JWK set into :class:`IssuerKey` values, one per usable key
and algorithm; :func:`verify_signed` parses a compact JWS strictly
(:func:`~sessionward.core.jws.parse_compact`), refuses an algorithm outside the allow-list
before looking at any key (``none`` and the HMAC family can never be named), and checks the
signature with the key of the header's ``kid`` (or, without a ``kid``, each key of the named
algorithm). Keys without a ``use`` or with ``use: sig`` are kept; encryption keys, private
members and weak RSA moduli are dropped. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from sessionward.core.jose import b64decode
from sessionward.core.jwk import MAX_RSA_BITS, MIN_RSA_BITS, ClientKey, client_key
from sessionward.core.jws import SignedJwt, parse_compact
from sessionward.errors import InvalidProof, SessionwardError

__all__ = [
    "ALGORITHMS",
    "IssuerKey",
    "KeyAlgorithm",
    "SignalRejected",
    "candidates_for",
    "check_signature",
    "parse_jwks",
    "parse_signed",
    "verify_signed",
]

KeyAlgorithm = Literal["RS256", "ES256", "PS256", "EdDSA"]
ALGORITHMS: Final[tuple[KeyAlgorithm, ...]] = ("RS256", "ES256", "PS256", "EdDSA")
MAX_KEYS: Final = 32
#: A logout token or a SET: a dozen claims and one event, some hundreds of bytes before
#: base64url, and a signature (RSA-4096: 683 characters); 16 KiB leaves room many times over.
MAX_TOKEN: Final = 16 * 1024
_PRIVATE: Final = frozenset(("d", "p", "q", "dp", "dq", "qi", "oth", "k"))
_PSS: Final = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


class SignalRejected(SessionwardError):
    """A logout token or SET was refused. ``reason`` is a short code for operators (never
    the token); ``code`` is the error name the answer carries."""

    def __init__(self, reason: str, code: str = "invalid_request") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class IssuerKey:
    """One verification key of an issuer, bound to one algorithm."""

    __slots__ = ("_verify", "alg", "kid")

    def __init__(self, alg: KeyAlgorithm, kid: str | None, verify: Any) -> None:
        self.alg = alg
        self.kid = kid
        self._verify = verify

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's signature of ``data``; never raises."""
        return bool(self._verify(data, signature))

    def __repr__(self) -> str:
        return f"IssuerKey(alg={self.alg!r}, kid={self.kid!r})"


def _client(jwk: dict[str, Any], alg: str) -> Any:
    key: ClientKey = client_key(jwk, alg)
    return key.verify


def _rsa_public(jwk: dict[str, Any]) -> rsa.RSAPublicKey:
    n_bytes, e_bytes = b64decode(str(jwk.get("n", ""))), b64decode(str(jwk.get("e", "")))
    if not n_bytes or n_bytes[0] == 0 or not e_bytes or e_bytes[0] == 0 or len(e_bytes) > 8:
        raise ValueError("not minimal integers")
    n = int.from_bytes(n_bytes, "big")
    if not MIN_RSA_BITS <= n.bit_length() <= MAX_RSA_BITS:
        raise ValueError("weak or oversized modulus")
    return rsa.RSAPublicNumbers(int.from_bytes(e_bytes, "big"), n).public_key()


def _pss(jwk: dict[str, Any], alg: str) -> Any:
    public = _rsa_public(jwk)

    def verify(data: bytes, signature: bytes) -> bool:
        if len(signature) != (public.key_size + 7) // 8:
            return False
        try:
            public.verify(signature, data, _PSS, hashes.SHA256())
        except InvalidSignature:
            return False
        return True

    return verify


def _eddsa(jwk: dict[str, Any], alg: str) -> Any:
    if jwk.get("crv") != "Ed25519":
        raise ValueError("not Ed25519")
    raw = b64decode(str(jwk.get("x", "")))
    public = ed25519.Ed25519PublicKey.from_public_bytes(raw)

    def verify(data: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            public.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    return verify


_BUILDERS: Final[dict[str, tuple[str, Any]]] = {
    "RS256": ("RSA", _client),
    "ES256": ("EC", _client),
    "PS256": ("RSA", _pss),
    "EdDSA": ("OKP", _eddsa),
}


def parse_jwks(document: object, algorithms: Sequence[str] = ALGORITHMS) -> list[IssuerKey]:
    """The usable keys of a JWK set (``{"keys": [...]}``) for the allowed ``algorithms``.

    A key naming an ``alg`` is kept for that algorithm only; a key without one is kept for
    every allowed algorithm its type fits (an RSA key: RS256 and PS256). Unusable members are
    skipped, not fatal: one odd key must not take the issuer's other keys down."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise SignalRejected("jwks-malformed", "invalid_key")
    out: list[IssuerKey] = []
    for jwk in document["keys"][:MAX_KEYS]:
        out.extend(_keys_of(jwk, algorithms))
    return out


def _keys_of(jwk: object, algorithms: Sequence[str]) -> Iterable[IssuerKey]:
    if not isinstance(jwk, dict) or _PRIVATE.intersection(jwk):
        return
    if jwk.get("use", "sig") != "sig":
        return
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or len(kid) > 256):
        return
    declared = jwk.get("alg")
    for alg in algorithms:
        kty, build = _BUILDERS.get(alg, ("", None))
        if build is None or jwk.get("kty") != kty or declared not in (None, alg):
            continue
        try:
            verify = build(jwk, alg)
        except (InvalidProof, ValueError, UnsupportedAlgorithm):
            continue
        yield IssuerKey(alg, kid, verify)  # type: ignore[arg-type]


def parse_signed(text: object, algorithms: Sequence[str] = ALGORITHMS) -> SignedJwt:
    """``text`` parsed strictly, its ``alg`` on the allow-list; ``SignalRejected``
    (``too-large``, ``malformed``, ``alg-not-allowed``) otherwise. The signature is not
    checked yet."""
    if isinstance(text, str) and len(text) > MAX_TOKEN:
        raise SignalRejected("too-large")
    try:
        jwt = parse_compact(text, max_size=MAX_TOKEN)
    except InvalidProof:
        raise SignalRejected("malformed") from None
    alg = jwt.header.get("alg")
    if alg not in algorithms or alg not in _BUILDERS:
        raise SignalRejected("alg-not-allowed")
    return jwt


def check_signature(jwt: SignedJwt, keys: Sequence[IssuerKey]) -> None:
    """``SignalRejected`` (``unknown-key``, ``bad-signature``) unless one of ``keys`` that
    may have signed ``jwt`` (see :func:`candidates_for`) verifies its signature."""
    candidates = candidates_for(jwt, keys)
    if not candidates:
        raise SignalRejected("unknown-key", "invalid_key")
    if not any(key.verify(jwt.signing_input, jwt.signature) for key in candidates):
        raise SignalRejected("bad-signature", "authentication_failed")


def verify_signed(
    text: object, keys: Sequence[IssuerKey], algorithms: Sequence[str] = ALGORITHMS
) -> SignedJwt:
    """:func:`parse_signed` then :func:`check_signature`."""
    jwt = parse_signed(text, algorithms)
    check_signature(jwt, keys)
    return jwt


def candidates_for(jwt: SignedJwt, keys: Sequence[IssuerKey]) -> list[IssuerKey]:
    """The keys that may have signed ``jwt``: its ``kid``'s for its ``alg`` (every key of
    that algorithm when the header names no ``kid``)."""
    alg, kid = jwt.header.get("alg"), jwt.header.get("kid")
    if kid is not None and not isinstance(kid, str):
        return []
    return [k for k in keys if k.alg == alg and (kid is None or k.kid == kid)]
