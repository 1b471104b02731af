"""Webhook endpoints: the consumer kind ``webhook``, its renderer and its management.

An endpoint is a :class:`~sessionward.stores.consumers.base.Consumer` of kind ``webhook``
whose credentials hold its signing secrets. Each event becomes one POST::

    content-type: application/json
    webhook-id: evt_<log entry id>        (the same on every retry: the idempotency id)
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256>[ v1,<...> while a rotated secret is in grace]

    {"type": "session.revoked", "timestamp": "2026-12-06T19:44:43Z",
     "data": {"id": "...", "kind": "revoked", "session_id": "...", "user_id": "...",
              "application": "default", "reason": "logout", "at": 1796586283.0}}

``data`` is the logged event: public session ids, user ids and reason codes, never a token.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import secrets
import socket
from collections.abc import Callable, Iterable
from typing import Any, Final
from urllib.parse import urlsplit

from sessionward.core.events import Event
from sessionward.errors import InvalidArgument, NotFound
from sessionward.signals.delivery import Rendered, log_end
from sessionward.signals.webhooks import Secret, signed_headers
from sessionward.stores.consumers.base import Consumer, ConsumerStore
from sessionward.stores.eventlog.base import EventLog, LoggedEvent

__all__ = [
    "KIND",
    "ROTATION_GRACE",
    "WebhookRenderer",
    "check_public_target",
    "create_webhook",
    "event_kinds",
    "message_id",
    "rotate_secret",
]

KIND: Final = "webhook"
#: Seconds a replaced secret keeps signing (beside the new one) after a rotation.
ROTATION_GRACE: Final = 86_400.0
MAX_URL: Final = 2000
_PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
#: What an endpoint URL may be, as the OpenAPI document states it: http(s), a host name or
#: IPv4 literal, an optional port, and a path and query of printable ASCII without ``#``.
URL_PATTERN: Final = (
    "^https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:" + _PORT + ')?(/[!-"$-~]*)?$'
)
_URL = re.compile(URL_PATTERN)
MAX_ENDPOINTS: Final = 50  # per application


def event_kinds() -> frozenset[str]:
    """Every event kind the core emits (the values ``--event`` accepts)."""
    found: set[str] = set()
    todo: list[type[Event]] = [Event]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls is not Event:
            found.add(cls.kind)
    return frozenset(found)


def message_id(event: LoggedEvent) -> str:
    """The ``webhook-id``: stable per log entry, so a receiver can drop duplicates."""
    return "evt_" + event.id.replace(".", "_")


def _secrets(consumer: Consumer, now: float) -> list[Secret]:
    kept = [
        Secret.parse(entry["secret"])
        for entry in consumer.credentials.get("secrets", [])
        if entry.get("expires") is None or entry["expires"] > now
    ]
    if not kept:
        raise InvalidArgument(f"webhook {consumer.id} has no signing secret")
    return kept


class WebhookRenderer:
    """Renders an event as a Standard Webhooks message signed with every live secret.
    ``present`` gives the ``data`` of an event (default: the logged event as it is)."""

    def __init__(self, present: Callable[[LoggedEvent], dict[str, Any]] | None = None) -> None:
        self.present = present or LoggedEvent.to_dict

    def render(self, consumer: Consumer, event: LoggedEvent, now: float) -> Rendered:
        body = json.dumps(
            {
                "type": "session." + event.kind,
                "timestamp": _iso(event.at),
                "data": self.present(event),
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        mid = message_id(event)
        return Rendered(mid, body, signed_headers(_secrets(consumer, now), mid, int(now), body))


def _iso(at: float) -> str:
    moment = datetime.datetime.fromtimestamp(at, datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def check_url(url: str) -> str:
    """An endpoint URL: absolute http(s), a host, no credentials or fragment."""
    if len(url) > MAX_URL or any(ch.isspace() for ch in url):
        raise InvalidArgument("a webhook URL is at most 2000 characters, without spaces")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument("a webhook URL starts with https:// (or http://) and a host")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise InvalidArgument("a webhook URL carries no user, password or fragment")
    if _URL.fullmatch(url) is None:
        raise InvalidArgument(
            "a webhook URL is https:// (or http://), a host name, an optional port up to"
            " 65535 and a path of printable ASCII"
        )
    return url


def check_public_target(url: str) -> None:
    """Refuse a URL whose host is, or resolves to, an address that is not globally routable
    (loopback, private, link-local, carrier-grade NAT, reserved): a tenant must not make the
    service POST into its own network. Checked when the endpoint is added; a name that
    resolves elsewhere later is not re-checked."""
    host = urlsplit(url).hostname or ""
    try:
        literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise InvalidArgument(f"the webhook host {host[:100]!r} does not resolve") from None
        found = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not found or not all(address.is_global for address in found):
        raise InvalidArgument(
            "the webhook URL points at a loopback, private or reserved address"
            " (the service setting webhook_private_targets allows it)"
        )


def check_kinds(kinds: Iterable[str] | None) -> frozenset[str] | None:
    if kinds is None:
        return None
    chosen = frozenset(kinds)
    unknown = chosen - event_kinds()
    if unknown:
        raise InvalidArgument(
            f"unknown event kind(s) {', '.join(sorted(unknown))}:"
            f" choose among {', '.join(sorted(event_kinds()))}"
        )
    return chosen or None


class TooManyEndpoints(InvalidArgument):
    """The application has :data:`MAX_ENDPOINTS` endpoints already."""


def create_webhook(
    store: ConsumerStore,
    log: EventLog,
    url: str,
    *,
    application: str,
    now: float,
    kinds: Iterable[str] | None = None,
    description: str = "",
    public_only: bool = False,
) -> tuple[Consumer, Secret]:
    """Register an endpoint that receives the events logged from now on; returns it and its
    secret (shown to the caller once, never again). ``public_only`` refuses a target on a
    non-public address (:func:`check_public_target`)."""
    if public_only:
        check_public_target(check_url(url))
    if len(store.consumers(application, KIND)) >= MAX_ENDPOINTS:
        raise TooManyEndpoints(f"at most {MAX_ENDPOINTS} webhook endpoints per application")
    secret = Secret.generate()
    consumer = Consumer(
        id="wh_" + secrets.token_urlsafe(12),
        kind=KIND,
        application=application,
        url=check_url(url),
        created_at=now,
        config={"description": description[:200]},
        credentials={"secrets": [{"secret": secret.reveal(), "expires": None}]},
        kinds=check_kinds(kinds),
        cursor=log_end(log),
        next_attempt=now,
    )
    store.add(consumer)
    return consumer, secret


def rotate_secret(
    store: ConsumerStore, consumer_id: str, *, now: float, grace: float = ROTATION_GRACE
) -> Secret:
    """A new secret; the current ones keep signing for ``grace`` seconds more (receivers
    that still hold only the old secret go on verifying), then drop out."""
    consumer = store.get(consumer_id)
    if consumer is None or consumer.kind != KIND:
        raise NotFound(f"no webhook {consumer_id}")
    secret = Secret.generate()
    until = now + grace
    kept: list[dict[str, Any]] = [
        {"secret": entry["secret"], "expires": min(entry.get("expires") or until, until)}
        for entry in consumer.credentials.get("secrets", [])
        if entry.get("expires") is None or entry["expires"] > now
    ]
    credentials = {"secrets": [{"secret": secret.reveal(), "expires": None}, *kept[:3]]}
    store.set_credentials(consumer_id, credentials)
    return secret
