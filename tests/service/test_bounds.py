"""Every request is bounded before it is read, and every malformed one gets a 4xx: oversized
bodies (with and without a length, CSRF token in the header or the body), forms with too many
fields, oversized header blocks and URLs, numbers too large for a float, and pages that render
whatever JSON an API client stored in a session."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionward.errors import DataTooLarge
from sessionward.service import ServiceConfig, create_app
from sessionward.service.bounds import MAX_FORM_FIELDS
from sessionward.service.keys import create_key
from sessionward.service.runtime import Runtime
from sessionward.service.state import UserRow

from ._server import serve
from .test_pages import _OPEN, Client


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Runtime]]:
    app = create_app(ServiceConfig(store=str(tmp_path / "bounds.db")))
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base:
            yield base, runtime
    finally:
        while _OPEN:
            _OPEN.pop().http.close()
        asyncio.run(runtime.close())


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _raw(base: str, head: bytes, chunks: Iterable[bytes] = ()) -> tuple[int, int]:
    """Send a raw request; returns (status, body bytes sent before the answer came)."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        sent = 0
        sock.setblocking(False)
        answer = b""
        for chunk in chunks:
            with contextlib.suppress(BlockingIOError):
                answer += sock.recv(4096)
            if answer:
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                time.sleep(0.01)
                continue
            sent += len(chunk)
        sock.settimeout(10)
        while b"\r\n" not in answer:
            answer += sock.recv(4096)
    return int(answer.split(b" ", 2)[1]), sent


def test_a_chunked_form_with_the_token_in_a_header_is_cut_at_the_limit(
    site: tuple[str, Runtime],
) -> None:
    base, _ = site
    visitor = Client(base)
    token = visitor.csrf("/demo/login")
    cookies = "; ".join(f"{k}={v}" for k, v in visitor.cookies.items())
    head = (
        f"POST /demo/login HTTP/1.1\r\nHost: {urlsplit(base).netloc}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Sec-Fetch-Site: same-origin\r\nX-CSRF-Token: {token}\r\nCookie: {cookies}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    before = _rss_mib()
    chunks = (b"a" * (1 << 20) for _ in range(50))  # 50 MiB if nobody stops it
    status, sent = _raw(base, head, chunks)
    assert status == 413
    assert sent < 20 * (1 << 20)
    assert _rss_mib() - before < 30


def test_a_declared_oversized_body_is_refused_before_it_is_read(
    site: tuple[str, Runtime],
) -> None:
    base, _ = site
    host = urlsplit(base).netloc.encode()
    for path in (b"/demo/login", b"/v1/sessions/validate", b"/admin/login", b"/nowhere"):
        head = (
            b"POST " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 104857600\r\n\r\n"
        )
        status, _ = _raw(base, head)
        assert status == 413, path


def _post_form_bytes(client: Client, path: str, body: bytes) -> httpx.Response:
    headers = {
        "cookie": "; ".join(f"{k}={v}" for k, v in client.cookies.items()),
        "content-type": "application/x-www-form-urlencoded",
        "sec-fetch-site": "same-origin",
    }
    return client.http.post(path, content=body, headers=headers)


def test_forms_with_too_many_fields_get_400_not_500(site: tuple[str, Runtime]) -> None:
    base, runtime = site
    runtime.state.add_user(UserRow("demo", "fay", PasswordHasher().hash("fay-password"), None, 0))
    client = Client(base)
    token = client.csrf("/demo/login")
    many = "&".join(f"f{i}=x" for i in range(MAX_FORM_FIELDS + 1))
    for body in (f"csrf_token={token}&{many}", f"csrf_token={token}" + "&" * 5000):
        answer = _post_form_bytes(client, "/demo/login", body.encode())
        assert answer.status_code == 400, answer.text
        assert "fields" in answer.text
    # Before any session, 1,001 empty fields and no token: refused as a forgery, not a crash.
    assert _post_form_bytes(Client(base), "/admin/login", b"&" * 1001).status_code == 403
    ok = client.post_form(
        "/demo/login", {"username": "fay", "password": "fay-password"}, csrf_from="/demo/login"
    )
    assert ok.status_code == 303


def test_oversized_headers_and_urls_are_refused(site: tuple[str, Runtime]) -> None:
    base, _ = site
    with httpx.Client(base_url=base, timeout=10) as client:
        many = {f"x-h{i}": "1" for i in range(150)}
        assert client.get("/demo/", headers=many).status_code == 431
        big = client.get("/healthz", headers={"x-big": "a" * 20_000})
        assert big.status_code == 431
        assert big.json()["error"]["code"] == "headers_too_large"
        assert client.get("/demo/?q=" + "a" * 9000).status_code == 414
        assert client.get("/healthz").status_code == 200


def test_a_huge_integer_where_a_number_is_wanted_is_a_400(site: tuple[str, Runtime]) -> None:
    base, runtime = site
    key = create_key(runtime.state, "issue", "bounds", time.time())[0]
    with httpx.Client(base_url=base, timeout=10) as client:
        auth = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        issued = client.post("/v1/sessions", json={"user_id": "u"}, headers=auth).json()
        for value in ("1" + "0" * 400, "1e400", "-1", "true"):
            body = f'{{"token": {json.dumps(issued["token"])}, "max_auth_age": {value}}}'
            answer = client.post("/v1/sessions/validate", content=body, headers=auth)
            assert answer.status_code == 400, (value, answer.text)
            assert "max_auth_age" in answer.json()["error"]["message"]


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_KEYS = st.sampled_from(["cart", "orders", "pending_totp", "sessionward.remember"])
_DATA = st.dictionaries(_KEYS | st.text(max_size=8), _JSON, max_size=4)


def test_pages_render_any_json_stored_in_their_sessions(site: tuple[str, Runtime]) -> None:
    base, runtime = site
    runtime.state.add_user(UserRow("demo", "gil", PasswordHasher().hash("gil-password"), None, 0))
    shopper = Client(base)
    shopper.post_form(
        "/demo/login", {"username": "gil", "password": "gil-password"}, csrf_from="/demo/login"
    )
    pages = ("/demo/", "/demo/cart", "/demo/account", "/demo/devices", "/demo/step-up")

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=_DATA)
    def render(data: dict[str, Any]) -> None:
        token = shopper.cookies["__Host-shop"]
        current = asyncio.run(runtime.manager.validate(token))
        unset = [k for k in current.data if k not in data and k]

        def change(stored: dict[str, Any]) -> None:  # no API key reaches the shop's sessions
            stored.update(data)
            for name in unset:
                stored.pop(name, None)

        with contextlib.suppress(DataTooLarge):
            asyncio.run(runtime.manager.update_data(current, change))
        for path in pages:
            page = shopper.request("GET", path)
            assert page.status_code in (200, 303), (path, data, page.text[:200])

    render()
