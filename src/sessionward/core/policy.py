"""How long sessions live and how they renew: one immutable, validated object.

Defaults follow the OWASP Session Management Cheat Sheet for a low-risk application
(30 min idle, 8 h absolute; see docs/policy.md for the justification ASVS 7.1.1 asks for).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from sessionward.errors import ConfigError

__all__ = ["Policy"]

SessionLimitAction = Literal["evict_oldest", "reject"]


# No __slots__: the derived touch interval is cached in the instance, read on every request.
@dataclass(frozen=True)
class Policy:
    """Lifetime and renewal rules applied by the session manager.

    * ``idle_timeout``: seconds without activity after which a session dies.
    * ``absolute_timeout``: seconds after creation after which a session dies, however active.
    * ``touch_interval``: ``last_seen`` is written at most once per this many seconds, so a
      burst of requests costs one write. The effective idle timeout therefore lies between
      ``idle_timeout - touch_interval`` and ``idle_timeout``. Default: a tenth of the idle
      timeout, at most 60 s.
    * ``rotate_after``: ``validate`` renews the secret of a session whose secret is older than
      this (``None``: only explicit rotation).
    * ``rotation_grace``: seconds the previous secret keeps working after a rotation, so
      parallel requests and tabs are not logged out. A presentation after the window revokes
      the session as stolen.
    * ``max_data_bytes``: limit on the JSON-encoded session data.
    * ``max_sessions_per_user`` and ``on_session_limit``: the concurrent-session cap.
    * ``context_history``: how many distinct request contexts a session remembers.
    """

    idle_timeout: float = 30 * 60
    absolute_timeout: float = 8 * 3600
    touch_interval: float | None = None
    rotate_after: float | None = None
    rotation_grace: float = 30.0
    max_data_bytes: int = 16 * 1024
    max_sessions_per_user: int | None = None
    on_session_limit: SessionLimitAction = "evict_oldest"
    context_history: int = 8

    def __post_init__(self) -> None:
        if not 0 < self.idle_timeout <= self.absolute_timeout:
            raise ConfigError("need 0 < idle_timeout <= absolute_timeout")
        if self.touch_interval is not None and not 0 <= self.touch_interval < self.idle_timeout:
            raise ConfigError("touch_interval must be >= 0 and below idle_timeout")
        if self.rotate_after is not None and self.rotate_after <= 0:
            raise ConfigError("rotate_after must be positive")
        if not 0 <= self.rotation_grace <= 300:
            raise ConfigError("rotation_grace must be between 0 and 300 seconds")
        if self.max_data_bytes < 2:
            raise ConfigError("max_data_bytes must allow at least '{}'")
        if self.max_sessions_per_user is not None and self.max_sessions_per_user < 1:
            raise ConfigError("max_sessions_per_user must be at least 1")
        if self.on_session_limit not in ("evict_oldest", "reject"):
            raise ConfigError("on_session_limit must be 'evict_oldest' or 'reject'")
        if not 0 <= self.context_history <= 64:
            raise ConfigError("context_history must be between 0 and 64")

    @cached_property
    def effective_touch_interval(self) -> float:
        if self.touch_interval is not None:
            return self.touch_interval
        return min(60.0, self.idle_timeout / 10)
