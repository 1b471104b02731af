"""DPoP (RFC 9449) proof checking, without I/O: the checks of RFC 9449 §4.3 except the ``jti``
replay cache, which the caller keeps in the store (it must be shared by every node).

A proof is a ``dpop+jwt`` signed by the client's key, carrying the public ``jwk`` in its
header and ``jti``, ``htm`` (the method), ``htu`` (the URL without query and fragment), ``iat``
and, with an access token, ``ath`` (its SHA-256). A token bound to the key names its RFC 7638
thumbprint in ``cnf.jkt``.

Server nonces (§8) are stateless: the HMAC of a time window under ``nonce_key``. A nonce is
accepted during its window and the next one, so it lives between one and two
``nonce_lifetime`` spans, and every node sharing the key issues and accepts the same ones.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple
from urllib.parse import urlsplit

from sessionward.core.jose import b64decode, b64encode
from sessionward.core.jwk import CLIENT_ALGORITHMS, ClientKey
from sessionward.core.jws import header_key, parse_compact
from sessionward.errors import ConfigError, InvalidProof

__all__ = [
    "HEADER",
    "NONCE_HEADER",
    "TYP",
    "DpopPolicy",
    "DpopProof",
    "access_token_hash",
    "bound_jkt",
    "normalize_htu",
]

HEADER: Final = "dpop"
NONCE_HEADER: Final = "dpop-nonce"
TYP: Final = "dpop+jwt"
USE_NONCE: Final = "use_dpop_nonce"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_UNRESERVED: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_NONCE_INFO: Final = b"sessionward dpop nonce v1\x00"


def access_token_hash(token: str) -> str:
    """The ``ath`` claim for ``token``: base64url SHA-256 of its ASCII bytes."""
    return b64encode(hashlib.sha256(token.encode("ascii")).digest())


def bound_jkt(claims: Mapping[str, Any]) -> str | None:
    """The ``cnf.jkt`` thumbprint a token's claims bind it to, or ``None``."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
    return jkt if isinstance(jkt, str) else None


def _percent(match: re.Match[str]) -> str:
    byte = int(match.group(1), 16)
    return chr(byte) if byte in _UNRESERVED else "%" + match.group(1).upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4."""
    out: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if len(out) > 0:
                out.pop()
        elif segment != ".":
            out.append(segment)
    trailing = path.endswith(("/.", "/.."))
    return "/" + "/".join(out) + ("/" if trailing and out else "")


@functools.lru_cache(maxsize=1024)
def normalize_htu(url: str) -> str | None:
    """``url`` without query and fragment, normalised as RFC 3986 §6.2.2-6.2.3 says (case of
    scheme and host, default port, percent-encoding, dot segments, empty path); ``None`` for
    something that is not an absolute http(s) URL without user information."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    if ":" in host:
        host = f"[{host}]"
    authority = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _remove_dot_segments(_PERCENT.sub(_percent, parts.path or "/"))
    return f"{scheme}://{authority}{path}"


class DpopProof(NamedTuple):
    """A proof that passed every stateless check; ``jti`` must still be refused when seen
    before (until ``replay_until``)."""

    key: ClientKey
    jti: str
    replay_until: float

    @property
    def jkt(self) -> str:
        return self.key.thumbprint


@dataclass(frozen=True, slots=True)
class DpopPolicy:
    """How proofs are checked.

    * ``algorithms``: accepted ``alg`` values (``ES256``, ``RS256``).
    * ``max_age``: how old ``iat`` may be; ``skew``: how far in the future it may be.
    * ``nonce_key``: 32 random bytes shared by every node; when set, every proof must carry a
      current server nonce (``use_dpop_nonce`` otherwise) and ``nonce_lifetime`` is the window.
    """

    algorithms: tuple[str, ...] = CLIENT_ALGORITHMS
    max_age: float = 60.0
    skew: float = 5.0
    nonce_key: bytes | None = None
    nonce_lifetime: float = 300.0

    def __post_init__(self) -> None:
        if not self.algorithms or any(a not in CLIENT_ALGORITHMS for a in self.algorithms):
            raise ConfigError(f"DPoP algorithms must be among {CLIENT_ALGORITHMS}")
        if not 0 < self.max_age <= 600 or not 0 <= self.skew <= 60:
            raise ConfigError("max_age must be in (0, 600] seconds and skew in [0, 60]")
        if self.nonce_key is not None and (
            not isinstance(self.nonce_key, bytes) or len(self.nonce_key) < 32
        ):
            raise ConfigError("nonce_key must be at least 32 random bytes")
        if not 10 <= self.nonce_lifetime <= 86400:
            raise ConfigError("nonce_lifetime must be between 10 s and one day")

    @property
    def algs_param(self) -> str:
        """The ``algs`` parameter of ``WWW-Authenticate: DPoP``."""
        return " ".join(self.algorithms)

    # -- nonces -----------------------------------------------------------------------------

    def _mac(self, window: int) -> bytes:
        assert self.nonce_key is not None  # noqa: S101 - callers check
        data = _NONCE_INFO + struct.pack(">q", window)
        return hmac.digest(self.nonce_key, data, "sha256")[:16]

    def nonce(self, now: float) -> str | None:
        """The current server nonce (``None`` when nonces are off)."""
        if self.nonce_key is None:
            return None
        window = math.floor(now / self.nonce_lifetime)
        return b64encode(struct.pack(">q", window) + self._mac(window))

    def _nonce_ok(self, nonce: object, now: float) -> bool:
        if not isinstance(nonce, str) or len(nonce) != 32:
            return False
        try:
            raw = b64decode(nonce)
        except ValueError:
            return False
        (window,) = struct.unpack(">q", raw[:8])
        current = math.floor(now / self.nonce_lifetime)
        return current - 1 <= window <= current and hmac.compare_digest(raw[8:], self._mac(window))

    # -- proofs -----------------------------------------------------------------------------

    def verify(
        self,
        proof: str | None,
        *,
        method: str,
        url: str,
        now: float,
        access_token: str | None = None,
        jkt: str | None = None,
    ) -> DpopProof:
        """Check ``proof`` for a request (``method``, absolute ``url``) at ``now``. With
        ``access_token``, ``ath`` must match it; with ``jkt`` (the token's ``cnf.jkt``), the
        proof's key must be that one. Raises :class:`~sessionward.errors.InvalidProof`."""
        if proof is None:
            raise InvalidProof("dpop-missing")
        jwt = parse_compact(proof.strip(), max_size=8 * 1024)
        header, claims = jwt.header, jwt.claims
        if header.get("typ") != TYP:
            raise InvalidProof("typ")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidProof("alg")
        key = header_key(jwt.header_segment, alg)
        if not key.verify(jwt.signing_input, jwt.signature):
            raise InvalidProof("signature")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 8 <= len(jti) <= 256:
            raise InvalidProof("jti")
        if claims.get("htm") != method.upper():
            raise InvalidProof("htm")
        htu, target = claims.get("htu"), normalize_htu(url)
        if (
            not isinstance(htu, str)
            or target is None
            or (htu != url and normalize_htu(htu) != target)  # equal is the common case
        ):
            raise InvalidProof("htu")
        iat = claims.get("iat")
        if isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat):
            raise InvalidProof("iat")
        if not now - self.max_age <= iat <= now + self.skew:
            raise InvalidProof("iat")
        if access_token is not None:
            ath = claims.get("ath")
            expected = access_token_hash(access_token)
            if not isinstance(ath, str) or not hmac.compare_digest(ath, expected):
                raise InvalidProof("ath")
        if jkt is not None and not hmac.compare_digest(key.thumbprint, jkt):
            raise InvalidProof("jkt")
        if self.nonce_key is not None and not self._nonce_ok(claims.get("nonce"), now):
            raise InvalidProof(USE_NONCE)
        return DpopProof(key, jti, float(iat) + self.max_age + self.skew)
