"""Receiver benchmark: what the identity-provider link adds to a login, and what one
back-channel logout costs, on SQLite.

Run by hand (not in CI):

    .venv/bin/python benchmarks/bench_signals.py [--rounds 5] [--n 300]

Prints, per operation, the median over the rounds of the mean time per call (wall clock):

* ``issue`` alone and ``issue`` + ``IdpLinks.remember`` (one link with ``sid`` and ``sub``:
  two index records written in the same store);
* ``BackchannelLogout.handle`` for a valid logout token (ES256 and RS256), which verifies the
  token, spends its ``jti`` (one create-only write), reads the index and the user's sessions
  and revokes one session;
* ``handle`` for a token naming an unknown ``kid`` (refused without a key fetch: the refetch
  interval has not passed), the cost of a flood of forged tokens.

The issuer's JWK set comes through httpx's in-process ``MockTransport`` (it is fetched once,
before timing). Tokens are signed by PyJWT before timing.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sessionward import SessionManager
from sessionward.signals.claims import BACKCHANNEL_LOGOUT
from sessionward.signals.receivers import BackchannelLogout, IdpLink, IdpLinks, KeySource
from sessionward.stores import SQLiteStore

ISS = "https://idp.example"
CLIENT = "shop"
FORM = "application/x-www-form-urlencoded"


def _jwks(keys: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    out = []
    for kid, (alg, private) in keys.items():
        jwk = json.loads(pyjwt.get_algorithm_by_name(alg).to_jwk(private.public_key()))
        out.append({**jwk, "kid": kid, "alg": alg})
    return {"keys": out}


def _mean(fn: Callable[[int], object], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n


def _logout_bodies(alg: str, kid: str, private: Any, n: int) -> list[bytes]:
    now = int(time.time())
    out = []
    for i in range(n):
        claims = {
            "iss": ISS, "aud": CLIENT, "iat": now, "jti": secrets.token_hex(8),
            "events": {BACKCHANNEL_LOGOUT: {}}, "sid": f"{kid}-{i}",
        }  # fmt: skip
        token = pyjwt.encode(claims, private, algorithm=alg, headers={"kid": kid})
        out.append(urlencode({"logout_token": token}).encode())
    return out


def _post(receiver: BackchannelLogout, bodies: list[bytes], i: int) -> None:
    receiver.handle(bodies[i], FORM)


def one_round(path: str, client: httpx.Client, keys: dict[str, Any], n: int) -> dict[str, float]:
    manager = SessionManager(SQLiteStore(path))
    links = IdpLinks(manager)
    source = KeySource(ISS, jwks_url=f"{ISS}/jwks.json", client=client)
    receiver = BackchannelLogout(links, source, client_id=CLIENT)
    out: dict[str, float] = {}

    def login(i: int, tag: str) -> None:
        link = IdpLink(ISS, f"{tag}-{i}", f"sub-{tag}-{i}")
        links.remember(manager.issue(f"{tag}-{i}", data=link.data()))

    out["issue"] = _mean(lambda i: manager.issue(f"plain-{i}", data={"cart": 1}), n)
    out["issue + remember"] = _mean(lambda i: login(i, "a"), n)
    for kid, (alg, private) in keys.items():
        for i in range(n + 1):
            login(i, kid)
        bodies = _logout_bodies(alg, kid, private, n + 1)
        if receiver.handle(bodies[n], FORM).status != 200:  # fetches the keys, before timing
            raise SystemExit("a valid logout token was refused")
        out[f"back-channel logout {alg}"] = _mean(partial(_post, receiver, bodies), n)
    alg, private = keys["es"]
    forged_token = pyjwt.encode({"iss": ISS}, private, algorithm=alg, headers={"kid": "unknown"})
    forged = urlencode({"logout_token": forged_token}).encode()
    fetches = source.fetches
    out["refused: unknown kid"] = _mean(lambda i: receiver.handle(forged, FORM), n)
    if source.fetches - fetches > 1:
        raise SystemExit("unknown kids made the source fetch more than once")
    manager.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    logging.getLogger("sessionward.signals").setLevel(logging.ERROR)  # one line per refusal
    keys: dict[str, Any] = {
        "es": ("ES256", ec.generate_private_key(ec.SECP256R1())),
        "rs": ("RS256", rsa.generate_private_key(65537, 2048)),
    }
    document = _jwks(keys)
    client = httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=document))
    )
    directory = Path(tempfile.mkdtemp(prefix="sw-bench-signals-"))
    results: dict[str, list[float]] = {}
    for round_ in range(args.rounds):
        for name, value in one_round(
            str(directory / f"r{round_}.db"), client, keys, args.n
        ).items():
            results.setdefault(name, []).append(value)
    for name, values in results.items():
        print(f"{name:32s} {statistics.median(values) * 1e6:9.1f} us")
    base, linked = (statistics.median(results[k]) for k in ("issue", "issue + remember"))
    print(f"{'remember adds to issue':32s} {(linked / base - 1) * 100:8.0f} %")


if __name__ == "__main__":
    main()
