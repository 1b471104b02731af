"""What the admin page and the demo shop share to handle a form post: the bounded form, the
answer after a post, and the answer when guesses at a factor are throttled."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response

from sessionward.service.bounds import MAX_FORM_BYTES, MAX_FORM_FIELDS
from sessionward.service.html import Page, attr, esc

__all__ = [
    "WRONG_CODE",
    "checked",
    "form_fields",
    "redirect",
    "too_many",
    "try_again",
    "with_retry_after",
]


#: What a form says about a one-time code it refused.
WRONG_CODE = "That code is not right, or it was used already. Try the next code your app shows."


async def form_fields(request: Request) -> dict[str, str]:
    """The urlencoded form, read up to ``MAX_FORM_BYTES`` (413 past that) with at most
    ``MAX_FORM_FIELDS`` fields (400 past that); the first value of a repeated name counts."""
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise HTTPException(413, f"the form exceeds {MAX_FORM_BYTES} bytes")
    except ClientDisconnect:  # gone, or cut off by RequestBounds (which answered 413)
        raise HTTPException(400, "the client disconnected") from None
    try:
        pairs = parse_qsl(body.decode("utf-8", "replace"), max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise HTTPException(400, f"the form has more than {MAX_FORM_FIELDS} fields") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def redirect(path: str) -> Response:
    """See other: after a form post, the browser gets the next page."""
    return RedirectResponse(path, status_code=303)


def checked(fields: dict[str, str], name: str) -> bool:
    """Whether a checkbox was ticked (browsers send its value only then)."""
    return fields.get(name) == "on"


def try_again(wait: int) -> str:
    """What a page says when a factor was not checked because of too many attempts."""
    return f"Too many attempts. Try again in {wait} s."


def with_retry_after(response: Response, wait: int) -> Response:
    """``response`` with ``Retry-After`` when guesses are throttled (``wait`` > 0)."""
    if wait:
        response.headers["retry-after"] = str(wait)
    return response


def too_many(page: Page, wait: int, back: str) -> Response:
    """429 for a form whose factor was not checked (throttled), with a way back to it."""
    body = (
        f'<p class="msg error" role="alert">{esc(try_again(wait))} Nothing was changed.</p>'
        f"<p><a href={attr(back)}>Back</a></p>"
    )
    return with_retry_after(page.response(body, status=429), wait)
