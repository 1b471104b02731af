"""The optional device signal (off by default; see docs/risk.md, "Device signal").

``device.js``, served by the adapters at :attr:`DeviceSignal.path`, hashes four coarse
browser attributes with the site's origin and keeps the digest in the ``__Host-sw-dev``
cookie. :meth:`DeviceSignal.key` turns that cookie into the request context's
``device_key``: a keyed hash (HMAC-SHA256 with the application's secret), so the value the
store, the events and the risk history keep cannot be joined with another site's and cannot
be brute-forced back to the attributes without the secret.

    SessionMiddleware(app, manager, device_signal=DeviceSignal(secret=DEVICE_SECRET))
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass
from importlib import resources

from sessionward.errors import ConfigError

__all__ = ["DEVICE_COOKIE", "DeviceSignal", "device_script"]

#: The cookie ``device.js`` writes; ``__Host-``: only this origin can set it.
DEVICE_COOKIE = "__Host-sw-dev"
_VALUE = re.compile(r"[A-Za-z0-9_-]{22}")  # 128 bits, base64url
_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+\.js")
_LABEL = b"sessionward device signal\x00"


@dataclass(frozen=True, slots=True)
class DeviceSignal:
    """Turns the device signal on for an adapter.

    * ``secret``: at least 16 random bytes, kept on the server (one per application; it can
      be any stable secret of the application). Changing it changes every device value once:
      each session sees "another device signal" on its next request (a step-up at most).
    * ``path``: where the adapter serves ``device.js`` (same origin).
    """

    secret: bytes
    path: str = "/sessionward/device.js"

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) < 16:
            raise ConfigError("the device signal secret must be at least 16 bytes")
        if not isinstance(self.path, str) or _PATH.fullmatch(self.path) is None:
            raise ConfigError("the device script path must be absolute and end in .js")

    def __repr__(self) -> str:
        return f"DeviceSignal(secret=<{len(self.secret)} bytes>, path={self.path!r})"

    def key(self, cookie_header: str | None) -> str | None:
        """The request's device key from its ``Cookie`` header; ``None`` when the cookie is
        absent or not shaped like ``device.js`` writes it."""
        if not cookie_header or DEVICE_COOKIE not in cookie_header:
            return None
        for part in cookie_header.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name == DEVICE_COOKIE:
                value = value.strip()
                return None if _VALUE.fullmatch(value) is None else self.keyed(value)
        return None

    def keyed(self, value: str) -> str:
        """``value`` keyed with the secret (HMAC-SHA256, 128 bits, base64url)."""
        return _keyed(self.secret, value)


@functools.lru_cache(maxsize=4096)  # a browser sends the same value on every request
def _keyed(secret: bytes, value: str) -> str:
    mac = hmac.new(secret, _LABEL + value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).rstrip(b"=").decode()


@functools.cache
def device_script() -> bytes:
    """The device-signal page script (``device.js``)."""
    return resources.files("sessionward.web").joinpath("device.js").read_bytes()


#: Response headers of ``device.js``: a script, never sniffed, cacheable for a day.
SCRIPT_HEADERS = (
    ("content-type", "text/javascript; charset=utf-8"),
    ("x-content-type-options", "nosniff"),
    ("cache-control", "public, max-age=86400"),
)
