"""DBSC on the wire: header values quoted and bare, registration and refresh JWT checks, the
session config."""

from __future__ import annotations

import pytest
from proofs import Device, b64

from sessionward.core import dbsc
from sessionward.core.jwk import client_key
from sessionward.errors import InvalidArgument, InvalidProof


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("abc.def-_ghi", "abc.def-_ghi"),
        ('"abc.def"', "abc.def"),
        ('  "abc"  ', "abc"),
        ('"a\\"b\\\\c"', 'a"b\\c'),
        ('"sid-1";foo=1', "sid-1"),
        ("sid-1;foo", "sid-1"),
        ("-Z3kq9", "-Z3kq9"),
        ("", None),
        ('""', None),
        (None, None),
        ('"unterminated', None),
        ("a b", None),
        ('"x"y', None),
    ],
)
def test_item_text_takes_quoted_and_bare_values(raw: str | None, text: str | None) -> None:
    assert dbsc.item_text(raw) == text


def test_registration_header_offers_algorithms_path_challenge_authorization() -> None:
    value = dbsc.registration_header("/r", "c1", authorization='a"b', algorithms=("ES256",))
    assert value == '(ES256);path="/r";challenge="c1";authorization="a\\"b"'
    with pytest.raises(InvalidArgument):
        dbsc.registration_header("/r", "c1", algorithms=("HS256",))
    with pytest.raises(InvalidArgument):
        dbsc.registration_header("/r\n", "c1")


def test_challenge_header_names_the_session() -> None:
    assert dbsc.challenge_header("c", "sid") == '"c";id="sid"'


def test_parse_skipped_reads_reasons_and_session_ids() -> None:
    value = 'quota_exceeded;session_identifier="s1", server_error;session_identifier=s2, bad!'
    assert dbsc.parse_skipped(value) == [
        ("quota_exceeded", "s1"),
        ("server_error", "s2"),
        ("bad!", None),
    ]
    assert dbsc.parse_skipped(None) == []
    assert dbsc.parse_skipped('unreachable;session_identifier="a,b"') == [("unreachable", "a,b")]


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
@pytest.mark.parametrize("quoted", [False, True])
def test_registration_verifies_with_the_carried_key(alg: str, quoted: bool) -> None:
    device = Device(alg)
    jwt = device.registration("chal", "auth-1")
    value = f'"{jwt}"' if quoted else jwt
    registration = dbsc.verify_registration(value, authorization="auth-1")
    assert registration.jti == "chal"
    assert registration.key.alg == alg
    assert registration.key.thumbprint == device.thumbprint


def _refused(reason: str, jwt: str, **options: object) -> None:
    with pytest.raises(InvalidProof) as caught:
        dbsc.verify_registration(jwt, **options)  # type: ignore[arg-type]
    assert caught.value.reason == reason


def test_registration_refuses_bad_typ_alg_key_signature_and_authorization() -> None:
    device, other = Device(), Device()
    _refused("typ", device.registration("c", typ="jwt"))
    _refused("typ", device.registration("c", typ="dpop+jwt"))
    _refused("alg", device.registration("c", alg="none"))
    _refused("alg", device.registration("c"), algorithms=("RS256",))
    _refused("alg", device.registration("c", alg="HS256"))
    _refused("jwk-mismatch", device.registration("c", alg="RS256"))
    _refused("signature", device.registration("c", jwk=other.jwk))
    _refused("jwk-private", device.registration("c", jwk={**device.jwk, "d": b64(b"x" * 32)}))
    _refused("authorization", device.registration("c", "wrong"), authorization="right")
    _refused("authorization", device.registration("c"), authorization="right")
    _refused("jti-missing", device.sign({"alg": "ES256", "jwk": device.jwk, "typ": "dbsc+jwt"}, {}))
    _refused("malformed", "not-a-jwt")
    _refused("malformed", device.registration("c") + "x")


def test_registration_audience_when_the_browser_adds_one() -> None:
    device = Device()
    url = "https://localhost:8443/dbsc/register"
    assert dbsc.verify_registration(device.registration("c", aud=url), audience=url).jti == "c"
    _refused("aud", device.registration("c", aud="https://evil.example/r"), audience=url)


def test_refresh_verifies_with_the_stored_key_only() -> None:
    device, thief = Device(), Device()
    key = client_key(device.jwk, "ES256")
    assert dbsc.verify_refresh(device.refresh("c2"), key) == "c2"
    assert dbsc.verify_refresh(f'"{device.refresh("c2")}"', key) == "c2"
    for jwt, reason in [
        (thief.refresh("c2"), "signature"),
        # a jwk in the header naming the thief's key changes nothing: the stored key verifies
        (
            thief.sign({"alg": "ES256", "typ": "dbsc+jwt", "jwk": thief.jwk}, {"jti": "c2"}),
            "signature",
        ),
        (device.refresh("c2", typ="jwt"), "typ"),
        (device.refresh("c2", alg="RS256"), "alg"),
    ]:
        with pytest.raises(InvalidProof) as caught:
            dbsc.verify_refresh(jwt, key)
        assert caught.value.reason == reason
    with pytest.raises(InvalidProof):
        dbsc.verify_refresh(None, key)


def test_session_config_has_what_chromium_needs() -> None:
    config = dbsc.session_config(
        "sid-1",
        refresh_url="/dbsc/refresh",
        cookie_name="__Host-id-bound",
        cookie_attributes="Path=/; Secure; HttpOnly; SameSite=Lax",
        excludes=("/public",),
    )
    assert config["session_identifier"] == "sid-1"
    assert config["continue"] is True
    assert config["scope"]["include_site"] is False
    assert config["scope"]["scope_specification"] == [
        {"type": "exclude", "domain": "*", "path": "/public"}
    ]
    assert config["credentials"] == [
        {
            "type": "cookie",
            "name": "__Host-id-bound",
            "attributes": "Path=/; Secure; HttpOnly; SameSite=Lax",
        }
    ]
    assert dbsc.end_config() == {"continue": False}


def test_refresh_values_bare_quoted_or_with_parameters() -> None:
    device = Device()
    key = client_key(device.jwk, "ES256")
    jwt = device.refresh("c3")
    for value in (jwt, f"  {jwt} ", f'"{jwt}"', f"{jwt};x=1", f'"{jwt}";x="a;b"'):
        assert dbsc.verify_refresh(value, key) == "c3"
    for bad in (f"{jwt} x", f"{jwt}!", f'"{jwt}', f"{jwt}\n.", "", "  ", f"x{jwt}", f'{jwt}"'):
        with pytest.raises(InvalidProof) as caught:
            dbsc.verify_refresh(bad, key)
        assert caught.value.reason in ("malformed", "signature")
