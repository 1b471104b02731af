"""What a request looks like from the server: the input the risk engine scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RequestContext"]

_MAX_FIELD = 512


def _clip(value: str | None) -> str | None:
    return None if value is None else value[:_MAX_FIELD]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Client signals captured by an adapter. Every field is optional and length-capped."""

    ip: str | None = None
    user_agent: str | None = None
    accept_language: str | None = None
    client_hints: dict[str, str] = field(default_factory=dict)
    device_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("ip", "user_agent", "accept_language", "device_key"):
            value = _clip(getattr(self, name))
            if value is not None:
                out[name] = value
        if self.client_hints:
            out["client_hints"] = {
                k[:64]: v[:_MAX_FIELD] for k, v in sorted(self.client_hints.items())[:16]
            }
        return out
