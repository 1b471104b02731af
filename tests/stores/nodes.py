"""Node B of the two-process revocation tests: another process with its own store on the same
Redis (no local cache) or PostgreSQL (a cached store), validating the tokens it is sent on
stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

SCRIPT = r"""
import json, sys
from sessionward import Policy, SessionManager
from sessionward.errors import InvalidToken

kind, target, extra = sys.argv[1:4]
if kind == "redis":
    from sessionward.stores.redis import RedisStore
    store = RedisStore(target, clock_offset=float(extra))
else:
    from sessionward.stores.postgres import PostgresStore
    store = PostgresStore(target, schema=extra, cache_size=1000, cache_ttl=60)
manager = SessionManager(store, policy=Policy(idle_timeout=3600, absolute_timeout=7200,
                                              touch_interval=3000))
print("ready", flush=True)
for line in sys.stdin:
    token = line.strip()
    try:
        outcome = {"ok": manager.validate(token).data}
    except InvalidToken as exc:
        outcome = {"rejected": exc.reason}
    print(json.dumps({**outcome, **getattr(store, "cache_info", dict)()}), flush=True)
store.close()
"""


class NodeB:
    """``NodeB("redis", url, clock_offset)`` or ``NodeB("postgres", conninfo, schema)``;
    ``validate(token)`` answers ``{"ok": data}`` or ``{"rejected": reason}`` plus the cache
    counters of B's store, if it has a cache."""

    def __init__(self, kind: str, target: str, extra: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, kind, target, extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def validate(self, token: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(token + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def close(self) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)
        self.process.stdout.close()
