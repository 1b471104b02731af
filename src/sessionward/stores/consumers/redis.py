"""Consumers in Redis, every key under one hash tag (one Cluster slot), so each operation is
one atomic Lua script::

    <P>{swc}:ids          sorted set: consumer ids by creation time
    <P>{swc}:c:<id>       hash: the consumer's columns (absent field = NULL), lease_owner,
                          lease_until
    <P>{swc}:d:<id>       list: delivery attempts as JSON, oldest first, trimmed to ``keep``

``claim`` scans the consumers in one script (a deployment holds tens of endpoints, not
millions); the lease fields make two deliverers on one Redis take different consumers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from sessionward.errors import AlreadyExists, ConfigError, NotFound
from sessionward.stores._sync.redis import _TRANSLATED, _connect
from sessionward.stores.consumers.base import (
    COLUMNS,
    Consumer,
    Delivery,
    Outcome,
    State,
    consumer_from_row,
    consumer_row,
    delivery_from_row,
    delivery_row,
    state_change,
)

__all__ = ["RedisConsumerStore"]

_ADD: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""
# ARGV[1]: JSON object of fields to set; ARGV[2]: JSON list of fields to clear.
_UPDATE: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for field, value in pairs(cjson.decode(ARGV[1])) do redis.call('HSET', KEYS[1], field, value) end
for _, field in ipairs(cjson.decode(ARGV[2])) do redis.call('HDEL', KEYS[1], field) end
return 1
"""
# ARGV: owner, now, until, limit, key prefix of the consumer hashes.
_CLAIM: Final = """
local now, due = tonumber(ARGV[2]), {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local f = redis.call('HMGET', ARGV[5] .. id, 'state', 'next_attempt', 'lease_until')
  if f[1] == 'active' and tonumber(f[2]) <= now and tonumber(f[3] or '0') <= now then
    due[#due + 1] = {tonumber(f[2]), id}
  end
end
table.sort(due, function(a, b) if a[1] ~= b[1] then return a[1] < b[1] end return a[2] < b[2] end)
local taken = {}
for i = 1, math.min(#due, tonumber(ARGV[4])) do
  local id = due[i][2]
  redis.call('HSET', ARGV[5] .. id, 'lease_owner', ARGV[1], 'lease_until', ARGV[3])
  taken[#taken + 1] = id
end
return taken
"""
# ARGV: owner, keep, JSON fields to set, JSON fields to clear, delivery JSON...
_FINISH: Final = """
if redis.call('HGET', KEYS[1], 'lease_owner') ~= ARGV[1] then return 0 end
for field, value in pairs(cjson.decode(ARGV[3])) do redis.call('HSET', KEYS[1], field, value) end
for _, field in ipairs(cjson.decode(ARGV[4])) do redis.call('HDEL', KEYS[1], field) end
redis.call('HDEL', KEYS[1], 'lease_owner')
redis.call('HSET', KEYS[1], 'lease_until', '0')
if #ARGV > 4 then
  redis.call('RPUSH', KEYS[2], unpack(ARGV, 5))
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
end
return 1
"""
_REMOVE: Final = """
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return redis.call('DEL', KEYS[1])
"""


def _encode(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _fields(names: Sequence[str], values: Sequence[Any]) -> tuple[dict[str, str], list[str]]:
    """Hash fields to set, and the NULL ones to clear."""
    kept = {n: _encode(v) for n, v in zip(names, values, strict=True) if v is not None}
    return kept, [n for n, v in zip(names, values, strict=True) if v is None]


class RedisConsumerStore:
    def __init__(self, url: str, *, prefix: str = "sessionward:") -> None:
        if "{" in prefix or "}" in prefix:
            raise ConfigError("the key prefix holds no '{' or '}'")
        with _TRANSLATED:
            self._client, _, _, self._others = _connect(url, {"decode_responses": True})
        self._ids = prefix + "{swc}:ids"
        self._hash = prefix + "{swc}:c:"
        self._list = prefix + "{swc}:d:"
        client = self._client
        self._add = client.register_script(_ADD)
        self._update_script = client.register_script(_UPDATE)
        self._claim = client.register_script(_CLAIM)
        self._finish = client.register_script(_FINISH)
        self._remove = client.register_script(_REMOVE)

    def _read(self, ids: Sequence[str]) -> list[Consumer]:
        with _TRANSLATED:
            pipe = self._client.pipeline(transaction=False)
            for cid in ids:
                pipe.hgetall(self._hash + cid)
            found = pipe.execute()
        return [
            consumer_from_row([fields.get(name) for name in COLUMNS]) for fields in found if fields
        ]

    def add(self, consumer: Consumer) -> None:
        kept, _ = _fields(COLUMNS, consumer_row(consumer))
        flat = [item for pair in kept.items() for item in pair]
        with _TRANSLATED:
            done = self._add(
                keys=[self._hash + consumer.id, self._ids],
                args=[consumer.id, repr(consumer.created_at), *flat],
            )
        if not done:
            raise AlreadyExists(f"consumer {consumer.id} exists")

    def get(self, consumer_id: str) -> Consumer | None:
        found = self._read([consumer_id])
        return found[0] if found else None

    def consumers(self, application: str | None = None, kind: str | None = None) -> list[Consumer]:
        with _TRANSLATED:
            ids = self._client.zrange(self._ids, 0, -1)
        return [
            c
            for c in self._read(ids)
            if (application is None or c.application == application)
            and (kind is None or c.kind == kind)
        ]

    def remove(self, consumer_id: str) -> bool:
        with _TRANSLATED:
            keys = [self._hash + consumer_id, self._list + consumer_id, self._ids]
            return bool(self._remove(keys=keys, args=[consumer_id]))

    def _update(self, consumer_id: str, changes: dict[str, Any]) -> None:
        kept, cleared = _fields(list(changes), list(changes.values()))
        with _TRANSLATED:
            done = self._update_script(
                keys=[self._hash + consumer_id], args=[json.dumps(kept), json.dumps(cleared)]
            )
        if not done:
            raise NotFound(f"no consumer {consumer_id}")

    def set_credentials(self, consumer_id: str, credentials: dict[str, Any]) -> None:
        self._update(consumer_id, {"credentials": json.dumps(credentials)})

    def set_config(self, consumer_id: str, config: dict[str, Any]) -> None:
        self._update(consumer_id, {"config": json.dumps(config)})

    def set_state(self, consumer_id: str, state: State, reason: str | None, now: float) -> None:
        self._update(consumer_id, state_change(state, reason, now))

    def set_cursor(self, consumer_id: str, cursor: str | None) -> None:
        self._update(consumer_id, {"cursor": cursor})

    def claim(self, owner: str, now: float, lease: float, limit: int) -> list[Consumer]:
        with _TRANSLATED:
            ids = self._claim(
                keys=[self._ids], args=[owner, repr(now), repr(now + lease), limit, self._hash]
            )
        return self._read(ids)

    def finish(
        self,
        consumer_id: str,
        owner: str,
        outcome: Outcome,
        attempts: Sequence[Delivery],
        keep: int,
    ) -> bool:
        names = ["cursor", "failures", "first_failure", "next_attempt", "state", "disabled_reason"]
        values = [
            outcome.cursor, outcome.failures, outcome.first_failure, outcome.next_attempt,
            outcome.state, outcome.disabled_reason,
        ]  # fmt: skip
        kept, cleared = _fields(names, values)
        history = [json.dumps(delivery_row(a)) for a in attempts]
        with _TRANSLATED:
            done = self._finish(
                keys=[self._hash + consumer_id, self._list + consumer_id],
                args=[owner, max(keep, 1), json.dumps(kept), json.dumps(cleared), *history],
            )
        return bool(done)

    def deliveries(self, consumer_id: str, limit: int = 50) -> list[Delivery]:
        with _TRANSLATED:
            rows = self._client.lrange(self._list + consumer_id, -limit, -1)
        return [delivery_from_row(json.loads(row)) for row in reversed(rows)]

    def close(self) -> None:
        with _TRANSLATED:
            self._client.close()
            for other in self._others:
                other.close()
