"""The mapping behind ``request.session`` (Starlette, FastAPI) and ``flask.session``.

A ``dict`` subclass, as the frameworks' own session objects are (so ``JSONResponse`` and
``jsonify`` take it), that tracks what the application does to it and does no I/O itself:

* **decoded lazily** from the session the adapter already validated, on first use: when the
  framework hands it out (``request.session`` calls :meth:`mark_accessed`; ``flask.session``
  sets :attr:`accessed`) or on any method call. A request that never touches it decodes
  nothing. (A serializer reading a ``dict``'s C storage directly, such as ``json.dumps`` on
  ``scope["session"]`` in a raw ASGI app, sees it empty until then.)
* **written back only when modified**, key by key, by the request's handle before the
  response starts (:meth:`~sessionward.web.asgi.AsyncSessionHandle.commit`): concurrent
  requests that change different keys do not undo each other. A session is created only by
  the first write; ``clear()`` ends the session (server-side revoke, cookie expired), and
  whatever is stored after it goes into a new one.
* ``accessed`` / ``modified`` follow Starlette's ``Session`` (``pop`` of a missing key, or
  ``setdefault`` of a present one, modifies nothing). Changing a value in place
  (``session["cart"].append(x)``) is not seen: assign it again, or set ``modified = True``.
* ``permanent``: ``True`` asks for a persistent "remember me" cookie (the cookie policy's
  ``remember_max_age`` caps it), as ``flask.session.permanent`` does.

Keys starting with ``sessionward.`` are the adapters' own: hidden here and refused on write.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sessionward.core.record import Session
from sessionward.errors import InvalidArgument
from sessionward.web._core import REMEMBER_KEY

__all__ = ["RESERVED_PREFIX", "SessionMapping"]

RESERVED_PREFIX = "sessionward."
Source = Callable[[], Session | None]


@dataclass(frozen=True, slots=True)
class Changes:
    """What a request did to its mapping, ready for ``SessionManager.update_data``."""

    values: dict[str, Any]
    deleted: frozenset[str]
    whole: bool
    permanent: bool | None

    def apply(self, data: dict[str, Any]) -> None:
        """Apply to the stored data (called again on fresh data after a lost race)."""
        if self.whole:
            for key in [k for k in data if not k.startswith(RESERVED_PREFIX)]:
                del data[key]
        for key in self.deleted:
            data.pop(key, None)
        data.update(self.values)
        if self.permanent:
            data[REMEMBER_KEY] = True
        elif self.permanent is False:
            data.pop(REMEMBER_KEY, None)


def _check(key: object) -> None:
    if isinstance(key, str) and key.startswith(RESERVED_PREFIX):
        raise InvalidArgument(f"session keys starting with {RESERVED_PREFIX!r} are reserved")


class SessionMapping(dict[str, Any]):
    """See the module docstring. Built by the adapters; ``SessionMapping(data)`` gives a
    detached one (nothing to load, nothing written anywhere)."""

    def __init__(self, initial: Mapping[str, Any] | None = None) -> None:
        super().__init__(initial or {})
        self._source: Source | None = None
        self._reserved: dict[str, Any] = {}
        self._accessed = False
        self._modified = False
        self._pending = False  # changes not yet written back (``modified`` stays set after)
        self._set: dict[str, None] = {}  # an ordered set: the stored order is the app's
        self._deleted: set[str] = set()
        self._cleared = False
        self._whole = False
        self._permanent: bool | None = None
        self._stored = False  # whether it was loaded from a session
        #: What ``permanent`` says before a session exists (the adapter's remember-by-default).
        self.default_permanent = False

    # -- loading -------------------------------------------------------------------------------

    def _bind(self, source: Source) -> None:
        """Load from ``source()`` (the request's current session) on first use."""
        self._source = source

    def _load(self) -> None:
        source, self._source = self._source, None
        if source is None:
            return
        session = source()
        if session is None:
            return
        data = self._decode(session)
        self._stored = True
        self._reserved = {k: data.pop(k) for k in list(data) if k.startswith(RESERVED_PREFIX)}
        dict.update(self, data)

    def _decode(self, session: Session) -> dict[str, Any]:
        # From the stored text, not ``session.data``: values changed in place here must not
        # show through the handle's ``Session`` before they are written back.
        data = json.loads(session.record.data)
        return data if isinstance(data, dict) else {}

    def _encode(self, value: Any) -> Any:
        return value

    # -- tracking ------------------------------------------------------------------------------

    @property
    def accessed(self) -> bool:
        return self._accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        if value:
            self._load()
        self._accessed = bool(value)

    @property
    def modified(self) -> bool:
        return self._modified

    @modified.setter
    def modified(self, value: bool) -> None:
        """Setting it by hand (after changing a value in place) writes every key back."""
        if value:
            self._load()
            self._whole = True
            self._accessed = True
        self._modified = self._pending = bool(value)

    def mark_accessed(self) -> None:
        self.accessed = True

    def mark_modified(self) -> None:
        self._accessed = self._modified = self._pending = True

    def _wrote(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._set[key] = None
            self._deleted.discard(key)
        self.mark_modified()

    def _dropped(self, key: str) -> None:
        self._deleted.add(key)
        self._set.pop(key, None)
        self.mark_modified()

    @property
    def permanent(self) -> bool:
        """Whether the session's cookie persists ("remember me")."""
        if self._permanent is not None:
            return self._permanent
        self._load()
        if not self._stored:
            return self.default_permanent
        return self._reserved.get(REMEMBER_KEY) is True

    @permanent.setter
    def permanent(self, value: bool) -> None:
        if bool(value) != self.permanent:
            self.mark_modified()
        self._permanent = bool(value)

    # -- reading -------------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        self._load()
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._load()
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._load()
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self._load()
        return super().__iter__()

    def __reversed__(self) -> Iterator[str]:
        self._load()
        return super().__reversed__()

    def __len__(self) -> int:
        self._load()
        return super().__len__()

    def keys(self) -> Any:
        self._load()
        return super().keys()

    def values(self) -> Any:
        self._load()
        return super().values()

    def items(self) -> Any:
        self._load()
        return super().items()

    def copy(self) -> dict[str, Any]:
        self._load()
        return dict(super().items())

    def __eq__(self, other: object) -> bool:
        self._load()
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        self._load()
        return super().__ne__(other)

    __hash__ = None

    def __or__(self, other: Any) -> Any:
        self._load()
        return dict(super().items()) | other

    def __ror__(self, other: Any) -> Any:
        self._load()
        return other | dict(super().items())

    def __repr__(self) -> str:
        self._load()
        return f"{type(self).__name__}({super().__repr__()})"

    # -- writing -------------------------------------------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        _check(key)
        self._load()
        super().__setitem__(key, value)
        self._wrote((key,))

    def __delitem__(self, key: str) -> None:
        self._load()
        super().__delitem__(key)
        self._dropped(key)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._load()
        if key not in self:
            self[key] = default
        return super().__getitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self._load()
        if super().__contains__(key):
            value = super().pop(key)
            self._dropped(key)
            return value
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        self._load()
        item = super().popitem()
        self._dropped(item[0])
        return item

    def update(self, *args: Any, **kwargs: Any) -> None:
        changes = dict(*args, **kwargs)
        for key in changes:
            _check(key)
        self._load()
        super().update(changes)
        self._wrote(changes)

    def __ior__(self, other: Any) -> SessionMapping:  # type: ignore[override]
        self.update(other)
        return self

    def clear(self) -> None:
        """Empty the mapping and end the session (as a logout does) when the response starts;
        anything stored afterwards goes into a new session."""
        self._source = None
        super().clear()
        self._reserved, self._stored = {}, False
        self._set.clear()
        self._deleted.clear()
        self._cleared = True
        self.mark_modified()

    # -- for the handle ------------------------------------------------------------------------

    def _take_clear(self) -> bool:
        """Whether ``clear()`` was called since the last look; what remains is then written
        back whole."""
        if not self._cleared:
            return False
        self._cleared, self._whole = False, True
        return True

    def _take_changes(self) -> Changes | None:
        """The pending changes (``None`` when unmodified); tracking starts afresh."""
        if not self._pending:
            return None
        self._load()
        keys = list(dict.keys(self) if self._whole else self._set)
        changes = Changes(
            values={k: self._encode(dict.__getitem__(self, k)) for k in keys},
            deleted=frozenset(self._deleted),
            whole=self._whole,
            permanent=self._permanent,
        )
        if self._permanent is not None:  # what the stored data will say from now on
            self._reserved[REMEMBER_KEY] = self._permanent
            self._stored = True
        self._set.clear()
        self._deleted.clear()
        self._whole = self._pending = False
        self._permanent = None
        return changes

    def _reset(self) -> None:
        """The session ended (logout): start empty, with nothing pending."""
        self._source = None
        super().clear()
        self._reserved = {}
        self._stored = False
        self._set.clear()
        self._deleted.clear()
        self._cleared = self._whole = self._pending = False
        self._permanent = None

    def _refresh(self, source: Source) -> None:
        """The session's data changed under the mapping (``handle.update_data``): reload on
        next use unless the application already changed the mapping."""
        if not self._pending:
            super().clear()
            self._reserved, self._stored = {}, False
            self._source = source
