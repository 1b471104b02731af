"""What a request looks like from the server: the input the risk engine scores."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ContextHistory", "RequestContext"]

_MAX_FIELD = 512
_MAX_HINTS = 16
_MAX_HINT_NAME = 64
_SCALARS = ("ip", "user_agent", "accept_language", "device_key")
_UNSEEN = object()
_MEMO_SIZE = 4096

ContextKey = tuple[str | None, str | None, str | None, str | None, tuple[tuple[str, str], ...]]


def _clip(value: object) -> str | None:
    return value[:_MAX_FIELD] if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Client signals captured by an adapter. Every field is optional; values are cut to
    512 characters and at most 16 client hints are kept, at construction."""

    ip: str | None = None
    user_agent: str | None = None
    accept_language: str | None = None
    client_hints: dict[str, str] = field(default_factory=dict)
    device_key: str | None = None

    def __post_init__(self) -> None:
        for name in _SCALARS:
            object.__setattr__(self, name, _clip(getattr(self, name)))
        hints = self.client_hints if isinstance(self.client_hints, dict) else {}
        object.__setattr__(
            self,
            "client_hints",
            {
                str(k)[:_MAX_HINT_NAME]: str(v)[:_MAX_FIELD]
                for k, v in sorted(hints.items())[:_MAX_HINTS]
            },
        )

    def key(self) -> ContextKey:
        """A cheap comparable summary: equal keys mean the same context."""
        return (
            self.ip,
            self.user_agent,
            self.accept_language,
            self.device_key,
            tuple(self.client_hints.items()),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            name: getattr(self, name) for name in _SCALARS if getattr(self, name) is not None
        }
        if self.client_hints:
            out["client_hints"] = dict(self.client_hints)
        return out

    @staticmethod
    def key_of(entry: dict[str, Any]) -> ContextKey:
        """The key of a stored history entry (as written by ``to_json``)."""
        hints = entry.get("client_hints")
        return (
            entry.get("ip"),
            entry.get("user_agent"),
            entry.get("accept_language"),
            entry.get("device_key"),
            tuple(hints.items()) if isinstance(hints, dict) else (),
        )


class ContextHistory:
    """A session's context history: JSON text of at most ``limit`` entries, oldest first,
    each a context with the time it was first ``since``; ``limit=0`` keeps none."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._last: dict[str, object] = {}

    def after(self, stored: str, context: RequestContext | None, now: float) -> str:
        """The history ``stored`` with ``context`` appended, or ``stored`` itself (the same
        object) if the context did not change. The unchanged case is the hot one, so the last
        entry of each stored history is remembered by a small memo instead of parsed per
        request."""
        if context is None or self.limit == 0:
            return stored or "[]"
        key = context.key()
        memo = self._last
        entries: list[dict[str, Any]] | None = None
        last = memo.get(stored, _UNSEEN)
        if last is _UNSEEN:
            entries = json.loads(stored) if stored else []
            last = RequestContext.key_of(entries[-1]) if entries else None
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            memo[stored] = last
        if last == key:
            return stored
        if entries is None:
            entries = json.loads(stored) if stored else []
        entries.append({**context.to_json(), "since": now})
        return json.dumps(entries[-self.limit :], separators=(",", ":"))
