"""The risk engine's session history as plain JSON data, for the session record.

Only what the engine needs is written: each network's prefix, owner, country and kind with
its first and last use and arrival score; the settled browser (parsed fields, never the user
agent string), first language range, platform hint and device signal; the last request time
and the decayed request rate. Reading is strict about types: a value of the wrong shape is
refused (``ValueError``) rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sessionward.core.risk import SeenNetwork, SessionRisk
from sessionward.core.risk_types import Browser, Network, Signals

__all__ = ["session_from_json", "session_to_json"]


def _network(net: Network) -> list[str]:
    return [net.prefix, net.asn, net.country, net.kind]


def _network_of(row: object) -> Network:
    if not (isinstance(row, list) and len(row) == 4 and all(isinstance(v, str) for v in row)):
        raise ValueError("bad network")
    return Network(*row)


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("bad number")
    return float(value)


def _major(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("bad version")
    return value


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"bad {key}")
    return value


def session_to_json(session: SessionRisk) -> dict[str, Any]:
    """Plain data for storage (the cached verdict is left out: it is recomputed)."""
    s, b = session.signals, session.signals.browser
    return {
        "networks": [[*_network(n.network), n.first, n.last, n.score] for n in session.networks],
        "network": _network(s.network),
        "browser": [b.family, b.major, b.os, b.os_major, b.device],
        "language": s.language,
        "platform": s.platform,
        "device": s.device_signal,
        "mismatch": s.platform_mismatch,
        "last": session.last_t,
        "rate": session.rate,
    }


def session_from_json(data: object) -> SessionRisk:
    """The history :func:`session_to_json` wrote; ``ValueError`` for anything else."""
    if not isinstance(data, dict):
        raise ValueError("not a session history")
    rows = data.get("networks")
    if not isinstance(rows, list) or not rows:
        raise ValueError("no networks")
    networks = []
    for row in rows:
        if not isinstance(row, list) or len(row) != 7:
            raise ValueError("bad network entry")
        networks.append(
            SeenNetwork(_network_of(row[:4]), _number(row[4]), _number(row[5]), _number(row[6]))
        )
    browser = data.get("browser")
    if not (isinstance(browser, list) and len(browser) == 5):
        raise ValueError("bad browser")
    family, major, os, os_major, device = browser
    if not all(isinstance(v, str) for v in (family, os, device)):
        raise ValueError("bad browser")
    mismatch = data.get("mismatch", False)
    if not isinstance(mismatch, bool):
        raise ValueError("bad mismatch")
    signals = Signals(
        _network_of(data.get("network")),
        Browser(family, _major(major), os, _major(os_major), device),
        _text(data, "language"),
        _text(data, "platform"),
        _text(data, "device"),
        mismatch,
    )
    return SessionRisk(
        tuple(networks), signals, _number(data.get("last")), _number(data.get("rate", 1.0))
    )
