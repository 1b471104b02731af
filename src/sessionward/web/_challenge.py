"""The answer to a request whose context the risk engine challenged: 401, sign in again.

The client learns which kinds of evidence weighed (``network.new_country``,
``browser.other_system``), never the sentences behind them: those name the session's own
browser and networks, which would tell a thief holding the token what to copy. The full
reasons go to the ``RiskAssessed`` event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sessionward.errors import RiskChallenge

__all__ = ["challenge_body"]

_MESSAGE = "Please sign in again: this request does not look like it came from you."


def challenge_body(challenge: RiskChallenge, headers: Mapping[str, str]) -> tuple[str, bytes]:
    """``(content type, body)`` of the 401: JSON for a client that accepts it, else text."""
    codes = list(dict.fromkeys(challenge.codes))
    if "application/json" in headers.get("accept", ""):
        body = {"error": "step_up_required", "message": _MESSAGE, "reasons": codes}
        return "application/json", json.dumps(body).encode()
    described = ", ".join(code.replace(".", ": ").replace("_", " ") for code in codes)
    text = f"{_MESSAGE}\n({described})" if described else _MESSAGE
    return "text/plain; charset=utf-8", text.encode()
