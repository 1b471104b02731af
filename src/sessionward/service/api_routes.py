"""The API's routes: API-key authentication, one endpoint wrapper for every operation, and
the route table."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward.service.keys import ApiKey
from sessionward.service.runtime import Runtime
from sessionward.web.context import ContextCapture

if TYPE_CHECKING:
    pass

from sessionward.service.api import Api, Handler
from sessionward.service.api_errors import ApiError, error_response, mapped
from sessionward.service.api_events import EventsApi
from sessionward.service.api_webhooks import WebhooksApi, webhook_routes

__all__ = ["CHALLENGE", "api_routes", "authenticate", "authenticate_request", "endpoint"]

_log = logging.getLogger("sessionward.service")
REFUSED = frozenset({"unauthenticated", "forbidden"})
_JWKS_CACHE = {"cache-control": "public, max-age=300"}  # key rotation waits out far more
_NO_JWT = "the JWT mode is not configured (jwt_keys)"


CHALLENGE = {"www-authenticate": 'Bearer realm="sessionward-api"'}


def authenticate(runtime: Runtime, authorization: str) -> ApiKey:
    """The API key of an ``Authorization`` header's value, or ``ApiError`` 401."""
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise ApiError(401, "unauthenticated", "send Authorization: Bearer <API key>")
    key = runtime.keys.authenticate(credentials.strip())
    if key is None:
        raise ApiError(401, "unauthenticated", "unknown or revoked API key")
    return key


async def authenticate_request(
    runtime: Runtime, request: Request, capture: ContextCapture
) -> ApiKey:
    """The API key of a request, throttled: a key this process has cached passes at once;
    any other is checked against the client address's and the key id's windows first
    (``Throttled`` when full), and counted there when it fails."""
    authorization = request.headers.get("authorization", "")
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return authenticate(runtime, authorization)  # no key at all: nothing was guessed
    key = runtime.keys.cached(credentials)
    if key is not None:
        return key
    client = request.client
    address = capture.client_ip(
        client.host if client else None, request.headers.get("x-forwarded-for")
    )
    key_id = runtime.keys.key_id_of(credentials)
    await runtime.guard.check("api-key", key_id, address)
    try:
        key = authenticate(runtime, authorization)
    except ApiError:
        await runtime.guard.failed("api-key", key_id, address, reserved=False)
        raise
    await runtime.guard.succeeded("api-key", key_id, address)
    return key


def endpoint(runtime: Runtime, name: str, scope: str, handler: Handler) -> Callable[..., Any]:
    """Wrap ``handler``: API-key check (throttled), error mapping, metrics."""
    metrics = runtime.metrics
    capture = ContextCapture(runtime.config.trusted_proxies)

    async def run(request: Request) -> Response:
        started = time.perf_counter()
        application = None
        try:
            key = await authenticate_request(runtime, request, capture)
            application = key.application
            if not key.allows(scope):
                raise ApiError(403, "forbidden", f"this operation needs a key of scope {scope!r}")
            response = await handler(request, key)
        except Exception as exc:
            error = mapped(exc)
            if error.code in REFUSED:  # a failed authentication or authorization
                client = request.client.host if request.client else "-"
                _log.warning("API %s refused: %s, client %s", name, error.code, client)
            headers = CHALLENGE if error.code == "unauthenticated" else error.headers
            response = error_response(error.status, error.code, error.message, headers)
        metrics.observe(name, response.status_code, time.perf_counter() - started, application)
        return response

    return run


def jwks_endpoint(runtime: Runtime) -> Callable[..., Any]:
    """The public keys, for anyone (no API key): they only verify."""
    metrics = runtime.metrics

    async def run(request: Request) -> Response:
        started = time.perf_counter()
        if runtime.tokens is None:
            response: Response = error_response(404, "not_found", _NO_JWT)
        else:
            keyset = runtime.tokens.verifier.keyset
            response = JSONResponse(keyset.jwks(), headers=_JWKS_CACHE)
        metrics.observe("jwks", response.status_code, time.perf_counter() - started)
        return response

    return run


def _dispatch(methods: dict[str, Callable[..., Any]]) -> Callable[..., Any]:
    async def run(request: Request) -> Response:
        method = request.method
        # Starlette routes HEAD wherever GET is allowed: answer it as GET (the server drops
        # the body); it used to fail with a KeyError (500).
        handler = methods[method] if method != "HEAD" else methods["GET"]
        response: Response = await handler(request)
        return response

    return run


class _AnyText(Convertor[str]):
    """Like Starlette's ``path`` convertor, but also matches line breaks: a user id may hold
    any character, and ``.*`` alone would answer 404 for one with a newline."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anytext", _AnyText())


def api_routes(runtime: Runtime, api: Api | None = None) -> list[Route]:
    """One route per path (so ``405`` answers list every method of the path)."""
    api = api or Api(runtime)
    events = EventsApi(runtime)
    table: list[tuple[str, str, str, str, Handler]] = [
        ("/v1/sessions", "POST", "issue", "issue", api.issue),
        ("/v1/sessions/validate", "POST", "validate", "validate", api.validate),
        ("/v1/sessions/rotate", "POST", "rotate", "issue", api.rotate),
        ("/v1/sessions/elevate", "POST", "elevate", "issue", api.elevate),
        ("/v1/sessions/confirm", "POST", "confirm", "issue", api.confirm),
        ("/v1/sessions/data", "POST", "update_data", "issue", api.update_data),
        ("/v1/sessions/revoke", "POST", "revoke", "issue", api.revoke),
        ("/v1/sessions/dbsc/register", "POST", "dbsc_register", "issue", api.dbsc.register),
        ("/v1/sessions/dbsc/refresh", "POST", "dbsc_refresh", "issue", api.dbsc.refresh),
        ("/v1/users/{user_id:anytext}/sessions", "GET", "list_user", "issue", api.list_user),
        ("/v1/users/{user_id:anytext}/revoke", "POST", "revoke_user", "issue", api.revoke_user),
        ("/v1/sessions/revoke-all", "POST", "revoke_all", "admin", api.revoke_all),
        ("/v1/sessions/{session_id}", "GET", "get_session", "admin", api.get_session),
        ("/v1/sessions/{session_id}", "DELETE", "delete_session", "admin", api.delete_session),
        ("/v1/events", "GET", "list_events", "admin", events.list_events),
        ("/v1/tokens", "POST", "token_login", "issue", api.token_login),
        ("/v1/tokens/refresh", "POST", "token_refresh", "issue", api.token_refresh),
        ("/metrics", "GET", "metrics", "validate", api.metrics),
        *webhook_routes(WebhooksApi(runtime)),
    ]
    by_path: dict[str, dict[str, Callable[..., Any]]] = {}
    for path, method, name, scope, handler in table:
        by_path.setdefault(path, {})[method] = endpoint(runtime, name, scope, handler)
    return [
        *(
            Route(path, _dispatch(methods), methods=list(methods))
            for path, methods in by_path.items()
        ),
        Route("/.well-known/jwks.json", jwks_endpoint(runtime), methods=["GET"]),
    ]
