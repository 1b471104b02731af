"""Export and import: Netscape ``cookies.txt``, Playwright storage state, and JSON.

* ``cookies.txt``: the Netscape format curl (``-b``/``-c``), wget and browser extensions read
  and write. Seven tab-separated fields per cookie; ``#HttpOnly_`` in front of the domain
  marks an HttpOnly cookie; expiry ``0`` is a browser-session cookie. It has no SameSite
  field: cookies read from it are ``Lax``, as browsers treat a cookie that names none.
  It holds no localStorage.
* ``storage-state``: what Playwright's ``BrowserContext.storage_state()`` returns and
  ``new_context(storage_state=...)`` takes (cookies and each origin's localStorage).
* ``json``: the whole profile, settings included (the profile file itself).

:func:`dumps` writes a profile in a format; :func:`loads` reads a text into an
:class:`Imported` (the format is recognised from the content when not given).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from sessionward.audit.profiles._errors import ProfileError
from sessionward.audit.profiles.model import Cookie, ProfileData, Settings, normal_origin

__all__ = [
    "FORMATS",
    "Format",
    "Imported",
    "cookie_from_state",
    "cookie_to_state",
    "detect",
    "dumps",
    "loads",
]

Format = Literal["cookies.txt", "storage-state", "json"]
FORMATS: Final[tuple[Format, ...]] = get_args(Format)
_NETSCAPE_HEADER: Final = "# Netscape HTTP Cookie File"
_HTTP_ONLY: Final = "#HttpOnly_"
_FLAGS: Final = {"TRUE": True, "FALSE": False}


@dataclass(slots=True)
class Imported:
    """What a file holds. ``settings`` only from a JSON export; ``ignored`` says what the
    file held that a profile does not keep (IndexedDB, ...)."""

    format: Format
    cookies: list[Cookie] = field(default_factory=list)
    local_storage: dict[str, dict[str, str]] = field(default_factory=dict)
    settings: Settings | None = None
    ignored: list[str] = field(default_factory=list)


def dumps(data: ProfileData, fmt: Format) -> str:
    """``data`` written in ``fmt`` (raw cookie values: write it where only you can read)."""
    if fmt == "cookies.txt":
        return _netscape_dumps(data.cookies)
    if fmt == "storage-state":
        return json.dumps(_storage_state(data), indent=2) + "\n"
    if fmt == "json":
        return json.dumps(data.to_json(), indent=2) + "\n"
    raise ProfileError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")


def detect(text: str) -> Format:
    """The format of an exported text, from its content."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            item = json.loads(text)
        except json.JSONDecodeError:
            raise ProfileError("the file is not valid JSON") from None
        if isinstance(item, dict) and "format" in item:
            return "json"
        if isinstance(item, dict) and ("cookies" in item or "origins" in item):
            return "storage-state"
        raise ProfileError("a JSON file that is neither a profile export nor a storage state")
    if stripped == "" or stripped.startswith("#") or "\t" in stripped.splitlines()[0]:
        return "cookies.txt"
    raise ProfileError(f"the file's format is not recognised: give one of {', '.join(FORMATS)}")


def loads(text: str, fmt: Format | None = None) -> Imported:
    """Read an exported text (``fmt``: its format, recognised when ``None``)."""
    fmt = fmt or detect(text)
    if fmt == "cookies.txt":
        return Imported(fmt, _netscape_loads(text))
    try:
        item = json.loads(text)
    except json.JSONDecodeError:
        raise ProfileError("the file is not valid JSON") from None
    if fmt == "storage-state":
        return _from_storage_state(item)
    if fmt == "json":
        data = ProfileData.from_json(item)
        return Imported(fmt, data.cookies, data.local_storage, data.settings)
    raise ProfileError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")


# -- Netscape cookies.txt ----------------------------------------------------------------------


def _netscape_dumps(cookies: list[Cookie]) -> str:
    lines = [_NETSCAPE_HEADER, "# Written by sessionward. Holds credentials: keep it private.", ""]
    for c in cookies:
        domain = (_HTTP_ONLY if c.http_only else "") + c.domain
        expires = 0 if c.expires is None else max(1, math.ceil(c.expires))
        subdomains = "FALSE" if c.host_only else "TRUE"
        secure = "TRUE" if c.secure else "FALSE"
        lines.append("\t".join([domain, subdomains, c.path, secure, str(expires), c.name, c.value]))
    return "\n".join(lines) + "\n"


def _netscape_loads(text: str) -> list[Cookie]:
    cookies: dict[tuple[str, str, str], Cookie] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        http_only = line.startswith(_HTTP_ONLY)
        if http_only:
            line = line[len(_HTTP_ONLY) :]
        elif line.startswith("#") or not line.strip():
            continue
        cookie = _netscape_line(line.split("\t"), http_only, number)
        cookies[cookie.key] = cookie
    return list(cookies.values())


def _netscape_line(fields: list[str], http_only: bool, number: int) -> Cookie:
    if len(fields) == 6:  # some writers drop an empty value's field
        fields.append("")
    if len(fields) != 7 or fields[1] not in _FLAGS or fields[3] not in _FLAGS:
        raise ProfileError(f"cookies.txt line {number}: not 7 tab-separated Netscape fields")
    domain, subdomains, path, secure, expires, name, value = fields
    if not expires.isdigit():
        raise ProfileError(f"cookies.txt line {number}: the expiry is not a number")
    host = domain.lstrip(".")
    try:
        return Cookie(
            name,
            value,
            "." + host if _FLAGS[subdomains] else host,
            path,
            None if int(expires) == 0 else float(expires),
            _FLAGS[secure],
            http_only,
        )
    except ProfileError as exc:
        raise ProfileError(f"cookies.txt line {number}: {exc}") from None


# -- Playwright storage state ------------------------------------------------------------------


def cookie_to_state(c: Cookie) -> dict[str, Any]:
    """A cookie as Playwright writes it (``expires`` -1: a browser-session cookie)."""
    return {
        "name": c.name,
        "value": c.value,
        "domain": c.domain,
        "path": c.path,
        "expires": -1 if c.expires is None else c.expires,
        "httpOnly": c.http_only,
        "secure": c.secure,
        "sameSite": c.same_site,
    }


def _storage_state(data: ProfileData) -> dict[str, Any]:
    return {
        "cookies": [cookie_to_state(c) for c in data.cookies],
        "origins": [
            {"origin": origin, "localStorage": [{"name": k, "value": v} for k, v in items.items()]}
            for origin, items in sorted(data.local_storage.items())
            if items
        ],
    }


def _from_storage_state(item: object) -> Imported:
    if not isinstance(item, dict):
        raise ProfileError("a storage state is a JSON object with cookies and origins")
    out = Imported("storage-state")
    for entry in _list(item, "cookies"):
        out.cookies.append(cookie_from_state(entry))
    for entry in _list(item, "origins"):
        if not isinstance(entry, dict) or not isinstance(entry.get("origin"), str):
            raise ProfileError('storage state: every origin has an "origin" string')
        origin = normal_origin(entry["origin"])
        items = {}
        for pair in _list(entry, "localStorage"):
            if not (isinstance(pair, dict) and {*pair} == {"name", "value"}) or not all(
                isinstance(v, str) for v in pair.values()
            ):
                raise ProfileError("storage state: a localStorage entry is {name, value} strings")
            items[pair["name"]] = pair["value"]
        if items:
            out.local_storage[origin] = items
        out.ignored.extend(
            f"{key} of {origin}" for key in sorted(entry) if key not in ("origin", "localStorage")
        )
    return out


def _list(item: dict[str, Any], key: str) -> list[Any]:
    value = item.get(key, [])
    if not isinstance(value, list):
        raise ProfileError(f"storage state: {key} must be a list")
    return value


def cookie_from_state(entry: object) -> Cookie:
    """A cookie as Playwright gives it (other fields, such as ``partitionKey``, ignored)."""
    if not isinstance(entry, dict) or not {"name", "value", "domain"} <= entry.keys():
        raise ProfileError("storage state: a cookie has at least name, value and domain")
    expires = entry.get("expires", -1)
    if isinstance(expires, bool) or not isinstance(expires, int | float):
        raise ProfileError(f"storage state: cookie {entry['name']!r} has a bad expires")
    return Cookie(
        entry["name"],
        entry["value"],
        entry["domain"],
        entry.get("path", "/"),
        None if expires < 0 else float(expires),
        entry.get("secure", False),
        entry.get("httpOnly", False),
        entry.get("sameSite", "Lax"),
    )
