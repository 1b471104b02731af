"""JWT benchmark: sessionward's strict verifier against PyJWT, joserfc and the raw primitives.

Run by hand (not in CI):

    .venv/bin/pip install -e '.[jwt,bench]' joserfc
    .venv/bin/python benchmarks/bench_jwt.py [--rounds 11]

Method: every benchmark is a calibrated loop (~40 ms a batch, GC off); each round runs one
batch of every benchmark, interleaved, so machine noise hits all rows alike. Prints the median
and min-max over the rounds and the ratios that have targets, all from the same run:

* HS256 verify at least 3x faster than PyJWT ``decode`` (with the same checks: algorithm,
  audience, issuer, required claims, leeway);
* ES256 verify at most 1.15x the raw ``cryptography`` ECDSA P-256 verify of the same signing
  input (DER signature, SHA-256 over the same bytes);
* cached repeat verify at most 2 microseconds.

``--clock cpu`` (the default) times each batch with the thread's CPU clock, so a machine shared
with other jobs distorts the figures less (their cache pollution still shows).

Every token is checked to verify under each contender before timing starts.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hmac
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from sessionward.clock import SystemClock
from sessionward.core.token import new_session_id
from sessionward.jwt import AccessTokenIssuer, AccessTokenVerifier, Key, KeySet

Bench = Callable[[], object]
ISS = "https://auth.example.com"
AUD = "https://api.example.com"


def calibrate(fn: Bench, target: float = 0.04) -> int:
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= target / 4:
            return max(1, int(n * target / elapsed))
        n *= 2


def run(
    benches: dict[str, Bench], rounds: int, timer: Callable[[], float] = time.perf_counter
) -> dict[str, list[float]]:
    loops = {name: calibrate(fn) for name, fn in benches.items()}
    results: dict[str, list[float]] = {name: [] for name in benches}
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in benches.items():
                n = loops[name]
                start = timer()
                for _ in range(n):
                    fn()
                results[name].append((timer() - start) / n * 1e6)
    finally:
        gc.enable()
    return results


def _pyjwt_key(key: Key, *, private: bool = False) -> Any:
    if key.symmetric:
        return base64.urlsafe_b64decode(key.private_jwk()["k"] + "==")
    if private:
        return serialization.load_pem_private_key(key.private_pem(), password=None)
    return serialization.load_pem_public_key(key.public_pem())


def _joserfc(token: str, key: Key) -> Bench | None:
    try:
        from joserfc import jwt as jose_jwt
        from joserfc.jwk import ECKey, OctKey, OKPKey
    except ImportError:  # pragma: no cover - optional contender
        return None
    classes: dict[str, Any] = {"EC": ECKey, "OKP": OKPKey, "oct": OctKey}
    jwk = key.private_jwk() if key.symmetric else key.public_jwk()
    jose_key = classes[key.kty].import_key(jwk)
    warnings.simplefilter("ignore")  # joserfc warns on the name "EdDSA" (RFC 9864)
    jose_jwt.decode(token, jose_key, algorithms=[key.alg])
    return lambda: jose_jwt.decode(token, jose_key, algorithms=[key.alg])


def benches_for(alg: str) -> dict[str, Bench]:
    clock = SystemClock()
    keyset = KeySet.generate(alg, now=clock.now())
    key = keyset.signing_key
    issuer = AccessTokenIssuer(keyset, issuer=ISS, audience=AUD, clock=clock, lifetime=900)
    issued = issuer.issue(
        subject="user-12345", session_id=new_session_id(), scopes=["read", "write"]
    )
    token = issued.token
    uncached = AccessTokenVerifier(keyset, issuer=ISS, audience=AUD, clock=clock, cache_size=0)
    cached = AccessTokenVerifier(keyset, issuer=ISS, audience=AUD, clock=clock)
    public = _pyjwt_key(key)
    options: Any = {"require": ["exp", "iat", "iss", "aud", "sub", "jti"]}

    def pyjwt_decode() -> dict[str, Any]:
        return pyjwt.decode(
            token, public, algorithms=[alg], audience=AUD, issuer=ISS, leeway=60, options=options
        )

    assert uncached.verify(token) == cached.verify(token)
    assert pyjwt_decode()["jti"] == issued.claims.jti
    benches: dict[str, Bench] = {
        f"{alg} sessionward verify": lambda: uncached.verify(token),
        f"{alg} sessionward verify, cached": lambda: cached.verify(token),
        f"{alg} PyJWT decode": pyjwt_decode,
    }
    jose = _joserfc(token, key)
    if jose is not None:
        benches[f"{alg} joserfc decode"] = jose
    signing_input = token.rsplit(".", 1)[0].encode("ascii")
    raw_signature = base64.urlsafe_b64decode(token.rsplit(".", 1)[1] + "==")
    if alg == "ES256":
        ec_public = public
        der = encode_dss_signature(
            int.from_bytes(raw_signature[:32], "big"), int.from_bytes(raw_signature[32:], "big")
        )
        ecdsa = ec.ECDSA(hashes.SHA256())
        ec_public.verify(der, signing_input, ecdsa)
        benches["ES256 raw cryptography ECDSA verify"] = lambda: ec_public.verify(
            der, signing_input, ecdsa
        )
    elif alg == "EdDSA":
        ed_public = public
        ed_public.verify(raw_signature, signing_input)
        benches["EdDSA raw cryptography Ed25519 verify"] = lambda: ed_public.verify(
            raw_signature, signing_input
        )
    else:
        secret = _pyjwt_key(key)
        benches["HS256 raw hmac.digest + compare"] = lambda: hmac.compare_digest(
            hmac.digest(secret, signing_input, "sha256"), raw_signature
        )
    private = _pyjwt_key(key, private=True)
    body = dict(issued.claims.claims)
    head = {"kid": key.kid, "typ": "at+jwt"}
    benches[f"{alg} sessionward issue"] = lambda: issuer.issue(
        subject="user-12345", session_id=issued.claims.sid, scopes=["read", "write"]
    )
    benches[f"{alg} PyJWT encode"] = lambda: pyjwt.encode(
        body, private, algorithm=alg, headers=head
    )
    return benches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--algs", default="HS256,ES256,EdDSA")
    parser.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="cpu: this thread's CPU time (time.thread_time), which time spent descheduled by"
        " other jobs does not inflate; wall: time.perf_counter",
    )
    args = parser.parse_args()
    benches: dict[str, Bench] = {}
    for alg in args.algs.split(","):
        benches.update(benches_for(alg))
    timer = time.thread_time if args.clock == "cpu" else time.perf_counter
    results = run(benches, args.rounds, timer)
    print(f"{args.rounds} interleaved rounds, {args.clock} time per operation")
    median = {name: statistics.median(times) for name, times in results.items()}
    width = max(map(len, results))
    print(f"{'benchmark':{width}}  median µs   min-max µs")
    for name, times in results.items():
        print(f"{name:{width}}  {median[name]:9.2f}   {min(times):.2f}-{max(times):.2f}")
    print()
    checks = []
    if "HS256 PyJWT decode" in median:
        ratio = median["HS256 PyJWT decode"] / median["HS256 sessionward verify"]
        checks.append(("HS256: PyJWT decode / sessionward verify", ratio, ">= 3", ratio >= 3))
    if "ES256 raw cryptography ECDSA verify" in median:
        ratio = median["ES256 sessionward verify"] / median["ES256 raw cryptography ECDSA verify"]
        checks.append(
            ("ES256: sessionward verify / raw ECDSA verify", ratio, "<= 1.15", ratio <= 1.15)
        )
    for alg in args.algs.split(","):
        value = median[f"{alg} sessionward verify, cached"]
        checks.append((f"{alg}: cached repeat verify (µs)", value, "<= 2", value <= 2))
    for label, value, target, ok in checks:
        print(f"{label:48} {value:7.3f}  target {target:8} {'ok' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
