"""Browser security headers on every response of the service, whatever answered it.

One ASGI middleware, outermost, so API answers, health checks, redirects, error pages and the
server's own 500 all carry them:

* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``;
* ``Cross-Origin-Opener-Policy: same-origin`` (no shared window with an opener: tabnabbing)
  and ``Cross-Origin-Resource-Policy: same-origin`` (no other site embeds an answer);
* a ``Content-Security-Policy``: a page's own (the admin and demo pages send a per-response
  nonce policy), otherwise one that loads nothing and may not be framed;
* ``Strict-Transport-Security`` (one year, subdomains included) when the request came over
  HTTPS (directly or from a trusted proxy) or the configured public URL is ``https``;
* with ``csp_report_uri`` set, every policy reports violations there (``report-uri`` and the
  ``Reporting-Endpoints`` group ``csp``).

A header the application already set is left alone (a policy only gains the report target).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_CSP", "HSTS", "SecurityHeaders"]

HSTS = "max-age=31536000; includeSubDomains"
#: For every answer that brings no policy of its own: JSON, plain text, the index page.
DEFAULT_CSP = (
    "default-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_CSP = b"content-security-policy"
_FIXED = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


class SecurityHeaders:
    """Wrap ``app``; ``https_origins`` says the service is reached over HTTPS whatever the
    scope's scheme (TLS ends at a proxy that is not configured as trusted)."""

    __slots__ = ("_app", "_csp", "_hsts_always", "_plain", "_report", "_secure")

    def __init__(
        self,
        app: ASGIApp,
        *,
        https_origins: Iterable[str] = (),
        csp_report_uri: str | None = None,
    ) -> None:
        self._app = app
        self._hsts_always = any(o.lower().startswith("https://") for o in https_origins)
        report = f"; report-uri {csp_report_uri}; report-to csp"
        self._report = report.encode("latin-1") if csp_report_uri else None
        self._csp = (_CSP, DEFAULT_CSP.encode("latin-1") + (self._report or b""))
        endpoints = (b"reporting-endpoints", f'csp="{csp_report_uri}"'.encode("latin-1"))
        fixed = _FIXED + ((endpoints,) if csp_report_uri else ())
        self._plain = fixed
        self._secure = (*fixed, (b"strict-transport-security", HSTS.encode("ascii")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        fixed = self._secure if self._hsts_always or scope.get("scheme") == "https" else self._plain

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._headers(list(message.get("headers", ())), fixed)
            await send(message)

        await self._app(scope, receive, secured)

    def _headers(
        self, headers: list[tuple[bytes, bytes]], fixed: tuple[tuple[bytes, bytes], ...]
    ) -> list[tuple[bytes, bytes]]:
        present = {name.lower() for name, _ in headers}
        if _CSP not in present:
            headers.append(self._csp)
        elif self._report is not None:
            headers = [self._with_report(name, value) for name, value in headers]
        if present.isdisjoint(name for name, _ in fixed):  # the usual case
            headers.extend(fixed)
        else:
            headers.extend(h for h in fixed if h[0] not in present)
        return headers

    def _with_report(self, name: bytes, value: bytes) -> tuple[bytes, bytes]:
        if name.lower() != _CSP or b"report-uri" in value or self._report is None:
            return name, value
        return name, value + self._report
