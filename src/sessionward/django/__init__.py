"""A Django session engine backed by sessionward: ``SESSION_ENGINE = "sessionward.django"``.

``request.session``, ``auth.login`` (``cycle_key``), ``auth.logout`` (``flush``) and everything
built on Django's session API work unchanged. Underneath, the session key Django puts in the
cookie is a sessionward token: only its hash is stored, idle and absolute deadlines and renewal
follow the sessionward ``Policy``, and lifecycle events are emitted.

Settings:

* ``SESSIONWARD_MANAGER``: dotted path to a sync ``SessionManager`` (or a callable returning
  one). Default: a ``SQLiteStore`` at ``SESSIONWARD_SQLITE_PATH`` (default
  ``BASE_DIR / "sessionward.sqlite3"``).

When the session's data gains ``_auth_user_id`` (``auth.login``), the next save issues the
session to that user with a fresh token, so "log out everywhere" (``revoke_user``) and the
concurrent-session cap work. See docs/django.md; for sessions bound to the browser's key
(``SESSIONWARD_DEVICE_BINDING``), :mod:`sessionward.django.binding` and docs/binding.md; for
hijack scoring (a manager with ``risk=RiskAssessor()``), :mod:`sessionward.django.risk` and
docs/risk.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from sessionward.core import binding as states
from sessionward.core import token as tokens
from sessionward.core.events import RevokeReason
from sessionward.core.record import Session
from sessionward.django import binding, risk
from sessionward.errors import InvalidToken, RiskChallenge
from sessionward.manager._sync.manager import SessionManager
from sessionward.stores._sync.sqlite import SQLiteStore

__all__ = ["SessionStore", "get_manager"]

#: Private data key holding the deadline of a custom ``set_expiry`` (Django's own expiry).
_DJANGO_EXPIRES = "sessionward.django_expires"
#: Private data key of an anonymous session started on a challenged request: the public id
#: of the challenged session, ended when its owner signs in on this browser.
_CHALLENGED = "sessionward.challenged"


@functools.cache
def get_manager() -> SessionManager:
    """The configured manager (cached; reset when the settings change in tests)."""
    configured = getattr(settings, "SESSIONWARD_MANAGER", None)
    if configured is None:
        default = Path(getattr(settings, "BASE_DIR", ".")) / "sessionward.sqlite3"
        return SessionManager(
            SQLiteStore(str(getattr(settings, "SESSIONWARD_SQLITE_PATH", default)))
        )
    found = import_string(configured) if isinstance(configured, str) else configured
    manager = found if isinstance(found, SessionManager) else cast(Callable[[], Any], found)()
    if not isinstance(manager, SessionManager):
        raise TypeError("SESSIONWARD_MANAGER must name a sessionward.SessionManager")
    return manager


def _reset_manager(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("SESSIONWARD_"):
        get_manager.cache_clear()


setting_changed.connect(_reset_manager)


def _challenged_here() -> RiskChallenge | None:
    checked = risk.CURRENT.get()
    return None if checked is None else checked.challenge


def _user_of(data: dict[str, Any]) -> str | None:
    user_id = data.get("_auth_user_id")  # what django.contrib.auth.login stores
    return None if user_id is None else str(user_id)


class SessionStore(SessionBase):  # type: ignore[misc]  # Django ships no types
    """Django's session API over a sessionward ``SessionManager``."""

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self._sw: Session | None = None

    @property
    def manager(self) -> SessionManager:
        return get_manager()

    def _authentic(self, session_key: str | None) -> Session | None:
        """The live session ``session_key`` authenticates, without touching it."""
        try:
            parsed = tokens.parse(session_key)
        except InvalidToken:
            return None
        session = self.manager.get(parsed.session_id)
        if session is None or not tokens.secret_matches(parsed.secret, session.record.secret_hash):
            return None
        return session

    def authenticated(self) -> Session | None:
        """The live session this store's current key authenticates, not checked for a bound
        cookie and never renewed (its response sets no session cookie): what the binding
        endpoints work on."""
        return self._authentic(self.session_key)

    def exists(self, session_key: str | None) -> bool:
        return self._authentic(session_key) is not None

    def load(self) -> dict[str, Any]:
        self._sw = None
        if self.session_key is None:
            return {}
        checked = risk.CURRENT.get()
        try:
            if checked is not None and checked.key == self.session_key:
                session = self._checked(checked)
            else:
                context = None if checked is None else checked.context
                session = self.manager.validate(self.session_key, context=context)
        except InvalidToken:
            self._session_key = None
            return {}
        except RiskChallenge:
            # Served to no one, the cookie kept: the session survives for its owner.
            return {}
        data = dict(session.data)
        data.pop(states.BINDING_KEY, None)  # the engine's own; views never see it
        deadline = data.pop(_DJANGO_EXPIRES, None)
        if isinstance(deadline, int | float) and self.manager.clock.now() >= deadline:
            self.manager.revoke(session, reason=RevokeReason.EXPIRED)
            self._session_key = None
            return {}
        if binding.admit(session) is None:
            return {}  # bound, and this request proves no key: serve nothing, keep the cookie
        self._sw = session
        if session.token is not None:  # renewed: the new token must reach the cookie
            self._session_key = session.token
            self.modified = True
        return data

    @staticmethod
    def _checked(checked: risk.Checked) -> Session:
        """What the middleware's validation of this very key gave."""
        if checked.challenge is not None:
            raise checked.challenge
        if checked.error is not None or checked.session is None:
            raise checked.error or InvalidToken()
        return checked.session

    def create(self) -> None:
        data = self._get_session(no_load=True)
        challenged = _challenged_here()
        if challenged is not None:  # remember it: the owner's sign-in will end it
            data = {**data, _CHALLENGED: challenged.session_id}
        self._issue(_user_of(data), data, previous=None)
        self.modified = True

    def _issue(self, user_id: str | None, data: dict[str, Any], previous: Session | None) -> None:
        payload = self._payload(data)
        marked = None
        if user_id is not None:
            payload = binding.offer(payload, self.manager.clock.now())
            marked = payload.pop(_CHALLENGED, None)
        checked = risk.CURRENT.get()
        context = None if checked is None else checked.context
        session = self.manager.issue(user_id, data=payload, previous=previous, context=context)
        self._sw = session
        self._session_key = session.token
        if user_id is not None:  # after the issue: it takes the user's history from it
            self._end_challenged(user_id, marked)

    def _end_challenged(self, user_id: str, marked: object) -> None:
        """The owner signed in again on the browser of a challenged session: end it (its
        token may be a thief's copy); another user's sign-in leaves it alone."""
        challenged = _challenged_here()
        session_id = challenged.session_id if challenged is not None else marked
        if not isinstance(session_id, str) or not tokens.is_session_id(session_id):
            return
        found = self.manager.get(session_id)
        if found is not None and found.user_id == user_id:
            self.manager.revoke(found, reason=RevokeReason.NEW_LOGIN)

    def _payload(self, data: dict[str, Any]) -> dict[str, Any]:
        if "_session_expiry" not in data:
            return dict(data)
        return {**data, _DJANGO_EXPIRES: self.manager.clock.now() + self.get_expiry_age()}

    def save(self, must_create: bool = False) -> None:
        if self.session_key is not None and must_create:
            raise CreateError  # sessionward mints keys; it never adopts a chosen one
        data = self._get_session(no_load=must_create)
        if self.session_key is None or self._sw is None:
            return self.create()
        user_id = _user_of(data)
        if user_id is not None and user_id != self._sw.user_id:
            return self._issue(user_id, data, previous=self._sw)  # login: new token
        payload = self._payload(data)
        try:
            self._sw = self.manager.update_data(
                self._sw, lambda stored: binding.keep_binding(stored, payload)
            )
        except InvalidToken:
            raise UpdateError from None  # deleted meanwhile (a logout elsewhere)

    def delete(self, session_key: str | None = None) -> None:
        key = session_key if session_key is not None else self.session_key
        checked = risk.CURRENT.get()
        if checked is not None and checked.challenge is not None and key == checked.key:
            return  # a challenged session ends only at its owner's sign-in (``_issue``)
        session = self._authentic(key)
        if session is not None:
            self.manager.revoke(session)

    @classmethod
    def clear_expired(cls) -> None:
        get_manager().purge_expired()
