"""A browser-like HTTP client for the admin and demo pages, and a site to point it at: a real
uvicorn on loopback, a real SQLite file and a fake clock (the TOTP codes follow it)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher

from sessionward.service import ServiceConfig, create_app
from sessionward.service.passwords import totp_now
from sessionward.service.runtime import Runtime
from sessionward.service.state import UserRow
from sessionward.testing import FakeClock

from ._server import serve

TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
_HASHER = PasswordHasher()


@dataclass
class Site:
    base: str
    runtime: Runtime
    clock: FakeClock
    clients: list[Browser] = field(default_factory=list)

    def browser(self, **headers: str) -> Browser:
        client = Browser(self.base, headers)
        self.clients.append(client)
        return client

    def add_user(self, realm: str, name: str, password: str, totp: str | None = None) -> None:
        row = UserRow(realm, name, _HASHER.hash(password), totp, self.clock.now())
        self.runtime.state.add_user(row)

    def code(self, secret: str = TOTP) -> str:
        return totp_now(secret, self.clock.now())

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.runtime.activity.recent if e["kind"] == kind]


@contextmanager
def site_at(tmp_path: Path, **options: Any) -> Iterator[Site]:
    clock = FakeClock()
    app = create_app(ServiceConfig(store=str(tmp_path / "site.db"), **options), clock=clock)
    runtime: Runtime = app.state.runtime
    site = Site("", runtime, clock)
    try:
        with serve(app) as base:
            site.base = base
            yield site
    finally:
        for client in site.clients:
            client.http.close()
        asyncio.run(runtime.close())


class Browser:
    """Keeps ``__Host-`` cookies by hand (httpx sends no Secure cookie over http) and sends
    what a browser sends with a form post (Fetch Metadata, Origin)."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base = base
        self.origin = headers.pop("origin", base)
        self.http = httpx.Client(base_url=base, timeout=10, headers=headers)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if method == "POST":
            headers |= {"sec-fetch-site": "same-origin", "origin": self.origin}
        response = self.http.request(method, path, headers=headers, **kw)
        for value in response.headers.get_list("set-cookie"):
            name, _, rest = value.partition("=")
            token = rest.split(";")[0]
            if token:
                self.cookies[name] = token
            else:
                self.cookies.pop(name, None)
        return response

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def csrf(self, path: str) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', self.get(path).text)
        assert match, f"no form token on {path}"
        return match.group(1)

    def post(self, path: str, form: dict[str, str], *, csrf_from: str) -> httpx.Response:
        return self.request("POST", path, data={"csrf_token": self.csrf(csrf_from), **form})

    # -- the usual journeys -------------------------------------------------------------------

    def shop_login(self, name: str, password: str) -> httpx.Response:
        form = {"username": name, "password": password}
        return self.post("/demo/login", form, csrf_from="/demo/login")

    def admin_login(self, site: Site, name: str, password: str, code: str | None = None) -> None:
        form = {"username": name, "password": password}
        first = self.post("/admin/login", form, csrf_from="/admin/login")
        assert first.headers["location"] == "/admin/login/code", first.text
        second = self.post(
            "/admin/login/code", {"code": code or site.code()}, csrf_from="/admin/login/code"
        )
        assert second.headers["location"] == "/admin/", second.text
