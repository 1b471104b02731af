"""What showing the risk engine's work costs: the service's validate answer with the risk
fields, and reading a stored session as people see it (device, network, decisions) for the
admin and "Your devices" pages and the API's session listing. In one run, by hand:

    .venv/bin/pip install -e '.[risk,service]'
    .venv/bin/python benchmarks/bench_risk_views.py [--rounds 7]

Rows: the validate answer of a served request without and with its ``risk`` object (the
encoded session JSON is memoized, as in the service; the risk object is remembered for the
verdict the engine reuses while the context is unchanged, and encoded for a new one);
``view_of`` of a scored record (its JSON parsed) and of a plain context history (its newest
entry enriched, the enricher's caches warm), read again (remembered by the stored text) and
for the first time. Calibrated batches, GC off, medians of the rounds (min-max).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

from sessionward import MemoryStore, RequestContext, SessionManager
from sessionward.core.record import SessionRecord
from sessionward.manager.risk import RiskAssessor
from sessionward.manager.risk_view import view_of
from sessionward.service.api import SessionJsonMemo
from sessionward.service.api_risk import risk_suffix
from sessionward.testing import FakeClock

SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.4 Safari/605.1.15"
)
HOME = RequestContext(ip="81.2.69.160", user_agent=SAFARI, accept_language="en-GB")
GERMAN = RequestContext(ip="86.128.9.1", user_agent=SAFARI, accept_language="de-DE")


_SPACES = iter(range(1, 10**9))


def fresh(record: SessionRecord) -> SessionRecord:
    """The same stored history as a text not seen before (trailing spaces): a first read."""
    return record._replace(context=record.context + " " * (next(_SPACES) % 4096))


def per_call(fn: Callable[[], object], budget: float = 0.04) -> float:
    """Seconds per call: a batch sized to ``budget`` seconds, timed once."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        took = time.perf_counter() - start
        if took >= budget:
            return took / n
        n *= 2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds

    clock = FakeClock()
    scored = SessionManager(MemoryStore(), clock=clock, risk=RiskAssessor())
    session = scored.issue("alice", context=HOME)
    clock.advance(600)
    served = scored.validate(session.token, context=GERMAN)  # a logged request
    assert served.risk is not None
    verdict = served.risk
    memo = SessionJsonMemo()
    memo.encoded(served.record)
    plain = SessionManager(MemoryStore(), clock=clock)
    plain_record = plain.issue("bob", context=HOME).record
    view_of(plain_record)  # the enricher's tables loaded, its caches warm

    rows: dict[str, Callable[[], object]] = {
        "validate answer, no risk object": lambda: memo.encoded(served.record) + b"}",
        "validate answer, with the risk object": lambda: (
            memo.encoded(served.record) + risk_suffix(verdict) + b"}"
        ),
        "validate answer, risk object first encoded": lambda: (
            memo.encoded(served.record) + risk_suffix(replace(verdict)) + b"}"
        ),
        "view_of, scored record, again": lambda: view_of(served.record),
        "view_of, scored record, first read": lambda: view_of(fresh(served.record)),
        "view_of, plain history, again": lambda: view_of(plain_record),
        "view_of, plain history, first read": lambda: view_of(fresh(plain_record)),
    }
    results: dict[str, list[float]] = {name: [] for name in rows}
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in rows.items():
                results[name].append(per_call(fn) * 1e6)
    finally:
        gc.enable()
    print(f"{'row':<44} {'median µs':>10} {'min-max':>16}")
    for name, values in results.items():
        low, high = min(values), max(values)
        print(f"{name:<44} {statistics.median(values):>10.2f} {low:>7.2f}-{high:<8.2f}")


if __name__ == "__main__":
    main()
