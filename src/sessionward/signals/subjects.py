"""The subjects of a Shared Signals stream (SSF 1.0 §8.1.3), as data: which Subject
Identifiers (RFC 9493) a receiver may add or remove, and whether an event's ``sub_id`` is
one a stream carries. Pure: no I/O, no clock.

A stream has a mode, fixed when it is created (the transmitter's ``default_subjects``):

* ``ALL``: every subject of the application is carried; the stream's list holds the subjects
  the receiver removed, and an event matching one of them is not sent. Adding a subject
  takes that same subject off the list.
* ``NONE``: no subject is carried until added; the list holds the subjects the receiver
  added, and only an event matching one of them is sent. Removing a subject takes that same
  subject off the list.

Accepted subjects: ``opaque`` (``id``), ``email`` (``email``), ``iss_sub`` (``iss``,
``sub``), and ``complex`` with ``user``, ``session``, ``tenant`` and ``device`` members of
those formats. Matching:

* a simple subject matches an event whose ``sub_id`` is the same subject or, for a complex
  ``sub_id``, has a member that is;
* a complex subject matches when the two share at least one member name and every member
  they share is the same (SSF 1.0: a member missing on either side does not count against
  the match);
* an ``email`` subject is the same as the ``user`` whose id is that address (compared
  case-insensitively: the service knows users by the ids the application gives, and many
  applications use the address);
* every event of a stream's application carries the ``tenant`` member ``{"format":
  "opaque", "id": <application>}`` for matching, whether its ``sub_id`` shows it or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from sessionward.errors import InvalidArgument

__all__ = [
    "ALL",
    "DEFAULT_SUBJECTS",
    "MAX_SUBJECTS",
    "NONE",
    "SubjectFilter",
    "added",
    "carries",
    "check_subject",
    "matches",
    "removed",
]

ALL: Final = "ALL"
NONE: Final = "NONE"
DEFAULT_SUBJECTS: Final = (ALL, NONE)
MAX_SUBJECTS: Final = 500  # entries in one stream's list
MAX_TEXT: Final = 256
MEMBERS: Final = ("user", "session", "tenant", "device")
_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "opaque": ("id",),
    "email": ("email",),
    "iss_sub": ("iss", "sub"),
}


def check_subject(value: object) -> dict[str, Any]:
    """``value`` as a subject a receiver may add or remove, or ``InvalidArgument``."""
    if not isinstance(value, dict):
        raise InvalidArgument("subject must be an object")
    if value.get("format") != "complex":
        return _simple(value, "subject")
    members = {k: v for k, v in value.items() if k != "format"}
    unknown = members.keys() - set(MEMBERS)
    if unknown:
        raise InvalidArgument(f"complex subject members are {', '.join(MEMBERS)}")
    if not members:
        raise InvalidArgument("a complex subject needs at least one member")
    return {"format": "complex", **{k: _simple(members[k], k) for k in MEMBERS if k in members}}


def _simple(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{name} must be an object")
    fmt = value.get("format")
    fields = _FIELDS.get(fmt) if isinstance(fmt, str) else None
    if fields is None:
        raise InvalidArgument(f"{name} format must be one of opaque, email, iss_sub, complex")
    if value.keys() != {"format", *fields}:
        raise InvalidArgument(f"a {fmt} subject has exactly: format, {', '.join(fields)}")
    for field in fields:
        text = value[field]
        if not isinstance(text, str) or not 0 < len(text) <= MAX_TEXT or not text.isprintable():
            raise InvalidArgument(f"{name}.{field} must be text of 1 to {MAX_TEXT} characters")
    if fmt == "email" and "@" not in value["email"][1:-1]:
        raise InvalidArgument(f"{name}.email must be an email address")
    out = {"format": fmt, **{field: value[field] for field in fields}}
    if fmt == "email":
        out["email"] = out["email"].casefold()
    return out


def added(mode: str, subjects: Sequence[Mapping[str, Any]], subject: dict[str, Any]) -> list[Any]:
    """The stream's list after the receiver adds ``subject`` (checked)."""
    return _put(subjects, subject) if mode == NONE else _drop(subjects, subject)


def removed(mode: str, subjects: Sequence[Mapping[str, Any]], subject: dict[str, Any]) -> list[Any]:
    """The stream's list after the receiver removes ``subject`` (checked)."""
    return _drop(subjects, subject) if mode == NONE else _put(subjects, subject)


def _put(subjects: Sequence[Mapping[str, Any]], subject: dict[str, Any]) -> list[Any]:
    if any(_equal(s, subject) for s in subjects):
        return list(subjects)
    if len(subjects) >= MAX_SUBJECTS:
        raise InvalidArgument(f"a stream lists at most {MAX_SUBJECTS} subjects")
    return [*subjects, subject]


def _drop(subjects: Sequence[Mapping[str, Any]], subject: dict[str, Any]) -> list[Any]:
    return [s for s in subjects if not _equal(s, subject)]


def _equal(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return dict(a) == dict(b)  # checked subjects: only their fields, addresses casefolded


def carries(
    mode: str, subjects: Sequence[Mapping[str, Any]], sub_id: Mapping[str, Any], application: str
) -> bool:
    """Whether a stream of ``mode`` with this list sends an event about ``sub_id``."""
    return SubjectFilter(mode, subjects, application).carries(sub_id)


def matches(subject: Mapping[str, Any], sub_id: Mapping[str, Any], application: str) -> bool:
    """Whether the receiver's ``subject`` matches an event's ``sub_id`` (module doc)."""
    return SubjectFilter(NONE, [subject], application).carries(sub_id)


class SubjectFilter:
    """A stream's mode and list, prepared once: an event costs a set lookup per member of its
    ``sub_id`` (simple subjects) and a pass over the complex subjects listed."""

    __slots__ = ("application", "complex", "mode", "simple")

    def __init__(self, mode: str, subjects: Sequence[Mapping[str, Any]], application: str) -> None:
        self.mode = mode
        self.application = application
        self.simple: set[tuple[str, ...]] = set()
        self.complex: list[dict[str, tuple[str, ...]]] = []
        for subject in subjects:
            if subject.get("format") == "complex":
                members = {k: _key(v) for k, v in subject.items() if k in MEMBERS}
                self.complex.append(members)
            else:
                self.simple.add(_key(subject))

    def carries(self, sub_id: Mapping[str, Any]) -> bool:
        hit = self._hit(sub_id)
        return hit if self.mode == NONE else not hit

    def _hit(self, sub_id: Mapping[str, Any]) -> bool:
        if not self.simple and not self.complex:
            return False
        keys = {
            role: _keys(member, role == "user")
            for role, member in _members(sub_id, self.application).items()
        }
        if self.simple and any(not self.simple.isdisjoint(k) for k in keys.values()):
            return True
        for members in self.complex:
            shared = [name for name in members if name in keys]
            if shared and all(members[name] in keys[name] for name in shared):
                return True
        return False


def _key(subject: Mapping[str, Any]) -> tuple[str, ...]:
    fmt = str(subject.get("format"))
    fields = _FIELDS.get(fmt)
    if fields is None:  # a format no receiver can list: it matches nothing listed
        return ("?", repr(sorted(subject.items())))
    return (fmt, *(str(subject.get(field)) for field in fields))


def _keys(member: Mapping[str, Any], user: bool) -> set[tuple[str, ...]]:
    """An event member's keys: its own, and for a user named by an address, that address as
    an ``email`` subject."""
    out = {_key(member)}
    sub = member.get("sub")
    if user and member.get("format") == "iss_sub" and isinstance(sub, str) and "@" in sub:
        out.add(("email", sub.casefold()))
    return out


def _members(sub_id: Mapping[str, Any], application: str) -> dict[str, Mapping[str, Any]]:
    if sub_id.get("format") == "complex":
        out = {k: v for k, v in sub_id.items() if k in MEMBERS and isinstance(v, Mapping)}
    elif sub_id.get("format") in ("iss_sub", "email"):
        out = {"user": sub_id}  # a simple sub_id of ours names the user (credential-change)
    else:
        out = {"": sub_id}
    out.setdefault("tenant", {"format": "opaque", "id": application})
    return out
