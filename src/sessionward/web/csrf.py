"""Cross-site request forgery defence for cookie transport.

Two independent layers:

1. **Request provenance**, checked on every unsafe method (anything but GET, HEAD, OPTIONS,
   TRACE). ``Sec-Fetch-Site`` decides when the browser sent it: ``same-origin`` and ``none``
   (typed or bookmarked by the user) pass, ``same-site`` passes only if configured, anything
   else fails. Without it, ``Origin`` must be one of the configured origins; without that,
   the origin of ``Referer``. With none of the three the request is refused (fail closed).
2. **A session-bound token** for forms: ``HMAC-SHA256(key, session id)``, base64url. It is
   compared in constant time; keys rotate like itsdangerous' (the first signs, all verify).

Bearer transport needs neither: a browser never attaches an ``Authorization`` header on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from sessionward.errors import ConfigError
from sessionward.web._http import SAFE_METHODS

__all__ = ["CsrfPolicy"]

_CONTEXT = b"sessionward-csrf-v1\x00"
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
    def _sign(key: bytes, session_id: str) -> bytes:
        return hmac.new(key, _CONTEXT + session_id.encode(), hashlib.sha256).digest()

    def token_for(self, session_id: str) -> str:
        """The form token for this session (stable while the session id is)."""
        digest = self._sign(self._keys[0], session_id)
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def token_valid(self, session_id: str | None, presented: object) -> bool:
        """Constant-time check of a presented form token against every key."""
        if session_id is None or not isinstance(presented, str) or len(presented) != 43:
            return False
        try:
            given = presented.encode("ascii")
        except UnicodeEncodeError:
            return False
        # Compared as text, not decoded: base64 has more than one spelling of the same bytes
        # (the unused low bits of the last character), and only the one we issue is valid.
        ok = False
        for key in self._keys:  # no early exit: every key costs the same
            expected = base64.urlsafe_b64encode(self._sign(key, session_id)).rstrip(b"=")
            ok |= hmac.compare_digest(given, expected)
        return ok
