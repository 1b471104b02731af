"""The stored session record and the read-only view handed to applications.

``SessionRecord`` is what a store keeps: an immutable tuple whose field order is the SQL
column order, so a row becomes a record with one C call. It holds hashes only, never a raw
token or secret. ``Session`` is the application-facing view: parsed data, scopes as a set, and
the token the client must switch to, when there is one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from sessionward.core.jose import b64encode
from sessionward.core.token import ID_BYTES, is_session_id
from sessionward.errors import DataTooLarge, InvalidArgument

if TYPE_CHECKING:
    from sessionward.core.risk_types import Verdict

__all__ = [
    "Session",
    "SessionRecord",
    "check_user_id",
    "encode_data",
    "encode_scopes",
    "internal_record",
    "revised",
    "session_id_of",
]


class SessionRecord(NamedTuple):
    """One session as stored. Times are seconds since the epoch; ``secret_hash`` and
    ``prev_secret_hash`` are verifiers (see ``core.token.verifier``); ``successor`` holds the
    links that lead a secret rotated out inside its grace window to the current one (see
    ``core.successor``), opaque to stores.

    A store also keeps a few records that are not sessions (:attr:`is_internal`): the
    replay records of spent proof ids and the identity-provider index. They are made by
    :func:`internal_record` alone."""

    id: str
    secret_hash: bytes
    prev_secret_hash: bytes | None
    grace_until: float
    generation: int
    user_id: str | None
    auth_level: int
    auth_time: float | None
    scopes: str
    data: str
    created_at: float
    rotated_at: float
    last_seen: float
    expires_at: float
    absolute_expires_at: float
    version: int
    context: str
    successor: bytes | None = None

    @property
    def is_internal(self) -> bool:
        """Whether this record is not a session but bookkeeping the library keeps in the
        session store (see :func:`internal_record`). Listings and counts of sessions skip it;
        stores that count in SQL test the same mark (``length(secret_hash) > 0``)."""
        return not self.secret_hash

    def __repr__(self) -> str:
        # Hashes are not secrets, but they are noise; keep reprs short and obviously safe.
        return (
            f"SessionRecord(id={self.id!r}, user_id={self.user_id!r}, "
            f"generation={self.generation}, version={self.version})"
        )


FIELDS = SessionRecord._fields
_new_record = tuple.__new__


def revised(
    record: SessionRecord, data: str, version: int, last_seen: float, expires_at: float
) -> SessionRecord:
    """``record`` after a write of its ``data``: the same as ``record._replace(data=data,
    version=version, last_seen=last_seen, expires_at=expires_at)``, built as one tuple (a
    named tuple's ``_replace`` matches keywords to fields in Python, several times slower on
    a path that writes every few requests)."""
    fields = (*record[:9], data, record[10], record[11], last_seen, expires_at, record[14])
    return _new_record(SessionRecord, (*fields, version, *record[16:]))


def internal_record(
    record_id: str, data: str, until: float, now: float, version: int = 1
) -> SessionRecord:
    """A record that is not a session, holding ``data`` (JSON text under a ``sessionward.``
    key) until ``until``.

    Its mark is the empty verifier: every session has a verifier of ``VERIFIER_BYTES``, and
    no presented secret ever matches an empty one (nor is there a previous secret or a
    successor link to match), so it can never be validated as a session. It has no user, so
    no per-user listing shows it, and it expires at ``until`` like any record, so every store
    purges it then."""
    return SessionRecord(
        id=record_id,
        secret_hash=b"",
        prev_secret_hash=None,
        grace_until=0.0,
        generation=0,
        user_id=None,
        auth_level=0,
        auth_time=None,
        scopes="",
        data=data,
        created_at=now,
        rotated_at=now,
        last_seen=now,
        expires_at=until,
        absolute_expires_at=until,
        version=version,
        context="[]",
    )


def internal_id(namespace: str, *parts: str) -> str:
    """The id of the internal record ``parts`` name in ``namespace``: their hash, in the
    session id alphabet and length (a session's id is random: no session can take it)."""
    digest = hashlib.sha256("\x00".join((f"sessionward {namespace}", *parts)).encode())
    return b64encode(digest.digest()[:ID_BYTES])


def internal_value(record: SessionRecord | None, key: str, now: float) -> object:
    """What a live internal record holds under ``key`` in its data; ``None`` for a missing,
    expired or damaged record, or one that is a session."""
    if record is None or record.expires_at <= now or not record.is_internal:
        return None
    try:
        loaded = json.loads(record.data)
    except ValueError:
        return None
    return loaded.get(key) if isinstance(loaded, dict) else None


def encode_data(data: Mapping[str, Any], limit: int) -> str:
    """JSON-encode session data, enforcing the byte limit and JSON-compatibility."""
    if not isinstance(data, Mapping):
        raise InvalidArgument("session data must be a mapping")
    if not data:
        return "{}"
    try:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"session data is not JSON-serialisable: {exc}") from None
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: JSON text no other system could read back
        raise InvalidArgument("session data contains text that is not valid Unicode") from None
    if size > limit:
        raise DataTooLarge(f"session data exceeds {limit} bytes")
    return text


def encode_scopes(scopes: object) -> str:
    """Scopes are stored as one space-separated, sorted string."""
    if isinstance(scopes, str):
        raise InvalidArgument("scopes must be a collection of strings, not one string")
    if not hasattr(scopes, "__iter__"):
        raise InvalidArgument("scopes must be a collection of strings")
    items = set()
    for scope in scopes:
        if not isinstance(scope, str) or not scope or not scope.isprintable() or " " in scope:
            raise InvalidArgument("each scope must be a non-empty printable string without spaces")
        items.add(scope)
    return " ".join(sorted(items))


class Session:
    """A validated (or freshly issued) session, as the application sees it.

    ``token`` is a raw token only when the client must switch to it: this call minted one
    (issue, rotation, renewal) or the client presented a secret rotated out inside its grace
    window and this is its successor. The adapter must then send it to the client. It is never
    shown by ``repr``. ``data`` is a private copy: change stored data with
    ``SessionManager.update_data``.

    ``_presented`` is the secret this session was authenticated (or minted) with, kept so a
    later rotation knows which secret it rotates from; it is never shown, stored or logged.

    ``risk`` is the risk engine's verdict on the request that validated it (``decision``
    ``allow`` or ``log``, ``score``, ``reasons``), when the manager scores requests and this
    one came with a context; ``None`` otherwise.
    """

    __slots__ = ("_data", "_presented", "record", "risk", "token")

    def __init__(
        self, record: SessionRecord, token: str | None = None, presented: bytes | None = None
    ) -> None:
        self.record = record
        self.token = token
        self._presented = presented
        self._data: dict[str, Any] | None = None
        self.risk: Verdict | None = None

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def user_id(self) -> str | None:
        return self.record.user_id

    @property
    def is_anonymous(self) -> bool:
        return self.record.user_id is None

    @property
    def auth_level(self) -> int:
        return self.record.auth_level

    @property
    def auth_time(self) -> float | None:
        return self.record.auth_time

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.record.scopes.split()) if self.record.scopes else frozenset()

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            loaded = json.loads(self.record.data)
            self._data = loaded if isinstance(loaded, dict) else {}
        return self._data

    @property
    def created_at(self) -> float:
        return self.record.created_at

    @property
    def last_seen(self) -> float:
        return self.record.last_seen

    @property
    def expires_at(self) -> float:
        return self.record.expires_at

    @property
    def absolute_expires_at(self) -> float:
        return self.record.absolute_expires_at

    @property
    def generation(self) -> int:
        return self.record.generation

    @property
    def version(self) -> int:
        return self.record.version

    @property
    def rotated(self) -> bool:
        """True when a new token (minted, or the successor of a rotated-out one) must reach
        the client."""
        return self.token is not None

    @property
    def context_history(self) -> list[dict[str, Any]]:
        loaded = json.loads(self.record.context) if self.record.context else []
        return loaded if isinstance(loaded, list) else []

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def __repr__(self) -> str:
        token = "<new token>" if self.token is not None else None
        return f"Session(id={self.id!r}, user_id={self.user_id!r}, token={token})"


def check_user_id(user_id: object) -> str:
    """``user_id`` itself if it is a user id the manager accepts, else ``InvalidArgument``."""
    if not isinstance(user_id, str) or not user_id or len(user_id) > 256:
        raise InvalidArgument("user_id must be a non-empty string of at most 256 characters")
    return user_id


def session_id_of(session: Session | str) -> str:
    """The public id of ``session`` (a ``Session`` or an id), checked for its shape."""
    session_id = session.id if isinstance(session, Session) else session
    if not is_session_id(session_id):
        raise InvalidArgument("not a session id")
    return session_id
