"""Header plumbing shared by the adapters: one lower-cased ``dict[str, str]`` per request."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SAFE_METHODS", "Reply", "asgi_headers", "bearer_token", "environ_headers"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _add(out: dict[str, str], name: str, value: str) -> None:
    if name in out:
        # RFC 9110 list join; Cookie is the exception (HTTP/2 splits it, RFC 9113 8.2.3).
        out[name] += ("; " if name == "cookie" else ", ") + value
    else:
        out[name] = value


def asgi_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in raw:
        _add(out, name.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def environ_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            out[key[5:].replace("_", "-").lower()] = str(value)
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            out[key.replace("_", "-").lower()] = str(value)
    return out


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The credentials of an ``Authorization: Bearer`` header (scheme is case-insensitive)."""
    scheme, _, credentials = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip() or None


def authorization(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """``(scheme, credentials)`` of an ``Authorization: Bearer`` or ``Authorization: DPoP``
    header, the scheme lower-cased."""
    scheme, _, credentials = headers.get("authorization", "").strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("bearer", "dpop") or not credentials.strip():
        return None
    return scheme, credentials.strip()


@dataclass(frozen=True, slots=True)
class Reply:
    """A response for any framework: send ``status``, every header (``Set-Cookie`` may repeat)
    and ``body``."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)
