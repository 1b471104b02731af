"""The cookie builder emits only compliant cookies and refuses the rest (checklist item 9)."""

from __future__ import annotations

import logging

import pytest

from sessionward import ConfigError, InvalidArgument
from sessionward.core import token as tokens
from sessionward.web import cookies
from sessionward.web.cookies import MAX_COOKIE_BYTES, CookiePolicy


def attrs(header: str) -> tuple[str, dict[str, str]]:
    first, *rest = header.split("; ")
    return first, {k.lower(): v for k, _, v in (p.partition("=") for p in rest)}


def test_default_cookie_is_host_prefixed_secure_httponly_lax_and_session_only() -> None:
    token, _ = tokens.mint()
    pair, flags = attrs(CookiePolicy().header(token))
    assert pair == f"__Host-id={token}"
    assert flags == {"path": "/", "secure": "", "httponly": "", "samesite": "Lax"}


def test_strict_same_site_and_partitioned() -> None:
    _, flags = attrs(CookiePolicy(same_site="Strict", partitioned=True).header("v"))
    assert flags["samesite"] == "Strict"
    assert "partitioned" in flags
    assert "secure" in flags


@pytest.mark.parametrize(
    "kwargs",
    [
        {"same_site": "None"},
        {"same_site": "lax"},
        {"name": "__Host-id"},
        {"name": "__secure-id"},
        {"name": "a b"},
        {"name": ""},
        {"name": "x" * 65},
        {"remember_max_age": 0},
        {"remember_max_age": True},
        {"remember_max_age": 1.5},
        {"partitioned": True, "insecure_http_localhost": True},
    ],
)
def test_unsafe_or_malformed_configuration_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        CookiePolicy(**kwargs)  # type: ignore[arg-type]


def test_size_limit_counts_name_and_value() -> None:
    policy = CookiePolicy()
    room = MAX_COOKIE_BYTES - len("__Host-id")
    assert policy.header("a" * room).startswith("__Host-id=aaa")
    with pytest.raises(InvalidArgument):
        policy.header("a" * (room + 1))


@pytest.mark.parametrize("value", ["a;b", "a b", 'a"b', "a,b", "a\\b", "é", "a\r\nSet-Cookie: x"])
def test_values_that_would_break_the_header_are_refused(value: str) -> None:
    with pytest.raises(InvalidArgument):
        CookiePolicy().header(value)


def test_remember_me_needs_opt_in_and_is_capped() -> None:
    with pytest.raises(ConfigError):
        CookiePolicy().header("v", max_age=60)
    policy = CookiePolicy(remember_max_age=3600)
    assert attrs(policy.header("v", max_age=60))[1]["max-age"] == "60"
    assert attrs(policy.header("v", max_age=10**9))[1]["max-age"] == "3600"
    with pytest.raises(InvalidArgument):
        policy.header("v", max_age=0)


def test_expire_deletes_with_the_same_name_and_flags() -> None:
    pair, flags = attrs(CookiePolicy(same_site="Strict").expire())
    assert pair == "__Host-id="
    assert flags["max-age"] == "0"
    assert flags["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert {"secure", "httponly"} <= flags.keys()
    assert flags["path"] == "/"


def test_read_finds_only_our_cookie() -> None:
    policy = CookiePolicy()
    assert policy.read("a=1; __Host-id=tok; id=evil") == "tok"
    assert policy.read("id=evil") is None
    assert policy.read("__Host-id=") is None
    assert policy.read(None) is None
    assert policy.read("__Host-id=first; __Host-id=second") == "first"


def test_insecure_dev_mode_drops_prefix_and_secure_and_warns_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cookies, "_warned_insecure", False)
    with caplog.at_level(logging.WARNING, logger="sessionward.web"):
        policy = CookiePolicy(insecure_http_localhost=True)
        CookiePolicy(insecure_http_localhost=True)
    warnings = [r for r in caplog.records if "INSECURE" in r.getMessage()]
    assert len(warnings) == 1
    pair, flags = attrs(policy.header("v"))
    assert pair == "id=v"
    assert "secure" not in flags
    assert {"httponly", "samesite", "path"} <= flags.keys()
    assert policy.read("id=v") == "v"
