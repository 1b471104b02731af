"""Fetch Metadata / Origin / Referer provenance and the session-bound form token."""

from __future__ import annotations

import base64
import secrets

import pytest

from sessionward import ConfigError
from sessionward.core import token as tokens
from sessionward.web import CsrfPolicy

KEY = secrets.token_bytes(32)
ORIGIN = "https://shop.example"


def policy(**kwargs: object) -> CsrfPolicy:
    return CsrfPolicy([ORIGIN, "http://127.0.0.1:8000"], keys=[KEY], **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE", "get"])
def test_safe_methods_are_never_refused(method: str) -> None:
    assert policy().refusal(method, {"sec-fetch-site": "cross-site"}) is None


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({"sec-fetch-site": "same-origin"}, False),
        ({"sec-fetch-site": "none"}, False),
        ({"sec-fetch-site": "same-site"}, True),
        ({"sec-fetch-site": "cross-site"}, True),
        ({"sec-fetch-site": "cross-site", "origin": ORIGIN}, True),  # metadata wins
        ({"sec-fetch-site": "bogus"}, True),
        ({"origin": ORIGIN}, False),
        ({"origin": "https://SHOP.example:443"}, False),
        ({"origin": "https://evil.example"}, True),
        ({"origin": "http://shop.example"}, True),
        ({"origin": "null"}, True),
        ({"origin": "http://127.0.0.1:8000"}, False),
        ({"origin": "http://127.0.0.1:8001"}, True),
        ({"referer": ORIGIN + "/cart?x=1"}, False),
        ({"referer": "https://shop.example.evil.example/"}, True),
        ({"referer": "not a url"}, True),
        ({}, True),
    ],
)
def test_unsafe_method_provenance(headers: dict[str, str], refused: bool) -> None:
    assert (policy().refusal("POST", headers) is not None) is refused


def test_same_site_is_opt_in() -> None:
    assert policy(allow_same_site=True).refusal("DELETE", {"sec-fetch-site": "same-site"}) is None


def test_form_token_is_bound_to_session_and_key() -> None:
    sid, other = tokens.new_session_id(), tokens.new_session_id()
    token = policy().token_for(sid)
    assert len(token) == 43
    assert policy().token_valid(sid, token)
    assert not policy().token_valid(other, token)
    assert not policy().token_valid(None, token)
    assert not policy().token_valid(sid, token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert not policy().token_valid(sid, None)
    assert not policy().token_valid(sid, "!" * 43)
    foreign = CsrfPolicy([ORIGIN], keys=[secrets.token_bytes(32)])
    assert not foreign.token_valid(sid, token)


def test_form_token_has_one_spelling() -> None:
    # 43 base64url characters carry 258 bits for 256: the last character's two low bits are
    # unused, so four characters decode to the same bytes. Only the issued one is valid (a
    # check that decoded first accepted the other three; the test above then failed 1 run in 16).
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for _ in range(64):
        sid = tokens.new_session_id()
        token = policy().token_for(sid)
        last = alphabet.index(token[-1])
        assert last & 3 == 0  # canonical: unused bits zero
        for spare in (1, 2, 3):
            other = token[:-1] + alphabet[last | spare]
            assert base64.urlsafe_b64decode(other + "=") == base64.urlsafe_b64decode(token + "=")
            assert not policy().token_valid(sid, other)
        assert policy().token_valid(sid, token)
    assert not policy().token_valid(sid, token[:-1] + "é")


def test_key_rotation_newest_signs_all_verify() -> None:
    sid = tokens.new_session_id()
    new_key = secrets.token_bytes(32)
    old = policy().token_for(sid)
    rotated = CsrfPolicy([ORIGIN], keys=[new_key, KEY])
    assert rotated.token_valid(sid, old)
    assert rotated.token_for(sid) != old
    assert rotated.token_valid(sid, rotated.token_for(sid))


@pytest.mark.parametrize(
    ("origins", "keys"),
    [
        ([], [KEY]),
        ("https://a.example", [KEY]),
        (["https://a.example/path"], [KEY]),
        (["ftp://a.example"], [KEY]),
        (["https://a.example"], []),
        (["https://a.example"], [b"short"]),
        (["https://a.example"], KEY),
    ],
)
def test_bad_configuration_is_refused(origins: object, keys: object) -> None:
    with pytest.raises(ConfigError):
        CsrfPolicy(origins, keys=keys)  # type: ignore[arg-type]


def test_repr_hides_keys() -> None:
    assert KEY.hex() not in repr(policy())
    assert "hidden" in repr(policy())
