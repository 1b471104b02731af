"""Shared Signals transmitter costs, on SQLite: signing one SET, turning logged events into
queued SETs for a poll stream, and polling with acknowledgements.

    .venv/bin/python benchmarks/bench_ssf.py [--events 2000] [--alg ES256] [--subjects 0]

Appends ``--events`` session revocations to a SQLite event log, creates a poll stream on the
same file, then polls 256 at a time, acknowledging each page with the next poll, until the
queue is empty; prints the cost of one signature, the fill rate (log entries read, mapped to
CAEP, signed and queued, per second) and the poll rate (SETs answered and acknowledged per
second). Compare the signing figure with PyJWT's on the same claims. ``--subjects N`` first
removes N subjects from the stream (none of the events' users), so each event is also matched
against N listed subjects before it is signed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jwt as pyjwt

from sessionward.core.events import SessionRevoked
from sessionward.jwt import KeySet
from sessionward.signals.caep import SESSION_REVOKED
from sessionward.signals.set import set_claims, sign_set
from sessionward.signals.transmitter import Transmitter
from sessionward.stores.eventlog.sqlite import SQLiteEventLog
from sessionward.stores.ssf import SQLiteStreamStore


def _per_call(run: object, seconds: float = 1.0) -> float:
    assert callable(run)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        run()
        count += 1
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--alg", default="ES256", choices=["ES256", "EdDSA"])
    parser.add_argument(
        "--subjects", type=int, default=0,
        help="subjects removed from the stream first (none of the events' users): each event"
        " is matched against all of them",
    )  # fmt: skip
    args = parser.parse_args()
    keys = KeySet.generate(args.alg, now=time.time())
    claims = set_claims(
        issuer="https://sessions.example", audience="shop", jti="0" * 32, iat=int(time.time()),
        event_type=SESSION_REVOKED, event={"event_timestamp": 1},
        sub_id={"format": "opaque", "id": "AAAAAAAAAAAAAAAA"},
    )  # fmt: skip
    ours = _per_call(lambda: sign_set(claims, keys))
    pem = keys.signing_key.private_pem()
    theirs = _per_call(lambda: pyjwt.encode(claims, pem, algorithm=args.alg))
    print(f"sign one SET ({args.alg}): {ours * 1e6:.0f} us (PyJWT: {theirs * 1e6:.0f} us)")

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s.db"
        log = SQLiteEventLog(str(path))
        clock = [time.time()]
        transmitter = Transmitter(
            issuer="https://sessions.example", keys=keys, streams=SQLiteStreamStore(path),
            log=log, now=lambda: clock[0], poll_url="https://sessions.example/ssf/poll/",
        )  # fmt: skip
        stream = transmitter.create("shop", {})
        for i in range(args.subjects):
            subject = {"format": "iss_sub", "iss": "https://sessions.example", "sub": f"x{i}"}
            transmitter.remove_subject("shop", stream.stream_id, subject)
        clock[0] += 1
        entries = [
            {**SessionRevoked(f"s{i:015d}", f"u{i}", clock[0], reason="logout").to_dict(),
             "application": "shop"}
            for i in range(args.events)
        ]  # fmt: skip
        for start in range(0, len(entries), 500):
            log.append(entries[start : start + 500])
        started, queued = time.perf_counter(), 0
        while filled := transmitter.fill(stream):  # at most 1,000 log entries per call
            queued += filled
        fill = time.perf_counter() - started
        print(f"fill ({args.subjects} subjects listed): {queued} SETs from {args.events} entries"
              f" in {fill:.2f} s"
              f" ({args.events / fill:.0f} entries/s)")  # fmt: skip
        ack: list[str] = []
        started, delivered = time.perf_counter(), 0
        while True:
            sets, _ = transmitter.poll("shop", stream.stream_id, max_events=256, ack=ack)
            if not sets:
                break
            delivered += len(sets)
            ack = list(sets)
        polled = time.perf_counter() - started
        print(f"poll: {delivered} SETs answered and acknowledged in {polled:.2f} s"
              f" ({delivered / polled:.0f} SETs/s, 256 per poll)")  # fmt: skip
        transmitter.close()
        log.close()


if __name__ == "__main__":
    main()
