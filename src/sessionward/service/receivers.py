"""The service's receivers of events from identity providers: OpenID Connect back-channel
logout (``POST /v1/oidc/backchannel-logout``) and Shared Signals push delivery
(``POST /v1/ssf/events``). Each answers ``501`` until configured (``oidc_issuer`` and
``oidc_client_id``; ``ssf_issuer``). Neither takes an API key: the signed token is the
authentication (and, for Shared Signals, the optional ``ssf_authorization`` header).

Both act on the sessions the API issued with an ``idp`` link (``POST /v1/sessions``), through
the manager that serves every application, so one logout token ends the linked sessions of
every application on this service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sessionward.manager._async.manager import AsyncSessionManager
from sessionward.service.config import ServiceConfig
from sessionward.service.metrics import Metrics
from sessionward.signals._async.jwks import AsyncKeySource
from sessionward.signals._async.links import AsyncIdpLinks
from sessionward.signals._async.receiver import AsyncBackchannelLogout, AsyncSsfReceiver
from sessionward.signals.reply import Reply, json_reply

__all__ = ["Receivers", "open_receivers", "receiver_routes"]


@dataclass(slots=True)
class Receivers:
    links: AsyncIdpLinks
    logout: AsyncBackchannelLogout | None = None
    ssf: AsyncSsfReceiver | None = None

    async def close(self) -> None:
        for receiver in (self.logout, self.ssf):
            if receiver is not None:
                await receiver.keys.close()


def _configuration(issuer: str, name: str) -> str:
    return f"{issuer.rstrip('/')}/.well-known/{name}"


def open_receivers(config: ServiceConfig, manager: AsyncSessionManager) -> Receivers:
    """The links of ``manager``'s sessions and the receivers ``config`` turns on."""
    links = AsyncIdpLinks(manager)
    out = Receivers(links)
    if config.oidc_issuer and config.oidc_client_id:
        keys = _source(config.oidc_issuer, config.oidc_jwks_url, "openid-configuration", manager)
        out.logout = AsyncBackchannelLogout(links, keys, client_id=config.oidc_client_id)
    if config.ssf_issuer:
        keys = _source(config.ssf_issuer, config.ssf_jwks_url, "ssf-configuration", manager)
        out.ssf = AsyncSsfReceiver(
            links,
            keys,
            audience=config.ssf_audience or config.origin,
            on_compromise="step-up" if config.ssf_credential_compromise == "step-up" else "revoke",
            authorization=config.ssf_authorization,
        )
    return out


def _source(
    issuer: str, jwks_url: str | None, document: str, manager: AsyncSessionManager
) -> AsyncKeySource:
    if jwks_url:
        return AsyncKeySource(issuer, jwks_url=jwks_url, clock=manager.clock)
    url = _configuration(issuer, document)
    return AsyncKeySource(issuer, configuration_url=url, clock=manager.clock)


def _response(reply: Reply) -> Response:
    return Response(reply.body, status_code=reply.status, headers=dict(reply.headers))


def _not_configured(what: str) -> Reply:
    return json_reply(501, {"error": "not_configured", "error_description": f"set {what}"})


def receiver_routes(receivers: Receivers, metrics: Metrics) -> list[Route]:
    """The two receiver endpoints."""

    def timed(name: str, answer: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            started = time.perf_counter()
            reply: Reply = await answer(request)
            metrics.observe(name, reply.status, time.perf_counter() - started)
            return _response(reply)

        return run

    async def logout(request: Request) -> Reply:
        if receivers.logout is None:
            return _not_configured("oidc_issuer and oidc_client_id")
        body = await request.body()
        return await receivers.logout.handle(body, request.headers.get("content-type"))

    async def ssf(request: Request) -> Reply:
        if receivers.ssf is None:
            return _not_configured("ssf_issuer")
        headers = request.headers
        body = await request.body()
        content_type, authorization = headers.get("content-type"), headers.get("authorization")
        return await receivers.ssf.handle(body, content_type, authorization)

    return [
        Route("/v1/oidc/backchannel-logout", timed("backchannel_logout", logout), methods=["POST"]),
        Route("/v1/ssf/events", timed("ssf_events", ssf), methods=["POST"]),
    ]
