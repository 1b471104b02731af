"""Profiles over real HTTP: two profiles signed in to the sessionward demo shop as different
users share nothing and stay signed in across runs; the jar follows browsers' rules; the
server's view of a profile's session; the identity and proxy settings reach the wire."""

from __future__ import annotations

import asyncio
import email.message
import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionward.audit.profiles import (
    Profile,
    ProfileError,
    Profiles,
    Settings,
    async_http_client,
    http_client,
)
from sessionward.audit.profiles.http import cookies_of, jar_of
from sessionward.audit.profiles.model import Cookie, ProfileData

from ._profiles_sites import Shop, demo_shop, forward_proxy, notes_app, serve, sign_in

COMMAND = Path(sys.executable).parent / "sessionward"
RAW_TOKEN = re.compile(r"sw1_[A-Za-z0-9_-]{20,}")


def values(data: ProfileData) -> set[str]:
    return {c.value for c in data.cookies if c.value}


def session_ids(data: ProfileData) -> set[str]:
    return {c.value[4:20] for c in data.cookies if c.value.startswith("sw1_")}


def signed_in_as(profile: Profile, shop: Shop) -> str | None:
    with http_client(profile, base_url=shop.base) as client:
        match = re.search(r"Welcome back, <strong>(\w+)</strong>", client.get("/demo/").text)
    return match.group(1) if match else None


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    with demo_shop(tmp_path) as running:
        yield running


@pytest.fixture
def profiles(tmp_path: Path) -> Profiles:
    home = Profiles(tmp_path / "home")
    for name in ("alice", "bob"):
        home.create(name, Settings(user_agent=f"QA-{name}/1.0"))
    return home


def test_two_profiles_signed_in_as_different_users_share_nothing(
    shop: Shop, profiles: Profiles
) -> None:
    alice, bob = profiles["alice"], profiles["bob"]
    with (
        http_client(alice, base_url=shop.base) as as_alice,
        http_client(bob, base_url=shop.base) as as_bob,
    ):
        assert sign_in(as_alice, "alice").status_code == 303
        assert sign_in(as_bob, "bob").status_code == 303
        assert "Welcome back, <strong>alice</strong>" in as_alice.get("/demo/").text
        assert "Welcome back, <strong>bob</strong>" in as_bob.get("/demo/").text
    alice_data, bob_data = alice.read(), bob.read()
    assert {c.name for c in alice_data.cookies} >= {"__Host-shop"}
    assert {c.name for c in bob_data.cookies} >= {"__Host-shop"}
    assert values(alice_data).isdisjoint(values(bob_data))
    assert session_ids(alice_data).isdisjoint(session_ids(bob_data))
    # Written back on close: a later run of each is still signed in as its own user.
    assert signed_in_as(alice, shop) == "alice"
    assert signed_in_as(bob, shop) == "bob"


def test_the_jar_is_saved_when_the_block_fails(shop: Shop, profiles: Profiles) -> None:
    alice = profiles["alice"]

    def sign_in_then_fail() -> None:
        with http_client(alice, base_url=shop.base) as client:
            sign_in(client, "alice")
            raise RuntimeError("the test step after sign-in failed")

    with pytest.raises(RuntimeError):
        sign_in_then_fail()
    assert not alice.in_use()
    assert signed_in_as(alice, shop) == "alice"


def test_the_async_client_keeps_its_cookies_too(tmp_path: Path) -> None:
    profile = Profiles(tmp_path).create("carol")

    async def visit(base: str) -> str:
        async with async_http_client(profile, base_url=base) as client:
            await client.get("/login", params={"user": "carol"})
            return (await client.get("/echo")).text

    with serve(notes_app()) as base:
        assert "user=carol" in asyncio.run(visit(base))
    assert {c.name: c.value for c in profile.read().cookies}["user"] == "carol"


def test_identity_settings_reach_the_wire(tmp_path: Path) -> None:
    profile = Profiles(tmp_path).create("dave", Settings(user_agent="QA-dave/2.0", locale="de-DE"))
    with serve(notes_app()) as base, http_client(profile, base_url=base) as client:
        headers = client.get("/headers").json()
        overridden = client.get("/headers", headers={"accept-language": "fr"}).json()
    assert headers["user-agent"] == "QA-dave/2.0"
    assert headers["accept-language"] == "de-DE"
    assert overridden["accept-language"] == "fr"
    with (
        pytest.raises(ProfileError, match="cookies from the profile"),
        http_client(profile, cookies={"a": "b"}),
    ):
        pass


def test_the_proxy_setting_routes_the_client_through_it(tmp_path: Path) -> None:
    with forward_proxy() as (proxy, seen):
        profile = Profiles(tmp_path).create("erin", Settings(proxy=proxy))
        with http_client(profile) as client:
            answer = client.get("http://shop.invalid/page")
    assert answer.text == "proxied http://shop.invalid/page"
    assert seen == ["http://shop.invalid/page"]


def test_the_client_sends_what_a_browser_would_and_leaves_an_explicit_header(
    tmp_path: Path,
) -> None:
    profile = Profiles(tmp_path).create("frank")
    with serve(notes_app()) as base:
        host = base.split("//")[1].split(":")[0]
        with profile.edit() as data:
            data.set_cookie(Cookie("__Host-sid", "frank-1", host, "/", None, True, True))
        with http_client(profile, base_url=base) as client:
            # a Secure cookie to a loopback http origin, on the first hop and after a redirect
            assert client.get("/echo").text == "__Host-sid=frank-1"
            assert client.get("/bounce", follow_redirects=True).text == "__Host-sid=frank-1"
            # a replay test sets its own header: it goes out as given
            assert client.get("/echo", headers={"cookie": "__Host-sid=stolen"}).text == (
                "__Host-sid=stolen"
            )


# -- the jar's rules (a real standard-library jar; requests are not sent) -----------------------


def header_for(cookies: list[Cookie], url: str) -> str:
    request = urllib.request.Request(url)  # noqa: S310 - never opened
    jar_of(cookies).add_cookie_header(request)
    return request.get_header("Cookie") or ""


def test_secure_cookies_go_to_https_and_loopback_only() -> None:
    secure = [
        Cookie("s", "1", ".shop.test", secure=True),
        Cookie("l", "1", "localhost", secure=True),
    ]
    assert header_for(secure, "https://shop.test/") == "s=1"
    assert header_for(secure, "http://shop.test/") == ""
    assert header_for(secure, "http://localhost:8000/") == "l=1"
    ip = [Cookie("i", "1", "127.0.0.1", secure=True), Cookie("six", "1", "::1", secure=True)]
    assert header_for(ip, "http://127.0.0.1:8000/") == "i=1"


def test_host_only_cookies_stay_on_their_host() -> None:
    cookies = [Cookie("host", "1", "shop.test"), Cookie("wide", "1", ".shop.test")]
    assert sorted(header_for(cookies, "http://shop.test/").split("; ")) == ["host=1", "wide=1"]
    assert header_for(cookies, "http://www.shop.test/") == "wide=1"


def received(url: str, *set_cookies: str) -> list[Cookie]:
    headers = email.message.Message()
    for value in set_cookies:
        headers["Set-Cookie"] = value

    class Response:
        def info(self) -> email.message.Message:
            return headers

    jar = jar_of([])
    request = urllib.request.Request(url)  # noqa: S310 - never opened
    jar.extract_cookies(Response(), request)  # type: ignore[arg-type]
    return cookies_of(jar)


def test_cookies_a_browser_would_refuse_are_refused() -> None:
    assert received("http://shop.test/", "a=1; Secure") == []  # Secure from plain http
    assert received("http://shop.test/", "__Host-a=1; Secure; Path=/") == []
    assert received("https://shop.test/", "__Host-a=1; Path=/") == []  # not Secure
    assert received("https://shop.test/", "__Host-a=1; Secure; Path=/; Domain=shop.test") == []
    assert received("https://shop.test/x/", "__Host-a=1; Secure") == []  # no Path=/
    assert received("https://shop.test/", "__Secure-a=1") == []
    kept = received(
        "http://localhost:8000/", "__Host-a=1; Secure; Path=/; HttpOnly; SameSite=Strict"
    )
    assert kept == [Cookie("__Host-a", "1", "localhost", "/", None, True, True, "Strict")]


def test_the_jar_round_trip_keeps_flags_and_dotless_hosts() -> None:
    cookies = [
        Cookie("a", "1", "localhost", "/", None, True, True, "Strict"),
        Cookie("b", "2", ".shop.test", "/x", 4_102_444_800.0, False, False, "None"),
        Cookie("c", "3", "printer", "/", None),
    ]
    assert cookies_of(jar_of(cookies)) == cookies


# -- the server's view (the real command against the demo shop's API) ---------------------------


def sessionward(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    done = subprocess.run(
        [str(COMMAND), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert not RAW_TOKEN.search(done.stdout + done.stderr), "a raw token was printed"
    return done


def test_show_puts_the_servers_view_beside_the_jar(shop: Shop, profiles: Profiles) -> None:
    # A site's backend issues its sessions through the service's API and hands the token to
    # the browser as a cookie (the demo shop's own sessions live in an application that no
    # API key reaches, so the site here is such a backend).
    auth = {"authorization": f"Bearer {shop.admin_key}"}
    agent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    body = {"user_id": "alice", "context": {"ip": "127.0.0.1", "user_agent": agent}}
    issued = httpx.post(f"{shop.base}/v1/sessions", json=body, headers=auth)
    assert issued.status_code == 201, issued.text
    with profiles["alice"].edit() as data:
        host = httpx.URL(shop.base).host
        data.set_cookie(Cookie("__Host-shop", issued.json()["token"], host, secure=True))
    (session_id,) = session_ids(profiles["alice"].read())
    home = str(profiles.home)
    text = sessionward(
        "profiles",
        "--home",
        home,
        "show",
        "alice",
        "--server",
        shop.base,
        "--api-key",
        shop.admin_key,
    )
    assert text.returncode == 0, text.stderr
    assert f"__Host-shop=sw1_…(68 chars)  session {session_id}" in text.stdout
    assert f"session {session_id}  (cookie __Host-shop)" in text.stdout
    assert "server view (1 sessionward session held)" in text.stdout
    assert "user        alice" in text.stdout
    # Hijack scoring keeps the device and network as people name them, not the raw strings.
    assert "device      Firefox 128 on Linux" in text.stdout
    assert re.search(r"address     \S", text.stdout)
    assert agent not in text.stdout
    assert re.search(r"decision    \S+  created", text.stdout)
    assert shop.admin_key not in text.stdout

    done = sessionward(
        "profiles",
        "--home",
        home,
        "show",
        "alice",
        "--json",
        "--server",
        shop.base,
        "--api-key",
        shop.admin_key,
    )
    (server,) = json.loads(done.stdout)["server"]
    assert server["session_id"] == session_id
    assert server["user_id"] == "alice"
    assert server["device"] == "Firefox 128 on Linux"
    assert "created" in [d["kind"] for d in server["decisions"]]

    # The server ends the session: the jar still holds the cookie, the server knows it no more.
    assert httpx.delete(f"{shop.base}/v1/sessions/{session_id}", headers=auth).json() == {
        "revoked": True
    }
    after = sessionward(
        "profiles",
        "--home",
        home,
        "show",
        "alice",
        "--server",
        shop.base,
        "--api-key",
        shop.admin_key,
    )
    assert "not known to the server" in after.stdout


def test_show_with_a_bad_api_key_fails_without_echoing_it(shop: Shop, profiles: Profiles) -> None:
    with http_client(profiles["alice"], base_url=shop.base) as client:
        sign_in(client, "alice")
    home = str(profiles.home)
    bad = "swk_not-a-real-key-0123456789"
    done = sessionward(
        "profiles", "--home", home, "show", "alice", "--server", shop.base, "--api-key", bad
    )
    assert done.returncode == 2
    assert "refused the API key" in done.stderr
    assert bad not in done.stderr + done.stdout
    missing = sessionward("profiles", "--home", home, "show", "alice", "--server", shop.base)
    assert "needs an admin API key" in missing.stderr
