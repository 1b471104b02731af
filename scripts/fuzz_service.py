"""Fuzz every route of ``sessionward serve``: the JSON API and the HTML forms, with valid and
invalid keys, tokens, cookies and CSRF tokens, malformed and oversized bodies, headers and
fields. Stateful: tokens, session ids and cookies the service hands out are reused in later
requests. The only failure is a server error (5xx); server memory is sampled as it runs.

By hand (the long run; see docs/fuzzing.md)::

    python scripts/fuzz_service.py --requests 100000

It starts ``sessionward serve`` in a subprocess on a fresh SQLite file, with an API key of
each scope and a demo account, and prints the request count, the status counts, the server's
RSS after warm-up and at the end. Exit status 1 on any 5xx or when memory grows by more than
``--max-growth-mib``. ``tests/service/test_fuzz.py`` runs the same generator for a few hundred
requests in CI against an in-process server.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx

API_POSTS = [
    "/v1/sessions",
    "/v1/sessions/validate",
    "/v1/sessions/rotate",
    "/v1/sessions/elevate",
    "/v1/sessions/data",
    "/v1/sessions/revoke",
    "/v1/sessions/revoke-all",
    "/v1/tokens",
    "/v1/tokens/refresh",
]
GETS = ["/", "/healthz", "/readyz", "/openapi.json", "/.well-known/jwks.json", "/metrics"]
DEMO_GETS = ["/demo/", "/demo/cart", "/demo/login", "/demo/register", "/demo/account"]
DEMO_GETS += ["/demo/step-up", "/demo/devices", "/demo"]
DEMO_POSTS = ["/demo/cart/add", "/demo/checkout", "/demo/register", "/demo/login"]
DEMO_POSTS += ["/demo/logout", "/demo/account/totp", "/demo/account/password", "/demo/step-up"]
DEMO_POSTS += ["/demo/devices/sign-out-others"]
ADMIN_GETS = ["/admin/", "/admin/login", "/admin/setup", "/admin/users", "/admin/stream"]
ADMIN_GETS += ["/admin/login/code", "/admin/enrol", "/admin/account", "/admin/revoke-all"]
ADMIN_POSTS = ["/admin/login", "/admin/setup", "/admin/logout", "/admin/users/revoke"]
ADMIN_POSTS += ["/admin/login/code", "/admin/enrol", "/admin/account", "/admin/revoke-all"]
FIELDS = ["token", "user_id", "auth_level", "scopes", "data", "context", "previous_token"]
FIELDS += ["max_auth_age", "min_level", "set", "unset", "refresh_token", "keep_session_id"]
FIELDS += ["reason", "ip", "user_agent", "client_hints", "accept_language"]
FORM_FIELDS = ["username", "password", "code", "item", "user", "csrf_token", "next"]
FORM_FIELDS += ["action", "new_password", "new_code_on", "password_on", "sign_out_others"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Context:
    """What the fuzzer has learnt: keys, tokens, ids and cookies handed out so far."""

    keys: dict[str, str]
    tokens: list[str] = field(default_factory=list)
    refresh: list[str] = field(default_factory=list)
    session_ids: list[str] = field(default_factory=list)
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: list[str] = field(default_factory=list)

    def learn(self, response: httpx.Response) -> None:
        for value in response.headers.get_list("set-cookie"):
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.split(";")[0]
        kind = response.headers.get("content-type", "")
        if kind.startswith("text/html"):
            self.csrf += _CSRF.findall(response.text)[:1]
        elif kind.startswith("application/json"):
            try:
                body = response.json()
            except ValueError:
                return
            if isinstance(body, dict):
                _remember(self.tokens, body.get("token"))
                _remember(self.refresh, body.get("refresh_token"))
                session = body.get("session")
                if isinstance(session, dict):
                    _remember(self.session_ids, session.get("id"))
        for bag in (self.tokens, self.refresh, self.session_ids, self.csrf):
            del bag[:-50]


def _remember(bag: list[str], value: object) -> None:
    if isinstance(value, str):
        bag.append(value)


def _text(rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.3:
        return rng.choice(["", "alice", "x" * rng.randint(1, 600), "sessionward:admin:root"])
    if choice < 0.5:
        return "".join(chr(rng.choice([0, 0xD800, 0xFFFF, 0x1F600, 10, 34, 92])) for _ in range(5))
    if choice < 0.7:
        return "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(0, 40)))
    return rng.choice(["sw1_" + "A" * 64, "swk_" + "A" * 60, "../../etc", "%00", "' OR 1=1--"])


def _value(rng: random.Random, ctx: Context, depth: int = 0) -> Any:
    roll = rng.random()
    if roll < 0.15 and ctx.tokens:
        return rng.choice(ctx.tokens + ctx.refresh)
    if roll < 0.3:
        return _text(rng)
    if roll < 0.45:
        return rng.choice([0, -1, 1, 2, 100, 101, 2**31, 2**63, 10**30, -(10**20)])
    if roll < 0.55:
        return rng.choice([0.5, -0.0, 1e308, 1e-308, 3.0, 1e10 + 1])
    if roll < 0.65:
        return rng.choice([None, True, False])
    if depth < 3 and roll < 0.85:
        return [_value(rng, ctx, depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 3:
        return {_text(rng)[:10]: _value(rng, ctx, depth + 1) for _ in range(rng.randint(0, 4))}
    return None


def _json_body(rng: random.Random, ctx: Context) -> bytes:
    roll = rng.random()
    if roll < 0.05:
        return rng.choice([b"", b"{", b"[]", b"null", b'"x"', b"1e999", b"{" * 5000])
    if roll < 0.1:
        return b'{"token": "x", "max_auth_age": ' + b"9" * rng.randint(300, 5000) + b"}"
    if roll < 0.13:
        return b'{"data": "' + b"\\ud800" * 10 + b'"}'
    body: dict[str, Any] = {}
    if ctx.tokens and rng.random() < 0.7:
        body["token"] = rng.choice(ctx.tokens)
    for name in rng.sample(FIELDS, rng.randint(0, 4)):
        body[name] = _value(rng, ctx)
    if rng.random() < 0.05:
        body["data"] = {"blob": "x" * rng.randint(1, 80_000)}
    return json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")


def _form_body(rng: random.Random, ctx: Context) -> bytes:
    roll = rng.random()
    if roll < 0.05:
        return b"&" * rng.randint(1, 5000)
    if roll < 0.1:
        return "&".join(f"f{i}=x" for i in range(rng.randint(90, 1200))).encode()
    if roll < 0.13:
        return os.urandom(rng.randint(1, 4000))
    pairs = []
    if ctx.csrf and rng.random() < 0.8:
        pairs.append(("csrf_token", rng.choice(ctx.csrf)))
    for name in rng.sample(FORM_FIELDS, rng.randint(0, 4)):
        pairs.append((name, str(_value(rng, ctx))))
    if rng.random() < 0.3:
        pairs += [("username", rng.choice(["fuzzer", "alice", "x"])), ("password", "fuzzer pw 1")]
    return _encode(pairs).encode()


def make_request(rng: random.Random, ctx: Context) -> tuple[str, str, dict[str, str], bytes]:
    """One request: method, path (with query), headers, body."""
    roll = rng.random()
    if roll < 0.1:  # a well-formed issue, so later requests have live sessions to work on
        owner = {"user_id": rng.choice(["alice", "fuzzer"])} if rng.random() < 0.7 else {}
        body = json.dumps({**owner, "data": _value(rng, ctx)}).encode("utf-8", "surrogatepass")
        headers = {"authorization": "Bearer " + ctx.keys["issue"]}
        return "POST", "/v1/sessions", {**headers, "content-type": "application/json"}, body
    if roll < 0.35:
        method, path = "POST", rng.choice(API_POSTS)
    elif roll < 0.45:
        user = rng.choice(["alice", "fuzzer", quote(_text(rng)[:30], errors="surrogatepass")])
        method, path = rng.choice(
            [("GET", f"/v1/users/{user}/sessions"), ("POST", f"/v1/users/{user}/revoke")]
        )
    elif roll < 0.5:
        sid = rng.choice(ctx.session_ids) if ctx.session_ids else "s" + str(rng.random())
        method, path = rng.choice(["GET", "DELETE"]), f"/v1/sessions/{sid}"
    elif roll < 0.7:
        method, path = "GET", rng.choice(DEMO_GETS + ADMIN_GETS + GETS)
    elif roll < 0.92:
        method, path = "POST", rng.choice(DEMO_POSTS + ADMIN_POSTS)
    else:
        method, path = rng.choice(METHODS), rng.choice([*GETS, *API_POSTS, "/nope", "/demo/x"])
    if ctx.session_ids and rng.random() < 0.05:
        target = rng.choice(ctx.session_ids)
        method, path = "POST", rng.choice([f"/demo/devices/{target}/sign-out"])
        path = rng.choice([path, f"/admin/sessions/{target}/revoke", f"/admin/sessions/{target}"])
        method = "GET" if path.endswith(target) else "POST"
    if rng.random() < 0.1:
        path += "?" + _encode([("msg", _text(rng)), ("next", "cart"), ("user", _text(rng))])
    headers = _headers(rng, ctx, path)
    body = b""
    if method in ("POST", "PUT", "PATCH", "DELETE") and rng.random() < 0.95:
        form = path.startswith(("/demo", "/admin"))
        body = _form_body(rng, ctx) if form else _json_body(rng, ctx)
        if rng.random() < 0.02:
            body += b"x" * rng.randint(60_000, 200_000)
        headers["content-type"] = _content_type(rng, form)
    return method, path, headers, body


def _encode(pairs: list[tuple[str, str]]) -> str:
    return urlencode(pairs, encoding="utf-8", errors="surrogatepass")


def _content_type(rng: random.Random, form: bool) -> str:
    if rng.random() < 0.85:
        return "application/x-www-form-urlencoded" if form else "application/json"
    return rng.choice(
        [
            "text/plain",
            "multipart/form-data",
            "application/json; charset=utf-8",
            "application/x-www-form-urlencoded; charset=latin-1",
            "",
            "x/\x7f",
        ]
    )


def _headers(rng: random.Random, ctx: Context, path: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    if path.startswith(("/v1", "/metrics")) or rng.random() < 0.1:
        roll = rng.random()
        if roll < 0.75:
            headers["authorization"] = "Bearer " + ctx.keys[rng.choice(list(ctx.keys))]
        elif roll < 0.9:
            headers["authorization"] = rng.choice(["Bearer ", "Basic x", "Bearer swk_x"])
    if rng.random() < 0.8:
        jar = [f"{k}={v}" for k, v in ctx.cookies.items() if rng.random() < 0.8]
        if rng.random() < 0.1:
            jar.append(f"__Host-shop={rng.choice(ctx.tokens) if ctx.tokens else 'sw1_x'}")
        headers["cookie"] = "; ".join(jar)
    if rng.random() < 0.9:
        headers["sec-fetch-site"] = rng.choice(["same-origin"] * 8 + ["cross-site", "none", ""])
    if ctx.csrf and rng.random() < 0.15:
        headers["x-csrf-token"] = rng.choice(ctx.csrf)
    headers["x-forwarded-for"] = f"198.18.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if rng.random() < 0.05:
        headers["x-filler"] = "a" * rng.choice([10, 1000, 20_000])
    if rng.random() < 0.02:
        headers.update({f"x-h{i}": "1" for i in range(rng.randint(90, 120))})
    return headers


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


def run(client: httpx.Client, ctx: Context, rng: random.Random, count: int, tally: Tally) -> None:
    """Send ``count`` generated requests; record every status, and every 5xx in detail."""
    for _ in range(count):
        method, path, headers, body = make_request(rng, ctx)
        try:
            response = client.request(method, path, headers=headers, content=body)
        except httpx.LocalProtocolError:  # the client would not send it (a header h11 refuses)
            tally.statuses[-1] += 1
            continue
        except httpx.TransportError as exc:  # a connection the server closed (413, 431)
            tally.statuses[0] += 1
            if not isinstance(exc, httpx.RemoteProtocolError | httpx.WriteError):
                tally.errors.append(f"{method} {path}: {type(exc).__name__}")
            continue
        tally.statuses[response.status_code] += 1
        if response.status_code >= 500:
            tally.errors.append(f"{method} {path} -> {response.status_code}: {response.text[:200]}")
        if method != "HEAD":
            ctx.learn(response)


# -- the long run by hand --------------------------------------------------------------------


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def _cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "sessionward", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=10_000)
    parser.add_argument("--max-growth-mib", type=float, default=20.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sessionward-fuzz-"))
    db = folder / "fuzz.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    keys = {
        s: _cli("api-keys", "create", "--scope", s, "--store", str(db), env=env)
        for s in ("validate", "issue", "admin")
    }
    port = 20000 + os.getpid() % 20000
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sessionward",
            "serve",
            "--store",
            str(db),
            "--port",
            str(port),
            "--trusted-proxy",
            "127.0.0.1",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        ctx, tally, rng = Context(keys), Tally(), random.Random(args.seed)  # noqa: S311
        started = time.monotonic()
        with httpx.Client(base_url=base, timeout=30) as client:
            run(client, ctx, rng, min(args.warmup, args.requests), tally)
            warm = _rss_mib(server.pid)
            run(client, ctx, rng, max(0, args.requests - args.warmup), tally)
        end = _rss_mib(server.pid)
        seconds = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(15)
    rate = tally.total / seconds
    print(f"requests {tally.total} in {seconds:.0f} s ({rate:.0f}/s), seed {args.seed}")
    print("statuses " + ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses.items())))
    print("  (-1: refused by the client library, never sent; 0: connection closed by the server)")
    print(f"server RSS after {args.warmup} requests {warm:.1f} MiB, at the end {end:.1f} MiB")
    print(f"server errors {len(tally.errors)}")
    for line in tally.errors[:20]:
        print("  " + line)
    return 1 if tally.errors or end - warm > args.max_growth_mib else 0


if __name__ == "__main__":
    raise SystemExit(main())
