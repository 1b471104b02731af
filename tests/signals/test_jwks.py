"""The issuer's key set: fetched over real HTTP, cached within bounds, refetched for an
unknown ``kid`` at most once per interval, and never from a non-loopback ``http`` URL, a
redirect or an oversized answer."""

from __future__ import annotations

import secrets
import time

import pytest

from sessionward.core.jws import parse_compact
from sessionward.errors import ConfigError
from sessionward.signals._sync.jwks import KeySource
from sessionward.signals.keys import SignalRejected
from sessionward.testing import FakeClock

from .idp import TestIdp


def _token(idp: TestIdp, kid: str | None = None) -> object:
    header = {} if kid is None else {"kid": kid}
    return parse_compact(idp.sign({"iss": idp.issuer}, **header))


def _source(
    idp: TestIdp, clock: FakeClock, path: str = "/jwks.json", **options: float
) -> KeySource:
    return KeySource(idp.issuer, jwks_url=idp.issuer + path, clock=clock, **options)  # type: ignore[arg-type]


def test_random_kids_cannot_make_us_fetch_on_every_request(idp: TestIdp) -> None:
    clock = FakeClock(time.time())
    source = _source(idp, clock, refetch_interval=60)
    before = idp.jwks_hits
    assert source.keys_for(_token(idp))  # type: ignore[arg-type]
    for _ in range(50):
        source.keys_for(_token(idp, kid=secrets.token_hex(8)))  # type: ignore[arg-type]
        clock.advance(0.5)
    assert idp.jwks_hits - before == 1
    clock.advance(60)
    for _ in range(50):
        source.keys_for(_token(idp, kid=secrets.token_hex(8)))  # type: ignore[arg-type]
    assert idp.jwks_hits - before == 2
    source.close()


def test_a_rotated_key_is_fetched_once_the_interval_has_passed(idp: TestIdp) -> None:
    clock = FakeClock(time.time())
    source = _source(idp, clock, refetch_interval=60)
    old = idp.kid
    assert [k.kid for k in source.keys_for(_token(idp))] == [old]  # type: ignore[arg-type]
    idp.rotate()
    try:
        clock.advance(61)
        assert {k.kid for k in source.keys_for(_token(idp))} == {old, idp.kid}  # type: ignore[arg-type]
    finally:
        idp.published.pop()
        idp.kid, idp.private = old, idp.published[0][2]
    source.close()


@pytest.mark.parametrize(
    ("cache_control", "fresh_for"), [("max-age=5", 60), ("max-age=999999999", 86400), ("", 3600)]
)
def test_the_cache_keeps_the_answer_for_its_max_age_within_bounds(
    idp: TestIdp, cache_control: str, fresh_for: float
) -> None:
    clock = FakeClock(time.time())
    source = _source(idp, clock, refetch_interval=1)
    idp.cache_control = cache_control
    try:
        before = idp.jwks_hits
        source.keys_for(_token(idp))  # type: ignore[arg-type]
        clock.advance(fresh_for - 2)
        source.keys_for(_token(idp))  # type: ignore[arg-type]
        assert idp.jwks_hits - before == 1
        clock.advance(4)
        source.keys_for(_token(idp))  # type: ignore[arg-type]
        assert idp.jwks_hits - before == 2
    finally:
        idp.cache_control = "max-age=600"
    source.close()


def test_a_failed_refresh_keeps_the_keys_held(idp: TestIdp) -> None:
    clock = FakeClock(time.time())
    source = _source(idp, clock)
    held = source.keys_for(_token(idp))  # type: ignore[arg-type]
    source._jwks_url = idp.issuer + "/missing.json"  # the provider starts failing
    clock.advance(7200)
    assert source.keys_for(_token(idp)) == held  # type: ignore[arg-type]
    assert source.fetches == 2
    source.close()


@pytest.mark.parametrize("path", ["/big.json", "/moved", "/missing.json"])
def test_oversized_redirected_or_failed_answers_give_no_keys(idp: TestIdp, path: str) -> None:
    source = _source(idp, FakeClock(time.time()), path, max_bytes=64 * 1024)
    try:
        with pytest.raises(SignalRejected) as caught:
            source.keys_for(_token(idp))  # type: ignore[arg-type]
        assert caught.value.code == "temporarily_unavailable"
    finally:
        source.close()


def test_a_slow_answer_times_out(idp: TestIdp) -> None:
    source = _source(idp, FakeClock(time.time()), "/slow.json", timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(SignalRejected):
            source.keys_for(_token(idp))  # type: ignore[arg-type]
    finally:
        source.close()
    assert time.monotonic() - started < 1.5


def test_the_size_cap_is_what_refused_the_big_answer(idp: TestIdp) -> None:
    source = _source(idp, FakeClock(time.time()), "/big.json", max_bytes=1024 * 1024)
    try:
        assert [k.kid for k in source.keys_for(_token(idp))] == [idp.kid]  # type: ignore[arg-type]
    finally:
        source.close()


def test_the_configuration_document_leads_to_the_keys(idp: TestIdp) -> None:
    url = idp.issuer + "/.well-known/openid-configuration"
    source = KeySource(idp.issuer, configuration_url=url, clock=FakeClock(time.time()))
    assert [k.kid for k in source.keys_for(_token(idp))] == [idp.kid]  # type: ignore[arg-type]
    source.close()
    other = KeySource("https://other.example", configuration_url=url)
    with pytest.raises(SignalRejected):
        other.keys_for(_token(idp))  # type: ignore[arg-type]
    other.close()


@pytest.mark.parametrize(
    "url",
    ["http://idp.example/jwks.json", "ftp://idp.example/jwks", "https://u:p@idp.example/j", "/x"],
)
def test_only_https_or_loopback_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        KeySource("https://idp.example", jwks_url=url)


def test_loopback_http_and_https_are_accepted() -> None:
    for url in ("https://idp.example/jwks.json", "http://127.0.0.1:9/j", "http://[::1]:9/j"):
        KeySource("https://idp.example", jwks_url=url).close()
