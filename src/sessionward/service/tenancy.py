"""Applications: the namespaces that API keys and sessions belong to.

Every API key belongs to one application (``default`` unless created for another). A session
the API issues belongs to its key's application and says so in fields every store already
keeps: the reserved data key ``_sessionward_app`` (first in the data, so the check on every
validate reads a prefix, not the whole JSON) and, for a signed-in user, the stored user id
``<application>/<user>``, so that the per-user index, the session cap and logout-everywhere
of one application never reach another application's user of the same name. Clients never
see either: the API strips both from its answers.

Each application has a manager of its own whose ``admit`` check refuses every record of
another application, so a token of application B presented with a key of application A is
rejected as ``refused``, untouched, and the answer is the one an unknown token gets.

The service's own pages live in reserved applications no API key can name (``sessionward:``
names): the demo shop and the admin console. Their sessions carry no data mark and user ids
without ``/`` (account names cannot hold one), which an API application's manager never
admits; their managers admit no API session.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Final

from sessionward.core.record import SessionRecord
from sessionward.errors import InvalidArgument

__all__ = [
    "ADMIN_APP",
    "APPLICATION_PATTERN",
    "APP_KEY",
    "DEFAULT_APP",
    "DEMO_APP",
    "MAX_USER_ID",
    "RESERVED_DATA_PREFIX",
    "admits",
    "application_of_user",
    "check_application",
    "public_data",
    "public_user",
    "stored_user",
]

APP_KEY: Final = "_sessionward_app"
#: Data keys the service keeps for itself; API clients may neither set nor unset them.
RESERVED_DATA_PREFIX: Final = "_sessionward"
DEFAULT_APP: Final = "default"
DEMO_APP: Final = "sessionward:demo"
ADMIN_APP: Final = "sessionward:admin"
#: An application's name (an API key's, a stream's ``aud``).
APPLICATION_PATTERN: Final = "[a-z0-9][a-z0-9_.-]{0,62}"
_NAME = re.compile(APPLICATION_PATTERN)
#: A client's user id: with ``<application>/`` before it, within the manager's 256.
MAX_USER_ID: Final = 192
_MARK: Final = f'"{APP_KEY}":'
_ADMIN_USERS: Final = "sessionward:admin:"  # runtime.ADMIN_USER_PREFIX (runtime imports us)


def check_application(name: object) -> str:
    """``name`` if it may name an API key's application, else ``InvalidArgument``."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise InvalidArgument(
            "application must be 1 to 63 characters a-z, 0-9, '_', '.', '-', starting with"
            " a letter or digit"
        )
    if name.startswith("sessionward"):
        raise InvalidArgument("application names starting 'sessionward' are reserved")
    return name


def stored_user(application: str, user_id: str) -> str:
    return f"{application}/{user_id}"


def public_user(stored: str | None) -> str | None:
    """The user id an API client gave, from the stored ``<application>/<user>``."""
    return None if stored is None else stored.partition("/")[2]


def public_data(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != APP_KEY}


def application_of_user(user_id: str | None) -> str | None:
    """The application a stored user id names (``None`` for an anonymous session)."""
    if user_id is None:
        return None
    if "/" in user_id:
        return user_id.partition("/")[0]
    return ADMIN_APP if user_id.startswith(_ADMIN_USERS) else DEMO_APP


def _stamp(data: str) -> str | None:
    """The application stamped in a record's data text, if any."""
    if _MARK not in data:
        return None  # the quote before the key cannot appear unescaped inside a value
    try:
        value = json.loads(data).get(APP_KEY)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def admits(application: str) -> Callable[[SessionRecord], bool]:
    """The ``admit`` check of ``application``'s manager."""
    if application in (DEMO_APP, ADMIN_APP):
        return _admits_own_page
    prefix = f'{{"{APP_KEY}":"{application}"'  # the stamp comes first in every API session
    user_prefix = application + "/"

    def admit(record: SessionRecord) -> bool:
        data = record.data
        if data.startswith(prefix) and data[len(prefix) : len(prefix) + 1] in (",", "}"):
            stamped: str | None = application
        else:
            stamped = _stamp(data)
        user_id = record.user_id
        return stamped == application and (user_id is None or user_id.startswith(user_prefix))

    return admit


def _admits_own_page(record: SessionRecord) -> bool:
    """The demo shop's and admin console's sessions: no API stamp, no API user id (a JWT
    refresh family carries an API user id too). Which page's account a signed-in session
    holds, each page checks itself by the user id's prefix."""
    user_id = record.user_id
    return _MARK not in record.data and (user_id is None or "/" not in user_id)
