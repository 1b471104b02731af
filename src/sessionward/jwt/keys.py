"""Signing keys, each bound to exactly one JWS algorithm when it is constructed.

* :class:`EcKey` — ES256 (ECDSA on P-256 with SHA-256), the default.
* :class:`OkpKey` — EdDSA (Ed25519).
* :class:`HmacKey` — HS256, with a secret of at least 256 random bits.

The algorithm is a property of the key class, never of a token: the verifier looks the key up
by ``kid`` and uses ``key.alg``, so a token that names another algorithm (``none``, ``HS256``
with a public key as the secret, ...) cannot change how it is checked (RFC 8725 §3.1).

Keys load from PEM or JWK text (:func:`load_key`) and export to both; ``repr`` never shows
private material. Nothing here reads files or the environment (see :mod:`.loading`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from abc import ABC, abstractmethod
from hashlib import sha256 as _sha256
from typing import Any, ClassVar, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from sessionward.core.jose import b64decode, b64encode
from sessionward.core.jwk import _HEADS, _MIDS, _ORDER, _ZERO, _der_signature
from sessionward.core.jwk import P256_ORDER as P256_ORDER  # re-exported
from sessionward.core.jwk import thumbprint as _thumbprint
from sessionward.errors import ConfigError

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "EcKey",
    "HmacKey",
    "Key",
    "OkpKey",
    "generate_key",
    "load_key",
]

Algorithm = Literal["ES256", "EdDSA", "HS256"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = ("ES256", "EdDSA", "HS256")

_KID = re.compile(r"[A-Za-z0-9._~:+/=-]{1,128}")
_ECDSA: Final = ec.ECDSA(hashes.SHA256())
# Verification hashes with hashlib, which keeps its OpenSSL digest fetched where the library
# looks it up on every call; the check is the same ECDSA-with-SHA-256 over the same bytes.
_ECDSA_PREHASHED: Final = ec.ECDSA(Prehashed(hashes.SHA256()))
MIN_HMAC_BYTES: Final = 32


def _check_kid(kid: object) -> str:
    if not isinstance(kid, str) or _KID.fullmatch(kid) is None:
        raise ConfigError("kid must be 1-128 characters of [A-Za-z0-9._~:+/=-]")
    return kid


class Key(ABC):
    """A key bound to one algorithm. ``kid`` names it in token headers and the JWKS."""

    __slots__ = ("kid",)

    alg: ClassVar[Algorithm]
    kty: ClassVar[str]
    signature_size: ClassVar[int]
    symmetric: ClassVar[bool] = False

    kid: str

    @property
    @abstractmethod
    def can_sign(self) -> bool:
        """``False`` for a public key (verification only)."""

    @abstractmethod
    def sign(self, data: bytes) -> bytes:
        """The JWS signature of ``data`` (raw form, ``signature_size`` bytes)."""

    @abstractmethod
    def verify(self, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is a valid JWS signature of ``data``; never raises."""

    @abstractmethod
    def public_jwk(self) -> dict[str, str]:
        """The public JWK (with ``kid``, ``alg``, ``use``) for a JWKS document."""

    @abstractmethod
    def private_jwk(self) -> dict[str, str]:
        """The full JWK including private members; keep it secret."""

    @abstractmethod
    def public_key(self) -> Key:
        """A verification-only copy of this key (the key itself for symmetric keys)."""

    def public_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM of an asymmetric key."""
        raise ConfigError("a symmetric key has no public form")

    def private_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM of an asymmetric private key; keep it secret."""
        raise ConfigError("a symmetric key has no PEM form; use its JWK")

    def _members(self) -> dict[str, str]:
        return {"kid": self.kid, "alg": self.alg, "use": "sig"}

    def _no_private(self) -> ConfigError:
        return ConfigError(f"key {self.kid!r} is a public key and cannot sign")

    def __repr__(self) -> str:
        kind = "private" if self.can_sign else "public"
        return f"{type(self).__name__}(kid={self.kid!r}, alg={self.alg!r}, {kind})"


class EcKey(Key):
    """An ES256 key: ECDSA on P-256 with SHA-256, signatures as raw ``r || s`` (64 bytes)."""

    __slots__ = ("_private", "_public")

    alg: ClassVar[Algorithm] = "ES256"
    kty: ClassVar[str] = "EC"
    signature_size: ClassVar[int] = 64

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey,
        *,
        kid: str | None = None,
    ) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise ConfigError("ES256 needs a P-256 key")
        if isinstance(key, ec.EllipticCurvePrivateKey):
            self._private: ec.EllipticCurvePrivateKey | None = key
            self._public = key.public_key()
        else:
            self._private = None
            self._public = key
        self.kid = _check_kid(kid) if kid is not None else self.thumbprint()

    @classmethod
    def generate(cls, *, kid: str | None = None) -> EcKey:
        return cls(ec.generate_private_key(ec.SECP256R1()), kid=kid)

    @property
    def can_sign(self) -> bool:
        return self._private is not None

    def _coordinates(self) -> dict[str, str]:
        numbers = self._public.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64encode(numbers.x.to_bytes(32, "big")),
            "y": b64encode(numbers.y.to_bytes(32, "big")),
        }

    def thumbprint(self) -> str:
        return _thumbprint(self._coordinates())

    def _signer(self) -> ec.EllipticCurvePrivateKey:
        if self._private is None:
            raise self._no_private()
        return self._private

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self._signer().sign(data, _ECDSA))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify(self, data: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        r, s = signature[:32], signature[32:]
        # Range check before the library sees it: r = s = 0 is the "psychic signature"
        # (CVE-2022-21449) that some verifiers accepted for any message. Equal-length
        # big-endian byte strings compare like the numbers they encode.
        r0, s0 = signature[0], signature[32]
        if r0 and s0:  # both top bytes non-zero (so r, s > 0): 127 times in 128
            if not (r < _ORDER and s < _ORDER):
                return False
            high = s0 >> 7  # _der_signature's common case, inlined (this is the hot path)
            der = b"".join((_HEADS[(r0 >> 7) * 2 + high], r, _MIDS[high], s))
        elif _ZERO < r < _ORDER and _ZERO < s < _ORDER:
            der = _der_signature(signature)
        else:
            return False
        try:
            self._public.verify(der, _sha256(data).digest(), _ECDSA_PREHASHED)
        except InvalidSignature:
            return False
        return True

    def public_jwk(self) -> dict[str, str]:
        return {**self._coordinates(), **self._members()}

    def private_jwk(self) -> dict[str, str]:
        d = self._signer().private_numbers().private_value.to_bytes(32, "big")
        return {**self.public_jwk(), "d": b64encode(d)}

    def public_key(self) -> EcKey:
        return EcKey(self._public, kid=self.kid)

    def public_pem(self) -> bytes:
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def private_pem(self) -> bytes:
        return self._signer().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


class OkpKey(Key):
    """An EdDSA key (Ed25519), signatures of 64 bytes."""

    __slots__ = ("_private", "_public")

    alg: ClassVar[Algorithm] = "EdDSA"
    kty: ClassVar[str] = "OKP"
    signature_size: ClassVar[int] = 64

    def __init__(
        self,
        key: ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey,
        *,
        kid: str | None = None,
    ) -> None:
        if isinstance(key, ed25519.Ed25519PrivateKey):
            self._private: ed25519.Ed25519PrivateKey | None = key
            self._public = key.public_key()
        elif isinstance(key, ed25519.Ed25519PublicKey):
            self._private = None
            self._public = key
        else:
            raise ConfigError("EdDSA needs an Ed25519 key")
        self.kid = _check_kid(kid) if kid is not None else self.thumbprint()

    @classmethod
    def generate(cls, *, kid: str | None = None) -> OkpKey:
        return cls(ed25519.Ed25519PrivateKey.generate(), kid=kid)

    @property
    def can_sign(self) -> bool:
        return self._private is not None

    def _x(self) -> dict[str, str]:
        raw = self._public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64encode(raw)}

    def thumbprint(self) -> str:
        return _thumbprint(self._x())

    def _signer(self) -> ed25519.Ed25519PrivateKey:
        if self._private is None:
            raise self._no_private()
        return self._private

    def sign(self, data: bytes) -> bytes:
        return self._signer().sign(data)

    def verify(self, data: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            self._public.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def public_jwk(self) -> dict[str, str]:
        return {**self._x(), **self._members()}

    def private_jwk(self) -> dict[str, str]:
        raw = self._signer().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return {**self.public_jwk(), "d": b64encode(raw)}

    def public_key(self) -> OkpKey:
        return OkpKey(self._public, kid=self.kid)

    def public_pem(self) -> bytes:
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def private_pem(self) -> bytes:
        return self._signer().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _looks_random(secret: bytes) -> bool:
    """Reject what is plainly not a random key: passwords, PEM text, repeated bytes.

    Random 32 bytes are all printable ASCII with probability about 1e-14 and show fewer than
    16 distinct values with a probability far below that, so a real key never trips this.
    """
    printable = all(0x20 <= b < 0x7F or b in (0x09, 0x0A, 0x0D) for b in secret)
    return not printable and len(set(secret)) >= min(len(secret) // 2, 128)


class HmacKey(Key):
    """An HS256 key: a secret of at least 256 random bits, never a password.

    Symmetric keys are never published in a JWKS; every service that verifies also can sign,
    so prefer ES256 or EdDSA when more than one service verifies.
    """

    __slots__ = ("_secret",)

    alg: ClassVar[Algorithm] = "HS256"
    kty: ClassVar[str] = "oct"
    signature_size: ClassVar[int] = 32
    symmetric: ClassVar[bool] = True

    def __init__(self, secret: bytes, *, kid: str | None = None) -> None:
        if not isinstance(secret, bytes) or len(secret) < MIN_HMAC_BYTES:
            raise ConfigError("an HS256 key needs at least 32 random bytes")
        if not _looks_random(secret):
            raise ConfigError("an HS256 key must be random bytes, not text or a password")
        self._secret = secret
        self.kid = _check_kid(kid) if kid is not None else self._default_kid()

    @classmethod
    def generate(cls, *, kid: str | None = None) -> HmacKey:
        secret = secrets.token_bytes(MIN_HMAC_BYTES)
        while not _looks_random(secret):  # pragma: no cover - probability about 1e-14
            secret = secrets.token_bytes(MIN_HMAC_BYTES)
        return cls(secret, kid=kid)

    def _default_kid(self) -> str:
        # Deterministic (every process loading the same secret agrees) and one-way: a
        # domain-separated hash of a 256-bit random secret reveals nothing about it.
        digest = hashlib.sha256(b"sessionward hs256 kid\x00" + self._secret).digest()
        return b64encode(digest[:12])

    @property
    def can_sign(self) -> bool:
        return True

    def sign(self, data: bytes) -> bytes:
        return hmac.digest(self._secret, data, "sha256")

    def verify(self, data: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(hmac.digest(self._secret, data, "sha256"), signature)

    def public_jwk(self) -> dict[str, str]:
        raise ConfigError("a symmetric key has no public form and is never published")

    def private_jwk(self) -> dict[str, str]:
        return {"kty": "oct", "k": b64encode(self._secret), **self._members()}

    def public_key(self) -> HmacKey:
        return self


def generate_key(alg: str = "ES256", *, kid: str | None = None) -> Key:
    """A fresh key for ``alg`` (``ES256``, ``EdDSA`` or ``HS256``)."""
    if alg == "ES256":
        return EcKey.generate(kid=kid)
    if alg == "EdDSA":
        return OkpKey.generate(kid=kid)
    if alg == "HS256":
        return HmacKey.generate(kid=kid)
    raise ConfigError(f"unsupported algorithm {alg!r}; use one of {', '.join(ALGORITHMS)}")


# -- loading ---------------------------------------------------------------------------------


def load_key(text: str | bytes, *, kid: str | None = None, alg: str | None = None) -> Key:
    """A key from PEM (PKCS#8 / SubjectPublicKeyInfo / SEC1) or JWK JSON text.

    The algorithm follows from the key type (P-256 → ES256, Ed25519 → EdDSA, ``oct`` → HS256);
    ``alg``, or a JWK's ``alg`` member, must agree with it. ``kid`` overrides a JWK's ``kid``.
    Encrypted PEM is not supported: keep keys in a secret store and pass them in the clear.
    """
    data = text.encode("utf-8") if isinstance(text, str) else text
    stripped = data.strip()
    if stripped.startswith(b"-----BEGIN"):
        key = _from_pem(stripped, kid)
    elif stripped.startswith(b"{"):
        try:
            jwk = json.loads(stripped)
        except ValueError:
            raise ConfigError("key text is neither PEM nor JWK JSON") from None
        key = key_from_jwk(jwk, kid=kid)
    else:
        raise ConfigError("key text is neither PEM nor JWK JSON")
    if alg is not None and alg != key.alg:
        raise ConfigError(f"key is a {key.alg} key, not {alg}")
    return key


def _from_pem(data: bytes, kid: str | None) -> Key:
    loaded: Any
    try:
        if b"PRIVATE KEY" in data.split(b"\n", 1)[0]:
            loaded = serialization.load_pem_private_key(data, password=None)
        else:
            loaded = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"unreadable PEM key: {type(exc).__name__}") from None
    if isinstance(loaded, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return EcKey(loaded, kid=kid)
    if isinstance(loaded, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return OkpKey(loaded, kid=kid)
    raise ConfigError("unsupported PEM key type; use P-256 (ES256) or Ed25519 (EdDSA)")


def _member(jwk: dict[str, Any], name: str, size: int | None = None) -> bytes:
    value = jwk.get(name)
    try:
        raw = b64decode(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None or (size is not None and len(raw) != size):
        raise ConfigError(f"JWK member {name!r} is missing or malformed")
    return raw


def key_from_jwk(jwk: object, *, kid: str | None = None) -> Key:
    """A key from a parsed JWK (a dict). Rejects a ``use`` other than ``sig``."""
    if not isinstance(jwk, dict):
        raise ConfigError("a JWK must be a JSON object")
    if jwk.get("use", "sig") != "sig":
        raise ConfigError("JWK 'use' must be 'sig'")
    name = kid if kid is not None else jwk.get("kid")
    if name is not None:
        _check_kid(name)
    kty, crv = jwk.get("kty"), jwk.get("crv")
    key: Key
    if kty == "EC" and crv == "P-256":
        key = _ec_from_jwk(jwk, name)
    elif kty == "OKP" and crv == "Ed25519":
        key = _okp_from_jwk(jwk, name)
    elif kty == "oct":
        key = HmacKey(_member(jwk, "k"), kid=name)
    else:
        raise ConfigError("unsupported JWK; use EC P-256, OKP Ed25519 or oct")
    declared = jwk.get("alg")
    if declared is not None and declared != key.alg:
        raise ConfigError(f"JWK 'alg' {declared!r} does not match its {key.alg} key")
    return key


def _ec_from_jwk(jwk: dict[str, Any], kid: str | None) -> EcKey:
    x = int.from_bytes(_member(jwk, "x", 32), "big")
    y = int.from_bytes(_member(jwk, "y", 32), "big")
    try:
        public = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except ValueError:
        raise ConfigError("JWK point is not on P-256") from None
    if "d" not in jwk:
        return EcKey(public, kid=kid)
    d = int.from_bytes(_member(jwk, "d", 32), "big")
    try:
        private = ec.derive_private_key(d, ec.SECP256R1())
    except ValueError:
        raise ConfigError("JWK private scalar is out of range") from None
    if private.public_key().public_numbers() != public.public_numbers():
        raise ConfigError("JWK private and public members do not match")
    return EcKey(private, kid=kid)


def _okp_from_jwk(jwk: dict[str, Any], kid: str | None) -> OkpKey:
    x = _member(jwk, "x", 32)
    if "d" not in jwk:
        try:
            return OkpKey(ed25519.Ed25519PublicKey.from_public_bytes(x), kid=kid)
        except ValueError:
            raise ConfigError("JWK 'x' is not an Ed25519 public key") from None
    private = ed25519.Ed25519PrivateKey.from_private_bytes(_member(jwk, "d", 32))
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    if not hmac.compare_digest(raw, x):
        raise ConfigError("JWK private and public members do not match")
    return OkpKey(private, kid=kid)
