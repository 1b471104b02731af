"""The concurrent-session cap handed to a store's ``add``.

It lives outside the generated ``_async``/``_sync`` store modules so both flavours share one
class: ``sessionward.stores.UserCap`` is accepted by sync and async stores alike.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["UserCap"]


class UserCap(NamedTuple):
    """A concurrent-session cap to enforce atomically with an ``add``.

    Only records of the same user with ``expires_at > now`` count. When ``limit`` of them
    exist: with ``evict_oldest`` the oldest by ``created_at`` are deleted to make room,
    otherwise :class:`~sessionward.errors.SessionLimitReached` is raised and nothing is written.
    """

    limit: int
    evict_oldest: bool
    now: float
