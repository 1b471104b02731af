"""The Shared Signals (SSF 1.0) transmitter's HTTP side.

    GET  /.well-known/ssf-configuration   transmitter metadata (anyone)
    GET|POST|PATCH|PUT|DELETE /ssf/stream stream configuration (SSF 1.0 §8.1.1)
    GET|POST /ssf/status                  stream status (§8.1.2)
    POST /ssf/subjects:add                add a subject to a stream (§8.1.3.2)
    POST /ssf/subjects:remove             remove a subject from a stream (§8.1.3.3)
    POST /ssf/verify                      ask for a verification event (§8.1.4)
    POST /ssf/poll/{stream_id}            poll delivery (RFC 8936)
    POST /v1/ssf/streams/status           the transmitter's own status change (§8.1.5)

Every endpoint but the metadata takes an API key of scope ``issue`` (``Authorization: Bearer
swk_...``): a stream belongs to the key's application, carries that application's events
only, and is visible to that application's keys only. The last one is the operator's, not
the receiver's: it takes a key of scope ``admin`` and tells the receiver with a
stream-updated event. Answers and errors are JSON
(``{"error": {"code", "message"}}`` like the rest of the API); an unknown stream is 404.

Shared Signals are on when the JWT mode is (``jwt_keys``) with an ES256 or EdDSA key: SETs
are signed with its active key and verified with ``/.well-known/jwks.json``. Otherwise every
endpoint here answers 404 and says why.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward.errors import ConfigError, InvalidArgument
from sessionward.service.api_errors import ApiError, error_response
from sessionward.service.api_fields import json_body
from sessionward.service.api_routes import endpoint
from sessionward.service.keys import ApiKey
from sessionward.service.tenancy import public_user

if TYPE_CHECKING:
    from sessionward.service.runtime import Runtime
    from sessionward.signals.transmitter import Transmitter

__all__ = ["SCOPE", "open_transmitter", "ssf_routes", "transmitter_metadata"]

SCOPE: Final = "issue"
POLL_PATH: Final = "/ssf/poll/"
ADD_SUBJECT: Final = "/ssf/subjects:add"
REMOVE_SUBJECT: Final = "/ssf/subjects:remove"
OPERATOR_STATUS: Final = "/v1/ssf/streams/status"
MAX_ACK: Final = 256  # jti values acknowledged by one poll: as many as one poll answers
#: Refused SETs reported by one poll (a receiver refuses one it cannot verify or use).
MAX_SET_ERRS: Final = 16
#: A ``setErrs`` description (RFC 8936: human-readable text, any characters), never stored;
#: with 256 acknowledgements and 16 errors the largest poll still fits the body limit.
MAX_ERR_DESCRIPTION: Final = 200
#: A ``jti`` this transmitter issues (32 hex digits, ``su-`` before some), or an ``err`` code
#: (RFC 8935's registry: ``invalid_key``...): a few URL-safe characters.
JTI_PATTERN: Final = "[A-Za-z0-9_.:-]{1,64}"
#: The largest ``maxEvents`` a poll may ask for (RFC 8936 sets none; one poll answers at most
#: ``transmitter.MAX_EVENTS`` SETs whatever it asks).
MAX_POLL_ASKED: Final = 2**31 - 1
_JTI: Final = re.compile(JTI_PATTERN)
_NO_STORE: Final = {"cache-control": "no-store"}
_METADATA_CACHE: Final = {"cache-control": "public, max-age=300"}


def open_transmitter(rt: Runtime) -> tuple[Transmitter | None, str | None]:
    """The transmitter of this service, or ``None`` and the reason it is off."""
    if rt.tokens is None:
        return None, "Shared Signals need the JWT mode: configure jwt_keys (ES256 or EdDSA)"
    keys = rt.tokens.verifier.keyset
    try:
        signing = keys.signing_key
    except ConfigError:
        return None, "Shared Signals need an active signing key in jwt_keys"
    if signing.symmetric:
        return None, "Shared Signals need an ES256 or EdDSA key: receivers verify with the JWKS"
    if rt.event_log is None or rt.webhooks is None:
        return None, "Shared Signals need the event log (event_log = true)"
    from sessionward.signals.push import KIND, SetRenderer
    from sessionward.signals.transmitter import Transmitter
    from sessionward.stores.ssf import SQLiteStreamStore

    origin = rt.config.origin
    deliverer = rt.webhooks.deliverer
    transmitter = Transmitter(
        issuer=origin,
        keys=keys,
        streams=SQLiteStreamStore(rt.config.state_path),
        log=rt.event_log,
        now=rt.manager.clock.now,
        poll_url=origin + POLL_PATH,
        public_user=public_user,
        allow_http=origin.startswith("http://"),
        public_only=not rt.config.webhook_private_targets,
        consumers=rt.webhooks.store,
        default_subjects=rt.config.ssf_default_subjects,
    )
    deliverer.renderers[KIND] = SetRenderer(transmitter)  # push streams ride the same engine
    transmitter.wake = deliverer.wake
    return transmitter, None


def transmitter_metadata(origin: str, default_subjects: str = "ALL") -> dict[str, Any]:
    """The Transmitter Configuration Metadata (SSF 1.0 §7.1)."""
    return {
        "spec_version": "1_0",
        "issuer": origin,
        "jwks_uri": f"{origin}/.well-known/jwks.json",
        "delivery_methods_supported": ["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"],
        "configuration_endpoint": f"{origin}/ssf/stream",
        "status_endpoint": f"{origin}/ssf/status",
        "add_subject_endpoint": f"{origin}{ADD_SUBJECT}",
        "remove_subject_endpoint": f"{origin}{REMOVE_SUBJECT}",
        "verification_endpoint": f"{origin}/ssf/verify",
        "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}],
        "default_subjects": default_subjects,
    }


def _json(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, headers=_NO_STORE)


def _jti_shaped(value: object) -> bool:
    return isinstance(value, str) and _JTI.fullmatch(value) is not None


def _set_error(value: object) -> bool:
    """An RFC 8936 §2.4.4 error: ``err`` (a code) and ``description`` (text), both short."""
    if not isinstance(value, dict) or value.keys() - {"err", "description"}:
        return False
    err, description = value.get("err", ""), value.get("description", "")
    return (
        isinstance(err, str)
        and _JTI.fullmatch(err or "x") is not None
        and isinstance(description, str)
        and len(description) <= MAX_ERR_DESCRIPTION
    )


class _Handlers:
    """The endpoints' bodies; ``endpoint`` wraps each with the API key check."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def _tx(self) -> Transmitter:
        transmitter = self.rt.transmitter
        if transmitter is None:
            raise ApiError(404, "not_found", self.rt.ssf_off or "Shared Signals are off")
        return transmitter

    async def create(self, request: Request, key: ApiKey) -> Response:
        body = await json_body(request, optional=True)
        with _mapped():
            # off the event loop: a push target's host name is resolved (public_only)
            stream = await asyncio.to_thread(self._tx().create, key.application, body)
        return _json(stream.configuration(), 201)

    async def read(self, request: Request, key: ApiKey) -> Response:
        tx = self._tx()
        stream_id = request.query_params.get("stream_id")
        with _mapped():
            if stream_id is None:
                return _json([s.configuration() for s in tx.streams_of(key.application)])
            return _json(tx.get(key.application, stream_id).configuration())

    async def patch(self, request: Request, key: ApiKey) -> Response:
        body = await json_body(request)
        with _mapped():
            stream = await asyncio.to_thread(
                self._tx().update, key.application, body, replace_all=False
            )
        return _json(stream.configuration())

    async def put(self, request: Request, key: ApiKey) -> Response:
        body = await json_body(request)
        with _mapped():
            stream = await asyncio.to_thread(
                self._tx().update, key.application, body, replace_all=True
            )
        return _json(stream.configuration())

    async def delete(self, request: Request, key: ApiKey) -> Response:
        with _mapped():
            self._tx().delete(key.application, request.query_params.get("stream_id"))
        return Response(status_code=204, headers=_NO_STORE)

    async def status(self, request: Request, key: ApiKey) -> Response:
        with _mapped():
            status = self._tx().status_of(key.application, request.query_params.get("stream_id"))
        return _json(status)

    async def set_status(self, request: Request, key: ApiKey) -> Response:
        body = await json_body(request)
        with _mapped():
            stream = self._tx().set_status(
                key.application, body.get("stream_id"), body.get("status"), body.get("reason")
            )
        return _json(stream.status_object())

    async def add_subject(self, request: Request, key: ApiKey) -> Response:
        body = await json_body(request)
        with _mapped():  # off the event loop: a push stream's consumer is rewritten
            await asyncio.to_thread(
                self._tx().add_subject,
                key.application, body.get("stream_id"), body.get("subject"), body.get("verified"),
            )  # fmt: skip
        return Response(status_code=200, headers=_NO_STORE)

    async def remove_subject(self, request: Request, key: ApiKey) -> Response:
        body = await json_body(request)
        with _mapped():
            await asyncio.to_thread(
                self._tx().remove_subject,
                key.application, body.get("stream_id"), body.get("subject"),
            )  # fmt: skip
        return Response(status_code=204, headers=_NO_STORE)

    async def operator_status(self, request: Request, key: ApiKey) -> Response:
        body = await json_body(request)
        with _mapped():
            stream = await asyncio.to_thread(
                self._tx().change_status,
                key.application, body.get("stream_id"), body.get("status"), body.get("reason"),
            )  # fmt: skip
        return _json(stream.status_object())

    async def verify(self, request: Request, key: ApiKey) -> Response:
        body = await json_body(request)
        with _mapped():
            self._tx().verify(key.application, body.get("stream_id"), body.get("state"))
        return Response(status_code=204, headers=_NO_STORE)

    async def poll(self, request: Request, key: ApiKey) -> Response:
        tx = self._tx()
        body = await json_body(request, optional=True)
        stream_id = request.path_params["stream_id"]
        max_events, immediately, ack, set_errs = _poll_fields(body)
        # A poll signs the SETs of every event logged since the last one: off the event loop.
        with _mapped():
            sets, more = await asyncio.to_thread(
                tx.poll, key.application, stream_id, max_events=max_events, ack=ack,
                set_errs=set_errs,
            )  # fmt: skip
            deadline = time.monotonic() + tx.long_poll
            while not sets and not immediately and max_events != 0:
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(0.25)
                sets, more = await asyncio.to_thread(
                    tx.poll, key.application, stream_id, max_events=max_events
                )
        return _json({"sets": sets, "moreAvailable": more})


def _poll_fields(
    body: Mapping[str, Any],
) -> tuple[int | None, bool, list[str], dict[str, Mapping[str, Any]]]:
    max_events = body.get("maxEvents")
    if isinstance(max_events, float) and max_events.is_integer():
        max_events = int(max_events)  # JSON has one number type: 10.0 is the integer 10
    if max_events is not None and (
        isinstance(max_events, bool)
        or not isinstance(max_events, int)
        or not 0 <= max_events <= MAX_POLL_ASKED
    ):
        raise ApiError(
            400, "invalid_request", f"maxEvents must be an integer from 0 to {MAX_POLL_ASKED}"
        )
    immediately = body.get("returnImmediately", False)
    if not isinstance(immediately, bool):
        raise ApiError(400, "invalid_request", "returnImmediately must be a boolean")
    ack = body.get("ack", [])
    if not isinstance(ack, list) or len(ack) > MAX_ACK or not all(map(_jti_shaped, ack)):
        raise ApiError(
            400, "invalid_request", f"ack must list at most {MAX_ACK} jti values ({JTI_PATTERN})"
        )
    set_errs = body.get("setErrs", {})
    if (
        not isinstance(set_errs, dict)
        or len(set_errs) > MAX_SET_ERRS
        or not all(map(_jti_shaped, set_errs))
        or not all(map(_set_error, set_errs.values()))
    ):
        raise ApiError(
            400,
            "invalid_request",
            f"setErrs must map at most {MAX_SET_ERRS} jti values to {{err, description}}"
            f" (a description of at most {MAX_ERR_DESCRIPTION} characters)",
        )
    return max_events, immediately, ack, set_errs


@contextmanager
def _mapped() -> Iterator[None]:
    """Stream errors as API errors: an unknown stream is 404, a verification too soon 429."""
    from sessionward.signals.transmitter import TooManyStreams, TooSoon, UnknownStream

    try:
        yield
    except UnknownStream:
        raise ApiError(404, "not_found", "no such stream") from None
    except TooManyStreams as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except TooSoon as exc:
        raise ApiError(429, "too_many_requests", str(exc)) from None
    except InvalidArgument as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None


def _metadata(rt: Runtime) -> Callable[..., Any]:
    async def run(request: Request) -> Response:
        if rt.transmitter is None:
            return error_response(404, "not_found", rt.ssf_off or "Shared Signals are off")
        metadata = transmitter_metadata(rt.config.origin, rt.transmitter.default_subjects)
        return JSONResponse(metadata, headers=_METADATA_CACHE)

    return run


def _by_method(handlers: dict[str, Callable[..., Any]]) -> Callable[..., Any]:
    async def run(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        response: Response = await handlers[method](request)
        return response

    return run


def ssf_routes(rt: Runtime) -> list[Route]:
    h = _Handlers(rt)
    table: dict[str, dict[str, tuple[str, Any, str]]] = {
        "/ssf/stream": {
            "GET": ("ssf_stream_read", h.read, SCOPE),
            "POST": ("ssf_stream_create", h.create, SCOPE),
            "PATCH": ("ssf_stream_update", h.patch, SCOPE),
            "PUT": ("ssf_stream_replace", h.put, SCOPE),
            "DELETE": ("ssf_stream_delete", h.delete, SCOPE),
        },
        "/ssf/status": {
            "GET": ("ssf_status_read", h.status, SCOPE),
            "POST": ("ssf_status_update", h.set_status, SCOPE),
        },
        ADD_SUBJECT: {"POST": ("ssf_subject_add", h.add_subject, SCOPE)},
        REMOVE_SUBJECT: {"POST": ("ssf_subject_remove", h.remove_subject, SCOPE)},
        "/ssf/verify": {"POST": ("ssf_verify", h.verify, SCOPE)},
        POLL_PATH + "{stream_id}": {"POST": ("ssf_poll", h.poll, SCOPE)},
        OPERATOR_STATUS: {"POST": ("ssf_operator_status", h.operator_status, "admin")},
    }
    routes = [Route("/.well-known/ssf-configuration", _metadata(rt), methods=["GET"])]
    for path, methods in table.items():
        handlers = {m: endpoint(rt, name, scope, fn) for m, (name, fn, scope) in methods.items()}
        routes.append(Route(path, _by_method(handlers), methods=list(handlers)))
    return routes
