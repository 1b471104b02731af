"""The event log in Redis: one bounded stream, beside the session store's keys.

Key: ``P "sessionward:events"`` (``P``: the store's prefix), a stream whose entries hold one
field, ``e``: the event as compact JSON. Standalone, Sentinel and Cluster URLs are the session
store's (``sessionward.stores.redis``); on a Cluster the stream lives in one slot.

* ``append``: one Lua script per batch (atomic: no other command runs between its entries).
  Each entry's stream id is the event's time in milliseconds (``<ms>-*``), or, when an earlier
  id is already on top (an event from a node whose clock is behind), the next id after it.
  So ids follow both the order of appends and, within clock skew, the events' times.
  ``MAXLEN ~ maxlen`` (default 100,000) bounds the stream: the oldest entries go first,
  whatever the retention says.
* ``read``: ``XRANGE`` from the exclusive cursor. A cursor is the stream id as 25 digits
  (the milliseconds in 15, the sequence number in 10), so cursors sort as strings in append
  order.
* ``query``: Redis has no secondary index on a stream. The entries are scanned newest first
  with ``XREVRANGE`` in pages of 500 (from the ``before`` cursor, down to ``since``), and
  filtered here. A query by user, session or kind therefore costs a read of every entry newer
  than the oldest match it returns: up to the whole stream (``maxlen`` entries, about 30 MB at
  the default) for a user with no events. Give ``since`` to bound it.
* ``prune(before)``: ``XTRIM MINID``: every entry whose id time is before ``before``.

Failures are the session store's: connection errors and timeouts raise ``StoreUnavailable``,
an unreadable entry or a wrong-typed key raise ``StoreCorrupt``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Final

from sessionward.errors import ConfigError, StoreCorrupt
from sessionward.stores._sync.redis import _TRANSLATED, _connect
from sessionward.stores.eventlog._rows import check_limit, digits, dumps
from sessionward.stores.eventlog.base import EventPage, EventQuery, LoggedEvent
from sessionward.stores.eventlog.memory import matches, to_logged

__all__ = ["RedisEventLog"]

_PAGE: Final = 500
_SEQ: Final = 10**10
_LARGEST: Final = 2**64 - 1  # the largest millisecond part of a stream id
_APPEND: Final = """
local ids = {}
for i = 2, #ARGV, 2 do
  local id = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[i] .. '-*', 'e', ARGV[i + 1])
  if type(id) == 'table' and id.err then
    id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i + 1])
  end
  ids[#ids + 1] = id
end
return ids
"""


def _cursor(stream_id: bytes | str) -> str:
    text = stream_id.decode("ascii") if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = text.partition("-")
    return f"{int(ms):015d}{int(seq):010d}"


def _stream_id(cursor: str) -> str:
    ms, seq = divmod(digits(cursor), _SEQ)
    return f"{min(ms, _LARGEST)}-{seq}"


def _ms(at: float) -> int:
    return max(math.floor(at * 1000), 0) if math.isfinite(at) else 0


class RedisEventLog:
    """Events in a Redis stream (see the module's documentation for its costs and limits)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: bytes = b"",
        maxlen: int = 100_000,
        socket_timeout: float = 2.0,
        connect_timeout: float = 2.0,
        **client_options: Any,
    ) -> None:
        if not isinstance(maxlen, int) or maxlen < 1:
            raise ConfigError("maxlen must be a positive number of entries")
        options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            **client_options,
        }
        with _TRANSLATED:
            self._client, _, _, self._others = _connect(url, options)
        self.key = prefix + b"sessionward:events"
        self.maxlen = maxlen
        self._append = self._client.register_script(_APPEND)

    def append(self, entries: Sequence[dict[str, Any]]) -> list[str]:
        if not entries:
            return []
        args: list[Any] = [self.maxlen]
        for entry in entries:
            body = {k: v for k, v in entry.items() if k != "id"}
            args += [_ms(float(entry["at"])), dumps(body)]
        with _TRANSLATED:
            ids = self._append(keys=[self.key], args=args)
        return [_cursor(i) for i in ids]

    def _event(self, stream_id: bytes, fields: dict[bytes, bytes]) -> LoggedEvent:
        try:
            return to_logged(_cursor(stream_id), json.loads(fields[b"e"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise StoreCorrupt(f"redis: an unreadable event log entry ({exc})") from None

    def read(self, after: str | None, limit: int) -> list[LoggedEvent]:
        start = "-" if after is None else "(" + _stream_id(after)
        with _TRANSLATED:
            found = self._client.xrange(self.key, start, "+", count=check_limit(limit))
        return [self._event(i, f) for i, f in found]

    def query(self, query: EventQuery) -> EventPage:
        limit = check_limit(query.limit)
        end = "+" if query.before is None else "(" + _stream_id(query.before)
        start = "-" if query.since is None else str(_ms(query.since))
        found: list[LoggedEvent] = []
        while len(found) <= limit:
            with _TRANSLATED:
                page = self._client.xrevrange(self.key, end, start, count=_PAGE)
            for stream_id, fields in page:
                event = self._event(stream_id, fields)
                if matches(event, query):
                    found.append(event)
                    if len(found) > limit:
                        break
            if len(page) < _PAGE:
                break
            end = "(" + page[-1][0].decode("ascii")
        events = found[:limit]
        return EventPage(events, events[-1].id if len(found) > limit else None)

    def prune(self, before: float) -> int:
        with _TRANSLATED:
            return int(self._client.xtrim(self.key, minid=str(_ms(before)), approximate=False))

    def close(self) -> None:
        with _TRANSLATED:
            self._client.close()
            for other in self._others:
                other.close()
