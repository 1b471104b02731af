"""Interop both ways: our tokens verify under PyJWT and joserfc; theirs, signed with our keys
and our claims, verify under ours; and a JWKS of ours is usable by both libraries."""

# ruff: noqa: F811 - the fixtures imported from jwt_fixtures are redefined as parameters

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet as JoseKeySet
from jwt_fixtures import alg, clock, issuer, keyset, make_verifier, verifier  # noqa: F401
from jwt_forge import AUD, ISS, claims
from jwt_reference import joserfc_key, pyjwt_key, quiet_joserfc

from sessionward.errors import InvalidToken
from sessionward.jwt import AccessTokenIssuer, AccessTokenVerifier, Key, KeySet, generate_key
from sessionward.testing import FakeClock


def _pyjwt_private(key: Key) -> Any:
    if key.symmetric:
        return base64.urlsafe_b64decode(key.private_jwk()["k"] + "==")
    return serialization.load_pem_private_key(key.private_pem(), password=None)


def test_ours_verify_under_pyjwt_and_joserfc(
    issuer: AccessTokenIssuer, keyset: KeySet, clock: FakeClock
) -> None:
    issued = issuer.issue(
        subject="alice", session_id=claims(0)["sid"], scopes=["read"], auth_level=2
    )
    key = keyset.signing_key
    decoded = pyjwt.decode(
        issued.token,
        pyjwt_key(key),
        algorithms=[key.alg],
        audience=AUD,
        issuer=ISS,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
    )
    assert decoded == dict(issued.claims.claims)
    assert pyjwt.get_unverified_header(issued.token) == {
        "alg": key.alg,
        "kid": key.kid,
        "typ": "at+jwt",
    }
    with quiet_joserfc():
        token = jose_jwt.decode(issued.token, joserfc_key(key), algorithms=[key.alg])
    assert token.claims == dict(issued.claims.claims)
    assert token.header["typ"] == "at+jwt"


def test_theirs_signed_with_our_keys_verify_under_ours(
    keyset: KeySet, verifier: AccessTokenVerifier, clock: FakeClock
) -> None:
    key = keyset.signing_key
    body = claims(int(clock.now()))
    head = {"kid": key.kid, "typ": "at+jwt"}
    from_pyjwt = pyjwt.encode(body, _pyjwt_private(key), algorithm=key.alg, headers=head)
    with quiet_joserfc():
        from_joserfc = jose_jwt.encode(
            {"alg": key.alg, **head}, body, joserfc_key(key, private=True), algorithms=[key.alg]
        )
    # joserfc puts "typ" first: a header spelling other than ours, parsed strictly.
    assert from_joserfc.split(".")[0] != from_pyjwt.split(".")[0]
    for jws in (from_pyjwt, from_joserfc):
        got = verifier.verify(jws)
        assert (got.sub, got.sid, got.jti, got.exp) == (
            body["sub"],
            body["sid"],
            body["jti"],
            body["exp"],
        )


def test_theirs_with_our_keys_but_their_default_typ_is_refused(
    keyset: KeySet, verifier: AccessTokenVerifier, clock: FakeClock
) -> None:
    """Libraries default to ``typ: JWT``; an access token must say ``at+jwt`` (explicit
    typing, RFC 8725 §3.11), so a generic JWT from the same key is not an access token."""
    key = keyset.signing_key
    jws = pyjwt.encode(
        claims(int(clock.now())), _pyjwt_private(key), algorithm=key.alg, headers={"kid": key.kid}
    )
    with pytest.raises(InvalidToken) as info:
        verifier.verify(jws)
    assert info.value.reason == "typ"


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_our_jwks_is_usable_by_both_libraries(alg: str) -> None:
    clock = FakeClock(time.time())
    keyset = KeySet.generate(alg, now=clock.now())
    keyset.add_next(generate_key(alg), now=clock.now())
    issued = AccessTokenIssuer(keyset, issuer=ISS, audience=AUD, clock=clock).issue(
        subject="alice", session_id=claims(0)["sid"]
    )
    document = json.loads(json.dumps(keyset.jwks()))
    jwk_set = pyjwt.PyJWKSet.from_dict(document)
    signing = next(k for k in jwk_set.keys if k.key_id == keyset.signing_key.kid)
    assert pyjwt.decode(issued.token, signing, algorithms=[alg], audience=AUD)["sub"] == "alice"
    with quiet_joserfc():
        decoded = jose_jwt.decode(
            issued.token, JoseKeySet.import_key_set(document), algorithms=[alg]
        )
    assert decoded.claims["sub"] == "alice"
    # And a verifier built from that JWKS alone (another service) accepts it too.
    mirror = KeySet.from_jwks(document)
    other = AccessTokenVerifier(mirror, issuer=ISS, audience=AUD, clock=clock)
    assert other.verify(issued.token).sub == "alice"
