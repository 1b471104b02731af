"""Push delivery of Shared Signals (RFC 8935) on the shared delivery engine.

A push stream is also a consumer of kind ``ssf`` in the consumer store (same id as the
stream, the stream's configuration in its ``config``, the receiver's authorization header
in its ``credentials``): the :class:`~sessionward.signals.delivery.Deliverer` walks the
event log for it, and :class:`SetRenderer` turns each entry into the SET the stream
delivers, or skips it when the entry has no CAEP form or the stream does not deliver that
event type. A request
is ``POST <endpoint_url>`` with ``Content-Type: application/secevent+jwt`` and the
receiver's ``authorization_header``; a 2xx answer (RFC 8935 asks for 202) moves on, anything
else is retried with the engine's backoff, in log order. The ``jti`` of a SET depends only on
the stream and the log entry, so a retry carries the same ``jti``.

Stream status maps onto the consumer: ``paused`` disables it and keeps its cursor (events
wait and flow when it is enabled again); ``disabled`` disables it and, when it is enabled
again, moves the cursor to the end of the log (nothing held).

Verification and stream-updated events do not come from the log: :func:`send_verification`
posts one at once, from a thread of its own, with a few retries; setting its ``stop`` event
ends the retries (the transmitter sets it when it closes, and joins the thread).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Final, Protocol

import httpx

from sessionward.signals.delivery import Rendered, Skip
from sessionward.signals.set import SET_MEDIA_TYPE
from sessionward.stores.consumers.base import Consumer
from sessionward.stores.eventlog.base import LoggedEvent
from sessionward.stores.ssf import PendingSet

__all__ = ["KIND", "SSF_KINDS", "SetRenderer", "push_headers", "send_verification"]

_log = logging.getLogger("sessionward.signals")
KIND: Final = "ssf"
#: The event kinds that can have a CAEP form (sessionward.signals.caep); the deliverer
#: skips the others without asking the renderer.
SSF_KINDS: Final = frozenset(
    {"revoked", "all-revoked", "factor-changed", "elevated", "bound", "theft-suspected"}
)
AUTHORIZATION: Final = "authorization"


def push_headers(consumer_credentials: Mapping[str, object]) -> dict[str, str]:
    headers = {"content-type": SET_MEDIA_TYPE, "accept": "application/json"}
    authorization = consumer_credentials.get(AUTHORIZATION)
    if isinstance(authorization, str) and authorization:
        headers["authorization"] = authorization
    return headers


class _Signs(Protocol):
    def sets_for(self, document: Mapping[str, Any], event: LoggedEvent) -> list[PendingSet]: ...


class SetRenderer:
    """The ``ssf`` renderer: one SET per log entry, signed by the transmitter."""

    def __init__(self, transmitter: _Signs) -> None:
        self.transmitter = transmitter

    def render(self, consumer: Consumer, event: LoggedEvent, now: float) -> Rendered:
        found = self.transmitter.sets_for(consumer.config, event)
        if not found:
            raise Skip
        (pending,) = found
        return Rendered(
            pending.jti, pending.token.encode("ascii"), push_headers(consumer.credentials)
        )


def send_verification(
    url: str,
    token: str,
    headers: Mapping[str, str],
    *,
    attempts: int = 4,
    pause: float = 1.0,
    timeout: float = 10.0,
    what: str = "verification",
    stop: threading.Event | None = None,
) -> threading.Thread:
    """POST a SET that comes from no log entry (a verification, a stream-updated notice:
    ``what``, for the logs) from a daemon thread: up to ``attempts`` tries, ``pause`` seconds
    doubling between them, until a 2xx answer. Once ``stop`` is set no try starts and a
    pause ends at once (a request in flight ends within ``timeout``)."""
    stop = stop or threading.Event()

    def run() -> None:
        wait = pause
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            for attempt in range(1, attempts + 1):
                if stop.is_set():
                    _log.info("ssf %s abandoned: the transmitter closed", what)
                    return
                outcome: int | str
                try:
                    outcome = client.post(url, content=token, headers=dict(headers)).status_code
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                if isinstance(outcome, int) and 200 <= outcome < 300:
                    return
                _log.info("ssf %s attempt %d failed: %s", what, attempt, outcome)
                if attempt < attempts:
                    stop.wait(wait)
                    wait *= 2
        _log.warning("ssf %s event not delivered after %d attempts", what, attempts)

    thread = threading.Thread(target=run, name="sessionward-ssf-verify", daemon=True)
    thread.start()
    return thread
