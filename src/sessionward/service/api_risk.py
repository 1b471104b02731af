"""The risk engine's decisions in the API's answers (the service's ``risk = true``).

``POST /v1/sessions/validate`` with a ``context`` (the address, user agent, languages, client
hints and device signal of the application's user, not the application's own) answers:

* ``allow`` / ``rotate`` with ``"risk": {"decision": "allow" | "log", "score", "reasons"}``;
* ``step-up`` with ``"reason": "risk"``, the session's id and user, a ``message`` the
  application can show, and ``"risk": {"decision": "step_up", ...}``: the user must sign in
  again; the session survives, and ``POST /v1/sessions/confirm`` (after the sign-in) makes the
  request's context the owner's and rotates the token, cutting off whoever else holds it
  (or ``POST /v1/sessions`` with the challenged token as ``previous_token`` starts a new
  session and, for the same user, ends the challenged one);
* ``deny`` with ``"reason": "risk"`` and ``"risk": {"decision": "revoke", ...}`` when the
  engine has just ended the session (any other denial stays ``"reason": "invalid"``).

Each reason is ``{"code", "weight", "sentence"}``. The sentences name the owner's networks and
browser: show them to the signed-in owner, never to the requester of a challenged request.
"""

from __future__ import annotations

import json
from typing import Any

from sessionward.core.risk_types import Verdict
from sessionward.errors import RiskChallenge, RiskRevoked
from sessionward.service.tenancy import public_user

__all__ = ["STEP_UP_MESSAGE", "challenge_answer", "revoked_answer", "risk_json", "risk_suffix"]

STEP_UP_MESSAGE = "Please sign in again: this request does not look like it came from you."


def risk_json(verdict: Verdict) -> dict[str, Any]:
    return {
        "decision": str(verdict.decision),
        "score": round(verdict.score, 2),
        "reasons": [
            {"code": str(r.signal), "weight": round(r.weight, 2), "sentence": r.detail}
            for r in verdict.reasons
        ],
    }


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_SUFFIXES: dict[int, tuple[Verdict, bytes]] = {}
_SUFFIX_MEMO = 4096


def risk_suffix(verdict: Verdict) -> bytes:
    """``,"risk":{...}`` to append inside a validate answer. The engine hands back the same
    verdict object for an unchanged context, so its encoding is remembered by identity
    (bounded; the verdict is kept with it, so its id cannot be reused meanwhile)."""
    hit = _SUFFIXES.get(id(verdict))
    if hit is not None and hit[0] is verdict:
        return hit[1]
    encoded = b',"risk":' + _dumps(risk_json(verdict))
    if len(_SUFFIXES) >= _SUFFIX_MEMO:
        _SUFFIXES.clear()
    _SUFFIXES[id(verdict)] = (verdict, encoded)
    return encoded


def challenge_answer(challenge: RiskChallenge) -> bytes:
    return _dumps(
        {
            "decision": "step-up",
            "reason": "risk",
            "message": STEP_UP_MESSAGE,
            "session_id": challenge.session_id,
            "user_id": public_user(challenge.user_id),
            "risk": {
                "decision": "step_up",
                "score": challenge.score,
                "reasons": challenge.reason_list(),
            },
        }
    )


def revoked_answer(revoked: RiskRevoked) -> bytes:
    return _dumps(
        {
            "decision": "deny",
            "reason": "risk",
            "session_id": revoked.session_id,
            "user_id": public_user(revoked.user_id),
            "risk": {
                "decision": "revoke",
                "score": revoked.score,
                "reasons": revoked.reason_list(),
            },
        }
    )
