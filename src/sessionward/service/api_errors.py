"""The API's error answers: ``{"error": {"code": ..., "message": ...}}`` with stable codes
(the table is in ``sessionward.service.api``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse

from sessionward.errors import (
    DataTooLarge,
    InvalidArgument,
    InvalidToken,
    SessionLimitReached,
    StepUpRequired,
    StoreError,
    UpdateConflict,
)
from sessionward.service.throttle import Throttled

__all__ = ["ApiError", "error_response", "mapped"]

_log = logging.getLogger("sessionward.service")

_NO_STORE = {"cache-control": "no-store"}


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=status,
        headers={**_NO_STORE, **(headers or {})},
    )


def mapped(exc: Exception) -> ApiError:
    """The answer for an exception raised while serving an API request."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, Throttled):
        wait = exc.retry_after
        message = f"too many failed attempts; try again in {wait} s"
        return ApiError(429, "too_many_attempts", message, {"retry-after": str(wait)})
    if isinstance(exc, ClientDisconnect):  # gone, or cut off by RequestBounds: nobody listens
        return ApiError(400, "invalid_request", "the client disconnected")
    if isinstance(exc, InvalidToken):
        return ApiError(401, "invalid_token", "invalid")
    if isinstance(exc, StepUpRequired):
        return ApiError(403, "step_up_required", "re-authentication required")
    if isinstance(exc, SessionLimitReached):
        return ApiError(409, "session_limit", "the user's session limit is reached")
    if isinstance(exc, UpdateConflict):
        return ApiError(409, "conflict", "concurrent updates; retry")
    if isinstance(exc, DataTooLarge):
        return ApiError(413, "data_too_large", "session data exceeds the size limit")
    if isinstance(exc, InvalidArgument):
        return ApiError(400, "invalid_request", str(exc))
    if isinstance(exc, StoreError):
        _log.error("session store unavailable: %s", type(exc).__name__)
        return ApiError(503, "store_unavailable", "the session store is unavailable")
    _log.exception("unexpected error in the API")
    return ApiError(500, "internal", "internal error")
