"""The link between a session and the identity provider's login it came from, and the small
index that finds a provider's session or user again.

An application that signs a user in through OpenID Connect passes the ID token's ``iss``,
``sid`` and ``sub`` at login (:class:`IdpLink`): the session keeps them in its data under
:data:`IDP_KEY` (a ``sessionward.`` key, so ``request.session`` never shows it and refuses to
write it), which every store already keeps. A logout token or a Shared Signals event names
``(iss, sid)`` or ``(iss, sub)``; to find the sessions without walking the store, each link
also writes one index record per name (:func:`index_record`): an ordinary record whose id is
derived from ``(iss, sid)`` or ``(iss, sub)``, whose data lists the user ids that hold a
session under that name, and which expires with the last of those sessions. A lookup is then
one ``get`` plus the per-user index every store has (``list_user``), filtered by the link.

Index records are internal records (:func:`~sessionward.core.record.internal_record`), like
the replay records of spent proof ids: never a session, skipped by every listing and count.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from sessionward.core.record import SessionRecord, internal_id, internal_record, internal_value
from sessionward.errors import InvalidArgument

__all__ = [
    "IDP_KEY",
    "INDEX_KEY",
    "IdpLink",
    "index_id",
    "index_record",
    "index_users",
    "link_of",
]

IDP_KEY: Final = "sessionward.idp"
INDEX_KEY: Final = "sessionward.idp-index"
#: User ids one index record lists (one per application sharing the provider, in practice).
MAX_INDEXED_USERS: Final = 16
_MAX: Final = 512
IndexKind = Literal["sid", "sub"]


@dataclass(frozen=True, slots=True)
class IdpLink:
    """The identity provider's ``iss`` and its session id ``sid`` and/or user id ``sub``
    (from the ID token of this login)."""

    iss: str
    sid: str | None = None
    sub: str | None = None

    def __post_init__(self) -> None:
        for name in ("iss", "sid", "sub"):
            value = getattr(self, name)
            if value is None and name != "iss":
                continue
            if not isinstance(value, str) or not value or len(value) > _MAX:
                raise InvalidArgument(f"idp {name} must be a string of 1 to {_MAX} characters")
        if self.sid is None and self.sub is None:
            raise InvalidArgument("an idp link needs a sid or a sub")

    def data(self) -> dict[str, Any]:
        """Session data carrying this link (merge it into ``issue(data=...)``)."""
        value = {"iss": self.iss, **({"sid": self.sid} if self.sid else {})}
        return {IDP_KEY: {**value, **({"sub": self.sub} if self.sub else {})}}

    def names(self) -> Iterator[tuple[IndexKind, str]]:
        if self.sid is not None:
            yield "sid", self.sid
        if self.sub is not None:
            yield "sub", self.sub


def link_of(data: Mapping[str, Any]) -> IdpLink | None:
    """The link kept in session ``data``, or ``None``."""
    value = data.get(IDP_KEY)
    if not isinstance(value, dict):
        return None
    try:
        return IdpLink(value.get("iss"), value.get("sid"), value.get("sub"))  # type: ignore[arg-type]
    except InvalidArgument:
        return None


def index_id(kind: IndexKind, iss: str, value: str) -> str:
    """The id of the index record of ``(iss, sid)`` or ``(iss, sub)``: in the session id
    alphabet and length, and in a namespace of its own."""
    return internal_id("idp-index", kind, iss, value)


def index_record(
    record_id: str, users: list[str], until: float, now: float, version: int = 1
) -> SessionRecord:
    """An index record listing ``users`` (newest last, at most ``MAX_INDEXED_USERS``) until
    ``until``."""
    kept = users[-MAX_INDEXED_USERS:]
    data = json.dumps({INDEX_KEY: kept}, separators=(",", ":"), ensure_ascii=False)
    return internal_record(record_id, data, until, now, version)


def index_users(record: SessionRecord | None, now: float) -> list[str]:
    """The user ids a live index record lists (none for a missing, expired or foreign one)."""
    users = internal_value(record, INDEX_KEY, now)
    if not isinstance(users, list):
        return []
    return [u for u in users if isinstance(u, str)]
