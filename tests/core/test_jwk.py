"""Client keys from JWKs: what is accepted, what is refused, thumbprints (RFC 7638)."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from proofs import Device, b64

from sessionward.core.jwk import _cached, client_key, thumbprint
from sessionward.core.jws import header_key, parse_compact
from sessionward.errors import InvalidProof


def test_rfc7638_example_thumbprint() -> None:
    # RFC 7638 §3.1
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
        "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI"
        "4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    members = {"e": "AQAB", "kty": "RSA", "n": n}
    assert thumbprint(members) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_keys_verify_their_own_signatures_only(alg: str) -> None:
    device, other = Device(alg), Device(alg)
    key = client_key(device.jwk, alg)
    assert key.thumbprint == device.thumbprint
    assert key.jwk == device.jwk
    assert key.verify(b"data", device.signature(b"data"))
    assert not key.verify(b"data", other.signature(b"data"))
    assert not key.verify(b"other", device.signature(b"data"))
    assert not key.verify(b"data", b"")
    assert client_key({**device.jwk, "alg": alg, "use": "sig"}, alg) is key  # cached


def test_es256_zero_signature_is_refused_before_the_library() -> None:
    key = client_key(Device().jwk, "ES256")
    assert not key.verify(b"anything", bytes(64))


@pytest.mark.parametrize(
    ("jwk", "alg", "reason"),
    [
        ("not a dict", "ES256", "jwk-malformed"),
        ({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}, "ES256", "jwk-mismatch"),
        ({"kty": "EC", "crv": "P-256", "x": b64(b"\x01" * 32)}, "ES256", "jwk-malformed"),
        (
            {"kty": "EC", "crv": "P-256", "x": b64(b"\x01" * 32), "y": b64(b"\x02" * 32)},
            "ES256",
            "jwk-malformed",  # not on the curve
        ),
        ({"kty": "oct", "k": "AAAA"}, "ES256", "jwk-private"),
        ({"kty": "RSA", "e": "AQAB", "n": "AQAB"}, "ES256", "jwk-mismatch"),
        ({"kty": "OKP", "crv": "Ed25519", "x": "AA"}, "ES256", "jwk-mismatch"),
        ({"kty": "EC", "crv": "P-256"}, "none", "jwk-malformed"),
    ],
)
def test_bad_jwks_are_refused(jwk: object, alg: str, reason: str) -> None:
    with pytest.raises(InvalidProof) as caught:
        client_key(jwk, alg)
    assert caught.value.reason == reason


def test_weak_or_odd_rsa_keys_are_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505
    numbers = weak.public_numbers()
    n = b64(numbers.n.to_bytes(128, "big"))
    with pytest.raises(InvalidProof) as caught:
        client_key({"kty": "RSA", "e": "AQAB", "n": n}, "RS256")
    assert caught.value.reason == "jwk-weak"
    strong = Device("RS256").jwk
    for bad in (
        {**strong, "e": "AAEAAQ"},
        {**strong, "e": "Ag"},
        {**strong, "n": "AA" + strong["n"]},
    ):
        with pytest.raises(InvalidProof):
            client_key(bad, "RS256")


def test_compact_parsing_is_strict() -> None:
    device = Device()
    good = device.refresh("c")
    assert parse_compact(good).claims == {"jti": "c"}
    head, body, sig = good.split(".")
    for bad in [
        f"{head}.{body}",
        f"{head}.{body}.{sig}.x",
        f"{head}=.{body}.{sig}",
        f"{head}.{body}.",
        good + "é",
        device.sign({"alg": "ES256", "typ": "dbsc+jwt", "crit": ["x"]}, {"jti": "c"}),
        "a" * 20000,
        12,
    ]:
        with pytest.raises(InvalidProof):
            parse_compact(bad)


def _header_segment(jwk: dict[str, str]) -> str:
    return b64(json.dumps({"alg": "ES256", "jwk": jwk, "typ": "dpop+jwt"}).encode())


def test_a_changed_key_is_never_served_from_the_caches() -> None:
    device, other = Device(), Device()
    first = client_key(device.jwk, "ES256")
    assert client_key(dict(device.jwk), "ES256") is first  # an equal JWK: the cached key
    # The same members but for one coordinate (another key, or a tampered one): never the
    # cached key, and a point off the curve is refused rather than answered from the cache.
    changed = {**device.jwk, "y": other.jwk["y"]}
    with pytest.raises(InvalidProof):
        client_key(changed, "ES256")
    swapped = client_key(other.jwk, "ES256")
    assert swapped is not first
    assert swapped.thumbprint == other.thumbprint != first.thumbprint
    assert not swapped.verify(b"data", device.signature(b"data"))
    # The key named by a proof header follows the header's exact bytes.
    mine = header_key(_header_segment(device.jwk), "ES256")
    theirs = header_key(_header_segment(other.jwk), "ES256")
    assert mine is first
    assert theirs is swapped
    assert header_key(_header_segment(device.jwk), "ES256") is first


def test_the_key_caches_are_bounded() -> None:
    for cached in (_cached, header_key):
        maxsize = cached.cache_info().maxsize
        assert maxsize is not None
        assert 0 < maxsize <= 1024
    devices = [Device() for _ in range(header_key.cache_info().maxsize + 8)]  # type: ignore[operator]
    for device in devices:
        header_key(_header_segment(device.jwk), "ES256")
    for cached in (_cached, header_key):
        info = cached.cache_info()
        assert info.currsize <= info.maxsize  # type: ignore[operator]
    # The oldest entries were dropped, and asking again builds a working key.
    before = header_key.cache_info().misses
    key = header_key(_header_segment(devices[0].jwk), "ES256")
    assert header_key.cache_info().misses == before + 1
    assert key.verify(b"x", devices[0].signature(b"x"))
