"""``/v1/webhooks``: the key's application's webhook endpoints.

=======================================  ==================================================
``POST /v1/webhooks``                    ``{"url", "events"?, "description"?}`` → 201
                                         ``{"webhook": {...}, "secret": "whsec_..."}``: the
                                         secret is in this answer only
``GET /v1/webhooks``                     ``{"webhooks": [...]}``
``GET /v1/webhooks/{id}``                ``{"webhook": {...}}``
``DELETE /v1/webhooks/{id}``             ``{"deleted": true}``
``GET /v1/webhooks/{id}/deliveries``     ``{"deliveries": [...]}``, newest first (``limit``)
``POST /v1/webhooks/{id}/rotate-secret`` ``{"secret": "whsec_..."}``; the old secret keeps
                                         signing beside it for 24 hours
``POST /v1/webhooks/{id}/enable``        re-enable a disabled endpoint (it then receives
                                         what it missed, as far as the log still holds it)
=======================================  ==================================================

Needs a key of scope ``admin``: an endpoint receives every event of the application, as
``GET /v1/events`` shows them. A key sees and changes its own application's endpoints only;
another's answer ``not_found``. The secret is never shown again, listed or logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sessionward.errors import NotFound
from sessionward.service.api_errors import ApiError
from sessionward.service.api_fields import Fields, json_body
from sessionward.service.keys import ApiKey
from sessionward.service.runtime import Runtime
from sessionward.service.webhooks import Webhooks
from sessionward.signals.webhook_endpoints import (
    KIND,
    TooManyEndpoints,
    create_webhook,
    rotate_secret,
)
from sessionward.stores.consumers import ACTIVE, Consumer, Delivery

__all__ = ["MAX_DELIVERIES", "WebhooksApi", "delivery_json", "webhook_json"]

MAX_DELIVERIES: Final = 100
_NO_STORE = {"cache-control": "no-store"}
T = TypeVar("T")


def webhook_json(consumer: Consumer) -> dict[str, Any]:
    """The public view of an endpoint (never its secrets)."""
    return {
        "id": consumer.id,
        "url": consumer.url,
        "events": None if consumer.kinds is None else sorted(consumer.kinds),
        "description": consumer.config.get("description", ""),
        "state": consumer.state,
        "disabled_reason": consumer.disabled_reason,
        "failures": consumer.failures,
        "next_attempt": consumer.next_attempt,
        "created_at": consumer.created_at,
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    out = delivery.to_dict()
    del out["consumer_id"]
    return out


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, headers=_NO_STORE)


class WebhooksApi:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def _hooks(self) -> Webhooks:
        if self.rt.webhooks is None:
            raise ApiError(404, "not_found", "webhooks need the event log (event_log = false)")
        return self.rt.webhooks

    async def _io(self, call: Callable[[], T]) -> T:
        return await run_in_threadpool(call)

    async def _owned(self, request: Request, key: ApiKey) -> Consumer:
        hooks = self._hooks()
        consumer_id = str(request.path_params["webhook_id"])[:64]
        found = await self._io(lambda: hooks.store.get(consumer_id))
        if found is None or found.kind != KIND or found.application != key.application:
            raise ApiError(404, "not_found", "no such webhook")
        return found

    async def create(self, request: Request, key: ApiKey) -> Response:
        hooks = self._hooks()
        fields = Fields(await json_body(request), {"url", "events", "description"})
        url = fields.string("url", required=True, limit=2000) or ""
        events = fields.strings("events")
        description = fields.string("description", limit=200) or ""
        public_only = not self.rt.config.webhook_private_targets

        def create() -> tuple[Consumer, Any]:
            now = hooks.clock.now()
            return create_webhook(
                hooks.store, hooks.log, url, application=key.application, now=now,
                kinds=events, description=description, public_only=public_only,
            )  # fmt: skip

        try:
            consumer, secret = await self._io(create)
        except TooManyEndpoints as exc:
            raise ApiError(409, "limit_reached", str(exc)) from None
        return _answer({"webhook": webhook_json(consumer), "secret": secret.reveal()}, 201)

    async def list(self, request: Request, key: ApiKey) -> Response:
        hooks = self._hooks()
        found = await self._io(lambda: hooks.store.consumers(key.application, KIND))
        return _answer({"webhooks": [webhook_json(c) for c in found]})

    async def get(self, request: Request, key: ApiKey) -> Response:
        return _answer({"webhook": webhook_json(await self._owned(request, key))})

    async def delete(self, request: Request, key: ApiKey) -> Response:
        consumer = await self._owned(request, key)
        store = self._hooks().store
        return _answer({"deleted": await self._io(lambda: store.remove(consumer.id))})

    async def deliveries(self, request: Request, key: ApiKey) -> Response:
        consumer = await self._owned(request, key)
        text = request.query_params.get("limit", "50")
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_DELIVERIES:
            raise ApiError(400, "invalid_request", f"limit is 1 to {MAX_DELIVERIES}")
        store = self._hooks().store
        found = await self._io(lambda: store.deliveries(consumer.id, int(text)))
        return _answer({"deliveries": [delivery_json(d) for d in found]})

    async def rotate(self, request: Request, key: ApiKey) -> Response:
        consumer = await self._owned(request, key)
        hooks = self._hooks()
        try:
            secret = await self._io(
                lambda: rotate_secret(hooks.store, consumer.id, now=hooks.clock.now())
            )
        except NotFound:
            raise ApiError(404, "not_found", "no such webhook") from None
        return _answer({"secret": secret.reveal()})

    async def enable(self, request: Request, key: ApiKey) -> Response:
        consumer = await self._owned(request, key)
        hooks = self._hooks()
        await self._io(lambda: hooks.store.set_state(consumer.id, ACTIVE, None, hooks.clock.now()))
        hooks.deliverer.wake()
        return _answer({"webhook": webhook_json(await self._owned(request, key))})


def webhook_routes(api: WebhooksApi) -> list[tuple[str, str, str, str, Any]]:
    """Rows of the API's route table: path, method, operation name, scope, handler."""
    one = "/v1/webhooks/{webhook_id}"
    return [
        ("/v1/webhooks", "POST", "create_webhook", "admin", api.create),
        ("/v1/webhooks", "GET", "list_webhooks", "admin", api.list),
        (one, "GET", "get_webhook", "admin", api.get),
        (one, "DELETE", "delete_webhook", "admin", api.delete),
        (one + "/deliveries", "GET", "webhook_deliveries", "admin", api.deliveries),
        (one + "/rotate-secret", "POST", "rotate_webhook_secret", "admin", api.rotate),
        (one + "/enable", "POST", "enable_webhook", "admin", api.enable),
    ]
