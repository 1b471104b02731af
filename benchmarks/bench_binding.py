"""Key-binding benchmark: what a DBSC refresh and a DPoP check cost next to their floors.

Run by hand (not in CI):

    .venv/bin/python benchmarks/bench_binding.py [--rounds 11] [--stores memory,sqlite]

Targets, each a ratio from the same run:

* a DBSC refresh (the session's validation with its bound-cookie check, as the adapters
  run it on the refresh request, the proof's ES256 check against the stored key,
  the challenge spent, a new bound cookie and the next challenge written back) at most 1.3x
  one raw ES256 verify plus one store write (``replace`` of the same record); the session's
  validation it includes (a store read the floor does not count) has a row of its own, timed
  alone, so warmer than inside the refresh;
* a DPoP check (the proof's parse and ES256 check with its embedded key, method, URL, ``iat``,
  ``ath``, the ``cnf.jkt`` match, and its ``jti`` spent in the store) at most 1.3x one raw
  ES256 verify plus one replay-cache write (``add`` of a replay record).

Method: each operation gets inputs prepared outside the timed span (a client signs its proof
before it sends it, so signing is not the server's cost); only the server-side call is timed,
with the thread's CPU clock by default. Rounds interleave the rows so machine noise hits all
alike; the median over rounds is reported, with min-max.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import itertools
import json
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from sessionward import Policy, SessionManager
from sessionward.core import binding as states
from sessionward.core.binding import BindingPolicy
from sessionward.core.dpop import DpopPolicy
from sessionward.manager._sync.binding import Binder, CookieCheck
from sessionward.stores import MemoryStore, SQLiteStore
from sessionward.testing import FakeClock

URL = "https://api.example.com/orders"
ACCESS_TOKEN = "an-access-token"  # noqa: S105 - what the proofs' ath names
ECDSA = ec.ECDSA(hashes.SHA256())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Device:
    """The client: an ES256 key that signs DBSC and DPoP JWTs (outside the timed span)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        numbers = self.key.public_key().public_numbers()
        self.jwk = {
            "crv": "P-256",
            "kty": "EC",
            "x": b64(numbers.x.to_bytes(32, "big")),
            "y": b64(numbers.y.to_bytes(32, "big")),
        }
        canonical = json.dumps(self.jwk, separators=(",", ":"), sort_keys=True).encode()
        self.jkt = b64(hashlib.sha256(canonical).digest())

    def sign(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        head = b64(json.dumps(header, separators=(",", ":")).encode())
        body = b64(json.dumps(claims, separators=(",", ":")).encode())
        r, s = decode_dss_signature(self.key.sign(f"{head}.{body}".encode(), ECDSA))
        return f"{head}.{body}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


Op = Callable[[], Callable[[], object]]  # prepare (untimed) -> the call to time


def make_store(kind: str, directory: Path) -> Any:
    if kind == "memory":
        return MemoryStore()
    return SQLiteStore(str(directory / f"{secrets.token_hex(4)}.db"))


def operations(kind: str, directory: Path) -> dict[str, Op]:
    clock = FakeClock(time.time())
    manager = SessionManager(
        make_store(kind, directory), policy=Policy(idle_timeout=3600), clock=clock
    )
    binder = Binder(manager, BindingPolicy(cookie_lifetime=300))
    device = Device()
    state, challenge, authorization = states.offer(clock.now())
    issued = manager.issue(
        "user-12345", data={states.BINDING_KEY: states.encode(state), "cart": ["tea"]}
    )
    token = issued.token
    assert token is not None
    registration = device.sign(
        {"alg": "ES256", "jwk": device.jwk, "typ": "dbsc+jwt"},
        {"jti": challenge, "authorization": authorization},
    )
    sid = binder.register(issued, registration).sid
    asked = binder.refresh(manager.validate(token), sid, None)
    pending = {"challenge": asked.challenge}

    def dbsc_refresh() -> Callable[[], object]:
        proof = device.sign({"alg": "ES256", "typ": "dbsc+jwt"}, {"jti": pending["challenge"]})

        def call() -> object:
            # As the adapters do: the request's validation checks the bound cookie (a
            # refresh request carries none once it has expired), then the endpoint refreshes
            # the session it returned.
            session = manager.validate(token, proof=CookieCheck(binder, None))
            result = binder.refresh(session, sid, proof)
            pending["challenge"] = result.challenge
            return result

        return call

    dpop = DpopPolicy()

    def dpop_check() -> Callable[[], object]:
        claims = {
            "jti": secrets.token_urlsafe(16),
            "htm": "GET",
            "htu": URL,
            "iat": int(clock.now()),
            "ath": b64(hashlib.sha256(ACCESS_TOKEN.encode()).digest()),
        }
        proof = device.sign({"typ": "dpop+jwt", "alg": "ES256", "jwk": device.jwk}, claims)
        return lambda: binder.check_dpop(
            dpop, proof, method="GET", url=URL, access_token=ACCESS_TOKEN, jkt=device.jkt
        )

    def validate() -> Callable[[], object]:
        fresh = Binder(manager, binder.policy)  # has read nothing yet, as in a refresh
        return lambda: manager.validate(token, proof=CookieCheck(fresh, None))

    public = device.key.public_key()

    def es256_verify() -> Callable[[], object]:
        data = secrets.token_bytes(200)
        signature = device.key.sign(data, ECDSA)
        return lambda: public.verify(signature, data, ECDSA)

    store = manager.store
    bound = store.get(issued.id)
    assert bound is not None
    twin = manager.issue("user-67890", data=json.loads(bound.data))  # same size, own versions
    current = {"record": store.get(twin.id)}

    def store_write() -> Callable[[], object]:
        record = current["record"]
        assert record is not None
        updated = record._replace(version=record.version + 1, last_seen=record.last_seen + 1)
        current["record"] = updated
        return lambda: store.replace(updated, expected_version=record.version)

    counter = itertools.count()

    def replay_write() -> Callable[[], object]:
        record = states.replay_record(
            "dpop", f"bench-{next(counter)}", clock.now() + 65, clock.now()
        )
        return lambda: store.add(record)

    for check in (dbsc_refresh, dpop_check, es256_verify, store_write, replay_write, validate):
        check()()  # each works before it is timed
    return {
        f"{kind}: DBSC refresh": dbsc_refresh,
        f"{kind}: DPoP check": dpop_check,
        f"{kind}: raw ES256 verify": es256_verify,
        f"{kind}: store write (replace)": store_write,
        f"{kind}: replay-cache write (add)": replay_write,
        f"{kind}: session validation (in the refresh)": validate,
    }


def measure(op: Op, n: int, timer: Callable[[], float]) -> float:
    total = 0.0
    for _ in range(n):
        call = op()
        start = timer()
        call()
        total += timer() - start
    return total / n * 1e6


def run(
    ops: dict[str, Op], rounds: int, per_round: int, timer: Callable[[], float]
) -> Iterator[tuple[str, list[float]]]:
    results: dict[str, list[float]] = {name: [] for name in ops}
    gc.disable()
    try:
        for _ in range(rounds):
            for name, op in ops.items():
                results[name].append(measure(op, per_round, timer))
    finally:
        gc.enable()
    yield from results.items()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--per-round", type=int, default=200)
    parser.add_argument("--stores", default="memory,sqlite")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    parser.add_argument(
        "--calls",
        type=int,
        metavar="N",
        help="no timing: prepare and call the row named by --row N times (for an instruction"
        " counter such as valgrind's callgrind; the preparation, a client's signing, is"
        " counted too: subtract a run with --calls 0 or read the callee's inclusive count)",
    )
    parser.add_argument("--row", default="memory: DBSC refresh")
    args = parser.parse_args()
    if args.calls is not None:
        with tempfile.TemporaryDirectory() as directory:
            row = operations(args.row.partition(":")[0], Path(directory))[args.row]
            gc.disable()  # as in the timed runs
            for _ in range(args.calls):
                row()()
        return
    timer = time.thread_time if args.clock == "cpu" else time.perf_counter
    with tempfile.TemporaryDirectory() as directory:
        ops: dict[str, Op] = {}
        for kind in args.stores.split(","):
            ops.update(operations(kind, Path(directory)))
        results = dict(run(ops, args.rounds, args.per_round, timer))
    median = {name: statistics.median(times) for name, times in results.items()}
    width = max(map(len, results))
    print(f"{args.rounds} interleaved rounds of {args.per_round}, {args.clock} time per operation")
    print(f"{'operation':{width}}  median µs   min-max µs")
    for name, times in results.items():
        print(f"{name:{width}}  {median[name]:9.1f}   {min(times):.1f}-{max(times):.1f}")
    print()
    failed = False
    for kind in args.stores.split(","):
        verify = median[f"{kind}: raw ES256 verify"]
        for op, write in (
            ("DBSC refresh", "store write (replace)"),
            ("DPoP check", "replay-cache write (add)"),
        ):
            ratio = median[f"{kind}: {op}"] / (verify + median[f"{kind}: {write}"])
            ok = ratio <= 1.3
            failed |= not ok
            verdict = "ok" if ok else "MISSED"
            print(f"{kind}: {op} / (ES256 verify + {write}) = {ratio:.2f}  (<= 1.3: {verdict})")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
