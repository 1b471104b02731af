"""Public keys as JWKs: RFC 7638 thumbprints, raw ECDSA signatures, and the keys clients
present to prove possession (a DBSC registration, a DPoP proof).

:func:`client_key` turns a client's JWK into a verification-only :class:`ClientKey` for one
algorithm: ``ES256`` (P-256, signatures as raw ``r || s``) or ``RS256`` (RSA of 2048 to 8192
bits, PKCS #1 v1.5). A JWK carrying private members, another curve or key type, or a weak RSA
modulus is refused. Keys repeat (a browser signs every refresh with the same one), so parsed
keys are kept in a small LRU cache keyed by their public members.
"""

from __future__ import annotations

import functools
import hashlib
import json
from hashlib import sha256 as _sha256
from typing import Final, Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from sessionward.core.jose import b64decode, b64encode
from sessionward.errors import InvalidProof

__all__ = ["CLIENT_ALGORITHMS", "ClientAlgorithm", "ClientKey", "client_key", "thumbprint"]

ClientAlgorithm = Literal["ES256", "RS256"]
CLIENT_ALGORITHMS: Final[tuple[ClientAlgorithm, ...]] = ("ES256", "RS256")

# Order of the P-256 group: a valid ECDSA signature has 0 < r, s < N.
P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_ORDER: Final = P256_ORDER.to_bytes(32, "big")
_ZERO: Final = bytes(32)
_ECDSA_PREHASHED: Final = ec.ECDSA(Prehashed(hashes.SHA256()))
_PKCS1: Final = padding.PKCS1v15()
_SHA256: Final = hashes.SHA256()
MIN_RSA_BITS: Final = 2048
MAX_RSA_BITS: Final = 8192
# Members no public JWK may carry (EC and RSA private parts, symmetric key material).
_PRIVATE: Final = frozenset(("d", "p", "q", "dp", "dq", "qi", "oth", "k"))


def _der_integer(value: bytes) -> bytes:
    value = value.lstrip(b"\x00")  # minimal encoding: no leading zero bytes
    if value[0] & 0x80:  # a sign byte keeps the integer positive
        value = b"\x00" + value
    return b"\x02" + bytes((len(value),)) + value


# DER prefixes for the common case (both top bytes non-zero), indexed by the top bits of r, s.
_HEADS: Final = (
    b"\x30\x44\x02\x20",
    b"\x30\x45\x02\x20",
    b"\x30\x45\x02\x21\x00",
    b"\x30\x46\x02\x21\x00",
)
_MIDS: Final = (b"\x02\x20", b"\x02\x21\x00")


def _der_signature(signature: bytes) -> bytes:
    """DER ``SEQUENCE {INTEGER r, INTEGER s}`` from a raw 64-byte ``r || s`` with ``0 < r, s``:
    what ``encode_dss_signature`` returns, without the round trip through Python integers."""
    r0, s0 = signature[0], signature[32]
    if r0 and s0:  # 127 times in 128: fixed-length integers, precomputed prefixes
        high = s0 >> 7
        return _HEADS[(r0 >> 7) * 2 + high] + signature[:32] + _MIDS[high] + signature[32:]
    body = _der_integer(signature[:32]) + _der_integer(signature[32:])
    return b"\x30" + bytes((len(body),)) + body


def es256_der(signature: bytes) -> bytes | None:
    """The DER form of a raw ES256 signature, or ``None`` unless it is 64 bytes with
    ``0 < r, s < n`` (so ``r = s = 0``, CVE-2022-21449, never reaches the library)."""
    if len(signature) != 64:
        return None
    r, s = signature[:32], signature[32:]
    if not (_ZERO < r < _ORDER and _ZERO < s < _ORDER):  # big-endian: compares as numbers
        return None
    return _der_signature(signature)


def thumbprint(members: dict[str, str]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of the required public members."""
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return b64encode(hashlib.sha256(canonical).digest())


class ClientKey:
    """A client's public key for one algorithm. ``jwk`` holds the required members only (what
    to store); ``thumbprint`` is their RFC 7638 thumbprint (``cnf.jkt``)."""

    __slots__ = ("_ec", "_rsa", "alg", "jwk", "thumbprint")

    def __init__(
        self,
        alg: ClientAlgorithm,
        jwk: dict[str, str],
        public: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    ) -> None:
        self.alg = alg
        self.jwk = jwk
        self.thumbprint = thumbprint(jwk)
        # The key type is settled once here (keys are cached): an ``isinstance`` against the
        # library's abstract classes is not free, and would otherwise run for every proof.
        self._ec = public if isinstance(public, ec.EllipticCurvePublicKey) else None
        self._rsa = public if isinstance(public, rsa.RSAPublicKey) else None

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's JWS signature of ``data``; never raises."""
        try:
            if self._ec is not None:
                der = es256_der(signature)
                if der is None:
                    return False
                self._ec.verify(der, _sha256(data).digest(), _ECDSA_PREHASHED)
            elif self._rsa is not None:
                if len(signature) != (self._rsa.key_size + 7) // 8:
                    return False
                self._rsa.verify(signature, data, _PKCS1, _SHA256)
            else:  # pragma: no cover - client_key builds only these two
                return False
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"ClientKey(alg={self.alg!r}, thumbprint={self.thumbprint!r})"


def _text(jwk: dict[str, object], name: str) -> str:
    value = jwk.get(name)
    if not isinstance(value, str) or len(value) > 2048:
        raise InvalidProof("jwk-malformed")
    return value


def client_key(jwk: object, alg: str) -> ClientKey:
    """The verification key of a client's public JWK for ``alg`` (``ES256`` or ``RS256``).

    Raises :class:`~sessionward.errors.InvalidProof` (``jwk-malformed``, ``jwk-private``,
    ``jwk-mismatch`` when the key type does not fit ``alg``, ``jwk-weak``)."""
    if not isinstance(jwk, dict):
        raise InvalidProof("jwk-malformed")
    if _PRIVATE.intersection(jwk):
        raise InvalidProof("jwk-private")
    kty = jwk.get("kty")
    if alg == "ES256" and kty == "EC":
        if jwk.get("crv") != "P-256":
            raise InvalidProof("jwk-mismatch")
        return _cached("ES256", (("crv", "P-256"), ("kty", "EC"), *_members(jwk, "x", "y")))
    if alg == "RS256" and kty == "RSA":
        return _cached("RS256", (*_members(jwk, "e"), ("kty", "RSA"), *_members(jwk, "n")))
    if alg in CLIENT_ALGORITHMS and isinstance(kty, str):
        raise InvalidProof("jwk-mismatch")
    raise InvalidProof("jwk-malformed")


def _members(jwk: dict[str, object], *names: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, _text(jwk, name)) for name in names)


@functools.lru_cache(maxsize=1024)
def _cached(alg: ClientAlgorithm, members: tuple[tuple[str, str], ...]) -> ClientKey:
    jwk = dict(members)
    try:
        if alg == "ES256":
            x, y = b64decode(jwk["x"]), b64decode(jwk["y"])
            if len(x) != 32 or len(y) != 32:
                raise InvalidProof("jwk-malformed")
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            )
            return ClientKey(alg, jwk, numbers.public_key())
        n_bytes, e_bytes = b64decode(jwk["n"]), b64decode(jwk["e"])
        if not n_bytes or n_bytes[0] == 0 or not e_bytes or e_bytes[0] == 0 or len(e_bytes) > 8:
            raise InvalidProof("jwk-malformed")  # RFC 7518 §6.3.1: minimal big-endian integers
        n = int.from_bytes(n_bytes, "big")
        if not MIN_RSA_BITS <= n.bit_length() <= MAX_RSA_BITS:
            raise InvalidProof("jwk-weak")
        public = rsa.RSAPublicNumbers(int.from_bytes(e_bytes, "big"), n).public_key()
        return ClientKey(alg, jwk, public)
    except (ValueError, UnsupportedAlgorithm):  # not on the curve, a bad exponent, bad base64
        raise InvalidProof("jwk-malformed") from None
