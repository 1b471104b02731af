"""What the admin page and the demo shop share to handle a form post."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

__all__ = ["checked", "form_fields", "redirect"]


async def form_fields(request: Request) -> dict[str, str]:
    """The urlencoded form (the middleware has already bounded its size)."""
    body = (await request.body()).decode("utf-8", "replace")
    return dict(parse_qsl(body, max_num_fields=100))


def redirect(path: str) -> Response:
    """See other: after a form post, the browser gets the next page."""
    return RedirectResponse(path, status_code=303)


def checked(fields: dict[str, str], name: str) -> bool:
    """Whether a checkbox was ticked (browsers send its value only then)."""
    return fields.get(name) == "on"
