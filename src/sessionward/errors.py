"""Every exception sessionward raises.

One root, so callers can catch everything of ours in one clause; drivers' and the standard
library's exceptions never cross our public API (stores translate them at their boundary).

    SessionwardError
    ├── InvalidToken            the presented token does not authenticate (opaque to callers)
    │   ├── SessionExpired      ... because the session's idle or absolute deadline passed
    │   ├── RiskRevoked         ... because the risk engine ended the session (a likely thief)
    │   └── InvalidProof        a DBSC or DPoP proof of possession is missing or does not verify
    ├── StepUpRequired          the session is valid but its authentication is too old or too weak
    │   └── RiskChallenge       ... or the request's context is unlike the session owner's
    ├── SessionLimitReached     the user's concurrent-session cap is full and the policy rejects
    ├── DataTooLarge            session data over the configured byte limit
    ├── UpdateConflict          optimistic-concurrency retries exhausted
    ├── InvalidArgument         a caller passed something we cannot accept (also a ValueError)
    ├── ConfigError             a policy or configuration that is unsafe or inconsistent
    └── StoreError              a storage problem, translated from the driver
        ├── StoreUnavailable    the store cannot be reached; fail closed
        ├── StoreCorrupt        the store answered with data we cannot trust (or no database)
        ├── AlreadyExists       create-only write hit an existing id
        ├── NotFound            update-only write found no record
        └── VersionConflict     update-only write lost an optimistic-concurrency race

``InvalidToken`` carries a machine-readable ``reason`` for operators and events; its message
never says why, so an attacker learns nothing from it. No exception message ever contains a
raw token or secret.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "ConfigError",
    "DataTooLarge",
    "InvalidArgument",
    "InvalidProof",
    "InvalidToken",
    "NotFound",
    "RiskChallenge",
    "RiskRevoked",
    "SessionExpired",
    "SessionLimitReached",
    "SessionwardError",
    "StepUpRequired",
    "StoreCorrupt",
    "StoreError",
    "StoreUnavailable",
    "UpdateConflict",
    "VersionConflict",
]


class SessionwardError(Exception):
    """Root of every exception raised by sessionward."""


class InvalidToken(SessionwardError):
    """The token does not authenticate. ``str()`` is always the same opaque text.

    ``reason`` is a short code for logs and metrics (``malformed``, ``checksum``, ``unknown``,
    ``mismatch``, ``expired-idle``, ``expired-absolute``, ``reused``); never show it to the
    client that presented the token.
    """

    def __init__(self, reason: str = "invalid", session_id: str | None = None) -> None:
        super().__init__("invalid session token")
        self.reason = reason
        self.session_id = session_id


class SessionExpired(InvalidToken):
    """The session passed its idle or absolute deadline."""


class InvalidProof(InvalidToken):
    """A proof of possession of a bound key (a DBSC registration or refresh JWT, a DPoP proof)
    is missing, malformed, stale, replayed or signed by another key. ``reason`` says which, for
    logs; ``use_dpop_nonce`` means the client must sign again with the server's current nonce.
    """


class StepUpRequired(SessionwardError):
    """The session must re-authenticate (recent auth or a higher auth level is needed)."""

    def __init__(self, *, max_age: float | None, min_level: int) -> None:
        super().__init__("re-authentication required")
        self.max_age = max_age
        self.min_level = min_level


class _RiskFindings:
    """What the risk engine found, carried by :class:`RiskChallenge` and :class:`RiskRevoked`."""

    reasons: tuple[str, ...]
    codes: tuple[str, ...]
    weights: tuple[float, ...]
    score: float
    user_id: str | None

    def _found(
        self,
        reasons: tuple[str, ...],
        codes: tuple[str, ...],
        weights: tuple[float, ...],
        score: float,
        user_id: str | None,
    ) -> None:
        self.reasons = reasons
        self.codes = codes
        self.weights = weights
        self.score = score
        self.user_id = user_id

    def reason_list(self) -> list[dict[str, object]]:
        """``[{"code", "weight", "sentence"}, ...]``, heaviest first."""
        weights = self.weights or (0.0,) * len(self.codes)
        return [
            {"code": c, "weight": w, "sentence": s}
            for c, w, s in zip(self.codes, weights, self.reasons, strict=False)
        ]


class RiskChallenge(_RiskFindings, StepUpRequired):
    """The request's context is unlike the session's owner: the user must sign in again
    before the session serves it. The session survives (the owner's other requests still
    work); ``reasons`` are sentences an application can show ("new country: Rostelecom
    (RU)"), ``codes`` their stable codes and ``weights`` their weights (same order, heaviest
    first), ``score`` their sum, ``session_id`` the public id and ``user_id`` its user."""

    def __init__(
        self,
        session_id: str,
        reasons: tuple[str, ...] = (),
        codes: tuple[str, ...] = (),
        *,
        weights: tuple[float, ...] = (),
        score: float = 0.0,
        user_id: str | None = None,
    ) -> None:
        super().__init__(max_age=None, min_level=1)
        self.args = ("sign in again: this request does not look like the session's owner",)
        self.session_id = session_id
        self._found(reasons, codes, weights, score, user_id)


class RiskRevoked(_RiskFindings, InvalidToken):
    """The risk engine ended the session: the request's context made a thief far likelier
    than the owner. ``str()`` stays opaque, as for every ``InvalidToken``; ``reasons``,
    ``codes``, ``weights`` and ``score`` are as in ``RiskChallenge``, for the application's
    server side and its logs: never show the sentences to the client that presented the
    token (they name the owner's networks and browser)."""

    def __init__(
        self,
        session_id: str,
        reasons: tuple[str, ...] = (),
        codes: tuple[str, ...] = (),
        *,
        weights: tuple[float, ...] = (),
        score: float = 0.0,
        user_id: str | None = None,
    ) -> None:
        super().__init__("risk", session_id)
        self._found(reasons, codes, weights, score, user_id)


class SessionLimitReached(SessionwardError):
    """The user already holds the maximum number of sessions and the policy is ``reject``."""


class DataTooLarge(SessionwardError):
    """Session data serialised to more bytes than the policy allows."""


class UpdateConflict(SessionwardError):
    """A data update kept losing optimistic-concurrency races and gave up."""


class InvalidArgument(SessionwardError, ValueError):
    """A caller passed a value sessionward cannot accept."""


class ConfigError(SessionwardError, ValueError):
    """A configuration value is unsafe or inconsistent."""


class StoreError(SessionwardError):
    """Base of storage errors; the driver's own exception is chained as ``__cause__``."""


class StoreUnavailable(StoreError):
    """The store could not be reached or timed out. Nothing is authenticated on this error."""


class StoreCorrupt(StoreError):
    """The store holds something that is not a sessionward database, or a record we reject."""


class AlreadyExists(StoreError):
    """A create-only ``add`` found a record with the same id."""


class NotFound(StoreError):
    """An update-only ``replace`` found no record with that id."""


class VersionConflict(StoreError):
    """An update-only ``replace`` expected a version the stored record no longer has."""
