"""An httpx client bound to a profile: its cookies, user agent, locale and proxy.

``with http_client(profile) as client:`` locks the profile, loads its jar into the client,
and when the block ends (normally or not) writes the jar back, then unlocks. The jar follows
browsers where the standard library's default differs:

* a host-only cookie goes to its host only, not to the host's subdomains;
* a ``Secure`` cookie is sent over https and to loopback addresses (``localhost``,
  ``127.0.0.0/8``, ``::1``), which browsers and curl treat as secure origins;
* a ``Secure`` cookie (or one named ``__Secure-``/``__Host-``) is refused from a plain-http
  site that is not loopback, and a ``__Host-`` cookie must be ``Secure``, host-only and
  ``Path=/``.

SameSite is kept (and exported) but not enforced: an httpx client has no notion of the site
a request comes from.
"""

from __future__ import annotations

import ipaddress
import logging
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from http.cookiejar import Cookie as StdCookie
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from sessionward.audit.profiles._errors import ProfileError
from sessionward.audit.profiles.home import Profile
from sessionward.audit.profiles.model import Cookie, ProfileData, Settings, same_site

if TYPE_CHECKING:
    import httpx

__all__ = ["BrowserLikePolicy", "async_http_client", "cookies_of", "http_client", "jar_of"]

_log = logging.getLogger("sessionward.audit.profiles")
# http.cookiejar files a host-only cookie of a dotless host (``localhost``) under ``host.local``.
_DOTLESS: Final = ".local"


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secure_origin(request: urllib.request.Request) -> bool:
    parts = urlsplit(request.get_full_url())
    return parts.scheme in ("https", "wss") or _is_loopback(parts.hostname)


class BrowserLikePolicy(DefaultCookiePolicy):
    """The cookie rules of a browser, where they differ from the standard library's."""

    def __init__(self) -> None:
        super().__init__(strict_ns_domain=DefaultCookiePolicy.DomainStrictNonDomain)

    def return_ok_secure(self, cookie: StdCookie, request: urllib.request.Request) -> bool:
        return not cookie.secure or _secure_origin(request)

    def set_ok(self, cookie: StdCookie, request: urllib.request.Request) -> bool:
        secure_name = cookie.name.startswith(("__Secure-", "__Host-"))
        if (cookie.secure or secure_name) and not _secure_origin(request):
            return False
        if secure_name and not cookie.secure:
            return False
        if cookie.name.startswith("__Host-") and (
            cookie.domain_specified or cookie.path != "/" or not cookie.path_specified
        ):
            return False
        return bool(super().set_ok(cookie, request))


def _to_std(cookie: Cookie) -> StdCookie:
    domain = cookie.domain
    if cookie.host_only and "." not in domain and ":" not in domain:
        domain += _DOTLESS
    rest: dict[str, str] = {"SameSite": cookie.same_site}
    if cookie.http_only:
        rest["HttpOnly"] = ""
    expires = None if cookie.expires is None else int(cookie.expires)
    return StdCookie(
        0, cookie.name, cookie.value, None, False,
        domain, not cookie.host_only, not cookie.host_only,
        cookie.path, True, cookie.secure, expires, expires is None,
        None, None, rest,
    )  # fmt: skip


def _from_std(cookie: StdCookie) -> Cookie:
    domain = cookie.domain
    host_only = not domain.startswith(".")
    if host_only and domain.endswith(_DOTLESS) and "." not in domain[: -len(_DOTLESS)]:
        domain = domain[: -len(_DOTLESS)]
    # The attributes http.cookiejar does not interpret (HttpOnly, SameSite) are kept in
    # ``_rest`` as the server spelled them; the public accessors are case-sensitive.
    rest: dict[str, str | None] = vars(cookie).get("_rest") or {}
    flags = {key.lower(): value for key, value in rest.items()}
    try:
        site = same_site(flags.get("samesite") or "Lax")
    except ProfileError:
        site = "Lax"  # an unknown value: browsers fall back to Lax
    return Cookie(
        cookie.name,
        cookie.value or "",
        domain,
        cookie.path,
        None if cookie.expires is None else float(cookie.expires),
        bool(cookie.secure),
        "httponly" in flags,
        site,
    )


def jar_of(cookies: list[Cookie]) -> CookieJar:
    """A standard-library jar (with :class:`BrowserLikePolicy`) holding ``cookies``."""
    jar = CookieJar(policy=BrowserLikePolicy())
    for cookie in cookies:
        jar.set_cookie(_to_std(cookie))
    return jar


def cookies_of(jar: CookieJar) -> list[Cookie]:
    """The cookies of ``jar`` that have not expired. One a profile cannot hold (a name
    outside RFC 6265's token characters, say) is left out and logged by name."""
    now = time.time()
    out = []
    for std in jar:
        try:
            cookie = _from_std(std)
        except ProfileError as exc:
            _log.warning("cookie left out of the profile: %s", exc)
            continue
        if not cookie.expired(now):
            out.append(cookie)
    return out


def _header(jar: CookieJar, request: httpx.Request) -> str | None:
    # A stand-in request for the jar to read; it is never opened.
    probe = urllib.request.Request(str(request.url), method=request.method)  # noqa: S310
    jar.add_cookie_header(probe)
    return probe.get_header("Cookie")


def _plain_copy(jar: CookieJar) -> CookieJar:
    copy = CookieJar()
    for cookie in jar:
        copy.set_cookie(cookie)
    return copy


def _set_cookie_header(jar: CookieJar, request: httpx.Request) -> None:
    """Put the jar's Cookie header, by :class:`BrowserLikePolicy`, on ``request``.

    httpx builds each request's header from a copy of the client's jar under the standard
    library's default policy (and again on each redirect), so this request hook replaces
    that header, unless the caller set a Cookie header of their own (then it differs from
    what the default policy gives, and is left alone)."""
    present = request.headers.get("cookie")
    if present is not None and present != _header(_plain_copy(jar), request):
        return
    mine = _header(jar, request)
    if mine:
        request.headers["cookie"] = mine
    elif present is not None:
        del request.headers["cookie"]


def _options(settings: Settings, options: dict[str, Any], jar: CookieJar) -> dict[str, Any]:
    if "cookies" in options:
        raise ProfileError("a profile's client takes its cookies from the profile")
    headers = {"accept-language": settings.locale}
    if settings.user_agent is not None:
        headers["user-agent"] = settings.user_agent
    headers.update(options.pop("headers", None) or {})
    if settings.proxy is not None:
        options.setdefault("proxy", settings.proxy)
    return {"headers": headers, "cookies": jar, **options}


@contextmanager
def http_client(profile: Profile, **options: Any) -> Iterator[httpx.Client]:
    """An ``httpx.Client`` with the profile's cookies and identity; ``options`` go to
    httpx (``base_url``, ``timeout``, ``verify``...; not ``cookies``)."""
    import httpx

    with profile.lock():
        data = profile.read()
        jar = jar_of(data.cookies)
        hooks = dict(options.pop("event_hooks", None) or {})
        hooks["request"] = [partial(_set_cookie_header, jar), *hooks.get("request", [])]
        try:
            with httpx.Client(event_hooks=hooks, **_options(data.settings, options, jar)) as client:
                yield client
        finally:
            _save(profile, data, jar)


@asynccontextmanager
async def async_http_client(profile: Profile, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The ``httpx.AsyncClient`` twin of :func:`http_client`."""
    import httpx

    with profile.lock():
        data = profile.read()
        jar = jar_of(data.cookies)

        async def set_cookie_header(request: httpx.Request) -> None:
            _set_cookie_header(jar, request)

        hooks = dict(options.pop("event_hooks", None) or {})
        hooks["request"] = [set_cookie_header, *hooks.get("request", [])]
        try:
            async with httpx.AsyncClient(
                event_hooks=hooks, **_options(data.settings, options, jar)
            ) as client:
                yield client
        finally:
            _save(profile, data, jar)


def _save(profile: Profile, data: ProfileData, jar: CookieJar) -> None:
    data.cookies = cookies_of(jar)
    profile.write(data)
