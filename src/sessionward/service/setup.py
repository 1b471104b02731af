"""The one-time admin setup code printed on first start (as notebook servers print a link).

The code travels in the URL *fragment* (``/admin/setup#code=...``), which browsers never send
to a server or put in a ``Referer``; the setup page copies it into its form (or the admin
pastes it). Only its sha256 is stored. It is consumed, atomically, by the first successful
use; every start without an admin account replaces it with a new one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sessionward.service.state import ServiceState

__all__ = ["consume_setup_code", "new_setup_code"]


def _digest(code: str) -> bytes:
    return hashlib.sha256(code.encode("utf-8")).digest()


def new_setup_code(state: ServiceState, now: float) -> str:
    code = secrets.token_urlsafe(24)
    state.replace_setup_code(_digest(code), now)
    return code


def consume_setup_code(state: ServiceState, code: str) -> bool:
    """``True`` exactly once for the current code."""
    if not code or len(code) > 128:
        return False
    presented = _digest(code)
    return state.consume_setup_code(lambda stored: hmac.compare_digest(presented, stored))
