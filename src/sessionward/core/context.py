"""What a request looks like from the server: the input the risk engine scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RequestContext"]

_MAX_FIELD = 512
_MAX_HINTS = 16
_MAX_HINT_NAME = 64
_SCALARS = ("ip", "user_agent", "accept_language", "device_key")

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
