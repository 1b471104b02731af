"""The session manager: the one entry point adapters and applications use.

:class:`AsyncSessionManager` is the source; :class:`SessionManager` is its generated twin.
"""

from sessionward.manager._async.manager import AsyncSessionManager
from sessionward.manager._sync.manager import SessionManager

__all__ = ["AsyncSessionManager", "SessionManager"]
