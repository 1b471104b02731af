"""Request context capture honours X-Forwarded-For only from configured proxies."""

from __future__ import annotations

import pytest

from sessionward import ConfigError
from sessionward.web import ContextCapture
from sessionward.web._http import asgi_headers, bearer_token, environ_headers


def test_without_trusted_proxies_forwarded_for_is_ignored() -> None:
    capture = ContextCapture()
    assert capture.client_ip("203.0.113.9", "198.51.100.1") == "203.0.113.9"


def test_trusted_proxy_chain_is_walked_from_the_right() -> None:
    capture = ContextCapture(["10.0.0.0/8", "192.0.2.7"])
    # client, spoofed entry first, then two of our proxies
    xff = "1.1.1.1, 198.51.100.4, 192.0.2.7"
    assert capture.client_ip("10.1.2.3", xff) == "198.51.100.4"
    # the peer itself is not trusted: the header is the client's own claim
    assert capture.client_ip("198.51.100.99", xff) == "198.51.100.99"
    # everything trusted: the leftmost address
    assert capture.client_ip("10.0.0.1", "10.0.0.2") == "10.0.0.2"


def test_malformed_hop_stops_at_last_real_address() -> None:
    capture = ContextCapture(["10.0.0.0/8"])
    assert capture.client_ip("10.0.0.1", "1.2.3.4, garbage") == "10.0.0.1"
    assert capture.client_ip("10.0.0.1", "[2001:db8::1]:443") == "2001:db8::1"
    assert capture.client_ip("10.0.0.1", "192.0.2.1:8080") == "192.0.2.1"
    assert capture.client_ip(None, "1.2.3.4") is None
    assert capture.client_ip("unix-socket", None) is None


@pytest.mark.parametrize("bad", ["not-an-ip", "10.0.0.0/33"])
def test_bad_proxy_config_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        ContextCapture([bad])
    with pytest.raises(ConfigError):
        ContextCapture("10.0.0.1")


def test_capture_collects_ua_language_and_client_hints() -> None:
    headers = asgi_headers(
        [
            (b"User-Agent", b"Mozilla/5.0 Test"),
            (b"Accept-Language", b"de-CH,de;q=0.9"),
            (b"Sec-CH-UA", b'"Chromium";v="156"'),
            (b"Sec-CH-UA-Platform", b'"Linux"'),
            (b"Sec-CH-UA-Mobile", b"?0"),
            (b"X-Forwarded-For", b"198.51.100.1"),
        ]
    )
    ctx = ContextCapture().capture("127.0.0.1", headers)
    assert ctx.ip == "127.0.0.1"
    assert ctx.user_agent == "Mozilla/5.0 Test"
    assert ctx.accept_language == "de-CH,de;q=0.9"
    assert ctx.client_hints == {
        "sec-ch-ua": '"Chromium";v="156"',
        "sec-ch-ua-platform": '"Linux"',
        "sec-ch-ua-mobile": "?0",
    }


def test_header_helpers_join_duplicates_and_parse_bearer() -> None:
    raw = [(b"cookie", b"a=1"), (b"Cookie", b"b=2"), (b"x-a", b"1"), (b"x-a", b"2")]
    headers = asgi_headers(raw)
    assert headers["cookie"] == "a=1; b=2"
    assert headers["x-a"] == "1, 2"
    environ = {"HTTP_USER_AGENT": "ua", "CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": ""}
    assert environ_headers(environ) == {"user-agent": "ua", "content-type": "text/plain"}
    assert bearer_token({"authorization": "Bearer abc"}) == "abc"
    assert bearer_token({"authorization": "bearer  abc "}) == "abc"
    assert bearer_token({"authorization": "Basic abc"}) is None
    assert bearer_token({"authorization": "Bearer"}) is None
    assert bearer_token({}) is None
