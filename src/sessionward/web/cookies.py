"""The session cookie, built one way only (ASVS 5.0 V3.3, WSTG-SESS-02).

Every cookie this module emits looks like::

    __Host-id=<token>; Path=/; Secure; HttpOnly; SameSite=Lax

``__Host-`` makes the browser refuse the cookie unless it is ``Secure``, has ``Path=/`` and no
``Domain``, so neither a sibling subdomain nor a plain-http page can plant or overwrite it.
There is no ``Expires``/``Max-Age`` (the cookie dies with the browser) unless the application
asks for "remember me" and the policy allows it; then both are sent (``Max-Age`` wins where
it is understood, ``Expires`` serves older clients). ``SameSite`` is always explicit; ``None``
is refused for a session cookie.

``insecure_http_localhost=True`` is the one escape hatch, for ``http://localhost`` during
development: it drops ``__Host-`` and ``Secure`` (browsers ignore ``Secure`` cookies over
plain http) and logs a warning. Never enable it in production.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from email.utils import formatdate
from typing import Literal

from sessionward.errors import ConfigError, InvalidArgument

__all__ = ["MAX_COOKIE_BYTES", "CookiePolicy"]

_log = logging.getLogger("sessionward.web")

#: rfc6265bis: user agents must accept name + value of at most 4096 bytes, no more (ASVS 3.3.5).
MAX_COOKIE_BYTES = 4096
_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")  # RFC 9110 token, kept short
_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")  # RFC 6265 cookie-octet
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
_warned_insecure = False


@dataclass(frozen=True, slots=True)
class CookiePolicy:
    """How the session cookie is named and flagged. Validated on construction.

    * ``name``: the base name; the emitted name is ``__Host-<name>``. Keep it generic (``id``)
      so the cookie does not fingerprint the stack.
    * ``same_site``: ``"Lax"`` (default: top-level links from other sites keep the user logged
      in) or ``"Strict"``. ``"None"`` is refused.
    * ``remember_max_age``: seconds a "remember me" cookie may persist (``None``: remember-me
      is off and every cookie is a browser-session cookie).
    * ``partitioned``: add ``Partitioned`` (CHIPS), for a session used inside third-party iframes.
    * ``insecure_http_localhost``: the development switch described in the module docstring.
    """

    name: str = "id"
    same_site: Literal["Lax", "Strict"] = "Lax"
    remember_max_age: int | None = None
    partitioned: bool = False
    insecure_http_localhost: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigError("cookie name must be a short RFC 9110 token")
        if self.name.lower().startswith(("__host-", "__secure-")):
            raise ConfigError("give the cookie name without a prefix; __Host- is added")
        if self.same_site not in ("Lax", "Strict"):
            raise ConfigError("same_site must be 'Lax' or 'Strict' for a session cookie")
        if self.remember_max_age is not None and (
            isinstance(self.remember_max_age, bool)
            or not isinstance(self.remember_max_age, int)
            or self.remember_max_age <= 0
        ):
            raise ConfigError("remember_max_age must be a positive number of seconds")
        if self.partitioned and self.insecure_http_localhost:
            raise ConfigError("Partitioned needs Secure, so not with insecure_http_localhost")
        if self.insecure_http_localhost:
            _warn_insecure_once()

    @property
    def cookie_name(self) -> str:
        """The name as it appears on the wire."""
        return self.name if self.insecure_http_localhost else "__Host-" + self.name

    def _attributes(self) -> str:
        secure = "" if self.insecure_http_localhost else "; Secure"
        partitioned = "; Partitioned" if self.partitioned else ""
        return f"; Path=/{secure}; HttpOnly; SameSite={self.same_site}{partitioned}"

    @property
    def attributes(self) -> str:
        """The cookie's attributes as ``Set-Cookie`` writes them (``Path=/; Secure; ...``),
        without ``Max-Age``/``Expires``: what a DBSC session config must repeat exactly."""
        return self._attributes()[2:]

    def header(self, value: str, *, max_age: int | None = None) -> str:
        """The ``Set-Cookie`` value carrying ``value``.

        ``max_age`` (remember-me) must be positive and is capped at ``remember_max_age``;
        passing it when remember-me is off raises ``ConfigError``.
        """
        if not isinstance(value, str) or not _VALUE.fullmatch(value):
            raise InvalidArgument("cookie value has characters a cookie cannot carry")
        if len(self.cookie_name.encode()) + len(value.encode()) > MAX_COOKIE_BYTES:
            raise InvalidArgument(f"cookie name and value exceed {MAX_COOKIE_BYTES} bytes")
        persist = ""
        if max_age is not None:
            if self.remember_max_age is None:
                raise ConfigError("remember-me needs CookiePolicy(remember_max_age=...)")
            if max_age <= 0:
                raise InvalidArgument("max_age must be positive; use expire() to delete")
            seconds = min(int(max_age), self.remember_max_age)
            expires = formatdate(time.time() + seconds, usegmt=True)  # the browser's clock
            persist = f"; Max-Age={seconds}; Expires={expires}"
        return f"{self.cookie_name}={value}{self._attributes()}{persist}"

    def expire(self) -> str:
        """The ``Set-Cookie`` value that deletes the cookie (logout, rejected token)."""
        return f"{self.cookie_name}={self._attributes()}; Max-Age=0; Expires={_EPOCH}"

    def read(self, cookie_header: str | None) -> str | None:
        """Our cookie's value from a request ``Cookie`` header, or ``None``.

        If the name occurs more than once the first is taken; with ``__Host-`` no other site
        or path could have set a second one.
        """
        if not cookie_header:
            return None
        wanted = self.cookie_name
        for part in cookie_header.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name == wanted:
                return value.strip().strip('"') or None
        return None


def _warn_insecure_once() -> None:
    global _warned_insecure
    if not _warned_insecure:
        _warned_insecure = True
        _log.warning(
            "SESSIONWARD INSECURE DEVELOPMENT MODE: the session cookie is sent without "
            "Secure and without the __Host- prefix (insecure_http_localhost=True). "
            "Use this only on http://localhost; never in production."
        )
