"""How a session is shown to people: its device as people name it, its network's owner and
country, and the risk decisions taken on it with their reasons.

One source for the admin pages, the demo's "Your devices" page and the API's session listing
(:func:`view_json`), read from the stored record (``sessionward.manager.risk_view``) and, for
decisions this process took but has not written yet (the history is written with the
throttled periodic write), from the recent ``risk`` events of the service's activity.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sessionward.core.record import Session
from sessionward.errors import RiskChallenge
from sessionward.manager.risk_view import SessionView, view_of
from sessionward.service.html import attr, esc, fmt_time

__all__ = [
    "challenge_notice",
    "decisions_list",
    "device_cells",
    "device_name",
    "merged_decisions",
    "owner_cells",
    "title_of",
    "view_json",
    "view_panel",
]

_DECISION_TEXT = {
    "log": "allowed and recorded",
    "step_up": "asked to sign in again",
    "revoke": "ended",
    "confirmed": "confirmed by its owner, who signed in again",
}


def _latest(session: Session) -> dict[str, Any]:
    history = session.context_history
    return history[-1] if history and isinstance(history[-1], dict) else {}


def _latest_address(session: Session) -> str:
    return str(_latest(session).get("ip") or "")


def merged_decisions(
    view: SessionView, events: Iterable[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """The session's stored decisions and those in ``events`` (activity entries of kind
    ``risk``), newest first, each once."""
    found = {(d.get("t"), d.get("decision")): d for d in view.decisions}
    for entry in events:
        if entry.get("kind") != "risk":
            continue
        key = (entry.get("at"), entry.get("decision"))
        if key in found:
            continue
        found[key] = {
            "t": entry.get("at"),
            "decision": entry.get("decision"),
            "score": entry.get("score"),
            "reasons": [
                {"code": r[0], "weight": r[1], "sentence": r[2]}
                for r in entry.get("reasons") or ()
                if len(r) == 3
            ],
        }
    return sorted(found.values(), key=lambda d: float(d.get("t") or 0), reverse=True)


def view_json(session: Session, events: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """The API's fields for one session: ``device``, ``network`` and ``risk_decisions``."""
    view = view_of(session.record)
    out = view.to_json()
    out["risk_decisions"] = merged_decisions(view, events)
    return out


def device_cells(session: Session, *, address: bool = True) -> str:
    """Two table cells: the device and the network (the address in small print after it,
    for administrators; ``address=False`` leaves it out)."""
    view = view_of(session.record)
    latest = _latest(session)
    ip = str(latest.get("ip") or "") if address else ""
    network = esc(view.network or "unknown network")
    if ip:
        network += f' <span class="muted">{esc(ip)}</span>'
    # A plain context history keeps the user agent: the full string in a tooltip.
    agent = str(latest.get("user_agent") or "")
    device = esc(view.device or "unknown device")
    if agent:
        device = f"<span title={attr(agent)}>{device}</span>"
    return f"<td>{device}</td><td>{network}</td>"


def decisions_list(decisions: list[dict[str, Any]], *, empty: str) -> str:
    """An HTML list of decisions with their reasons (sentence and weight)."""
    if not decisions:
        return f"<p>{esc(empty)}</p>"
    items = []
    for d in decisions:
        what = _DECISION_TEXT.get(str(d.get("decision")), str(d.get("decision")))
        reasons = "".join(
            f"<li>{esc(r.get('sentence') or r.get('code'))}"
            f' <span class="muted">({esc(r.get("code"))}, weight {esc(r.get("weight"))})</span>'
            "</li>"
            for r in d.get("reasons") or ()
        )
        items.append(
            f"<li>{fmt_time(_number(d.get('t')))}: <strong>{esc(what)}</strong>"
            f' <span class="muted">score {esc(d.get("score"))}</span>'
            + (f"<ul>{reasons}</ul>" if reasons else "")
            + "</li>"
        )
    return f'<ul class="risk-decisions">{"".join(items)}</ul>'


def view_panel(session: Session, events: Iterable[dict[str, Any]] = ()) -> str:
    """The session page's "Device and network" and "Risk decisions" sections."""
    view = view_of(session.record)
    ip = _latest_address(session)
    rows = (
        f"<dt>Device</dt><dd>{esc(view.device or 'unknown device')}</dd>"
        f"<dt>Network</dt><dd>{esc(view.network or 'unknown network')}</dd>"
        + (f"<dt>Last address</dt><dd>{esc(ip)}</dd>" if ip else "")
    )
    decisions = merged_decisions(view, events)
    return (
        f'<h2>Device and network</h2><dl class="panel">{rows}</dl>'
        "<h2>Risk decisions</h2>"
        + decisions_list(decisions, empty="No risk decision other than allow on this session.")
    )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def title_of(session: Session) -> str:
    """A one-line description for confirmations: ``Firefox 133 on Windows, Comcast (US)``."""
    view = view_of(session.record)
    parts = [p for p in (view.device, view.network) if p]
    return ", ".join(parts) or "unknown device"


def owner_cells(session: Session, events: Iterable[dict[str, Any]] = ()) -> str:
    """Two cells a user sees about one of their own sessions: the network (owner and
    country rather than the bare address) and the security checks it met, with reasons."""
    view = view_of(session.record)
    decisions = merged_decisions(view, events)
    checks = decisions_list(decisions, empty="None") if decisions else "None"
    # Without the risk extra no owner is known: the user's own address is the next best.
    network = view.network or _latest_address(session) or "unknown network"
    return f'<td>{esc(network)}</td><td class="checks">{checks}</td>'


def device_name(session: Session, fallback: str) -> str:
    """The device as people name it, or ``fallback`` (the application's own naming)."""
    return view_of(session.record).device or fallback


def challenge_notice(challenge: RiskChallenge | None) -> str:
    """The sign-in page's note for a challenged session: why it asks again, in the kinds of
    evidence only (whoever reads it may hold a stolen cookie: the sentences, which name the
    owner's networks and browser, are kept for the owner's own pages)."""
    if challenge is None:
        return ""
    kinds = ", ".join(
        dict.fromkeys(code.replace(".", ": ").replace("_", " ") for code in challenge.codes)
    )
    return (
        '<p class="msg" role="status">Please sign in again: this visit does not look like your'
        " usual ones" + (f" ({esc(kinds)})" if kinds else "") + ". If it was you, signing in"
        " confirms it and we will remember this device and network.</p>"
    )
