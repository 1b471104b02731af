"""Keys: one algorithm each, loading and export (PEM, JWK), HS256 secret rules, thumbprints."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey, OctKey, OKPKey

from sessionward.core.jose import b64decode, b64encode
from sessionward.core.jwk import _der_signature
from sessionward.errors import ConfigError
from sessionward.jwt import EcKey, HmacKey, OkpKey, generate_key, key_from_jwk, load_key
from sessionward.jwt.keys import P256_ORDER

JOSERFC: dict[str, Any] = {"EC": ECKey, "OKP": OKPKey, "oct": OctKey}


@pytest.mark.parametrize(("alg", "cls"), [("ES256", EcKey), ("EdDSA", OkpKey), ("HS256", HmacKey)])
def test_generate_binds_one_algorithm(alg: str, cls: type) -> None:
    key = generate_key(alg)
    assert isinstance(key, cls)
    assert key.alg == alg
    assert key.can_sign
    signature = key.sign(b"data")
    assert len(signature) == key.signature_size
    assert key.verify(b"data", signature)
    assert not key.verify(b"Data", signature)
    assert not key.verify(b"data", signature[:-1])
    assert not key.verify(b"data", b"")


def test_unknown_algorithm_is_refused() -> None:
    for alg in ("none", "RS256", "es256", "HS512", ""):
        with pytest.raises(ConfigError):
            generate_key(alg)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_pem_round_trip_and_public_only(alg: str) -> None:
    key = generate_key(alg)
    again = load_key(key.private_pem())
    assert again.kid == key.kid  # the default kid is the RFC 7638 thumbprint
    assert again.verify(b"m", key.sign(b"m"))
    public = load_key(key.public_pem())
    assert not public.can_sign
    assert public.verify(b"m", key.sign(b"m"))
    with pytest.raises(ConfigError):
        public.sign(b"m")
    with pytest.raises(ConfigError):
        public.private_jwk()
    assert "d" not in public.public_jwk()


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "HS256"])
def test_jwk_round_trip_and_joserfc_agrees_on_thumbprint(alg: str) -> None:
    key = generate_key(alg)
    jwk = key.private_jwk()
    again = load_key(json.dumps(jwk))
    assert again.kid == key.kid
    assert again.alg == alg
    assert again.verify(b"m", key.sign(b"m"))
    theirs = JOSERFC[key.kty].import_key(jwk)
    if not key.symmetric:
        assert theirs.thumbprint() == key.kid
        assert key.public_jwk()["use"] == "sig"
        assert key.public_jwk()["alg"] == alg


def test_jwk_alg_must_match_the_key() -> None:
    jwk = generate_key("ES256").public_jwk()
    for alg in ("HS256", "none", "ES384", "EdDSA"):
        with pytest.raises(ConfigError):
            key_from_jwk({**jwk, "alg": alg})
    with pytest.raises(ConfigError):
        load_key(generate_key("ES256").private_pem(), alg="HS256")
    with pytest.raises(ConfigError):
        key_from_jwk({**jwk, "use": "enc"})


def test_jwk_with_mismatched_private_part_or_bad_point_is_refused() -> None:
    a, b = generate_key("ES256").private_jwk(), generate_key("ES256").private_jwk()
    with pytest.raises(ConfigError):
        key_from_jwk({**a, "d": b["d"]})
    with pytest.raises(ConfigError):
        key_from_jwk({**a, "x": b64encode(bytes(32)), "d": None})
    c, d = generate_key("EdDSA").private_jwk(), generate_key("EdDSA").private_jwk()
    with pytest.raises(ConfigError):
        key_from_jwk({**c, "d": d["d"]})
    with pytest.raises(ConfigError):
        key_from_jwk({"kty": "RSA", "n": "AQAB", "e": "AQAB"})
    with pytest.raises(ConfigError):
        key_from_jwk({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"})
    with pytest.raises(ConfigError):
        key_from_jwk({**a, "x": a["x"] + "="})  # padded base64url is not a JWK spelling


def test_other_curves_are_refused() -> None:
    with pytest.raises(ConfigError):
        EcKey(ec.generate_private_key(ec.SECP384R1()))
    from cryptography.hazmat.primitives import serialization

    pem = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ConfigError):
        load_key(pem)
    with pytest.raises(ConfigError):
        load_key(b"not a key")
    with pytest.raises(ConfigError):
        load_key("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")


def test_hmac_secret_must_be_256_random_bits() -> None:
    with pytest.raises(ConfigError):
        HmacKey(os.urandom(31))
    for weak in (
        b"correct horse battery staple and more!",  # a password, long enough
        bytes(32),  # all zeros
        b"\x01\x02" * 16,  # two distinct byte values
        generate_key("ES256").public_pem(),  # a public key as an HMAC secret
    ):
        with pytest.raises(ConfigError):
            HmacKey(weak)
    with pytest.raises(ConfigError):
        HmacKey("a string secret")  # type: ignore[arg-type]
    assert HmacKey(os.urandom(32)).alg == "HS256"
    assert HmacKey(os.urandom(64)).alg == "HS256"


def test_hmac_kid_is_deterministic_and_reveals_nothing_obvious() -> None:
    secret = os.urandom(32)
    assert HmacKey(secret).kid == HmacKey(secret).kid
    assert HmacKey(secret).kid != HmacKey(os.urandom(32)).kid
    assert b64encode(secret)[:16] not in HmacKey(secret).kid
    with pytest.raises(ConfigError):
        HmacKey(secret).public_jwk()


def test_repr_never_shows_private_material() -> None:
    for alg in ("ES256", "EdDSA", "HS256"):
        key = generate_key(alg)
        text = repr(key)
        jwk = key.private_jwk()
        secret = jwk.get("d") or jwk["k"]
        assert secret not in text
        assert key.kid in text
        assert alg in text


def test_kid_syntax_is_checked() -> None:
    for bad in ("", "a b", 'quo"te', "x" * 129, "tab\t", "ü"):
        with pytest.raises(ConfigError):
            generate_key("ES256", kid=bad)
    assert generate_key("ES256", kid="2026-05.key:1").kid == "2026-05.key:1"


def test_library_key_objects_are_accepted() -> None:
    assert EcKey(ec.generate_private_key(ec.SECP256R1())).can_sign
    assert not OkpKey(ed25519.Ed25519PrivateKey.generate().public_key()).can_sign
    with pytest.raises(ConfigError):
        OkpKey(ec.generate_private_key(ec.SECP256R1()))  # type: ignore[arg-type]


def test_strict_base64url() -> None:
    assert b64decode("AQ") == b"\x01"
    for bad in ("AR", "A", "AQ==", "A+", "A/", "AQ\n", "A Q"):
        with pytest.raises(ValueError, match="base64url"):
            b64decode(bad)


@settings(max_examples=500, deadline=None)
@given(
    st.integers(min_value=1, max_value=P256_ORDER - 1),
    st.integers(min_value=1, max_value=P256_ORDER - 1),
    st.integers(min_value=0, max_value=255),
)
def test_der_signature_matches_the_library_encoding(r: int, s: int, shift: int) -> None:
    r = max(1, r >> shift)  # also short integers (leading zero bytes)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert _der_signature(raw) == encode_dss_signature(r, s)
    swapped = s.to_bytes(32, "big") + r.to_bytes(32, "big")
    assert _der_signature(swapped) == encode_dss_signature(s, r)
