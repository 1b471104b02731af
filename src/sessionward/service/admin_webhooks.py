"""The admin console's webhooks page (``/admin/webhooks``): every endpoint of every
application, its state and its latest delivery attempts; ``/admin/webhooks/{id}`` shows the
whole kept history of one endpoint. Read-only: endpoints are managed through the API and the
command line; a disabled endpoint can be enabled again here. Secrets are never shown."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from sessionward.errors import StoreError
from sessionward.service.admin_account import Console
from sessionward.service.forms import redirect
from sessionward.service.html import attr, esc, fmt_time, hidden_csrf
from sessionward.signals.webhook_endpoints import KIND
from sessionward.stores.consumers import ACTIVE, Consumer, Delivery
from sessionward.web.starlette import get_handle

__all__ = ["AdminWebhooks"]

ROOT = "/admin"
_RECENT = 5
_HISTORY = 100


def _deliveries_table(deliveries: list[Delivery], caption: str) -> str:
    if not deliveries:
        return '<p class="muted">No delivery attempt yet.</p>'
    rows = "".join(
        "<tr>"
        f"<td>{fmt_time(d.at)}</td><td><code>{esc(d.message_id or d.event_id)}</code></td>"
        f"<td>{d.attempt}</td><td>{esc(d.status if d.status is not None else '—')}</td>"
        f"<td>{'delivered' if d.ok else esc(d.error or 'failed')}</td>"
        f"<td>{d.latency_ms:.0f} ms</td></tr>"
        for d in deliveries
    )
    return (
        f'<div class="table-wrap"><table><caption>{esc(caption)}</caption>'
        '<thead><tr><th scope="col">At</th><th scope="col">Message id</th>'
        '<th scope="col">Attempt</th><th scope="col">HTTP status</th>'
        '<th scope="col">Outcome</th><th scope="col">Latency</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def _state(consumer: Consumer) -> str:
    if consumer.state != "active":
        return f"<strong>disabled</strong> ({esc(consumer.disabled_reason or 'by an operator')})"
    if consumer.failures:
        return (
            f"retrying: {consumer.failures} failure(s) in a row, next attempt"
            f" {fmt_time(consumer.next_attempt)}"
        )
    return "active"


def _enable_form(consumer: Consumer, csrf: str) -> str:
    if consumer.state == ACTIVE:
        return ""
    return (
        f'<form method="post" action={attr(f"{ROOT}/webhooks/{consumer.id}/enable")}>'
        f'{hidden_csrf(csrf)}<button type="submit">Enable again</button>'
        '<span class="muted"> It then receives what it missed, as far as the log holds it.</span>'
        "</form>"
    )


def _summary(consumer: Consumer) -> str:
    events = ", ".join(sorted(consumer.kinds)) if consumer.kinds else "every event"
    return (
        f"<dl><dt>URL</dt><dd><code>{esc(consumer.url)}</code></dd>"
        f"<dt>Application</dt><dd>{esc(consumer.application)}</dd>"
        f"<dt>Events</dt><dd>{esc(events)}</dd><dt>State</dt><dd>{_state(consumer)}</dd>"
        f"<dt>Created</dt><dd>{fmt_time(consumer.created_at)}</dd></dl>"
    )


class AdminWebhooks:
    def __init__(self, admin: Console) -> None:
        self.admin = admin
        self.rt = admin.rt

    async def index(self, request: Request) -> Response:
        name = self.admin.admin_name(request)
        if name is None:
            return self.admin.sign_in_first(request)
        page = await self.admin.page(request, "Webhooks", name)
        hooks = self.rt.webhooks
        if hooks is None:
            return page.response("<p>Webhooks need the event log (event_log = true).</p>")
        store = hooks.store

        def load() -> list[tuple[Consumer, list[Delivery]]]:
            return [(c, store.deliveries(c.id, _RECENT)) for c in store.consumers(kind=KIND)]

        try:
            found = await asyncio.to_thread(load)
        except StoreError:
            return page.response("<p>The webhook store cannot be read right now.</p>", status=503)
        if not found:
            body = (
                "<p>No webhook endpoint yet. Add one with <code>sessionward webhooks add URL</code>"
                " or <code>POST /v1/webhooks</code>.</p>"
            )
            return page.response(body)
        csrf = await get_handle(request).csrf_token()
        sections = "".join(
            f"<section aria-labelledby={attr('wh-' + c.id)}>"
            f"<h2 id={attr('wh-' + c.id)}><a href={attr(f'{ROOT}/webhooks/{c.id}')}>"
            f"{esc(c.id)}</a></h2>{_summary(c)}{_enable_form(c, csrf)}"
            f"{_deliveries_table(recent, f'Latest {_RECENT} attempts')}</section>"
            for c, recent in found
        )
        return page.response(sections)

    async def detail(self, request: Request) -> Response:
        name = self.admin.admin_name(request)
        if name is None:
            return self.admin.sign_in_first(request)
        consumer_id = str(request.path_params["webhook_id"])[:64]
        page = await self.admin.page(request, f"Webhook {consumer_id}", name)
        hooks = self.rt.webhooks
        store = None if hooks is None else hooks.store
        try:
            consumer = None if store is None else await asyncio.to_thread(store.get, consumer_id)
            if store is None or consumer is None or consumer.kind != KIND:
                body = f'<p>No such webhook. <a href="{ROOT}/webhooks">Webhooks</a></p>'
                return page.response(body, status=404)
            history = await asyncio.to_thread(store.deliveries, consumer_id, _HISTORY)
        except StoreError:
            return page.response("<p>The webhook store cannot be read right now.</p>", status=503)
        body = _summary(consumer) + _deliveries_table(
            history, f"Delivery history (latest {_HISTORY} attempts)"
        )
        return page.response(body)

    async def enable(self, request: Request) -> Response:
        if self.admin.admin_name(request) is None:
            return self.admin.sign_in_first(request)
        consumer_id = str(request.path_params["webhook_id"])[:64]
        hooks = self.rt.webhooks
        if hooks is not None:
            store, now = hooks.store, hooks.clock.now()
            found = await asyncio.to_thread(store.get, consumer_id)
            if found is not None and found.kind == KIND:
                await asyncio.to_thread(store.set_state, consumer_id, ACTIVE, None, now)
                hooks.deliverer.wake()
        return redirect(f"{ROOT}/webhooks")
