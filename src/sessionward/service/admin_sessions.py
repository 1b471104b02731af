"""The admin page's sessions table (``/admin/sessions``) and its confirmation pages.

The table walks the store with its ``AsyncScan`` capability (at most :data:`MAX_SCAN` records,
live ones only), then filters, sorts and pages in memory: an admin view, not a query engine.
Filters are :class:`SessionQuery` fields read from the query string; to add one, add a field,
read it in :meth:`SessionQuery.from_params`, test it in :meth:`SessionQuery.keeps` and give it
a control in :func:`filter_form`. Users show as their application knows them, with the
application in its own column (``sessionward.service.admin_columns``).

Destructive actions (ending a session, every session of a user) are links to a page that
says what will happen and asks for the click that does it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from sessionward.core.binding import binding_of, last_proof
from sessionward.core.record import Session
from sessionward.service.admin_columns import (
    RISK_FILTERS,
    Pending,
    application_name,
    application_of,
    applications,
    keeps_risk,
    risk_cell,
    shown_user,
    user_cell,
)
from sessionward.service.html import attr, esc, fmt_time, hidden_csrf
from sessionward.service.session_views import device_cells, view_json
from sessionward.stores._async.base import AsyncScan

__all__ = [
    "MAX_SCAN",
    "PAGE_SIZE",
    "SessionQuery",
    "auth_level_text",
    "confirm_form",
    "device_label",
    "live_sessions",
    "plural",
    "sessions_table",
]

ROOT = "/admin"
PAGE_SIZE = 25
MAX_SCAN = 10_000
_SORTS = {
    "last_seen": ("Last activity", lambda s: s.last_seen),
    "created": ("Created", lambda s: s.created_at),
    "user": ("User", lambda s: (shown_user(s) or "", application_of(s))),
    "expires": ("Idle expiry", lambda s: s.expires_at),
}
_KINDS = {"all": "Everyone", "users": "Signed-in users", "anonymous": "Anonymous visitors"}


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else (many or word + 's')}"


def auth_level_text(level: int) -> str:
    """What an authentication level means in this service."""
    meanings = {
        0: "no sign-in (an anonymous visitor)",
        1: "password",
        2: "password and a one-time code (two factors)",
    }
    return f"level {level}: {meanings.get(level, 'set by the application that issued it')}"


_BROWSERS = [
    ("Edge", r"Edg(?:e|A|iOS)?/(\d+)"),
    ("Opera", r"OPR/(\d+)"),
    ("Firefox", r"(?:Firefox|FxiOS)/(\d+)"),
    ("Chrome", r"(?:Chrome|CriOS)/(\d+)"),
    ("Safari", r"Version/(\d+)[^ ]* .*Safari/"),
    ("curl", r"^curl/(\d+)"),
]
_SYSTEMS = [
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("macOS", "Mac OS X"),
    ("ChromeOS", "CrOS"),
    ("Linux", "Linux"),
]


def device_label(user_agent: str | None) -> str:
    """A readable device from a User-Agent (\"Firefox 128 on Linux\"); the full string is
    shown on the session's own page."""
    if not user_agent:
        return "unknown device"
    browser = next(
        (f"{name} {m.group(1)}" for name, rx in _BROWSERS if (m := re.search(rx, user_agent))),
        None,
    )
    system = next((name for name, mark in _SYSTEMS if mark in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return str(browser or system)
    return user_agent[:40] + ("…" if len(user_agent) > 40 else "")


def _latest(session: Session) -> dict[str, Any]:
    history = session.context_history
    return history[-1] if history else {}


@dataclass(frozen=True, slots=True)
class SessionQuery:
    user: str = ""
    kind: str = "all"
    device: str = ""
    application: str = ""
    risk: str = ""
    sort: str = "last_seen"
    descending: bool = True
    page: int = 1
    now: float = 0.0  # for "recent" risk decisions
    pending: Pending = field(default_factory=dict)  # decisions not yet in the store

    @classmethod
    def from_params(
        cls, params: Mapping[str, str], now: float = 0.0, pending: Pending | None = None
    ) -> SessionQuery:
        sort = params.get("sort", "last_seen")
        try:
            page = max(1, min(int(params.get("page", "1")), 10_000))
        except ValueError:
            page = 1
        return cls(
            user=params.get("user", "").strip()[:256],
            kind=params.get("kind", "all") if params.get("kind") in _KINDS else "all",
            device=params.get("device", "").strip()[:128],
            application=params.get("app", "").strip()[:63],
            risk=params.get("risk", "") if params.get("risk") in RISK_FILTERS else "",
            now=now,
            pending=pending or {},
            sort=sort if sort in _SORTS else "last_seen",
            descending=params.get("order", "desc") != "asc",
            page=page,
        )

    def keeps(self, session: Session) -> bool:
        if self.kind == "users" and session.user_id is None:
            return False
        if self.kind == "anonymous" and session.user_id is not None:
            return False
        if self.user and not any(
            self.user.lower() in (name or "").lower()
            for name in (shown_user(session), session.user_id)
        ):
            return False
        if self.application and application_of(session) != self.application:
            return False
        if not keeps_risk(self.risk, session, self.now, self.pending):
            return False
        if self.device:
            agent = _latest(session).get("user_agent") or ""
            wanted = self.device.lower()
            shown = (device_label(agent), agent, str(view_json(session)["device"]))
            if not any(wanted in text.lower() for text in shown):
                return False
        return True

    def href(self, **changes: Any) -> str:
        query = replace(self, **changes)
        params = {
            "user": query.user,
            "kind": "" if query.kind == "all" else query.kind,
            "device": query.device,
            "app": query.application,
            "risk": query.risk,
            "sort": "" if query.sort == "last_seen" else query.sort,
            "order": "" if query.descending else "asc",
            "page": "" if query.page == 1 else str(query.page),
        }
        text = urlencode({k: v for k, v in params.items() if v})
        return f"{ROOT}/sessions" + (f"?{text}" if text else "")


async def live_sessions(store: object, now: float) -> tuple[list[Session], bool] | None:
    """Every live session (up to :data:`MAX_SCAN` records scanned, internal records
    skipped) and whether the walk stopped early; ``None`` when the store cannot list every
    session."""
    if not isinstance(store, AsyncScan):
        return None
    out: list[Session] = []
    after, seen = "", 0
    while seen < MAX_SCAN:
        page = await store.scan(after=after, limit=min(500, MAX_SCAN - seen))
        if not page:
            return out, False
        seen += len(page)
        after = page[-1].id
        out.extend(Session(r) for r in page if r.expires_at > now and not r.is_internal)
    return out, True


def _options(choices: Mapping[str, str], chosen: str) -> str:
    return "".join(
        f"<option value={attr(key)}{' selected' if key == chosen else ''}>{esc(label)}</option>"
        for key, label in choices.items()
    )


def filter_form(query: SessionQuery, apps: Sequence[str] = ()) -> str:
    kinds = _options(_KINDS, query.kind)
    known = {"": "All", **{a: application_name(a) for a in apps}}
    if query.application and query.application not in known:
        known[query.application] = application_name(query.application)
    return (
        f'<form method="get" action="{ROOT}/sessions" role="search" class="panel filters">'
        '<div><label for="f-user">User id contains</label>'
        f'<input type="search" id="f-user" name="user" value={attr(query.user)}></div>'
        '<div><label for="f-kind">Who</label>'
        f'<select id="f-kind" name="kind">{kinds}</select></div>'
        '<div><label for="f-device">Device</label>'
        f'<input type="search" id="f-device" name="device" value={attr(query.device)}'
        ' placeholder="e.g. Firefox, Android"></div>'
        '<div><label for="f-app">Application</label>'
        f'<select id="f-app" name="app">{_options(known, query.application)}</select></div>'
        '<div><label for="f-risk">Risk</label>'
        f'<select id="f-risk" name="risk">{_options(RISK_FILTERS, query.risk)}</select></div>'
        f'<input type="hidden" name="sort" value={attr(query.sort)}>'
        f'<input type="hidden" name="order" value="{"desc" if query.descending else "asc"}">'
        '<div class="actions"><button type="submit">Filter</button> '
        f'<a href="{ROOT}/sessions">Clear</a></div></form>'
    )


def sessions_table(
    query: SessionQuery, sessions: list[Session], current: Session | None, truncated: bool
) -> str:
    kept = [s for s in sessions if query.keeps(s)]
    key = _SORTS[query.sort][1]
    kept.sort(key=key, reverse=query.descending)
    if query.sort == "user":  # anonymous visitors last, whichever the order
        kept = [s for s in kept if s.user_id is not None] + [s for s in kept if s.user_id is None]
    pages = max(1, -(-len(kept) // PAGE_SIZE))
    page = min(query.page, pages)
    shown = kept[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    heads = [
        _sort_head(query, "user"),
        '<th scope="col">Application</th>',
        '<th scope="col">Device</th>',
        '<th scope="col">Network</th>',
        '<th scope="col">Risk</th>',
        _sort_head(query, "created"),
        _sort_head(query, "last_seen"),
        '<th scope="col"><span class="sr-only">Actions</span></th>',
    ]
    rows = "".join(_row(s, current, query) for s in shown)
    first = (page - 1) * PAGE_SIZE + 1 if shown else 0
    summary = (
        f"Showing {first} to {first + len(shown) - 1} of {plural(len(kept), 'live session')}"
        if shown
        else "No live session matches these filters."
    )
    note = (
        f'<p class="muted">Only the first {MAX_SCAN} stored sessions were read.</p>'
        if truncated
        else ""
    )
    table = (
        '<div class="table-wrap" tabindex="0" role="region" aria-label="Sessions">'
        '<table class="sessions"><caption class="sr-only">Live sessions'
        f"</caption><thead><tr>{''.join(heads)}</tr></thead><tbody>{rows}</tbody></table></div>"
        if shown
        else ""
    )
    return (
        f"{filter_form(query, applications(sessions))}"
        f'<p id="result-count" role="status">{summary}</p>{note}{table}'
        f"{_pager(query, page, pages)}"
    )


def _sort_head(query: SessionQuery, key: str) -> str:
    label = _SORTS[key][0]
    if query.sort != key:
        href = query.href(sort=key, descending=key != "user", page=1)
        return f'<th scope="col"><a href={attr(href)}>{esc(label)}</a></th>'
    order = "descending" if query.descending else "ascending"
    href = query.href(descending=not query.descending, page=1)
    arrow = "↓" if query.descending else "↑"
    return (
        f'<th scope="col" aria-sort="{order}"><a href={attr(href)}>{esc(label)} '
        f'<span aria-hidden="true">{arrow}</span><span class="sr-only">(sorted {order}, '
        "select to reverse)</span></a></th>"
    )


def _pager(query: SessionQuery, page: int, pages: int) -> str:
    if pages == 1:
        return ""
    previous = (
        f'<a rel="prev" href={attr(query.href(page=page - 1))}>Previous</a>' if page > 1 else ""
    )
    following = (
        f'<a rel="next" href={attr(query.href(page=page + 1))}>Next</a>' if page < pages else ""
    )
    return (
        f'<nav aria-label="Pages" class="pager">{previous}'
        f"<span>Page {page} of {pages}</span>{following}</nav>"
    )


def _row(session: Session, current: Session | None, query: SessionQuery) -> str:
    this = (
        ' <span class="tag">you</span>' if current is not None and current.id == session.id else ""
    )
    return (
        f"<tr><td>{user_cell(session)}{this}</td>"
        f"<td>{esc(application_name(application_of(session)))}</td>"
        f"{device_cells(session)}<td>{risk_cell(session, query.now, query.pending)}</td>"
        f"<td>{fmt_time(session.created_at, short=True)}</td>"
        f"<td>{fmt_time(session.last_seen, short=True)}</td>"
        f'<td class="actions"><a href="{ROOT}/sessions/{esc(session.id)}">Details</a> '
        f'<a class="danger-link" href="{ROOT}/sessions/{esc(session.id)}/revoke"'
        f' aria-label="End session {esc(session.id)}">End…</a></td></tr>'
    )


def confirm_form(
    action: str, csrf: str, question: str, button: str, back: str, **fields: str
) -> str:
    """A page body that asks before a destructive action; the button does it, a link backs out."""
    hidden = "".join(f'<input type="hidden" name="{k}" value={attr(v)}>' for k, v in fields.items())
    return (
        f'<form method="post" action={attr(action)} class="panel confirm">{hidden_csrf(csrf)}'
        f"{hidden}<p>{question}</p><p>The user's next request is refused and they must sign in"
        " again. This cannot be undone.</p>"
        f'<p><button class="danger" type="submit">{esc(button)}</button> '
        f"<a href={attr(back)}>Cancel</a></p></form>"
    )


def binding_summary(session: Session) -> str:
    """The key binding of a session for its detail page: state, method, the start of the key's
    thumbprint and when the key was last proven."""
    binding = binding_of(session.data)
    if not binding.bound:
        note = (
            "offered at sign-in, never registered: works as an unbound session"
            if binding.state == "offered"
            else "a copied token works until the session ends"
        )
        return f'<dt>Key binding</dt><dd data-binding="{binding.state}">unbound ({note})</dd>'
    jkt = f"{binding.jkt[:12]}…" if binding.jkt else "—"
    return (
        f'<dt>Key binding</dt><dd data-binding="bound">bound by {esc(binding.method or "?")}; '
        f'key <code title="JWK thumbprint">{esc(jkt)}</code>; bound '
        f"{fmt_time(binding.bound_at)}; last proof "
        f"{fmt_time(last_proof(binding, session.last_seen))}</dd>"
    )
