"""``Set-Cookie`` parsing and the cookie-attribute lint (WSTG-SESS-02, ASVS 3.3).

The parser follows RFC 6265bis section 5.7 loosely: the first ``name=value`` pair, then
attributes separated by ``;`` whose names are case-insensitive. Prefixes are matched
case-insensitively, as browsers do. The lint reports the header as sent; it never assumes a
browser default (an absent ``SameSite`` is reported as absent).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

__all__ = ["CookieIssue", "SetCookie", "lint", "parse_set_cookie"]

_SIZE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class SetCookie:
    name: str
    value: str
    attributes: dict[str, str] = field(default_factory=dict)  # lower-case names

    def has(self, attribute: str) -> bool:
        return attribute in self.attributes

    @property
    def same_site(self) -> str | None:
        value = self.attributes.get("samesite")
        return value.capitalize() if value else None

    def deletes(self, now: float | None = None) -> bool:
        """True when the header removes the cookie (empty value, or already expired)."""
        if not self.value:
            return True
        max_age = self.attributes.get("max-age")
        if max_age is not None:
            try:
                return int(max_age) <= 0
            except ValueError:
                return False
        expires = self.attributes.get("expires")
        if expires:
            try:
                moment = parsedate_to_datetime(expires).timestamp()
            except (TypeError, ValueError):
                return False
            return moment <= (time.time() if now is None else now)
        return False

    def persistent(self) -> bool:
        return "max-age" in self.attributes or "expires" in self.attributes

    def shape(self) -> str:
        """The header with its value replaced: safe to show as evidence."""
        parts = [f"{self.name}=<{len(self.value)} chars>"]
        for key, value in self.attributes.items():
            parts.append(f"{key}={value}" if value else key)
        return "; ".join(parts)


def parse_set_cookie(header: str) -> SetCookie | None:
    """One ``Set-Cookie`` header value, or ``None`` for one a browser would ignore."""
    pair, *rest = header.split(";")
    name, eq, value = pair.partition("=")
    name, value = name.strip(), value.strip()
    if not eq or not name:
        return None
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    attributes: dict[str, str] = {}
    for item in rest:
        key, _, attr_value = item.partition("=")
        key = key.strip().lower()
        if key:
            attributes[key] = attr_value.strip()
    return SetCookie(name, value, attributes)


@dataclass(frozen=True, slots=True)
class CookieIssue:
    rule: str
    cookie: str
    problem: str


def lint(cookie: SetCookie, *, session: bool, https: bool) -> list[CookieIssue]:
    """What is wrong with one cookie that sets a value. ``session`` applies the session-cookie
    rules (HttpOnly, prefix, persistence); other cookies get Secure and SameSite only."""
    if cookie.deletes():
        return []
    issues = _prefix_issues(cookie)
    name = cookie.name
    if len(cookie.name) + len(cookie.value) > _SIZE_LIMIT:
        issues.append(CookieIssue("cookie-too-large", name, "name plus value over 4096 bytes"))
    if cookie.has("partitioned") and not cookie.has("secure"):
        issues.append(CookieIssue("cookie-prefix-violated", name, "Partitioned without Secure"))
    if not session:
        missing = [a for a in ("secure", "samesite") if not cookie.has(a)]
        if missing:
            text = " and ".join(a.capitalize() for a in missing)
            issues.append(CookieIssue("cookie-weak-attributes", name, f"no {text}"))
        return issues
    if not cookie.has("secure"):
        where = "" if https else " (the target is plain HTTP, so it also travels unencrypted)"
        issues.append(CookieIssue("cookie-no-secure", name, "no Secure attribute" + where))
    if not cookie.has("httponly"):
        issues.append(CookieIssue("cookie-no-httponly", name, "no HttpOnly attribute"))
    same_site = cookie.same_site
    if same_site is None:
        issues.append(CookieIssue("cookie-no-samesite", name, "no SameSite attribute"))
    elif same_site == "None":
        issues.append(CookieIssue("cookie-samesite-none", name, "SameSite=None"))
    lowered = name.lower()
    if not lowered.startswith(("__host-", "__secure-")):
        issues.append(CookieIssue("cookie-no-prefix", name, "no __Host- prefix"))
    if cookie.has("domain"):
        issues.append(CookieIssue("cookie-domain", name, f"Domain={cookie.attributes['domain']}"))
    if cookie.persistent():
        issues.append(CookieIssue("cookie-persistent", name, "Expires or Max-Age set"))
    return issues


def _prefix_issues(cookie: SetCookie) -> list[CookieIssue]:
    lowered = cookie.name.lower()
    problems = []
    if lowered.startswith(("__secure-", "__host-")) and not cookie.has("secure"):
        problems.append("prefix without Secure")
    if lowered.startswith("__host-"):
        if cookie.has("domain"):
            problems.append("__Host- with a Domain")
        if cookie.attributes.get("path") != "/":
            problems.append("__Host- without Path=/")
    return [CookieIssue("cookie-prefix-violated", cookie.name, p) for p in problems]
