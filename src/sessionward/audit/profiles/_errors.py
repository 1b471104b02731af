"""The profiles' exceptions, all under sessionward's root.

    SessionwardError
    └── ProfileError            a profile cannot be used as asked (bad name, bad file, ...)
        ├── ProfileNotFound     no profile of that name
        ├── ProfileExists       a profile of that name already exists
        └── ProfileLocked       another run is using the profile

Messages never hold a cookie value, a token or a password.
"""

from __future__ import annotations

from sessionward.errors import SessionwardError

__all__ = ["ProfileError", "ProfileExists", "ProfileLocked", "ProfileNotFound"]


class ProfileError(SessionwardError):
    """A profile cannot be used as asked; the message says why."""


class ProfileNotFound(ProfileError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no profile named {name!r}")
        self.name = name


class ProfileExists(ProfileError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a profile named {name!r} already exists")
        self.name = name


class ProfileLocked(ProfileError):
    """Another run holds the profile's lock (``pid``: its process id, when known)."""

    def __init__(self, name: str, pid: int | None) -> None:
        by = f" by process {pid}" if pid is not None else ""
        super().__init__(
            f"profile {name!r} is in use{by}; wait for that run to end (close its browser)"
        )
        self.name = name
        self.pid = pid
