"""The API's error answers: ``{"error": {"code": ..., "message": ...}}`` with stable codes
(the table is in ``sessionward.service.api``)."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse

__all__ = ["ApiError", "error_response"]

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
