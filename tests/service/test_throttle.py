"""Every guess of a secret is throttled: demo and admin passwords, TOTP codes, the setup code
and API keys, per account and per client address, with a growing wait and a clear answer
(429 with Retry-After; the page says "Try again in N s"); TOTP codes work once; a filled
window emits an event; and the windows live in the configured store (SQLite, Redis,
PostgreSQL), shared by every process and node. Time is the service's fake clock."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from limits import parse_many
from servers import PostgresServer, RedisServer
from servers import postgres_server as postgres_server  # a fixture
from servers import redis_server as redis_server  # a fixture

from sessionward.core import token as tokens
from sessionward.errors import StoreUnavailable
from sessionward.service import ServiceConfig, create_app
from sessionward.service.factors import SETUP_ACCOUNT
from sessionward.service.keys import create_key
from sessionward.service.passwords import totp_now
from sessionward.service.runtime import ADMIN_USER_PREFIX, Runtime
from sessionward.service.setup import new_setup_code
from sessionward.service.state import ServiceState, UserRow
from sessionward.service.throttle import RULES, TRUSTED_DAYS, Guard, Rules, Throttled, open_guard
from sessionward.testing import FakeClock

from ._forms import Browser, Site, site_at
from ._server import serve
from .test_pages import _OPEN, Client

TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
_HASH = PasswordHasher()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Runtime, FakeClock]]:
    clock = FakeClock(time.time())
    config = ServiceConfig(
        store=str(tmp_path / "throttle.db"), trusted_proxies=("127.0.0.1",), key_cache_seconds=0
    )
    app = create_app(config, clock=clock)
    runtime: Runtime = app.state.runtime
    try:
        with serve(app) as base:
            yield base, runtime, clock
    finally:
        while _OPEN:
            _OPEN.pop().http.close()
        asyncio.run(runtime.close())


def _from(client: Client, address: str) -> Client:
    """Requests of ``client`` appear to come from ``address`` (through the trusted proxy)."""
    client.http.headers["x-forwarded-for"] = address
    return client


def _login(client: Client, path: str, name: str, password: str) -> httpx.Response:
    return client.post_form(path, {"username": name, "password": password}, csrf_from=path)


@pytest.mark.parametrize(("path", "realm"), [("/demo/login", "demo"), ("/admin/login", "admin")])
def test_password_guesses_are_throttled(
    site: tuple[str, Runtime, FakeClock], path: str, realm: str
) -> None:
    base, runtime, clock = site
    runtime.state.add_user(UserRow(realm, "olga", _HASH.hash("olga's password"), None, 0))
    guesser = _from(Client(base), "203.0.113.5")
    statuses = [_login(guesser, path, "olga", f"guess {i}").status_code for i in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    refused = _login(guesser, path, "olga", "olga's password")  # right, but not evaluated
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60
    assert f"Try again in {wait} s." in refused.text
    clock.advance(wait)
    assert _login(guesser, path, "olga", "olga's password").status_code == 303
    kinds = [(e["kind"], e.get("reason")) for e in runtime.activity.latest(50)]
    assert ("throttled", "password-pair") in kinds


def test_backoff_grows_as_failures_add_up(site: tuple[str, Runtime, FakeClock]) -> None:
    base, runtime, clock = site
    runtime.state.add_user(UserRow("demo", "pia", _HASH.hash("pia's password"), None, 0))
    guesser = _from(Client(base), "203.0.113.6")
    waits = []
    for _ in range(4):  # 5 a minute, then 20 an hour: the fourth lockout lasts about an hour
        while (answer := _login(guesser, "/demo/login", "pia", "wrong")).status_code == 401:
            pass
        waits.append(int(answer.headers["retry-after"]))
        clock.advance(waits[-1])
    assert max(waits[:3]) <= 60
    assert waits[3] > 1800


def test_one_address_guessing_many_accounts_is_throttled(
    site: tuple[str, Runtime, FakeClock],
) -> None:
    base, _, _ = site
    sprayer = _from(Client(base), "203.0.113.7")
    statuses = [_login(sprayer, "/demo/login", f"user{i}", "123456").status_code for i in range(12)]
    assert statuses == [401] * 10 + [429] * 2
    other = _from(Client(base), "203.0.113.8")  # another address is not affected
    assert _login(other, "/demo/login", "user0", "123456").status_code == 401


def test_a_distributed_attack_cannot_lock_the_owner_out(
    site: tuple[str, Runtime, FakeClock],
) -> None:
    base, runtime, clock = site
    runtime.state.add_user(UserRow("demo", "ray", _HASH.hash("ray's password"), None, 0))
    owner = _from(Client(base), "198.51.100.9")
    assert _login(owner, "/demo/login", "ray", "ray's password").status_code == 303
    for i in range(99):  # with ray's own sign-in, the account's daily cap of 100 attempts
        attacker = _from(Client(base), f"203.0.113.{i + 10}")
        assert _login(attacker, "/demo/login", "ray", "wrong").status_code == 401
        attacker.http.close()
    newcomer = _from(Client(base), "192.0.2.77")
    assert _login(newcomer, "/demo/login", "ray", "ray's password").status_code == 429
    again = _from(Client(base), "198.51.100.9")  # where ray signed in before: still open
    assert _login(again, "/demo/login", "ray", "ray's password").status_code == 303
    clock.advance(86400)
    assert _login(newcomer, "/demo/login", "ray", "ray's password").status_code == 303


def _shopper_with_totp(base: str, runtime: Runtime, name: str) -> Client:
    runtime.state.add_user(UserRow("demo", name, _HASH.hash(f"{name}'s password"), TOTP, 0))
    shopper = Client(base)
    assert _login(shopper, "/demo/login", name, f"{name}'s password").status_code == 303
    return shopper


def test_totp_codes_are_throttled_and_work_once(site: tuple[str, Runtime, FakeClock]) -> None:
    base, runtime, clock = site
    first = _shopper_with_totp(base, runtime, "sam")
    second = Client(base)
    assert _login(second, "/demo/login", "sam", "sam's password").status_code == 303
    code = totp_now(TOTP, clock.now())
    used = first.post_form("/demo/step-up", {"code": code}, csrf_from="/demo/step-up")
    assert used.headers["location"] == "/demo/cart"
    replay = second.post_form("/demo/step-up", {"code": code}, csrf_from="/demo/step-up")
    assert replay.status_code == 200  # refused, from another session too
    assert "used already" in replay.text
    statuses = [
        second.post_form("/demo/step-up", {"code": f"{i:06d}"}, csrf_from="/demo/step-up")
        for i in range(6)
    ]
    assert [s.status_code for s in statuses] == [200] * 4 + [429] * 2  # the replay counted
    assert "Try again in" in statuses[-1].text
    assert int(statuses[-1].headers["retry-after"]) >= 1


def test_wrong_setup_codes_are_throttled(site: tuple[str, Runtime, FakeClock]) -> None:
    base, runtime, _ = site
    code = new_setup_code(runtime.state, time.time())
    guesser = _from(Client(base), "203.0.113.9")
    form = {"username": "root", "password": "a long admin password"}
    statuses = [
        guesser.post_form("/admin/setup", {**form, "code": f"guess{i}"}, csrf_from="/admin/setup")
        for i in range(6)
    ]
    assert [s.status_code for s in statuses] == [400] * 5 + [429]
    right = guesser.post_form("/admin/setup", {**form, "code": code}, csrf_from="/admin/setup")
    assert right.status_code == 429  # not evaluated: the code is still unused
    assert runtime.state.has_setup_code()
    assert runtime.state.get_user("admin", "root") is None


def test_wrong_api_keys_get_429_with_retry_after(site: tuple[str, Runtime, FakeClock]) -> None:
    base, runtime, clock = site
    good = create_key(runtime.state, "validate", "good", time.time())[0]
    wrong = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    with httpx.Client(base_url=base, timeout=10) as api:

        def call(key: str, address: str) -> httpx.Response:
            headers = {"authorization": f"Bearer {key}", "x-forwarded-for": address}
            return api.post("/v1/sessions/validate", json={"token": "x"}, headers=headers)

        statuses = [call(wrong, "203.0.113.20").status_code for _ in range(12)]
        assert statuses == [401] * 10 + [429] * 2  # ten failures on one key id a minute
        refused = call(good, "203.0.113.20")  # the right key of that id: not evaluated
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_attempts"
        wait = int(refused.headers["retry-after"])
        assert f"try again in {wait} s" in refused.json()["error"]["message"]
        assert call(good, "198.51.100.20").status_code == 200  # where it worked: its own
        clock.advance(wait)
        assert call(good, "203.0.113.20").status_code == 200
        junk = [call("not-a-key", "203.0.113.21").status_code for _ in range(31)]
        assert junk == [401] * 30 + [429]  # the address's own window
    assert ("throttled", "api-key-pair") in [
        (e["kind"], e.get("reason")) for e in runtime.activity.latest(50)
    ]


# -- the store: shared by every process and node ----------------------------------------------


@asynccontextmanager
async def _guards(kind: str, where: Any, tmp_path: Path) -> AsyncIterator[tuple[Guard, Guard]]:
    """Two guards on one store, as two processes (or nodes) have."""
    if kind == "sqlite":
        path = tmp_path / "state.db"
        states = [ServiceState(path), ServiceState(path)]
        guards = [open_guard(str(path), state, time.time, None) for state in states]
    else:
        states = [ServiceState(tmp_path / f"node{i}.db") for i in range(2)]
        guards = [open_guard(where, state, time.time, None) for state in states]
    try:
        yield guards[0], guards[1]
    finally:
        for guard, state in zip(guards, states, strict=True):
            await guard.close()
            state.close()


async def _shared_windows(one: Guard, two: Guard, account: str) -> None:
    for guard in (one, two, one, two, one):
        await guard.attempt("password", account, "203.0.113.30")
        await guard.failed("password", account, "203.0.113.30")
    with pytest.raises(Throttled) as refused:
        await two.attempt("password", account, "203.0.113.30")
    assert 1 <= refused.value.retry_after <= 60
    with pytest.raises(Throttled):
        await one.check("password", account, "203.0.113.30")
    # Success from the owner's own address clears its failures there and trusts it.
    await one.attempt("password", account, "198.51.100.30")
    await one.succeeded("password", account, "198.51.100.30")
    await two.check("password", account, "198.51.100.30")


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
def test_windows_are_shared_through_the_configured_store(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    where: str | None = None
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        where = server.url.rsplit("/", 1)[0] + "/11"  # a database of its own
    elif kind == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres_server")
        where = pg.url

    async def run() -> None:
        async with _guards(kind, where, tmp_path) as (one, two):
            await _shared_windows(one, two, f"demo:{kind}-{time.monotonic_ns()}")

    asyncio.run(run())


def test_a_store_outage_fails_closed(tmp_path: Path) -> None:
    async def run() -> None:
        state = ServiceState(tmp_path / "s.db")
        guard = open_guard("redis://127.0.0.1:9/0", state, time.time, None)  # nothing there
        try:
            with pytest.raises(StoreUnavailable):
                await guard.attempt("password", "demo:x", "203.0.113.40")
        finally:
            await guard.close()
            state.close()

    asyncio.run(run())


def test_lockout_event_names_the_account_and_the_wait(
    site: tuple[str, Runtime, FakeClock],
) -> None:
    base, runtime, _ = site
    runtime.state.add_user(UserRow("admin", "root", _HASH.hash("root's password"), None, 0))
    guesser = _from(Client(base), "203.0.113.50")
    for _ in range(5):
        _login(guesser, "/admin/login", "root", "nope")
    [event] = [e for e in runtime.activity.latest(50) if e["kind"] == "throttled"]
    assert event["user_id"] == ADMIN_USER_PREFIX + "root"
    assert event["reason"] == "password-pair"
    assert 1 <= event["retry_after"] <= 60
    assert "nope" not in str(event)


# -- every pathway, a code once, the documented limits ----------------------------------------

ADMIN_PASSWORD = "staple battery horse"  # noqa: S105 - test accounts'
ANN = "ann-password"
PATHWAYS = [
    "admin setup",
    "admin sign-in",
    "admin sign-in code",
    "admin enrol",
    "admin password change",
    "admin end every session",
    "shop sign-in",
    "shop step-up",
    "shop TOTP on",
    "shop TOTP replace",
    "shop TOTP off",
    "shop password change",
    "shop sign-out others",
    "shop sign-out one",
]
Post = Callable[[], httpx.Response]


async def _fill(guard: Guard, kind: str, account: str | None) -> None:
    """Five wrong guesses of ``kind`` on ``account`` from the test client: a full window."""
    for _ in range(5):
        await guard.attempt(kind, account, "127.0.0.1")
        await guard.failed(kind, account, "127.0.0.1")


def _new_key(client: Browser, path: str) -> str:
    match = re.search(r'id="totp-secret">([A-Z2-7]+)<', client.get(path).text)
    assert match, path
    return match.group(1)


def _shopper(site: Site) -> Browser:
    shopper = site.browser()
    assert shopper.shop_login("ann", ANN).status_code == 303
    return shopper


def _admin_pathway(site: Site, name: str) -> tuple[str, str, Post]:
    root = ADMIN_USER_PREFIX + "root"
    if name == "admin setup":
        code = new_setup_code(site.runtime.state, site.clock.now())
        form = {"username": "newroot", "password": "a long admin password", "code": code}
        setup = site.browser()
        return (
            "setup-code",
            SETUP_ACCOUNT,
            lambda: setup.post("/admin/setup", form, csrf_from="/admin/setup"),
        )
    site.add_user("admin", "root", ADMIN_PASSWORD, TOTP)
    admin = site.browser()
    sign_in = {"username": "root", "password": ADMIN_PASSWORD}
    if name == "admin sign-in":
        return (
            "password",
            root,
            lambda: admin.post("/admin/login", sign_in, csrf_from="/admin/login"),
        )
    if name == "admin enrol":
        site.add_user("admin", "newbie", "another staple battery")
        form = {"username": "newbie", "password": "another staple battery"}
        assert admin.post("/admin/login", form, csrf_from="/admin/login").status_code == 303
        code = site.code(_new_key(admin, "/admin/enrol"))
        return (
            "totp",
            ADMIN_USER_PREFIX + "newbie",
            lambda: admin.post("/admin/enrol", {"code": code}, csrf_from="/admin/enrol"),
        )
    if name == "admin sign-in code":
        assert admin.post("/admin/login", sign_in, csrf_from="/admin/login").status_code == 303
        return (
            "totp",
            root,
            lambda: admin.post(
                "/admin/login/code", {"code": site.code()}, csrf_from="/admin/login/code"
            ),
        )
    admin.admin_login(site, "root", ADMIN_PASSWORD)
    site.clock.advance(30)  # the sign-in used this step's code
    form = {"password": ADMIN_PASSWORD, "code": site.code(), "new_password": "a new admin phrase"}
    if name == "admin password change":
        return (
            "password",
            root,
            lambda: admin.post("/admin/account", form, csrf_from="/admin/account"),
        )
    return (
        "totp",
        root,
        lambda: admin.post("/admin/revoke-all", form, csrf_from="/admin/revoke-all"),
    )


def _shop_pathway(site: Site, name: str) -> tuple[str, str, Post]:
    ann = "demo:ann"
    if name == "shop sign-in":
        return "password", ann, lambda: site.browser().shop_login("ann", ANN)
    if name == "shop TOTP on":
        shopper = _shopper(site)
        form = {"action": "on", "password_on": ANN}
        form["new_code_on"] = site.code(_new_key(shopper, "/demo/account"))
        return (
            "totp",
            ann,
            lambda: shopper.post("/demo/account/totp", form, csrf_from="/demo/account"),
        )
    site.runtime.state.set_totp("demo", "ann", TOTP)
    shopper = _shopper(site)
    if name == "shop step-up":
        return (
            "totp",
            ann,
            lambda: shopper.post("/demo/step-up", {"code": site.code()}, csrf_from="/demo/step-up"),
        )
    if name in ("shop TOTP replace", "shop TOTP off"):
        action = name.rsplit(" ", 1)[1]
        form = {"action": action, f"password_{action}": ANN, "code": site.code()}
        form[f"new_code_{action}"] = site.code(_new_key(shopper, "/demo/account"))
        return (
            "password",
            ann,
            lambda: shopper.post("/demo/account/totp", form, csrf_from="/demo/account"),
        )
    if name == "shop password change":
        form = {"password": ANN, "code": site.code(), "new_password": "ann's brand new phrase"}
        return (
            "password",
            ann,
            lambda: shopper.post("/demo/account/password", form, csrf_from="/demo/account"),
        )
    _shopper(site)  # a second device
    mine = tokens.parse(shopper.cookies["__Host-shop"]).session_id
    other = next(s.id for s in asyncio.run(site.runtime.manager.list_user("ann")) if s.id != mine)
    path = {"shop sign-out others": "/demo/devices/sign-out-others"}.get(
        name, f"/demo/devices/{other}/sign-out"
    )
    return "password", ann, lambda: shopper.post(path, {"password": ANN}, csrf_from="/demo/devices")


def _factors_and_sessions(site: Site) -> tuple[object, ...]:
    """What a form that checks a factor may change: accounts, the setup code, sessions."""
    state = site.runtime.state
    accounts = [
        state.get_user(realm, name)
        for realm in ("admin", "demo")
        for name in ("root", "newroot", "newbie", "ann")
    ]
    sessions = asyncio.run(site.runtime.manager.list_user("ann"))
    count = asyncio.run(site.runtime.session_count())
    return tuple(accounts), state.has_setup_code(), count, sorted(s.id for s in sessions)


@pytest.mark.parametrize("name", PATHWAYS)
def test_every_factor_check_answers_429_when_throttled(tmp_path: Path, name: str) -> None:
    """Every form that checks a password, a code or the setup code goes through the throttle:
    once the guesses at it are throttled, even the right answer is not checked, and the page
    says when to try again; nothing changes."""
    with site_at(tmp_path) as site:
        site.add_user("demo", "ann", ANN)
        pathway = _admin_pathway if name.startswith("admin") else _shop_pathway
        kind, account, post = pathway(site, name)
        before = _factors_and_sessions(site)
        asyncio.run(_fill(site.runtime.guard, kind, account))
        refused = post()
        assert refused.status_code == 429, refused.text
        wait = int(refused.headers["retry-after"])
        assert 1 <= wait <= 60
        assert f"Try again in {wait} s." in refused.text
        assert _factors_and_sessions(site) == before


def test_a_totp_code_works_once(tmp_path: Path) -> None:
    """RFC 6238 section 5.2: a code accepted once is refused after that from any session, on
    any form, at the same moment and from another process; a code of an earlier step is
    refused once a later one was accepted; the code of the next step works."""
    with site_at(tmp_path) as site:
        site.add_user("demo", "ann", ANN, TOTP)
        site.add_user("admin", "root", ADMIN_PASSWORD, TOTP)
        site.clock.advance(2)  # two seconds into a step: the previous step's code still works
        shoppers = [_shopper(site) for _ in range(4)]
        code = site.code()

        def step_up(shopper: Browser, code: str) -> httpx.Response:
            return shopper.post("/demo/step-up", {"code": code}, csrf_from="/demo/step-up")

        with ThreadPoolExecutor(len(shoppers)) as pool:  # one code, four sessions at once
            answers = list(pool.map(lambda s: step_up(s, code), shoppers))
        accepted = [a for a in answers if a.headers.get("location") == "/demo/cart"]
        assert len(accepted) == 1
        assert all("used already" in a.text for a in answers if a not in accepted)
        other = next(s for s, a in zip(shoppers, answers, strict=True) if a is not accepted[0])
        form = {"password": ANN, "code": code, "new_password": "ann's brand new phrase"}
        changed = other.post("/demo/account/password", form, csrf_from="/demo/account")
        assert changed.headers["location"] == "/demo/account?msg=reauth-failed"
        earlier = totp_now(TOTP, site.clock.now() - 30)
        assert "used already" in step_up(other, earlier).text
        # The admin's code is the admin account's own, and works once as well.
        site.browser().admin_login(site, "root", ADMIN_PASSWORD)
        again = site.browser()
        sign_in = {"username": "root", "password": ADMIN_PASSWORD}
        again.post("/admin/login", sign_in, csrf_from="/admin/login")
        replay = again.post("/admin/login/code", {"code": code}, csrf_from="/admin/login/code")
        assert replay.status_code == 401
        # Another process on the same state sees the claim, and can take a step first.
        process = ServiceState(site.runtime.state.path)
        assert not process.claim_totp_step("demo", "ann", TOTP, int(site.clock.now() // 30))
        site.clock.advance(60)  # and the minute of the refused guesses above passes
        assert process.claim_totp_step("demo", "ann", TOTP, int(site.clock.now() // 30))
        process.close()
        assert "used already" in step_up(other, site.code()).text
        site.clock.advance(30)
        assert step_up(other, site.code()).headers["location"] == "/demo/cart"


_DOCS = Path(__file__).resolve().parents[2] / "docs" / "throttling.md"
_DOCUMENTED = {
    "password": "password",
    "TOTP code": "totp",
    "admin setup code": "setup-code",
    "API key": "api-key",
}
_ACTIONS = {"guest session": "guest-session", "registration": "registration"}
_WINDOWS = r"(\d+/\w+(?:, \d+/\w+)*)"


def _parsed(windows: str) -> list[Any]:
    return parse_many(windows) if windows else []


def test_the_documented_limits_are_the_defaults(tmp_path: Path) -> None:
    """docs/throttling.md's tables of limits are what the service enforces (ASVS 6.1.1): the
    guesses' three sets, and the address set of actions that store something."""
    text = _DOCS.read_text(encoding="utf-8")
    rows = re.findall(rf"^\| ([^|]+?) \| {_WINDOWS} \| {_WINDOWS} \| {_WINDOWS} \|$", text, re.M)
    documented = {}
    for label, *cells in rows:
        kind = next(k for prefix, k in _DOCUMENTED.items() if label.startswith(prefix))
        documented[kind] = Rules(*(cell.replace(", ", ";") for cell in cells))
    for label, cell in re.findall(rf"^\| ([^|]+?) \| {_WINDOWS} \|$", text, re.M):
        kind = next(k for prefix, k in _ACTIONS.items() if label.startswith(prefix))
        documented[kind] = Rules(cell.replace(", ", ";"))
    assert documented == RULES
    assert f"succeeded within the last {TRUSTED_DAYS} days" in text
    app = create_app(ServiceConfig(store=str(tmp_path / "limits.db")))
    runtime: Runtime = app.state.runtime
    try:
        enforced = {
            kind: {
                name: [(item.amount, item.get_expiry()) for item in items]
                for name, items in sets.items()
            }
            for kind, sets in runtime.guard.rules.items()
        }
    finally:
        asyncio.run(runtime.close())
    assert enforced == {
        kind: {
            name: [(item.amount, item.get_expiry()) for item in _parsed(getattr(rules, name))]
            for name in ("address", "pair", "account")
        }
        for kind, rules in documented.items()
    }
