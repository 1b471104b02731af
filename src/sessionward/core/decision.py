"""What to do with a presented session: a pure function of the record, the time, the policy
and which secret matched.

The manager reads the record, works out which of its secrets the request presented
(:class:`Match`), asks :func:`decide` and carries the :class:`Decision` out (a write, an event,
an error). Every lifetime rule lives here, and the deadline arithmetic lives in
:func:`idle_deadline` alone, so it can be tested exhaustively without a store or a clock.

``risk`` is where a verdict on the request's context plugs in: it is weighed after the token
is authenticated and the session is known to be alive, and before any renewal. ``proof`` is
the verdict on a key-bound session's proof of possession, weighed at the same point and
before ``risk``: a session whose proof is pending is served without any write.
"""

from __future__ import annotations

import enum
import hmac
from typing import Final, NamedTuple

from sessionward.core import token as tokens
from sessionward.core.policy import Policy
from sessionward.core.record import SessionRecord
from sessionward.core.successor import successor_of

__all__ = [
    "ALLOW",
    "Action",
    "Decision",
    "Match",
    "Proof",
    "Risk",
    "deadline_passed",
    "decide",
    "idle_deadline",
    "match_secret",
    "rotation_due",
    "step_up",
]


class Match(enum.Enum):
    """Which secret of the record the request presented."""

    CURRENT = "current"
    #: the secret the latest rotation replaced (``prev_secret_hash``), inside its grace or not
    PREVIOUS = "previous"
    #: an older secret whose grace window is still open (a successor link leads from it)
    EARLIER = "earlier"
    NONE = "none"


class Risk(enum.Enum):
    """A verdict on the request's context against the session's history."""

    ALLOW = "allow"
    STEP_UP = "step-up"
    REVOKE = "revoke"


class Proof(enum.Enum):
    """A verdict on the request's proof of the key a session is bound to (a refused proof
    raises instead: no decision is made for it)."""

    UNBOUND = "unbound"  # the session is bound to no key: nothing to prove
    PROVEN = "proven"
    #: not proven yet (a DBSC bound cookie expired, its refresh to come): serve, write nothing
    PENDING = "pending"


class Action(enum.Enum):
    """What the manager does with the request."""

    ALLOW = "allow"  # authenticated; nothing to write
    TOUCH = "touch"  # authenticated; write last_seen and the idle deadline
    ROTATE = "rotate"  # authenticated; renew the secret
    SUCCESSOR = "successor"  # a rotated-out secret inside its grace: hand over the current one
    HOLD = "hold"  # authenticated, key not proven yet: no write, no renewal, no successor
    STEP_UP = "step-up"  # alive, but ask the user to authenticate again
    EXPIRE = "expire"  # a deadline passed: delete the session
    THEFT = "theft"  # a rotated-out secret after its grace: revoke the session
    REVOKE = "revoke"  # the risk verdict: revoke the session
    REJECT = "reject"  # does not authenticate; leave the session alone


class Decision(NamedTuple):
    """An :class:`Action` and its reason code (for events, errors and metrics)."""

    action: Action
    reason: str = ""


ALLOW: Final = Decision(Action.ALLOW)
TOUCH: Final = Decision(Action.TOUCH)
ROTATE: Final = Decision(Action.ROTATE)
SUCCESSOR: Final = Decision(Action.SUCCESSOR)
THEFT: Final = Decision(Action.THEFT, "reused")
MISMATCH: Final = Decision(Action.REJECT, "mismatch")
REFUSED: Final = Decision(Action.REJECT, "refused")
EXPIRED_IDLE: Final = Decision(Action.EXPIRE, "idle")
EXPIRED_ABSOLUTE: Final = Decision(Action.EXPIRE, "absolute")
HOLD: Final = Decision(Action.HOLD, "proof")
RISK_STEP_UP: Final = Decision(Action.STEP_UP, "risk")
RISK_REVOKE: Final = Decision(Action.REVOKE, "risk")


# Module-level names for the members the hot path tests (an enum attribute costs a lookup).
_CURRENT_MATCH: Final = Match.CURRENT
_PREVIOUS_MATCH: Final = Match.PREVIOUS
_NO_MATCH: Final = Match.NONE
_NO_RISK: Final = Risk.ALLOW
_CURRENT: Final = (Match.CURRENT, None)
_PREVIOUS: Final = (Match.PREVIOUS, None)
_NONE: Final = (Match.NONE, None)


def match_secret(record: SessionRecord, secret: bytes, now: float) -> tuple[Match, bytes | None]:
    """Which of ``record``'s secrets ``secret`` is, in constant time per comparison. For
    ``EARLIER`` the current secret, recovered through its successor link, comes with it."""
    check = tokens.verifier(secret)
    if hmac.compare_digest(check, record.secret_hash):
        return _CURRENT
    previous = record.prev_secret_hash
    if previous is not None and hmac.compare_digest(check, previous):
        return _PREVIOUS
    found = successor_of(record, secret, now)
    return _NONE if found is None else (Match.EARLIER, found)


def idle_deadline(now: float, absolute_expires_at: float, policy: Policy) -> float:
    """The ``expires_at`` a session active at ``now`` gets: the idle deadline, capped by the
    absolute one."""
    return min(now + policy.idle_timeout, absolute_expires_at)


def deadline_passed(record: SessionRecord, now: float) -> Decision | None:
    """``EXPIRE`` (reason ``absolute`` or ``idle``) once the record's deadline has passed."""
    if now < record.expires_at:
        return None
    return EXPIRED_ABSOLUTE if now >= record.absolute_expires_at else EXPIRED_IDLE


def rotation_due(record: SessionRecord, now: float, policy: Policy) -> bool:
    """Whether the current secret is old enough to renew. Never while the previous secret's
    grace window is open: renewing then would strand the tokens still relying on it."""
    rotate_after = policy.rotate_after
    return (
        rotate_after is not None
        and now - record.rotated_at >= rotate_after
        and now >= record.grace_until
    )


def decide(
    record: SessionRecord,
    now: float,
    policy: Policy,
    match: Match,
    *,
    admitted: bool = True,
    risk: Risk = Risk.ALLOW,
    proof: Proof = Proof.UNBOUND,
) -> Decision:
    """What to do with a request that presented a secret of ``record`` (``match``) at ``now``.

    In order: a secret the record does not know is rejected (``mismatch``); the previous
    secret after its grace window is theft; a record the manager does not serve
    (``admitted=False``) is rejected (``refused``); a passed deadline expires the session
    (``absolute`` when the absolute deadline passed, ``idle`` otherwise); a pending ``proof``
    holds (nothing is written, the key is proven first); the ``risk`` verdict applies; a
    rotated-out secret inside its grace window gets the successor; a due renewal rotates; a
    ``last_seen`` older than the touch interval is written; otherwise nothing.
    """
    if match is _NO_MATCH:
        return MISMATCH
    if match is _PREVIOUS_MATCH and now >= record.grace_until:
        return THEFT
    if not admitted:
        return REFUSED
    if now >= record.expires_at:
        return deadline_passed(record, now) or EXPIRED_IDLE
    if proof is Proof.PENDING:
        return HOLD
    if risk is not _NO_RISK:
        return RISK_REVOKE if risk is Risk.REVOKE else RISK_STEP_UP
    if match is not _CURRENT_MATCH:
        return SUCCESSOR
    if policy.rotate_after is not None and rotation_due(record, now, policy):
        return ROTATE
    if now - record.last_seen >= policy.effective_touch_interval:
        return TOUCH
    return ALLOW


def step_up(
    record: SessionRecord, now: float, *, max_age: float | None, min_level: int
) -> Decision:
    """``ALLOW`` when the session authenticated at ``min_level`` or higher within the last
    ``max_age`` seconds (``None``: any age); otherwise ``STEP_UP`` with the reason
    (``anonymous``, ``level`` or ``age``)."""
    if record.user_id is None:
        return Decision(Action.STEP_UP, "anonymous")
    if record.auth_level < min_level:
        return Decision(Action.STEP_UP, "level")
    auth_time = record.auth_time
    if max_age is not None and (auth_time is None or now - auth_time > max_age):
        return Decision(Action.STEP_UP, "age")
    return ALLOW
