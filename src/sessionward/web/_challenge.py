"""The answer to a request whose context the risk engine challenged: 401, sign in again.

The client learns which kinds of evidence weighed (``network.new_country``,
``browser.other_system``), never the sentences behind them: those name the session's own
browser and networks, which would tell a thief holding the token what to copy. The full
reasons go to the ``RiskAssessed`` event.

With ``step_up_paths`` configured, a browser's page request (a ``GET`` that accepts HTML) is
sent to the first of them instead, with ``next`` (where it was going) and ``reason=risk``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import urlencode

from sessionward.errors import RiskChallenge

__all__ = ["challenge_body", "challenge_redirect"]

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


def challenge_redirect(
    step_up_paths: tuple[str, ...], method: str, path: str, query: str, headers: Mapping[str, str]
) -> str | None:
    """The ``Location`` for a challenged page request of a browser, or ``None`` (401)."""
    if not step_up_paths or method not in ("GET", "HEAD"):
        return None
    if "text/html" not in headers.get("accept", ""):
        return None
    wanted = path + ("?" + query if query else "")
    return f"{step_up_paths[0]}?{urlencode({'next': wanted, 'reason': 'risk'})}"
