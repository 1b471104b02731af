"""Cross-site request forgery defence for cookie transport.

Two independent layers:

1. **Request provenance**, checked on every unsafe method (anything but GET, HEAD, OPTIONS,
   TRACE). ``Sec-Fetch-Site`` decides when the browser sent it: ``same-origin`` and ``none``
   (typed or bookmarked by the user) pass, ``same-site`` passes only if configured, anything
   else fails. Without it, ``Origin`` must be one of the configured origins; without that,
   the origin of ``Referer``. With none of the three the request is refused (fail closed).
2. **A bound token** for forms: ``HMAC-SHA256(key, session id)``, base64url, when the visitor
   has a session. A visitor without one (a sign-in form, a shop's first page) gets
   ``HMAC-SHA256(key, nonce)`` instead, the nonce being a random value in a cookie of its own
   (a signed double-submit cookie): nothing is stored, so anonymous page views never create a
   session. Either is compared in constant time; keys rotate like itsdangerous' (the first
   signs, all verify).

Bearer transport needs neither: a browser never attaches an ``Authorization`` header on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from sessionward.errors import ConfigError
from sessionward.web._http import SAFE_METHODS

__all__ = ["CsrfPolicy"]

_CONTEXT = b"sessionward-csrf-v1\x00"
_ANONYMOUS = b"sessionward-csrf-nonce-v1\x00"  # another domain: a nonce is never a session id
_NONCE = re.compile(r"[A-Za-z0-9_-]{22}")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` normalised (lower case, default port dropped), or ``None``."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    suffix = "" if port is None or port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host}{suffix}"


class CsrfPolicy:
    """Configuration and checks; immutable after construction.

    * ``allowed_origins``: the origins the application is served from, e.g.
      ``["https://shop.example"]``. Required: there is no guessing from ``Host``.
    * ``keys``: server keys for the form token, newest first, each at least 32 bytes.
    * ``allow_same_site``: also accept ``Sec-Fetch-Site: same-site`` (sibling subdomains).
    * ``require_token``: the middleware also demands the form token on unsafe methods, from
      ``header_name`` or, in an urlencoded body, ``field_name`` (default on).
    """

    __slots__ = (
        "_keys",
        "allow_same_site",
        "allowed_origins",
        "field_name",
        "header_name",
        "require_token",
    )

    def __init__(
        self,
        allowed_origins: Iterable[str],
        *,
        keys: Sequence[bytes],
        allow_same_site: bool = False,
        field_name: str = "csrf_token",
        header_name: str = "x-csrf-token",
        require_token: bool = True,
    ) -> None:
        if isinstance(allowed_origins, str):
            raise ConfigError("allowed_origins must be a list of origins")
        origins = set()
        for origin in allowed_origins:
            normal = _origin_of(origin)
            if normal is None or normal != origin.strip().rstrip("/").lower():
                raise ConfigError(f"not an origin (scheme://host[:port]): {origin!r}")
            origins.add(normal)
        if not origins:
            raise ConfigError("CsrfPolicy needs at least one allowed origin")
        if isinstance(keys, bytes | str) or not keys:
            raise ConfigError("keys must be a non-empty list of byte strings")
        if any(not isinstance(k, bytes) or len(k) < 32 for k in keys):
            raise ConfigError("each CSRF key must be bytes of at least 32 bytes")
        self.allowed_origins = frozenset(origins)
        self._keys = tuple(keys)
        self.allow_same_site = allow_same_site
        self.field_name = field_name
        self.header_name = header_name.lower()
        self.require_token = require_token

    def __repr__(self) -> str:
        return f"CsrfPolicy(allowed_origins={sorted(self.allowed_origins)!r}, keys=<hidden>)"

    # -- provenance ----------------------------------------------------------------------------

    def refusal(self, method: str, headers: Mapping[str, str]) -> str | None:
        """Why this request must be refused, or ``None`` if it may proceed.

        ``headers`` has lower-cased names. The reason is for logs, never for the client.
        """
        if method.upper() in SAFE_METHODS:
            return None
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None:
            site = fetch_site.strip().lower()
            if site in ("same-origin", "none") or (site == "same-site" and self.allow_same_site):
                return None
            return f"sec-fetch-site-{site or 'empty'}"[:40]
        origin = headers.get("origin")
        if origin is not None:
            return None if _origin_of(origin) in self.allowed_origins else "origin-mismatch"
        referer = headers.get("referer")
        if referer is not None:
            return None if _origin_of(referer) in self.allowed_origins else "referer-mismatch"
        return "no-provenance"

    # -- form token ----------------------------------------------------------------------------

    @staticmethod
    def _sign(key: bytes, binding: bytes) -> str:
        digest = hmac.new(key, binding, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def token_for(self, session_id: str) -> str:
        """The form token for this session (stable while the session id is)."""
        return self._sign(self._keys[0], _CONTEXT + session_id.encode())

    @staticmethod
    def new_nonce() -> str:
        """A random value for the anonymous token's cookie (128 bits, 22 characters)."""
        return secrets.token_urlsafe(16)

    @staticmethod
    def is_nonce(value: object) -> bool:
        return isinstance(value, str) and _NONCE.fullmatch(value) is not None

    def anonymous_token(self, nonce: str) -> str:
        """The form token for a visitor without a session, bound to ``nonce``."""
        return self._sign(self._keys[0], _ANONYMOUS + nonce.encode())

    def token_valid(
        self, session_id: str | None, presented: object, *, nonce: str | None = None
    ) -> bool:
        """Constant-time check of a presented form token against every key, bound to the
        session or, for a form rendered before there was one, to the visitor's nonce."""
        if not isinstance(presented, str) or len(presented) != 43 or not presented.isascii():
            return False
        bindings = []
        if session_id is not None:
            bindings.append(_CONTEXT + session_id.encode())
        if nonce is not None and self.is_nonce(nonce):
            bindings.append(_ANONYMOUS + nonce.encode())
        # Compared as text, not decoded: base64 has more than one spelling of the same bytes
        # (the unused low bits of the last character), and only the one we issue is valid.
        ok = False
        for binding in bindings:
            for key in self._keys:  # no early exit: every key costs the same
                ok |= hmac.compare_digest(presented, self._sign(key, binding))
        return ok
