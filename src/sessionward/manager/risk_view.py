"""A session as people see it: its device ("Firefox 133 on Windows", "Safari on iPhone"), its
network's owner and country, and the risk decisions taken on it with their reasons.

Read from the record's ``context`` field: the risk engine's history when the manager scores
requests (parsed browser, networks as prefix, owner, country and kind), or the plain context
history otherwise (its newest entry is parsed here, with the ``risk`` extra; without it the
device and network stay unknown). The admin page, the demo's "Your devices" page, the
service's session listing and the Django helpers all show these same fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sessionward.core.record import SessionRecord
from sessionward.core.risk_json import session_from_json
from sessionward.core.risk_types import Browser, Network
from sessionward.manager.risk import decisions_of

__all__ = ["SessionView", "device_label", "network_label", "view_of"]

_BROWSERS = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "an in-app browser",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "an in-app browser",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Other": "",
}
_SYSTEMS = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}
_KINDS = {"vpn": "VPN", "hosting": "hosting provider", "tor": "Tor exit"}


@dataclass(frozen=True, slots=True)
class SessionView:
    """What a person is shown about one session. ``device`` and ``network`` are sentences
    (``""`` when unknown); ``decisions`` are the recent risk decisions other than a plain
    allow, newest first, each ``{"t", "decision", "score", "reasons": [{"code", "weight",
    "sentence"}]}``."""

    device: str = ""
    network: str = ""
    network_owner: str = ""
    country: str = ""
    network_kind: str = ""
    decisions: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "network": {
                "description": self.network,
                "owner": self.network_owner,
                "country": self.country,
                "kind": self.network_kind,
            },
            "risk_decisions": list(self.decisions),
        }


def device_label(browser: Browser) -> str:
    """``"Firefox 133 on Windows"``, ``"Safari on iPhone"``, ``"curl 8 (a tool, not a
    browser)"``; ``""`` when nothing is known. On iOS every browser is the system's engine,
    so its version says little and is left out."""
    name = _BROWSERS.get(browser.family, browser.family)
    if not name and not browser.os:
        return ""
    system = _system(browser)
    if browser.major is not None and name and browser.os not in ("iOS", "iPadOS"):
        name = f"{name} {browser.major}"
    if browser.device == "tool":
        return f"{name or 'a program'} (a tool, not a browser)"
    if browser.device == "bot":
        return f"{name or 'a robot'} (a bot)"
    return f"{name or 'a browser'} on {system}" if system else name


def _system(browser: Browser) -> str:
    if browser.os in ("iOS", "iPadOS"):
        return "iPad" if browser.device == "tablet" else "iPhone"
    if browser.os == "Android":
        return "an Android tablet" if browser.device == "tablet" else "Android"
    return _SYSTEMS.get(browser.os, browser.os)


def network_label(network: Network) -> str:
    """``"Comcast Cable Communications (US)"``, ``"M247 Europe (RO), a VPN"``; ``""`` when
    unknown."""
    owner = network.asn or "an unknown network"
    if not network.asn and not network.country:
        return ""
    where = f"{owner} ({network.country})" if network.country else owner
    kind = _KINDS.get(network.kind)
    return f"{where}, a {kind}" if kind else where


_VIEWS: dict[str, SessionView] = {}
_VIEW_MEMO = 4096


def view_of(record: SessionRecord) -> SessionView:
    """The view of one stored session (never raises for a context it cannot read);
    remembered by the stored text (bounded), which a page shows again and again."""
    stored = record.context
    view = _VIEWS.get(stored)
    if view is None:
        view = _view(stored)
        if len(_VIEWS) >= _VIEW_MEMO:
            _VIEWS.clear()
        _VIEWS[stored] = view
    return view


def _view(stored: str) -> SessionView:
    decisions = tuple(_decision(d) for d in reversed(decisions_of(stored)))
    browser, network = _scored(stored)
    if browser is None or network is None:
        browser, network = _unscored(stored)
    return SessionView(
        device_label(browser),
        network_label(network),
        network.asn,
        network.country,
        network.kind,
        decisions,
    )


def _scored(stored: str) -> tuple[Browser | None, Network | None]:
    try:
        loaded = json.loads(stored) if stored else None
        if not isinstance(loaded, dict):
            return None, None
        history = session_from_json(loaded.get("session"))
    except ValueError:
        return None, None
    return history.signals.browser, history.signals.network


def _unscored(stored: str) -> tuple[Browser, Network]:
    """The newest entry of a plain context history, enriched here (needs the extra)."""
    try:
        entries = json.loads(stored) if stored else []
    except ValueError:
        return Browser(), Network()
    if not isinstance(entries, list) or not entries or not isinstance(entries[-1], dict):
        return Browser(), Network()
    newest = entries[-1]
    try:
        signals = _enricher().signals(_context_of(newest))
    except ImportError:
        return Browser(), Network()
    return signals.browser, signals.network


def _context_of(entry: dict[str, Any]) -> Any:
    from sessionward.core.context import RequestContext

    hints = entry.get("client_hints")
    return RequestContext(
        ip=entry.get("ip"),
        user_agent=entry.get("user_agent"),
        accept_language=entry.get("accept_language"),
        client_hints=hints if isinstance(hints, dict) else {},
    )


_ENRICHER: list[Any] = []


def _enricher() -> Any:
    """One shared enricher (its caches bounded), built on first use."""
    if not _ENRICHER:
        from sessionward.risk import Enricher

        _ENRICHER.append(Enricher(cache_size=1024))
    return _ENRICHER[0]


def _decision(raw: dict[str, Any]) -> dict[str, Any]:
    reasons = raw.get("reasons")
    rows = reasons if isinstance(reasons, list) else []
    return {
        "t": raw.get("t"),
        "decision": raw.get("decision"),
        "score": raw.get("score"),
        "reasons": [
            {"code": r[0], "weight": r[1], "sentence": r[2]}
            for r in rows
            if isinstance(r, list) and len(r) == 3
        ],
    }
