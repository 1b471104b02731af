"""Core benchmark: sessionward validate/issue against the peers and the floor, in one run.

Run by hand (not in CI):

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/bench_core.py [--rounds 11] [--sessions 100000]

Method: every benchmark is a calibrated loop (~40 ms a batch, GC off); each round runs one
batch of every benchmark, interleaved, so machine noise hits all rows alike. Reads go over all
the stored keys in a shuffled order (never one hot row), with default settings. Prints the
median and min-max over the rounds, and ratios to the floor measured in the same run.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import itertools
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sessionward import MemoryStore, SessionManager, SQLiteStore
from sessionward.core.events import EventBus

Bench = Callable[[], object]
T = TypeVar("T")


def shuffled_cycle(items: list[T]) -> Callable[[], T]:
    """A function returning the items one after another in a fixed random order, forever."""
    order = list(items)
    random.Random(7).shuffle(order)
    return itertools.cycle(order).__next__


def calibrate(fn: Bench, target: float = 0.04) -> int:
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - start >= target / 4:
            return max(1, int(n * target / (time.perf_counter() - start)))
        n *= 2


def run(benches: dict[str, Bench], rounds: int) -> dict[str, list[float]]:
    loops = {name: calibrate(fn) for name, fn in benches.items()}
    results: dict[str, list[float]] = {name: [] for name in benches}
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in benches.items():
                n = loops[name]
                start = time.perf_counter()
                for _ in range(n):
                    fn()
                results[name].append((time.perf_counter() - start) / n * 1e6)
    finally:
        gc.enable()
    return results


# -- sessionward --------------------------------------------------------------------------


def sessionward_benches(workdir: Path, sessions: int) -> dict[str, Bench]:
    quiet = EventBus([])
    sqlite_manager = SessionManager(SQLiteStore(workdir / "sessionward.db"), events=quiet)
    memory_manager = SessionManager(MemoryStore(), events=quiet)
    sqlite_token = shuffled_cycle([sqlite_manager.issue(f"user{i}").token for i in range(sessions)])
    memory_token = shuffled_cycle(
        [memory_manager.issue(f"user{i}").token for i in range(min(sessions, 10_000))]
    )
    users = iter(range(10**12))
    return {
        "sessionward validate, SQLite file": lambda: sqlite_manager.validate(sqlite_token()),
        "sessionward validate, memory": lambda: memory_manager.validate(memory_token()),
        "sessionward issue, SQLite file": lambda: sqlite_manager.issue(f"n{next(users)}"),
        "sessionward issue, memory": lambda: memory_manager.issue(f"n{next(users)}"),
    }


# -- floors --------------------------------------------------------------------------------


def floor_benches(workdir: Path, sessions: int) -> dict[str, Bench]:
    """The least any store-backed check can do: hash the secret, look the row up by primary
    key in a WAL file with as many rows, compare the expiry."""
    conn = sqlite3.connect(workdir / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE s (id BLOB PRIMARY KEY, uid TEXT, exp REAL, data TEXT) WITHOUT ROWID"
    )
    secrets = [os.urandom(32) for _ in range(sessions)]
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO s VALUES (?, ?, ?, ?)",
        ((hashlib.sha256(s).digest(), f"user{i}", 4e9, "{}") for i, s in enumerate(secrets)),
    )
    conn.execute("COMMIT")
    secret = shuffled_cycle(secrets)
    now = time.time

    def floor() -> object:
        row = conn.execute(
            "SELECT uid, exp, data FROM s WHERE id = ?", (hashlib.sha256(secret()).digest(),)
        ).fetchone()
        return row[0] if row[1] > now() else None

    counter = iter(range(10**12))

    def insert() -> object:
        conn.execute(
            "INSERT INTO s VALUES (?, ?, ?, ?)", (os.urandom(32), f"n{next(counter)}", 4e9, "{}")
        )
        return None

    # The same session row sessionward writes, into a table of the same shape and size, with
    # no secondary index: what a plain INSERT of that row costs.
    from sessionward.stores._async.sqlite import _INSERT, SCHEMA

    same = sqlite3.connect(workdir / "same-row.db", isolation_level=None)
    same.execute("PRAGMA journal_mode=WAL")
    same.execute("PRAGMA synchronous=NORMAL")
    same.execute(next(s for s in SCHEMA if s.startswith("CREATE TABLE sessions ")))
    template = SessionManager(MemoryStore(), events=EventBus([])).issue("user0").record
    same.execute("BEGIN")
    same.executemany(
        _INSERT, (template._replace(id=f"{i:016x}", user_id=f"user{i}") for i in range(sessions))
    )
    same.execute("COMMIT")

    def insert_same_row() -> object:
        now = time.time()
        same.execute(
            _INSERT,
            template._replace(
                id=base64.urlsafe_b64encode(os.urandom(12)).decode(),
                created_at=now,
                last_seen=now,
                user_id=f"n{next(counter)}",
            ),
        )
        return None

    return {
        "floor: sha256 + SQLite PK SELECT (WAL file) + expiry": floor,
        "floor: plain WAL INSERT + commit (synchronous=NORMAL)": insert,
        "floor: plain WAL INSERT + commit, same session row": insert_same_row,
    }


# -- peers ----------------------------------------------------------------------------------


def django_benches(workdir: Path, sessions: int) -> dict[str, Bench]:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="bench-" + "x" * 50,
        INSTALLED_APPS=["django.contrib.sessions"],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": workdir / "django.db"}
        },
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "OPTIONS": {"MAX_ENTRIES": sessions + 10},
            }
        },
        USE_TZ=True,
    )
    django.setup()
    from django.contrib.sessions.backends.cache import SessionStore as CacheStore
    from django.contrib.sessions.backends.db import SessionStore as DbStore
    from django.contrib.sessions.models import Session as DjangoSession
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    payload = {
        "_auth_user_id": "1",
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": "ab" * 32,
    }
    encoded = DbStore().encode(payload)
    expire = timezone.now() + timezone.timedelta(days=1)
    keys = [f"{i:032x}" for i in range(sessions)]
    DjangoSession.objects.bulk_create(
        (DjangoSession(session_key=k, session_data=encoded, expire_date=expire) for k in keys),
        batch_size=5000,
    )
    db_key = shuffled_cycle(keys)
    cache_keys = []
    for _ in range(min(sessions, 10_000)):
        store = CacheStore()
        store.update(payload)
        store.save()
        cache_keys.append(store.session_key)
    cache_key = shuffled_cycle(cache_keys)
    assert DbStore(keys[0]).load() == payload
    assert CacheStore(cache_keys[0]).load() == payload
    return {
        "Django db backend load() (SQLite file)": lambda: DbStore(db_key()).load(),
        "Django cache backend load() (locmem)": lambda: CacheStore(cache_key()).load(),
    }


def starlette_benches() -> dict[str, Bench]:
    """What starlette.middleware.sessions.SessionMiddleware does to read its cookie."""
    import itsdangerous

    signer = itsdangerous.TimestampSigner("bench-secret-key-" + "y" * 32)
    body = {"user_id": 124156, "username": "alice", "csrf": "z" * 43}
    cookie = signer.sign(base64.b64encode(json.dumps(body).encode("utf-8")))

    def decode() -> Any:
        data = signer.unsign(cookie, max_age=14 * 24 * 3600)
        return json.loads(base64.b64decode(data))

    assert decode() == body
    return {"Starlette signed-cookie decode (itsdangerous)": decode}


def pyjwt_benches() -> dict[str, Bench]:
    import jwt

    key = "k" * 32
    now = int(time.time())
    token = jwt.encode({"sub": "alice", "iat": now, "exp": now + 3600}, key, algorithm="HS256")
    return {"PyJWT HS256 decode": lambda: jwt.decode(token, key, algorithms=["HS256"])}


# -- report -------------------------------------------------------------------------------

FLOOR = "floor: sha256 + SQLite PK SELECT (WAL file) + expiry"
INSERT_FLOOR = "floor: plain WAL INSERT + commit (synchronous=NORMAL)"
SAME_ROW_INSERT = "floor: plain WAL INSERT + commit, same session row"
VALIDATE = "sessionward validate, SQLite file"
ISSUE = "sessionward issue, SQLite file"
TARGETS = [
    (VALIDATE, FLOOR, "<=", 2.5),
    ("Django db backend load() (SQLite file)", VALIDATE, ">=", 50),
    (ISSUE, INSERT_FLOOR, "<=", 2.0),
    (ISSUE, SAME_ROW_INSERT, "<=", 2.0),
]


def report(results: dict[str, list[float]]) -> str:
    floor = statistics.median(results[FLOOR])
    lines = [
        f"{'operation':<58} {'median µs':>10} {'min-max µs':>17} {'x floor':>8}",
        "-" * 96,
    ]
    for name, values in results.items():
        med = statistics.median(values)
        lines.append(
            f"{name:<58} {med:>10.2f} {min(values):>8.2f}-{max(values):<8.2f} {med / floor:>8.2f}"
        )
    lines.append("")
    lines.append("targets, ratio of medians in this run:")
    for a, b, op, bound in TARGETS:
        ratio = statistics.median(results[a]) / statistics.median(results[b])
        ok = ratio <= bound if op == "<=" else ratio >= bound
        lines.append(f"  {a} / {b} = {ratio:.2f} (want {op} {bound}) {'OK' if ok else 'MISSED'}")
    memory = statistics.median(results["sessionward validate, memory"])
    lines.append(
        f"  sessionward validate, memory = {memory:.2f} µs (want <= 3 µs) "
        f"{'OK' if memory <= 3 else 'MISSED'}"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--sessions", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        benches: dict[str, Bench] = {}
        benches.update(floor_benches(workdir, args.sessions))
        benches.update(sessionward_benches(workdir, args.sessions))
        benches.update(django_benches(workdir, args.sessions))
        benches.update(starlette_benches())
        benches.update(pyjwt_benches())
        print(
            f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, "
            f"{args.sessions} sessions per SQLite file, {args.rounds} interleaved rounds\n"
        )
        print(report(run(benches, args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
