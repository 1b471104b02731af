"""Revocation of access tokens that are still inside their lifetime.

Three lists, each entry kept only while a token it can match may still be valid (its ``exp``,
or the longest lifetime plus skew after the revocation), so memory stays bounded by the
revocation rate times fifteen minutes:

* **jti denylist**, keyed by ``(iss, jti)`` and never by a hash of the token: a re-encoded
  token (another base64 spelling, ECDSA ``s`` → ``n - s``) has the same ``(iss, jti)``.
* **session list**: every token naming a backing session that ended (logout, theft, expiry).
* **per-user cut-off** ("not before"): tokens of the user issued before the cut-off are dead
  (logout everywhere, password change, account disabled); one cut-off can cover every user
  (an administrator ended every session).

Pure and in-process: no I/O, ``now`` passed in. Reads take no lock (one dict lookup each).
To share revocations between processes, feed every process the same calls (for example from
an event stream); docs/jwt.md gives the lag of each mode.
"""

from __future__ import annotations

import threading
from typing import Final

from sessionward.jwt.claims import AccessClaims

__all__ = ["Revocations"]

_PURGE_EVERY: Final = 256
_EVERYONE: Final = ""  # no user id is empty: the cut-off entry that applies to every user


class Revocations:
    """The jti denylist, the revoked-session list and the per-user cut-offs of one issuer.

    ``retention`` is how long a session or user entry must live: the longest access-token
    lifetime plus the verifier's skew (default 15 min + 60 s).
    """

    def __init__(self, *, retention: float = 15 * 60 + 60, skew: float = 60.0) -> None:
        self.retention = float(retention)
        self.skew = float(skew)
        self._lock = threading.Lock()
        self._jti: dict[tuple[str, str], float] = {}
        self._sessions: dict[str, float] = {}
        self._cutoffs: dict[str, tuple[float, float]] = {}
        self._writes = 0

    # -- writing ----------------------------------------------------------------------------
    # Writers serialise on the lock; readers do single dict lookups, which are atomic in
    # CPython, so they need none. Purging builds new dicts and swaps them in.

    def deny(self, iss: str, jti: str, *, exp: float, now: float) -> None:
        """Reject the token ``(iss, jti)`` until it has expired (``exp`` plus skew)."""
        with self._lock:
            self._jti[(iss, jti)] = exp + self.skew
            self._wrote(now)

    def revoke_session(self, session_id: str, *, now: float) -> None:
        """Reject every access token naming ``session_id`` (``sid``)."""
        with self._lock:
            self._sessions[session_id] = now + self.retention
            self._wrote(now)

    def cut_off_user(self, user_id: str, *, now: float) -> None:
        """Reject every access token of ``user_id`` issued (``iat``) before ``now``."""
        with self._lock:
            previous = self._cutoffs.get(user_id)
            cutoff = max(now, previous[0]) if previous else now
            self._cutoffs[user_id] = (cutoff, now + self.retention)
            self._wrote(now)

    def cut_off_everyone(self, *, now: float) -> None:
        """Reject every access token issued before ``now``, whoever it names."""
        self.cut_off_user(_EVERYONE, now=now)

    def cutoff_for(self, user_id: str) -> float | None:
        """The user's current cut-off, if any (issuers start ``iat`` at or after it)."""
        entries = [e[0] for e in (self._cutoffs.get(user_id), self._cutoffs.get(_EVERYONE)) if e]
        return max(entries) if entries else None

    def _wrote(self, now: float) -> None:
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            self._purge_locked(now)

    def purge(self, now: float) -> int:
        """Forget entries no token can match any more; returns how many."""
        with self._lock:
            return self._purge_locked(now)

    def _purge_locked(self, now: float) -> int:
        before = len(self)
        self._jti = {k: v for k, v in self._jti.items() if v > now}
        self._sessions = {k: v for k, v in self._sessions.items() if v > now}
        self._cutoffs = {k: v for k, v in self._cutoffs.items() if v[1] > now}
        return before - len(self)

    # -- reading (hot path) -----------------------------------------------------------------

    def reason(self, claims: AccessClaims) -> str | None:
        """Why ``claims`` are revoked (``revoked``, ``session-revoked``, ``user-cutoff``), or
        ``None``. Three dictionary lookups at most, skipped while a list is empty."""
        if self._jti and (claims.iss, claims.jti) in self._jti:
            return "revoked"
        if self._sessions and claims.sid in self._sessions:
            return "session-revoked"
        if self._cutoffs:
            entry = self._cutoffs.get(claims.sub)
            if entry is not None and claims.iat < entry[0]:
                return "user-cutoff"
            everyone = self._cutoffs.get(_EVERYONE)
            if everyone is not None and claims.iat < everyone[0]:
                return "user-cutoff"
        return None

    def __len__(self) -> int:
        return len(self._jti) + len(self._sessions) + len(self._cutoffs)

    def __repr__(self) -> str:
        return (
            f"Revocations(jti={len(self._jti)}, sessions={len(self._sessions)}, "
            f"users={len(self._cutoffs)}, retention={self.retention})"
        )
