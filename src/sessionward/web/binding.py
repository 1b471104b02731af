"""Configuration of key-bound sessions for the adapters (see docs/binding.md).

* :class:`DeviceBinding` turns on Device Bound Session Credentials for cookie transport: the
  login response offers a binding, the browser registers a key at ``<path>/register`` and
  keeps a short-lived bound cookie fresh at ``<path>/refresh``; a bound session's requests are
  authenticated only with a live bound cookie. With ``fallback=True`` the adapter also serves
  ``<path>/fallback.js``, a page script that does the same with a WebCrypto key for browsers
  without DBSC (a weaker guarantee: script running in the page can use that key).
* :class:`~sessionward.core.dpop.DpopPolicy` (``dpop=``) turns on DPoP for bearer transport.

The adapters intercept the three paths before the application sees them.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from importlib import resources

from sessionward.core.binding import BindingPolicy
from sessionward.core.dpop import DpopPolicy
from sessionward.errors import ConfigError
from sessionward.web.cookies import CookiePolicy

__all__ = ["BindingPolicy", "DeviceBinding", "DpopPolicy", "fallback_script"]

_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")


@dataclass(frozen=True, slots=True)
class DeviceBinding:
    """DBSC for a cookie-transport adapter.

    * ``policy``: bound-cookie lifetime, challenge lifetime, algorithms, fallback rule.
    * ``path``: where the registration, refresh and script endpoints live (same origin).
    * ``excludes``: path prefixes that never need the bound cookie (static files, public
      pages); the browser does not hold requests to them back for a refresh.
    * ``fallback``: serve the WebCrypto fallback script and accept its registrations.
    """

    policy: BindingPolicy = field(default_factory=BindingPolicy)
    path: str = "/sessionward/dbsc"
    excludes: tuple[str, ...] = ()
    fallback: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or _PATH.fullmatch(self.path) is None:
            raise ConfigError("binding path must be an absolute path such as /sessionward/dbsc")
        for prefix in self.excludes:
            if not isinstance(prefix, str) or _PATH.fullmatch(prefix.rstrip("/") or "/x") is None:
                raise ConfigError("excluded paths must be absolute paths")

    @property
    def register_path(self) -> str:
        return self.path + "/register"

    @property
    def refresh_path(self) -> str:
        return self.path + "/refresh"

    @property
    def script_path(self) -> str:
        return self.path + "/fallback.js"

    def route(self, path: str) -> str | None:
        """``register``, ``refresh`` or ``script`` for one of the binding paths."""
        if not path.startswith(self.path):
            return None
        if path == self.register_path:
            return "register"
        if path == self.refresh_path:
            return "refresh"
        if path == self.script_path and self.fallback:
            return "script"
        return None

    def bound_cookie(self, cookie: CookiePolicy) -> CookiePolicy:
        """The bound cookie: the session cookie's flags, its name plus ``-bound``, and a
        ``Max-Age`` of the policy's ``cookie_lifetime``."""
        return _bound_cookie(cookie, self.policy.cookie_lifetime)


@functools.lru_cache(maxsize=16)
def _bound_cookie(cookie: CookiePolicy, lifetime: int) -> CookiePolicy:
    if cookie.partitioned:
        raise ConfigError("DBSC does not bind Partitioned cookies")
    return dataclasses.replace(cookie, name=cookie.name + "-bound", remember_max_age=lifetime)


@functools.cache
def fallback_script() -> bytes:
    """The WebCrypto fallback script (``fallback.js``)."""
    return resources.files("sessionward.web").joinpath("fallback.js").read_bytes()
