"""SSF event streams (SSF 1.0 §8.1): their configuration and status, as data.

A :class:`Stream` belongs to one application (the API key's that created it) and carries
only that application's events. ``iss``, ``aud``, ``events_supported`` and
``events_delivered`` are the transmitter's; ``events_requested``, ``delivery`` and
``description`` the receiver's (:func:`receiver_fields` checks them). A stream starts
receiving at ``since`` (its creation, or the moment it was re-enabled after ``disabled``):
older events are not sent on it. Pure: no I/O, no clock.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import urlsplit

from sessionward.errors import InvalidArgument
from sessionward.signals.caep import EVENTS_SUPPORTED

__all__ = [
    "POLL",
    "PUSH",
    "STATUSES",
    "Stream",
    "check_push_url",
    "new_stream",
    "receiver_fields",
]

PUSH: Final = "urn:ietf:rfc:8935"
POLL: Final = "urn:ietf:rfc:8936"
STATUSES: Final = ("enabled", "paused", "disabled")
MAX_DESCRIPTION: Final = 256
#: A URL every browser, proxy and server handles.
MAX_URL: Final = 2048
#: A bearer token or a Basic credential, with room to spare for a signed JWT.
MAX_AUTHORIZATION: Final = 4096
#: Event types a stream may request: the CAEP, RISC and SSF types defined today are fewer than
#: 30, each a URI of under 100 characters; a receiver may ask for types this transmitter lacks.
MAX_EVENTS_REQUESTED: Final = 64
MAX_EVENT_TYPE: Final = 256
#: An event type is a URI (RFC 3986): its characters, no space, quote or backslash.
EVENT_TYPE_PATTERN: Final = r"[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]" + f"{{1,{MAX_EVENT_TYPE}}}"
_EVENT_TYPE: Final = re.compile(EVENT_TYPE_PATTERN)
_PRINTABLE_ASCII: Final = re.compile("[ -~]*")
_URL_CHARS: Final = re.compile("[!-~]*")
_RECEIVER_FIELDS: Final = frozenset({"events_requested", "delivery", "description"})
_TRANSMITTER_FIELDS: Final = frozenset(
    {"iss", "aud", "events_supported", "events_delivered", "min_verification_interval"}
)


@dataclass(frozen=True, slots=True)
class Stream:
    """One stream. ``authorization`` is the receiver's ``authorization_header`` for push:
    a credential of theirs, kept to send back and never shown in answers or logs."""

    stream_id: str
    application: str
    iss: str
    aud: str
    method: str
    endpoint_url: str
    events_requested: tuple[str, ...] | None
    description: str | None
    status: str
    reason: str | None
    created_at: float
    since: float
    authorization: str | None = field(default=None, repr=False)
    min_verification_interval: int = 10

    @property
    def events_delivered(self) -> tuple[str, ...]:
        if self.events_requested is None:
            return EVENTS_SUPPORTED
        return tuple(e for e in EVENTS_SUPPORTED if e in self.events_requested)

    def configuration(self) -> dict[str, Any]:
        """The stream configuration object of SSF 1.0 §8.1.1 (no credential in it)."""
        out: dict[str, Any] = {
            "stream_id": self.stream_id,
            "iss": self.iss,
            "aud": self.aud,
            "delivery": {"method": self.method, "endpoint_url": self.endpoint_url},
            "events_supported": list(EVENTS_SUPPORTED),
        }
        if self.events_requested is not None:
            out["events_requested"] = list(self.events_requested)
        out["events_delivered"] = list(self.events_delivered)
        out["min_verification_interval"] = self.min_verification_interval
        if self.description is not None:
            out["description"] = self.description
        return out

    def status_object(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stream_id": self.stream_id, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        return out

    def with_status(self, status: str, reason: str | None, now: float) -> Stream:
        """The stream with a new status; leaving ``disabled`` starts afresh at ``now`` (a
        disabled stream holds nothing for later)."""
        if status not in STATUSES:
            raise InvalidArgument(f"status must be one of {', '.join(STATUSES)}")
        since = now if self.status == "disabled" and status != "disabled" else self.since
        return replace(self, status=status, reason=reason, since=since)


def new_stream(
    fields: Mapping[str, Any],
    *,
    application: str,
    issuer: str,
    audience: str,
    poll_url: str,
    now: float,
    allow_http: bool = False,
) -> Stream:
    """A stream from a create request's receiver fields (``delivery`` absent: poll)."""
    unknown = fields.keys() - _RECEIVER_FIELDS
    if unknown:
        raise InvalidArgument(f"unknown stream fields: {', '.join(sorted(unknown))}")
    _no_nulls(fields)
    stream_id = secrets.token_hex(16)
    method, endpoint, authorization = _delivery(
        fields.get("delivery"), poll_url + stream_id, allow_http
    )
    return Stream(
        stream_id=stream_id,
        application=application,
        iss=issuer,
        aud=audience,
        method=method,
        endpoint_url=endpoint,
        events_requested=_requested(fields.get("events_requested")),
        description=_description(fields.get("description")),
        status="enabled",
        reason=None,
        created_at=now,
        since=now,
        authorization=authorization,
    )


def receiver_fields(
    stream: Stream,
    body: Mapping[str, Any],
    *,
    poll_url: str,
    replace_all: bool,
    allow_http: bool = False,
) -> Stream:
    """``stream`` updated by a PATCH (``replace_all=False``: only the fields given) or a PUT
    (missing receiver fields are removed). Transmitter fields may be present but must
    match; ``stream_id`` cannot change."""
    current = stream.configuration()
    for name in _TRANSMITTER_FIELDS & body.keys():
        if body[name] != current.get(name):
            raise InvalidArgument(f"{name} is set by the transmitter and cannot change")
    unknown = body.keys() - _RECEIVER_FIELDS - _TRANSMITTER_FIELDS - {"stream_id"}
    if unknown:
        raise InvalidArgument(f"unknown stream fields: {', '.join(sorted(unknown))}")
    _no_nulls(body)
    out = stream
    if "delivery" in body or replace_all:
        method, endpoint, authorization = _delivery(
            body.get("delivery"), poll_url + stream.stream_id, allow_http
        )
        out = replace(out, method=method, endpoint_url=endpoint, authorization=authorization)
    if "events_requested" in body or replace_all:
        out = replace(out, events_requested=_requested(body.get("events_requested")))
    if "description" in body or replace_all:
        out = replace(out, description=_description(body.get("description")))
    return out


def _delivery(value: object, poll_url: str, allow_http: bool) -> tuple[str, str, str | None]:
    if value is None:
        return POLL, poll_url, None
    if not isinstance(value, dict):
        raise InvalidArgument("delivery must be an object")
    unknown = value.keys() - {"method", "endpoint_url", "authorization_header"}
    if unknown:
        raise InvalidArgument(f"unknown delivery fields: {', '.join(sorted(unknown))}")
    method = value.get("method", POLL)
    authorization = value.get("authorization_header")
    _check_text(value, "endpoint_url", MAX_URL, _URL_CHARS, "a URL")
    _check_text(value, "authorization_header", MAX_AUTHORIZATION, _PRINTABLE_ASCII, "text")
    if method == POLL:  # the poll endpoint is the transmitter's: a receiver's is ignored
        return POLL, poll_url, None
    if method != PUSH:
        raise InvalidArgument(f"delivery method must be {PUSH} (push) or {POLL} (poll)")
    url = check_push_url(value.get("endpoint_url"), allow_http=allow_http)
    return PUSH, url, authorization


def _check_text(
    value: Mapping[str, Any], name: str, limit: int, chars: re.Pattern[str], what: str
) -> None:
    """Bounded whatever the method, a poll stream's ignored ones too."""
    if name not in value:
        return
    text = value[name]
    if not isinstance(text, str) or len(text) > limit or chars.fullmatch(text) is None:
        kind = "printable ASCII" if chars is _PRINTABLE_ASCII else "ASCII without spaces"
        raise InvalidArgument(f"{name} must be {what}: {kind}, at most {limit} characters")


def check_push_url(url: object, *, allow_http: bool = False) -> str:
    """A push endpoint: an ``https`` URL (``http`` only to a loopback host when
    ``allow_http``), no credentials in it, at most 2,048 characters."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL or not url.isprintable():
        raise InvalidArgument("endpoint_url must be a URL")
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None or not parts.hostname:
        raise InvalidArgument("endpoint_url must name a host and carry no credentials")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and allow_http and _loopback(parts.hostname):
        return url
    raise InvalidArgument("endpoint_url must use https")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _no_nulls(fields: Mapping[str, Any]) -> None:
    for name in ("events_requested", "description"):
        if name in fields and fields[name] is None:
            raise InvalidArgument(f"{name} must not be null: leave it out")


def _requested(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > MAX_EVENTS_REQUESTED
        or not all(isinstance(v, str) and _EVENT_TYPE.fullmatch(v) for v in value)
    ):
        raise InvalidArgument(
            f"events_requested must list at most {MAX_EVENTS_REQUESTED} event type URIs of"
            f" at most {MAX_EVENT_TYPE} characters"
        )
    return tuple(dict.fromkeys(value))


def _description(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise InvalidArgument(f"description must be text of at most {MAX_DESCRIPTION}")
    return value
