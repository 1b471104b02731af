"""DPoP proofs (RFC 9449 §4.3): every stateless check, ``htu`` normalisation, nonces, and
proofs made by an independent implementation (joserfc)."""

from __future__ import annotations

import json
import secrets
import time

import pytest
from joserfc import jwk as jose_jwk
from joserfc import jws as jose_jws
from joserfc.jws import JWSRegistry
from proofs import Device

from sessionward.core.dpop import DpopPolicy, access_token_hash, bound_jkt, normalize_htu
from sessionward.core.jwk import client_key
from sessionward.errors import ConfigError, InvalidProof

URL = "https://api.example/orders"
NOW = 1_700_000_000.0
TOKEN = "an-access-token"  # noqa: S105 - a test value


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://API.Example:443/orders?x=1#f", "https://api.example/orders"),
        ("HTTPS://api.example", "https://api.example/"),
        ("http://api.example:80/a/./b/../c", "http://api.example/a/c"),
        ("https://api.example:8443/%7euser/%2f", "https://api.example:8443/~user/%2F"),
        ("https://[::1]:443/x", "https://[::1]/x"),
        ("https://api.example/a/..", "https://api.example/"),
        ("ftp://api.example/", None),
        ("https://user@api.example/", None),
        ("/relative", None),
        ("https://api.example:99999/", None),
    ],
)
def test_htu_normalisation(url: str, normal: str | None) -> None:
    assert normalize_htu(url) == normal


def _check(policy: DpopPolicy, proof: str, **options: object) -> str:
    args: dict[str, object] = {"method": "GET", "url": URL, "now": NOW, **options}
    return policy.verify(proof, **args).jkt  # type: ignore[arg-type]


def _refused(
    reason: str, proof: str | None, policy: DpopPolicy | None = None, **kw: object
) -> None:
    with pytest.raises(InvalidProof) as caught:
        _check(policy or DpopPolicy(), proof, **kw)  # type: ignore[arg-type]
    assert caught.value.reason == reason


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_a_good_proof_names_its_key(alg: str) -> None:
    device = Device(alg)
    proof = device.dpop("GET", "https://API.example:443/orders?page=2", iat=NOW, token=TOKEN)
    result = DpopPolicy().verify(proof, method="get", url=URL, now=NOW + 3, access_token=TOKEN)
    assert result.jkt == device.thumbprint
    assert result.replay_until == NOW + 60 + 5


def test_every_stateless_check_refuses() -> None:
    device, other = Device(), Device()
    _refused("dpop-missing", None)
    _refused("malformed", "a.b")
    _refused("typ", device.dpop("GET", URL, iat=NOW, typ="jwt"))
    _refused("alg", device.dpop("GET", URL, iat=NOW), policy=DpopPolicy(algorithms=("RS256",)))
    _refused("htm", device.dpop("POST", URL, iat=NOW))
    _refused("htu", device.dpop("GET", "https://api.example/other", iat=NOW))
    _refused("htu", device.dpop("GET", "https://evil.example/orders", iat=NOW))
    _refused("iat", device.dpop("GET", URL, iat=NOW - 61))
    _refused("iat", device.dpop("GET", URL, iat=NOW + 6))
    _refused("ath", device.dpop("GET", URL, iat=NOW), access_token=TOKEN)
    _refused("ath", device.dpop("GET", URL, iat=NOW, token=TOKEN + "x"), access_token=TOKEN)
    _refused("jkt", device.dpop("GET", URL, iat=NOW), jkt=other.thumbprint)
    _refused("jti", device.dpop("GET", URL, iat=NOW, jti="short"))
    forged = device.dpop("GET", URL, iat=NOW)
    head, body, _ = forged.split(".")
    _refused("signature", f"{head}.{body}.{other.dpop('GET', URL, iat=NOW).split('.')[2]}")
    with_private = device.sign(
        {"typ": "dpop+jwt", "alg": "ES256", "jwk": {**device.jwk, "d": "AAAA"}},
        {"jti": secrets.token_urlsafe(16), "htm": "GET", "htu": URL, "iat": int(NOW)},
    )
    _refused("jwk-private", with_private)


def test_nonces_are_required_and_expire() -> None:
    policy = DpopPolicy(nonce_key=secrets.token_bytes(32), nonce_lifetime=60)
    device = Device()
    nonce = policy.nonce(NOW)
    assert nonce is not None
    assert _check(policy, device.dpop("GET", URL, iat=NOW, nonce=nonce)) == device.thumbprint
    _refused("use_dpop_nonce", device.dpop("GET", URL, iat=NOW), policy)
    _refused("use_dpop_nonce", device.dpop("GET", URL, iat=NOW, nonce="x" * 32), policy)
    later = NOW + 125  # two windows on: stale
    _refused("use_dpop_nonce", device.dpop("GET", URL, iat=later, nonce=nonce), policy, now=later)
    other = DpopPolicy(nonce_key=secrets.token_bytes(32))
    _refused("use_dpop_nonce", device.dpop("GET", URL, iat=NOW, nonce=other.nonce(NOW)), policy)
    assert DpopPolicy().nonce(NOW) is None


def test_policy_is_checked() -> None:
    with pytest.raises(ConfigError):
        DpopPolicy(algorithms=("none",))
    with pytest.raises(ConfigError):
        DpopPolicy(nonce_key=b"short")
    with pytest.raises(ConfigError):
        DpopPolicy(max_age=0)


def test_ath_and_cnf_helpers() -> None:
    # RFC 9449 §4.2
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"  # noqa: S105 - the RFC's example
    assert access_token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    assert bound_jkt({"cnf": {"jkt": "t"}}) == "t"
    assert bound_jkt({"cnf": "t"}) is None
    assert bound_jkt({}) is None


@pytest.mark.parametrize(("alg", "kind"), [("ES256", "EC"), ("RS256", "RSA")])
def test_joserfc_made_proofs_are_accepted(alg: str, kind: str) -> None:
    """An independent RFC 9449 implementation: joserfc signs, we verify and agree on the
    thumbprint."""
    key = (
        jose_jwk.ECKey.generate_key("P-256") if kind == "EC" else jose_jwk.RSAKey.generate_key(2048)
    )
    public = key.as_dict(private=False)
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": public}
    now = time.time()
    claims = {
        "jti": secrets.token_urlsafe(16),
        "htm": "POST",
        "htu": "https://api.example/token",
        "iat": int(now),
        "ath": access_token_hash(TOKEN),
    }
    registry = JWSRegistry(algorithms=[alg])
    registry.max_header_length = 4096  # an RSA jwk header is longer than the default cap
    proof = jose_jws.serialize_compact(header, json.dumps(claims), key, registry=registry)
    result = DpopPolicy().verify(
        proof, method="POST", url="https://api.example/token", now=now, access_token=TOKEN
    )
    assert result.jkt == key.thumbprint()
    assert client_key(public, alg).thumbprint == key.thumbprint()
