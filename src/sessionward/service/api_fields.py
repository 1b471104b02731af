"""Reading API requests: the bounded JSON body and typed, bounded fields (every parser error
is an ``ApiError`` with a 4xx status, never a 500)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive

from sessionward.core.context import RequestContext
from sessionward.service.keys import ApiKey
from sessionward.service.runtime import RESERVED_PREFIX
from sessionward.service.tenancy import (
    MAX_USER_ID,
    RESERVED_DATA_PREFIX,
    stored_user,
)

if TYPE_CHECKING:
    pass

from sessionward.service.api_errors import ApiError

__all__ = [
    "FIELD_NAME",
    "MAX_BODY",
    "PRINTABLE",
    "SCOPE",
    "TOKEN68",
    "URI_CHARS",
    "Fields",
    "client_data",
    "json_body",
    "or_default",
    "parse_body",
    "path_user",
    "read_body",
    "request_context",
    "user_id_of",
]


MAX_BODY = 64 * 1024
_STRING_MAX = 512
_NUMBER_MAX = 10**10
#: What some fields may hold (the OpenAPI document states them as ``^...$`` patterns):
#: printable ASCII (JWTs, most header values); a URI's characters (RFC 3986: no space, ``"``
#: or ``\``); an HTTP field name (RFC 9110 5.1); a token68 header value (RFC 9110 11.2: a
#: DPoP proof); an OAuth scope token (RFC 6749 3.3; no space, the separator). Besides what
#: the protocols say, a character of these takes at most 2 bytes of JSON where another takes
#: up to 12: every body the document allows fits in ``MAX_BODY``
#: (tests/service/test_openapi_body_bounds.py).
PRINTABLE = "[ -~]*"
URI_CHARS = "[!#-\\[\\]-~]*"
FIELD_NAME = "[!#-'*+.0-9A-Z^-z|~-]*"
TOKEN68 = "[A-Za-z0-9._~+/-]*=*"
SCOPE = "[!#-\\[\\]-~]{1,128}"
_SCOPE = re.compile(SCOPE)
_RESERVED_DATA = f"data keys starting {RESERVED_DATA_PREFIX!r} are reserved"


async def json_body(request: Request, *, optional: bool = False) -> dict[str, Any]:
    raw = await read_body(request.receive)
    return parse_body(raw, request.headers.get("content-type", ""), optional=optional)


async def read_body(receive: Receive) -> bytes:
    """The whole request body, refused (413) as soon as it exceeds ``MAX_BODY``. Read from the
    ASGI messages themselves: the usual body comes in one message and is taken as it is."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, "request_too_large", f"body exceeds {MAX_BODY} bytes")
        if not message.get("more_body", False):
            return b"".join((*chunks, chunk)) if chunks else chunk
        chunks.append(chunk)


def parse_body(
    raw: bytes | bytearray, content_type: str, *, optional: bool = False
) -> dict[str, Any]:
    """The JSON object of a request body already read (at most ``MAX_BODY`` bytes), checked
    in this order: empty optional body, media type, JSON, object, Unicode escapes."""
    if optional and not raw.strip():
        return {}
    media = content_type.split(";")[0].strip().lower()
    if media != "application/json":
        raise ApiError(415, "unsupported_media", "send application/json")
    try:
        body = _DECODER.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ApiError(400, "invalid_request", "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "body must be a JSON object")
    if _SURROGATE_ESCAPE.search(raw):
        try:  # "\ud800" escapes may decode to lone surrogates, which no store can encode
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, "invalid_request", "body has invalid Unicode escapes") from None
    return body


def _no_constant(name: str) -> None:
    raise ValueError(name)


_DECODER = json.JSONDecoder(parse_constant=_no_constant)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def or_default(value: int | None, default: int) -> int:
    return default if value is None else value


class Fields:
    """Typed access to a JSON object, refusing unknown keys (so clients learn of typos)."""

    def __init__(
        self, body: dict[str, Any], allowed: AbstractSet[str], where: str = "body"
    ) -> None:
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ApiError(400, "invalid_request", f"unknown field in {where}: {unknown[0]!r}")
        self.body = body

    def _get(self, name: str, required: bool = False) -> Any:
        # Absent means "not given"; an explicit null is a type error, as the schema says.
        if name not in self.body:
            if required:
                raise ApiError(400, "invalid_request", f"{name} is required")
            return None
        if self.body[name] is None:
            raise ApiError(400, "invalid_request", f"{name} must not be null")
        return self.body[name]

    def string(
        self,
        name: str,
        *,
        required: bool = False,
        limit: int = _STRING_MAX,
        chars: str | None = None,
    ) -> str | None:
        """The string ``name`` of at most ``limit`` characters, all matching ``chars`` (one of
        ``PRINTABLE``, ``URI_CHARS``, ...) if given."""
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > limit:
            raise ApiError(400, "invalid_request", f"{name} must be a string of <= {limit} chars")
        if chars is not None and re.fullmatch(chars, value) is None:
            raise ApiError(400, "invalid_request", f"{name} has characters it cannot hold")
        return value

    def integer(self, name: str, *, minimum: int = 0, maximum: int = 2**31) -> int | None:
        value = self._get(name)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON has one number type: 2.0 is the integer 2
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise ApiError(
                400, "invalid_request", f"{name} must be an integer from {minimum} to {maximum}"
            )
        return value

    def number(self, name: str) -> float | None:
        value = self._get(name)
        if value is None:
            return None
        # Compared before any float conversion: an integer too large for a float (JSON
        # allows any number of digits) would raise OverflowError in isfinite.
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 <= value <= _NUMBER_MAX
            or not math.isfinite(value)
        ):
            raise ApiError(400, "invalid_request", f"{name} must be a non-negative number")
        return float(value)

    def strings(self, name: str, *, limit: int = 64, ascii_only: bool = False) -> list[str] | None:
        value = self._get(name)
        if value is None:
            return None
        if (
            not isinstance(value, list)
            or len(value) > limit
            or not all(isinstance(v, str) and 0 < len(v) <= 128 for v in value)
            or (ascii_only and not all(_SCOPE.fullmatch(v) for v in value))
        ):
            raise ApiError(400, "invalid_request", f"{name} must be a list of short strings")
        return value

    def mapping(self, name: str) -> dict[str, Any] | None:
        value = self._get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ApiError(400, "invalid_request", f"{name} must be an object")
        return value


def request_context(
    fields: Fields, device: Callable[[str], str] | None = None
) -> RequestContext | None:
    """The ``context`` field; ``device`` keys its ``device_signal`` (per application)."""
    raw = fields.mapping("context")
    if raw is None:
        return None
    ctx = Fields(raw, _CONTEXT_FIELDS, "context")
    signal = ctx.string("device_signal", limit=128)
    hints = ctx.mapping("client_hints") or {}
    if len(hints) > 16 or not all(
        isinstance(v, str)
        and len(k) <= 64
        and len(v) <= _STRING_MAX
        and re.fullmatch(FIELD_NAME, k) is not None
        and re.fullmatch(PRINTABLE, v) is not None
        for k, v in hints.items()
    ):
        raise ApiError(
            400, "invalid_request", "client_hints must map header names to printable ASCII strings"
        )
    return RequestContext(
        ip=ctx.string("ip", limit=64),
        user_agent=ctx.string("user_agent"),
        accept_language=ctx.string("accept_language"),
        client_hints={k.lower(): v for k, v in hints.items()},
        device_key=None if signal is None or device is None else device(signal),
    )


#: What the calling application passes about its user's request: the user's address (not the
#: application's), user agent, Accept-Language, Sec-CH-UA-* client hints and the optional
#: device signal.
_CONTEXT_FIELDS = frozenset(
    {"ip", "user_agent", "accept_language", "client_hints", "device_signal"}
)


def path_user(request: Request, key: ApiKey) -> str:
    return str(user_id_of(str(request.path_params["user_id"]), key))


def user_id_of(value: str | None, key: ApiKey) -> str | None:
    """The stored user id of a client's ``value``: in the key's application's namespace."""
    if value is None:
        return None
    if not value or len(value) > MAX_USER_ID:
        raise ApiError(400, "invalid_request", f"user_id must be 1 to {MAX_USER_ID} characters")
    if value.startswith(RESERVED_PREFIX) and not key.allows("admin"):
        raise ApiError(403, "forbidden", f"user ids starting {RESERVED_PREFIX!r} are reserved")
    return stored_user(key.application, value)


def client_data(fields: Fields, name: str) -> dict[str, Any] | None:
    """An object of data keys from the client: none of the service's own."""
    value = fields.mapping(name)
    if value is not None and any(k.startswith(RESERVED_DATA_PREFIX) for k in value):
        raise ApiError(400, "invalid_request", _RESERVED_DATA)
    return value
