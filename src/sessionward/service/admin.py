"""The admin page (``/admin``): watch and control sessions.

Protected by its own sessionward session: the ASGI middleware with a ``__Host-admin`` cookie
and CSRF (Fetch Metadata plus a session-bound form token). An admin session belongs to the
user ``sessionward:admin:<name>`` with the scope ``sessionward:admin``; the API refuses to issue
sessions in that namespace, and every page re-checks that the account still exists.

Pages: dashboard (live counts, a chart of sessions and decisions, the live event feed over
server-sent events, a search by user), the sessions table (``admin_sessions``: paging, sorting,
filters), a user's sessions, a session's detail (context history, risk decisions and events),
and a confirmation page before ending one session or all of a user's. The first admin account is
created with the one-time setup code printed by ``sessionward serve``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from sessionward.core import token as tokens
from sessionward.core.events import RevokeReason
from sessionward.core.record import Session
from sessionward.errors import AlreadyExists
from sessionward.service import history
from sessionward.service.admin_account import (
    ADMIN_MIN_PASSWORD,
    ROOT,
    AdminAccount,
    second_factor_next,
)
from sessionward.service.admin_columns import pending_decisions, user_text
from sessionward.service.admin_sessions import (
    SessionQuery,
    auth_level_text,
    binding_summary,
    confirm_form,
    device_label,
    live_sessions,
    plural,
    sessions_table,
)
from sessionward.service.admin_webhooks import AdminWebhooks
from sessionward.service.factors import NAME, check_password, check_setup_code
from sessionward.service.forms import form_fields, redirect, try_again, with_retry_after
from sessionward.service.html import Page, attr, chart_svg, esc, fmt_time, hidden_csrf
from sessionward.service.password_policy import password_problem
from sessionward.service.passwords import hash_password_async
from sessionward.service.runtime import ADMIN_SCOPE, ADMIN_USER_PREFIX, Runtime
from sessionward.service.session_views import device_cells, title_of, view_panel
from sessionward.service.state import UserRow
from sessionward.service.tenancy import ADMIN_APP, stored_user
from sessionward.web import CookiePolicy, CsrfPolicy
from sessionward.web.asgi import SessionMiddleware
from sessionward.web.starlette import get_handle

__all__ = ["ROOT", "admin_app"]

STREAM_SECONDS = 300.0
_CHART = [
    ("event:created", "Sessions created", "#0b5cad"),
    ("decision:allow", "API validations allowed", "#1e6b2f"),
    ("decision:deny", "API validations denied", "#a4161a"),
    ("event:revoked", "Sessions ended", "#6b3fa0"),
]


class Admin:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.manager = rt.manager

    # -- who is asking -----------------------------------------------------------------------

    def signed_in(self, request: Request) -> str | None:
        """The admin account of this session, proven by its password at least."""
        session = get_handle(request).session
        if session is None or session.user_id is None:
            return None
        if not session.user_id.startswith(ADMIN_USER_PREFIX) or ADMIN_SCOPE not in session.scopes:
            return None
        name = session.user_id[len(ADMIN_USER_PREFIX) :]
        return name if self.rt.state.get_user("admin", name) is not None else None

    def admin_name(self, request: Request) -> str | None:
        """The admin account of this session once both factors are proven (level 2): only
        then does the console answer."""
        session = get_handle(request).session
        name = self.signed_in(request)
        both = session is not None and session.auth_level >= 2
        return name if both else None

    def sign_in_first(self, request: Request) -> Response:
        """Where a request without a console session goes: setting up the second factor
        when the password is proven and the account has none yet, else the sign-in page."""
        name = self.signed_in(request)
        account = None if name is None else self.rt.state.get_user("admin", name)
        enrol = account is not None and not account.totp_secret
        return redirect(f"{ROOT}/enrol" if enrol else f"{ROOT}/login")

    async def page(self, request: Request, title: str, name: str | None = None) -> Page:
        """A console page; signed in, its navigation holds the sign-out button."""
        nav = [f'<a href="{ROOT}/">Dashboard</a>', f'<a href="{ROOT}/sessions">Sessions</a>']
        nav.append(f'<a href="{ROOT}/webhooks">Webhooks</a>')
        if self.rt.config.admin_host is None:
            nav.append('<a href="/demo/">Demo shop</a>')
        name = name or self.signed_in(request)
        if name is not None:
            nav += [
                f'<a href="{ROOT}/account">Signed in as {esc(name)}</a>',
                await self.logout_form(request),
            ]
        return Page(title, "sessionward admin", f"{ROOT}/", nav, logo=_LOGO)

    async def logout_form(self, request: Request) -> str:
        csrf = await get_handle(request).csrf_token()
        return (
            f'<form method="post" action="{ROOT}/logout" class="inline">{hidden_csrf(csrf)}'
            '<button class="secondary" type="submit">Sign out</button></form>'
        )

    # -- setup and login ---------------------------------------------------------------------

    async def setup(self, request: Request) -> Response:
        handle = get_handle(request)
        if self.rt.state.count_users("admin") > 0:
            return redirect(f"{ROOT}/login")
        error, wait = "", 0
        if request.method == "POST":
            fields = await form_fields(request)
            name = fields.get("username", "").strip().lower()
            password, code = fields.get("password", ""), fields.get("code", "").strip()
            problem = password_problem(password, min_length=ADMIN_MIN_PASSWORD, name=name)
            if not NAME.fullmatch(name):
                error = "Choose a user name of 3 to 32 letters, digits, '.', '_' or '-'."
            elif problem is not None:
                error = problem
            elif (setup := await check_setup_code(self.rt, handle, code)).throttled:
                wait = setup.wait
                error = try_again(wait)
            elif not setup.ok:
                error = "That setup code is not valid (it works once; restart to get a new one)."
            else:
                hashed = await hash_password_async(password)
                try:
                    self.rt.state.add_user(UserRow("admin", name, hashed, None, time.time()))
                except AlreadyExists:
                    return redirect(f"{ROOT}/login")
                # The password alone: the console opens once a second factor is set up.
                await handle.login(ADMIN_USER_PREFIX + name, auth_level=1, scopes=[ADMIN_SCOPE])
                return redirect(f"{ROOT}/enrol")
        csrf = await handle.csrf_token()
        body = (
            (f'<p class="msg error" role="alert">{esc(error)}</p>' if error else "")
            + "<p>Create the first admin account with the one-time setup code that "
            "<code>sessionward serve</code> printed.</p>"
            f'<form method="post" action="{ROOT}/setup" class="panel">{hidden_csrf(csrf)}'
            '<label for="code">Setup code</label>'
            '<input type="password" id="code" name="code" autocomplete="off" required>'
            '<label for="username">Admin user name</label>'
            '<input type="text" id="username" name="username" autocomplete="username" required>'
            '<label for="password">Password (12 characters or more)</label>'
            '<input type="password" id="password" name="password" autocomplete="new-password"'
            ' minlength="12" maxlength="1024" required>'
            '<p><button type="submit">Create admin account</button></p></form>'
        )
        # The code arrives in the URL fragment, which is never sent to the server; copy it
        # into the form and drop it from the address bar and history.
        script = (
            "var m=location.hash.match(/code=([A-Za-z0-9_-]+)/);"
            "if(m){document.getElementById('code').value=m[1];"
            "history.replaceState(null,'',location.pathname);}"
        )
        page = await self.page(request, "Set up the admin account")
        status = 429 if wait else 400 if error else 200
        return with_retry_after(page.response(body, status=status, scripts=[script]), wait)

    async def login(self, request: Request) -> Response:
        handle = get_handle(request)
        if self.rt.state.count_users("admin") == 0:
            return redirect(f"{ROOT}/setup")
        error, wait = "", 0
        if request.method == "POST":
            fields = await form_fields(request)
            name = fields.get("username", "").strip().lower()
            proven = await check_password(
                self.rt, handle, "admin", name, fields.get("password", "")
            )
            if proven.account is not None:
                return await second_factor_next(self.rt, handle, proven.account)
            wait = proven.wait
            error = try_again(wait) if wait else "Wrong user name or password."
        csrf = await handle.csrf_token()
        body = (
            (f'<p class="msg error" role="alert">{esc(error)}</p>' if error else "")
            + f'<form method="post" action="{ROOT}/login" class="panel">{hidden_csrf(csrf)}'
            '<label for="username">User name</label>'
            '<input type="text" id="username" name="username" autocomplete="username" required>'
            '<label for="password">Password</label>'
            '<input type="password" id="password" name="password"'
            ' autocomplete="current-password" required>'
            '<p><button type="submit">Sign in</button></p></form>'
        )
        page = await self.page(request, "Admin sign-in")
        status = 429 if wait else 401 if error else 200
        return with_retry_after(page.response(body, status=status), wait)

    async def logout(self, request: Request) -> Response:
        await get_handle(request).logout()
        return redirect(f"{ROOT}/login")

    # -- dashboard ---------------------------------------------------------------------------

    async def counts(self) -> dict[str, Any]:
        activity = self.rt.activity
        return {
            "sessions": await self.rt.session_count(),
            "created": activity.events_total["created"],
            "allowed": activity.decisions_total["allow"] + activity.decisions_total["rotate"],
            "denied": activity.decisions_total["deny"],
            "rejected": activity.events_total["rejected"],
            "ended": activity.events_total["revoked"] + activity.events_total["expired"],
        }

    async def dashboard(self, request: Request) -> Response:
        name = self.admin_name(request)
        if name is None:
            return self.sign_in_first(request)
        counts = await self.counts()
        labels = {
            "sessions": "Stored sessions",
            "created": "Created",
            "allowed": "API validations allowed",
            "denied": "API validations denied",
            "rejected": "Tokens rejected",
            "ended": "Ended or expired",
        }
        stats = "".join(
            f'<div class="stat"><span class="n" id="count-{key}">'
            f"{'—' if counts[key] is None else counts[key]}</span>{esc(label)}</div>"
            for key, label in labels.items()
        )
        series = self.rt.activity.series([key for key, _, _ in _CHART], minutes=30)
        feed = "".join(_feed_item(e) for e in await history.latest(self.rt, 30))
        body = (
            f'<section aria-labelledby="counts-h"><h2 id="counts-h">Live counts</h2>'
            f'<div class="grid" aria-live="polite">{stats}</div></section>'
            f'<section aria-labelledby="chart-h"><h2 id="chart-h">Sessions and decisions</h2>'
            f"{chart_svg('Sessions and decisions per minute', series, _CHART)}</section>"
            f'<section aria-labelledby="search-h"><h2 id="search-h">Find sessions</h2>'
            f'<p><a href="{ROOT}/sessions">Browse every live session</a> (filters, sorting) or'
            " go straight to one user's:</p>"
            f'<form method="get" action="{ROOT}/users" role="search" class="panel">'
            '<label for="user">User id</label>'
            '<input type="search" id="user" name="user" required>'
            ' <button type="submit">Search</button></form></section>'
            f'<section aria-labelledby="feed-h"><h2 id="feed-h">Events</h2>'
            '<p class="muted" id="feed-status">Live updates connect automatically.</p>'
            f'<ul class="feed" id="feed">{feed}</ul></section>'
            '<section aria-labelledby="all-h"><h2 id="all-h">Every session</h2>'
            f'<p><a href="{ROOT}/revoke-all">End every session of every user…</a> '
            "(asks for your password and a code first)</p></section>"
        )
        script = (
            f"var es=new EventSource('{ROOT}/stream');var feed=document.getElementById('feed');"
            "var st=document.getElementById('feed-status');"
            "es.onopen=function(){st.textContent='Live: new events appear at the top.';};"
            "es.onerror=function(){st.textContent='Reconnecting to the live feed…';};"
            "es.addEventListener('session',function(m){var e=JSON.parse(m.data);"
            "var li=document.createElement('li');li.textContent=e.text;"
            "if(e.href){li.textContent='';var a=document.createElement('a');a.href=e.href;"
            "a.textContent=e.text;li.appendChild(a);}"
            "feed.insertBefore(li,feed.firstChild);"
            "while(feed.children.length>100){feed.removeChild(feed.lastChild);}});"
            "es.addEventListener('counts',function(m){var c=JSON.parse(m.data);"
            "for(var k in c){var el=document.getElementById('count-'+k);"
            "if(el&&c[k]!==null){el.textContent=c[k];}}});"
        )
        return (await self.page(request, "Sessions", name)).response(body, scripts=[script])

    async def stream(self, request: Request) -> Response:
        if self.admin_name(request) is None:
            return Response("sign in first", status_code=401, media_type="text/plain")
        queue = self.rt.activity.listen()

        async def events() -> AsyncIterator[str]:
            deadline = time.monotonic() + STREAM_SECONDS
            try:
                yield "retry: 3000\n\n"
                yield f"event: counts\ndata: {json.dumps(await self.counts())}\n\n"
                while time.monotonic() < deadline:
                    try:
                        entry = await asyncio.wait_for(queue.get(), timeout=5)
                    except TimeoutError:
                        yield f"event: counts\ndata: {json.dumps(await self.counts())}\n\n"
                        continue
                    data = {"text": _describe(entry), "href": _detail_href(entry)}
                    yield f"event: session\ndata: {json.dumps(data)}\n\n"
            finally:
                self.rt.activity.unlisten(queue)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    # -- users and sessions ------------------------------------------------------------------

    async def user_sessions(self, request: Request) -> Response:
        name = self.admin_name(request)
        if name is None:
            return self.sign_in_first(request)
        user = request.query_params.get("user", "").strip()[:256]
        application = request.query_params.get("application", "").strip()[:63]
        if user and application:  # an API application's user: its stored id
            user = stored_user(application, user)[:256]
        handle = get_handle(request)
        sessions = await self.manager.list_user(user) if user else []
        shown = user_text(user) if user else ""
        app, _, public = user.rpartition("/")  # the search form, filled in as typed
        rows = "".join(_session_row(s, handle.session) for s in sessions)
        table = (
            '<div class="table-wrap" tabindex="0" role="region" aria-label="Sessions">'
            '<table><caption class="sr-only">Live sessions</caption><thead><tr>'
            '<th scope="col">Session</th><th scope="col">Device</th><th scope="col">Network</th>'
            '<th scope="col">Created</th><th scope="col">Last activity</th>'
            '<th scope="col"><span class="sr-only">Actions</span></th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"
            if sessions
            else f"<p>No live sessions for <strong>{esc(shown)}</strong>.</p>"
        )
        revoke_all = (
            f'<p><a class="danger-link" href="{ROOT}/users/revoke?user={quote(user)}">'
            f"{_end_all(len(sessions))} of {esc(shown)}…</a></p>"
            if sessions
            else ""
        )
        body = (
            f'<form method="get" action="{ROOT}/users" role="search" class="panel">'
            '<label for="application">Application (empty: the stored user id)</label>'
            f'<input type="search" id="application" name="application" value={attr(app)}>'
            '<label for="user">User id</label>'
            f'<input type="search" id="user" name="user" value={attr(public)} required>'
            ' <button type="submit">Search</button></form>'
            f"<h2>Sessions of {esc(shown)}</h2>{table}{revoke_all}"
        )
        return (await self.page(request, f"User {shown}", name)).response(body)

    async def session_detail(self, request: Request) -> Response:
        name = self.admin_name(request)
        if name is None:
            return self.sign_in_first(request)
        session_id = str(request.path_params["session_id"])
        session = await self.manager.get(session_id) if tokens.is_session_id(session_id) else None
        events = await history.for_session(self.rt, session_id)
        contexts = "".join(
            f"<tr><td>{fmt_time(h.get('since'))}</td><td>{esc(h.get('ip'))}</td>"
            f"<td>{esc(device_label(h.get('user_agent')))}"
            f'<span class="ua">{esc(h.get("user_agent"))}</span></td>'
            f"<td>{esc(h.get('accept_language'))}</td></tr>"
            for h in (session.context_history if session else [])
        )
        if session is None:
            summary = "<p>This session has ended (or never existed).</p>"
        else:
            summary = (
                '<dl class="panel">'
                f"<dt>User</dt><dd>{esc(user_text(session.user_id))}</dd>"
                f"<dt>Created</dt><dd>{fmt_time(session.created_at)}</dd>"
                f"<dt>Last activity</dt><dd>{fmt_time(session.last_seen)}</dd>"
                f"<dt>Idle expiry</dt><dd>{fmt_time(session.expires_at)}</dd>"
                f"<dt>Absolute expiry</dt><dd>{fmt_time(session.absolute_expires_at)}</dd>"
                f"<dt>Authentication</dt><dd>{esc(auth_level_text(session.auth_level))}; "
                f"proven {fmt_time(session.auth_time)}</dd>"
                f"<dt>Token generation</dt><dd>{session.generation} "
                '<span class="muted">(times its token was renewed)</span></dd>'
                f"{binding_summary(session)}</dl>"
                f'<p><a class="danger-link" href="{ROOT}/sessions/{esc(session.id)}/revoke">'
                "End this session…</a></p>"
            )
        event_list = "".join(f"<li>{esc(_describe(e))}</li>" for e in events) or (
            "<li>No events recorded for this session.</li>"
        )
        body = (
            summary
            # Kept only without hijack scoring, which stores named devices and networks instead
            # of addresses and user agents (the panel below shows them either way).
            + (
                "<h2>Context history</h2>"
                '<div class="table-wrap" tabindex="0" role="region" aria-label="Context history">'
                '<table><thead><tr><th scope="col">Since</th>'
                '<th scope="col">IP</th><th scope="col">Device (user agent)</th>'
                '<th scope="col">Languages</th></tr></thead>'
                f"<tbody>{contexts}</tbody></table></div>"
                if contexts
                else ""
            )
            + (view_panel(session, events) if session is not None else "")
            + f"<h2>Events</h2><ul>{event_list}</ul>"
        )
        return (await self.page(request, f"Session {session_id}", name)).response(body)

    async def sessions(self, request: Request) -> Response:
        name = self.admin_name(request)
        if name is None:
            return self.sign_in_first(request)
        now = self.manager.clock.now()
        pending = pending_decisions(self.rt.activity.recent)  # not written yet
        query = SessionQuery.from_params(request.query_params, now, pending)
        found = await live_sessions(self.manager.store, now)
        if found is None:
            body = (
                "<p>This session store cannot list every session; find a user's sessions from"
                f' the <a href="{ROOT}/">dashboard</a>.</p>'
            )
        else:
            body = sessions_table(query, found[0], get_handle(request).session, found[1])
        return (await self.page(request, "Live sessions", name)).response(body)

    async def confirm_revoke_session(self, request: Request) -> Response:
        name = self.admin_name(request)
        if name is None:
            return self.sign_in_first(request)
        session_id = str(request.path_params["session_id"])
        session = await self.manager.get(session_id) if tokens.is_session_id(session_id) else None
        if session is None:
            body = f'<p>This session has already ended. <a href="{ROOT}/sessions">Sessions</a></p>'
            return (await self.page(request, "End a session", name)).response(body, status=404)
        who = esc(user_text(session.user_id)) if session.user_id else "an anonymous visitor"
        device = esc(title_of(session))
        body = confirm_form(
            f"{ROOT}/sessions/{session.id}/revoke",
            await get_handle(request).csrf_token(),
            f"End session <code>{esc(session.id)}</code> of <strong>{who}</strong> ({device})?",
            "End this session",
            f"{ROOT}/sessions/{session.id}",
        )
        return (await self.page(request, "End a session", name)).response(body)

    async def confirm_revoke_user(self, request: Request) -> Response:
        name = self.admin_name(request)
        if name is None:
            return self.sign_in_first(request)
        user = request.query_params.get("user", "").strip()[:256]
        count = len(await self.manager.list_user(user)) if user else 0
        body = confirm_form(
            f"{ROOT}/users/revoke",
            await get_handle(request).csrf_token(),
            f"{_end_all(count)} of <strong>{esc(user_text(user))}</strong>?",
            f"End {plural(count, 'session')}",
            f"{ROOT}/users?user={quote(user)}",
            user=user,
        )
        return (await self.page(request, "End a user's sessions", name)).response(body)

    async def revoke_session(self, request: Request) -> Response:
        if self.admin_name(request) is None:
            return self.sign_in_first(request)
        session_id = str(request.path_params["session_id"])
        user = None
        if tokens.is_session_id(session_id):
            session = await self.manager.get(session_id)
            user = session.user_id if session else None
            # The Session (not just its id) puts the user id into the revoked event.
            await self.manager.revoke(session or session_id, reason=RevokeReason.ADMIN)
        return redirect(f"{ROOT}/users?user={quote(user or '')}" if user else f"{ROOT}/")

    async def revoke_user(self, request: Request) -> Response:
        if self.admin_name(request) is None:
            return self.sign_in_first(request)
        user = (await form_fields(request)).get("user", "").strip()
        if user:
            current = get_handle(request).session
            await self.manager.revoke_user(user, keep=current, reason=RevokeReason.ADMIN)
        return redirect(f"{ROOT}/users?user={quote(user)}")


def _end_all(count: int) -> str:
    return "End the session" if count == 1 else f"End all {plural(count, 'session')}"


_LOGO = (  # the site's icon, drawn inline
    '<svg class="logo" viewBox="0 0 32 32" width="28" height="28" aria-hidden="true">'
    '<path d="M16 5l9 3.5v6.5c0 6-3.9 10.6-9 12-5.1-1.4-9-6-9-12V8.5z" fill="#f2b632"/>'
    '<path d="M12 16.5l3 3 5.5-6" fill="none" stroke="#14213d" stroke-width="2.6"'
    ' stroke-linecap="round" stroke-linejoin="round"/></svg>'
)


def _detail_href(entry: dict[str, Any]) -> str | None:
    session_id = entry.get("session_id")
    return f"{ROOT}/sessions/{session_id}" if session_id else None


def _describe(entry: dict[str, Any]) -> str:
    when = time.strftime("%H:%M:%S", time.gmtime(entry.get("at", 0)))
    who = user_text(entry.get("user_id") or None)
    text = f"{when} {entry.get('kind')} · {who}"
    if entry.get("session_id"):
        text += f" · session {entry['session_id']}"
    for key in ("reason", "deadline", "detail"):
        if entry.get(key):
            text += f" · {key} {entry[key]}"
    return text


def _feed_item(entry: dict[str, Any]) -> str:
    href = _detail_href(entry)
    text = esc(_describe(entry))
    return f"<li><a href={attr(href)}>{text}</a></li>" if href else f"<li>{text}</li>"


def _session_row(session: Session, current: Session | None) -> str:
    this = (
        ' <span class="tag">this admin session</span>'
        if current and current.id == session.id
        else ""
    )
    return (
        f'<tr><td><a href="{ROOT}/sessions/{esc(session.id)}">{esc(session.id)}</a>{this}</td>'
        f"{device_cells(session)}"
        f"<td>{fmt_time(session.created_at)}</td><td>{fmt_time(session.last_seen)}</td>"
        f'<td><a class="danger-link" href="{ROOT}/sessions/{esc(session.id)}/revoke"'
        f' aria-label="End session {esc(session.id)}">End…</a></td></tr>'
    )


def admin_app(rt: Runtime) -> Any:
    admin = Admin(rt)
    account = AdminAccount(admin)
    hooks = AdminWebhooks(admin)
    routes = [
        Route("/", admin.dashboard, methods=["GET"]),
        Route("/setup", admin.setup, methods=["GET", "POST"]),
        Route("/login", admin.login, methods=["GET", "POST"]),
        Route("/login/code", account.second_factor, methods=["GET", "POST"]),
        Route("/enrol", account.enrol, methods=["GET", "POST"]),
        Route("/account", account.account, methods=["GET", "POST"]),
        Route("/revoke-all", account.revoke_all, methods=["GET", "POST"]),
        Route("/logout", admin.logout, methods=["POST"]),
        Route("/stream", admin.stream, methods=["GET"]),
        Route("/users", admin.user_sessions, methods=["GET"]),
        Route("/users/revoke", admin.confirm_revoke_user, methods=["GET"]),
        Route("/users/revoke", admin.revoke_user, methods=["POST"]),
        Route("/sessions", admin.sessions, methods=["GET"]),
        Route("/sessions/{session_id}", admin.session_detail, methods=["GET"]),
        Route("/sessions/{session_id}/revoke", admin.confirm_revoke_session, methods=["GET"]),
        Route("/sessions/{session_id}/revoke", admin.revoke_session, methods=["POST"]),
        Route("/webhooks", hooks.index, methods=["GET"]),
        Route("/webhooks/{webhook_id}", hooks.detail, methods=["GET"]),
        Route("/webhooks/{webhook_id}/enable", hooks.enable, methods=["POST"]),
    ]
    csrf = CsrfPolicy(rt.config.admin_origins, keys=[rt.state.secret("admin-csrf")])
    middleware = [
        Middleware(
            SessionMiddleware,
            manager=rt.manager_for(ADMIN_APP),  # admits no API application's session
            cookie=CookiePolicy(name="admin", same_site="Strict"),
            csrf=csrf,
            trusted_proxies=list(rt.config.trusted_proxies),
            step_up_paths=[f"{ROOT}/login"],
        )
    ]
    return Starlette(routes=routes, middleware=middleware)
