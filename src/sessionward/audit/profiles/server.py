"""The server's side of a profile's session, when the site is a sessionward service.

:func:`server_view` asks the service's HTTP API (``GET /v1/sessions/{session_id}``, an API
key of scope ``admin``) about public session ids, and returns what the server knows of each:
the user, the device and address it last saw, its times, and the events the answering
process recorded for the session (created, rotated, rejected, theft suspected, ...: the
risk decisions). Only public session ids travel; the API key goes in a header and never
into a message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlsplit

from sessionward.audit.profiles._errors import ProfileError

if TYPE_CHECKING:
    import httpx

__all__ = ["ServerSession", "server_view"]

_SESSION_ID: Final = re.compile(r"[A-Za-z0-9_-]{16}")


@dataclass(frozen=True, slots=True)
class ServerSession:
    """What the service says about one session id (``found=False``: it does not know it:
    revoked, expired, or never issued there)."""

    session_id: str
    found: bool
    user_id: str | None = None
    device: str | None = None
    address: str | None = None
    created_at: float | None = None
    last_seen: float | None = None
    expires_at: float | None = None
    absolute_expires_at: float | None = None
    auth_level: int | None = None
    contexts: int = 0
    decisions: list[dict[str, Any]] = field(default_factory=list)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _network(session: dict[str, Any]) -> object:
    """A risk-scoring service keeps no address: its view names the network instead."""
    network = session.get("network")
    return network.get("description") if isinstance(network, dict) else None


def _parse(session_id: str, body: object) -> ServerSession:
    session = body.get("session") if isinstance(body, dict) else None
    if not isinstance(session, dict):
        raise ProfileError("the server's answer is not a sessionward session")
    history = session.get("context_history")
    history = history if isinstance(history, list) else []
    latest = history[-1] if history and isinstance(history[-1], dict) else {}
    events = body.get("events") if isinstance(body, dict) else None
    decisions = [
        {k: e[k] for k in ("kind", "at", "reason") if k in e}
        for e in (events if isinstance(events, list) else [])
        if isinstance(e, dict)
    ]
    level = session.get("auth_level")
    return ServerSession(
        session_id,
        True,
        session.get("user_id") if isinstance(session.get("user_id"), str) else None,
        _text(latest.get("user_agent")) or _text(session.get("device")),
        _text(latest.get("ip")) or _text(_network(session)),
        _number(session.get("created_at")),
        _number(session.get("last_seen")),
        _number(session.get("expires_at")),
        _number(session.get("absolute_expires_at")),
        level if type(level) is int else None,
        len(history),
        decisions,
    )


def server_view(
    base_url: str,
    api_key: str,
    session_ids: Iterable[str],
    *,
    client: httpx.Client | None = None,
    timeout: float = 10.0,
) -> list[ServerSession]:
    """Ask the sessionward service at ``base_url`` about each public session id."""
    import httpx

    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProfileError("the server is an http:// or https:// URL")
    base = base_url.rstrip("/")
    headers = {"authorization": f"Bearer {api_key}", "accept": "application/json"}
    own = client is None
    http = client if client is not None else httpx.Client(timeout=timeout)
    try:
        return [_one(http, base, headers, sid) for sid in session_ids]
    except httpx.HTTPError as exc:
        raise ProfileError(f"cannot reach {base}: {type(exc).__name__}") from None
    finally:
        if own:
            http.close()


def _one(http: httpx.Client, base: str, headers: dict[str, str], sid: str) -> ServerSession:
    if not _SESSION_ID.fullmatch(sid):
        raise ProfileError("not a public session id (16 characters of A-Z, a-z, 0-9, _ and -)")
    response = http.get(f"{base}/v1/sessions/{quote(sid)}", headers=headers)
    if response.status_code == 404:
        return ServerSession(sid, False)
    if response.status_code == 401:
        raise ProfileError(f"{base} refused the API key (401 unauthenticated)")
    if response.status_code == 403:
        raise ProfileError(f"{base}: the API key's scope is too narrow (the detail needs admin)")
    if response.status_code != 200:
        raise ProfileError(f"{base} answered {response.status_code} for a session's detail")
    try:
        body = response.json()
    except ValueError:
        raise ProfileError(f"{base} did not answer JSON") from None
    return _parse(sid, body)
