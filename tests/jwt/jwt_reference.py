"""The cross-check: what PyJWT and joserfc, configured carefully, say about a token.

``pyjwt_accepts`` / ``joserfc_accepts`` are the libraries' own verdicts, configured the way a
careful user would: the key is looked up by ``kid`` in our key set and the library is told
that key's single algorithm; ``iss``, ``aud`` (exact), ``exp``, ``iat``, ``sub``, ``jti`` are
required; 60 s leeway.

``policy_violations`` lists the rules of our profile that go beyond what either library
checks, each written here independently of the verifier under test (plain ``json`` and
``base64``). The reference verdict is *library accepts and no policy rule is violated*; the
tests assert that our verifier agrees with it for PyJWT and for joserfc, and pin exactly
which rejections of ours a library on its own would not make.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, OctKey, OKPKey
from joserfc.jwt import JWTClaimsRegistry

from sessionward.errors import InvalidToken
from sessionward.jwt.access import AccessClaims, AccessTokenVerifier
from sessionward.jwt.keys import Key
from sessionward.jwt.keyset import KeySet

SKEW = 60
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16}")


def _unverified_kid(token: str) -> str | None:
    head = token.split(".")[0]
    value = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    kid = value.get("kid") if isinstance(value, dict) else None
    return kid if isinstance(kid, str) else None


def pyjwt_key(key: Key) -> Any:
    if key.symmetric:
        return base64.urlsafe_b64decode(key.private_jwk()["k"] + "==")
    return serialization.load_pem_public_key(key.public_pem())


def pyjwt_accepts(
    token: str, keyset: KeySet, *, issuer: str, audience: str, leeway: int = SKEW
) -> bool:
    """PyJWT's verdict (it reads the real clock, so tests use times far from the edges)."""
    try:
        kid = _unverified_kid(token)
        key = keyset.get(kid) if kid is not None else None
        if key is None:
            return False
        pyjwt.decode(
            token,
            pyjwt_key(key),
            algorithms=[key.alg],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"], "strict_aud": True},
        )
    except (pyjwt.PyJWTError, ValueError, TypeError, KeyError):  # the library refuses it
        return False
    return True


def joserfc_key(key: Key, *, private: bool = False) -> Any:
    jwk = key.private_jwk() if key.symmetric or private else key.public_jwk()
    classes: dict[str, Any] = {"EC": ECKey, "OKP": OKPKey, "oct": OctKey}
    return classes[key.kty].import_key(jwk)


@contextmanager
def quiet_joserfc() -> Iterator[None]:
    """joserfc warns on the algorithm name "EdDSA", deprecated by RFC 9864 for "Ed25519"."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        yield


def joserfc_accepts(
    token: str, keyset: KeySet, *, now: int, issuer: str, audience: str, leeway: int = SKEW
) -> bool:
    """joserfc's verdict at ``now``."""
    try:
        kid = _unverified_kid(token)
        key = keyset.get(kid) if kid is not None else None
        if key is None:
            return False
        with quiet_joserfc():
            decoded = jose_jwt.decode(token, joserfc_key(key), algorithms=[key.alg])
        JWTClaimsRegistry(
            now=now,
            leeway=leeway,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            jti={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError, TypeError, KeyError):  # the library refuses the token
        return False
    return True


def _canonical_segment(segment: str) -> bytes:
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        raise ValueError("non-canonical base64url")
    return raw


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("duplicate member")
    return dict(pairs)


def _strict_object(segment: str) -> dict[str, Any]:
    text = _canonical_segment(segment).decode("utf-8")  # UTF-8 only (RFC 8725 §3.7)
    value = json.loads(text, object_pairs_hook=_unique)
    if not isinstance(value, dict) or text != text.strip():
        raise ValueError("not one JSON object")
    return value


def policy_violations(token: str, *, typ: str = "at+jwt", max_lifetime: int = 900) -> list[str]:
    """The rules of our profile a token breaks (empty: none)."""
    if len(token) > 8192 or not _COMPACT.fullmatch(token):
        return ["compact-form"]
    head_segment, body_segment, signature_segment = token.split(".")
    try:
        head = _strict_object(head_segment)
        body = _strict_object(body_segment)
        _canonical_segment(signature_segment)
    except (ValueError, binascii.Error):
        return ["strict-encoding"]
    out = []
    if set(head) != {"alg", "kid", "typ"}:
        out.append("header-members")  # jku, x5u, jwk, x5c, crit, missing kid, ...
    if head.get("typ") != typ:
        out.append("typ")
    if not isinstance(body.get("aud"), str):
        out.append("aud-single-string")
    exp, iat, nbf = body.get("exp"), body.get("iat"), body.get("nbf")
    if type(exp) is not int or type(iat) is not int or not (nbf is None or type(nbf) is int):
        out.append("integer-times")
    elif not 0 < exp - iat <= max_lifetime:
        out.append("lifetime")
    sid = body.get("sid")
    if not isinstance(sid, str) or not _SESSION_ID.fullmatch(sid):
        out.append("sid")
    return out


# Reasons that are not about the token as a JOSE object (our revocation lists): no library
# has an opinion on them, so the cross-check does not apply.
REVOCATION_REASONS = frozenset({"revoked", "session-revoked", "user-cutoff"})


def reference_accepts(verifier: AccessTokenVerifier, token: object) -> bool | None:
    """The reference verdict for ``token`` under ``verifier``'s configuration and clock:
    joserfc (clock injected) and, when the verifier's clock is the real time and its skew the
    default, PyJWT too — each AND our policy rules. ``None`` when the two libraries disagree."""
    if not isinstance(token, str):
        return False
    now = verifier.clock.now()
    violations = policy_violations(token, typ=verifier.typ, max_lifetime=int(verifier.max_lifetime))

    def jose_at(moment: float) -> bool:
        return joserfc_accepts(
            token,
            verifier.keyset,
            now=int(moment),
            issuer=verifier.issuer,
            audience=verifier.audience,
            leeway=int(verifier.skew),
        )

    jose = jose_at(now)
    verdicts = {jose}
    wall = time.time()
    # PyJWT reads the wall clock, later than the verifier read its own: it is asked only where
    # the verdict is the same all through the seconds around both readings (a token at a time
    # edge would otherwise get a verdict of each side of it).
    near = abs(now - wall) < 5 and all(jose_at(t) == jose for t in (wall - 1, wall + 2))
    if near and verifier.skew == SKEW:
        verdicts.add(
            pyjwt_accepts(
                token, verifier.keyset, issuer=verifier.issuer, audience=verifier.audience
            )
        )
    if len(verdicts) != 1:
        return None
    return verdicts.pop() and not violations


class CrossChecked(AccessTokenVerifier):
    """A verifier whose every verdict (cached or not) is compared with the reference."""

    checked = 0

    def verify(self, token: object) -> AccessClaims:
        try:
            claims = super().verify(token)
        except InvalidToken as exc:
            if exc.reason not in REVOCATION_REASONS:
                assert reference_accepts(self, token) is False, (exc.reason, token)  # noqa: PT017
                CrossChecked.checked += 1
            raise
        assert reference_accepts(self, token) is True, token
        CrossChecked.checked += 1
        return claims


def cross_checked(verifier: AccessTokenVerifier) -> CrossChecked:
    """An equivalent verifier (same key set, settings, revocations and clock), cross-checked."""
    return CrossChecked(
        verifier.keyset,
        issuer=verifier.issuer,
        audience=verifier.audience,
        typ=verifier.typ,
        skew=verifier.skew,
        max_lifetime=verifier.max_lifetime,
        max_size=verifier.max_size,
        revocations=verifier.revocations,
        cache_size=verifier.cache_size,
        clock=verifier.clock,
    )
