"""A receiver's answer, independent of any web framework."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

__all__ = ["Reply", "json_reply"]


class Reply(NamedTuple):
    """Status, headers (lower-case names) and body of an answer."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def json_reply(status: int, payload: dict[str, Any]) -> Reply:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = (("content-type", "application/json"), ("cache-control", "no-store"))
    return Reply(status, headers, body)
