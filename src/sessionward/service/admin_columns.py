"""What the admin sessions table shows of a session besides its device: the application it
belongs to, the user id as that application knows it, and its recent risk decision.

A session's stored user id is ``<application>/<user>`` for an API application's user (see
``sessionward.service.tenancy``); the table shows the application in a column of its own and
the user id as the application gave it. The demo shop's and the admin console's sessions
belong to the service's reserved applications, named here for people.

Risk decisions are the ones the manager's hijack scoring keeps in the session record (the
last few that were not a plain allow: ``log``, ``step_up``, ``revoke``; see
``sessionward.manager.risk.decisions_of``) and, as the record is written only with the
throttled periodic write, those this process took since (its ``risk`` events,
:func:`pending_decisions`); "recent" is the last :data:`RISK_WINDOW` seconds. A store written
without risk scoring has none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlencode

from sessionward.core.record import Session
from sessionward.manager.risk import decisions_of
from sessionward.service.html import attr, esc
from sessionward.service.tenancy import ADMIN_APP, APP_KEY, DEMO_APP, application_of_user

__all__ = [
    "RISK_FILTERS",
    "RISK_WINDOW",
    "application_name",
    "applications",
    "keeps_risk",
    "pending_decisions",
    "recent_risk",
    "risk_cell",
    "shown_user",
    "user_cell",
    "user_text",
]

ROOT = "/admin"
RISK_WINDOW: Final = 24 * 3600
_ADMIN_USERS: Final = "sessionward:admin:"
_PAGES: Final = {DEMO_APP: "demo shop", ADMIN_APP: "admin console"}
#: The risk filter's choices: query value -> label.
RISK_FILTERS: Final = {
    "": "Any",
    "any": "Any recent risk decision",
    "step_up": "Asked to step up",
    "revoke": "Revoked by risk",
    "log": "Logged as unusual",
}
_DECISION_TEXT: Final = {"step_up": "step-up", "revoke": "revoke", "log": "logged"}


def application_of(session: Session) -> str:
    """The application a session belongs to (its key's, or a reserved page's)."""
    found = application_of_user(session.user_id)
    if found is not None:
        return found
    stamped = session.data.get(APP_KEY)
    return stamped if isinstance(stamped, str) else DEMO_APP  # the shop's guest carts


def application_name(application: str) -> str:
    return _PAGES.get(application, application)


def applications(sessions: list[Session]) -> list[str]:
    """The applications among ``sessions``, API applications by name first."""
    found = {application_of(s) for s in sessions}
    return sorted(found, key=lambda a: (a in _PAGES, a))


def shown_user(session: Session) -> str | None:
    """The user id as its application knows it (``None``: an anonymous visitor)."""
    user = session.user_id
    if user is None:
        return None
    if "/" in user:
        return user.partition("/")[2]
    return user.removeprefix(_ADMIN_USERS)


def user_text(stored: str | None) -> str:
    """A stored user id for people: ``alice (default)``, ``root (admin console)``."""
    if stored is None:
        return "anonymous"
    application = application_of_user(stored) or DEMO_APP
    name = stored.partition("/")[2] if "/" in stored else stored.removeprefix(_ADMIN_USERS)
    return f"{name} ({application_name(application)})"


def user_cell(session: Session) -> str:
    user = shown_user(session)
    if user is None:
        return '<span class="muted">anonymous</span>'
    stored = session.user_id or ""
    application = stored.partition("/")[0] if "/" in stored else ""
    params = {"application": application, "user": user} if application else {"user": stored}
    return f'<a href="{ROOT}/users?{esc(urlencode(params))}">{esc(user)}</a>'


Pending = Mapping[str, Sequence[dict[str, Any]]]
_NONE: Pending = {}


def pending_decisions(entries: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per session id, the decisions of this process's ``risk`` activity entries, in the
    stored form (``{"t", "decision", "score", "reasons": [[code, weight, sentence], ...]}``)."""
    found: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        session_id = entry.get("session_id")
        if entry.get("kind") != "risk" or not isinstance(session_id, str):
            continue
        reasons = [list(r) for r in entry.get("reasons") or () if len(r) == 3]
        found[session_id].append(
            {
                "t": entry.get("at"),
                "decision": entry.get("decision"),
                "score": entry.get("score"),
                "reasons": reasons,
            }
        )
    return dict(found)


def _recent(session: Session, now: float, pending: Pending = _NONE) -> list[dict[str, Any]]:
    """The session's known risk decisions of the last :data:`RISK_WINDOW` seconds, stored or
    pending (each once), newest last."""
    found = {
        (d.get("t"), d.get("decision")): d
        for d in [*decisions_of(session.record.context), *pending.get(session.id, ())]
    }
    recent = [
        d
        for d in found.values()
        if isinstance(d.get("t"), (int, float))
        and now - d["t"] <= RISK_WINDOW
        and d.get("decision") in _DECISION_TEXT
    ]
    return sorted(recent, key=lambda d: float(d["t"]))


def recent_risk(session: Session, now: float, pending: Pending = _NONE) -> dict[str, Any] | None:
    """The newest risk decision of the last :data:`RISK_WINDOW` seconds, if any."""
    recent = _recent(session, now, pending)
    return recent[-1] if recent else None


def keeps_risk(wanted: str, session: Session, now: float, pending: Pending = _NONE) -> bool:
    if not wanted:
        return True
    recent = [d["decision"] for d in _recent(session, now, pending)]
    return bool(recent) if wanted == "any" else wanted in recent


def risk_cell(session: Session, now: float, pending: Pending = _NONE) -> str:
    decision = recent_risk(session, now, pending)
    if decision is None:
        return '<span class="muted">—</span>'
    kind = str(decision["decision"])
    reasons = decision.get("reasons")
    why = (
        "; ".join(str(r[2]) for r in reasons if isinstance(r, list) and len(r) == 3)
        if isinstance(reasons, list)
        else ""
    )
    return (
        f'<span class="tag risk-{esc(kind.replace("_", "-"))}" title={attr(why)}>'
        f"{esc(_DECISION_TEXT[kind])}</span>"
    )
