"""HTTP for the auditor: one target origin, a shared rate limit, and actors with their own jar.

Safety lives here, below every probe: :meth:`Network.url` refuses any URL outside the target
origin, redirects are never followed automatically (an :class:`Actor` follows only those that
stay on the origin), every request waits for the shared :class:`RateLimiter`, and the
httpx client keeps no cookies and reads no proxy settings from the environment.

Each :class:`Actor` is one client: its own cookie jar (kept here, by name, because the probes
must control exactly which cookies go out), user agent and extra headers. Clients come from a
``ClientFactory``, the seam through which a client bound to an isolated profile can be passed
in; the default builds a plain ``httpx.Client``.
"""

from __future__ import annotations

import http.cookiejar
import json
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from sessionward.audit.cookies import SetCookie, parse_set_cookie
from sessionward.audit.errors import OutOfScope, TargetError
from sessionward.audit.redact import Redactor

__all__ = [
    "Actor",
    "ClientFactory",
    "ClientOptions",
    "Exchange",
    "Network",
    "RateLimiter",
    "default_client",
    "origin_of",
]

_BODY_LIMIT = 512 * 1024  # enough for any page the probes read; bounds memory on huge answers
DEFAULT_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) sessionward-audit"


def origin_of(url: str) -> str:
    """``scheme://host:port`` with the default port made explicit, lower-cased."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise OutOfScope(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if scheme == "https" else 80)
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """What a client factory is asked for: one actor's client."""

    actor: str
    user_agent: str
    verify: ssl.SSLContext | bool
    timeout: float


ClientFactory = Callable[[ClientOptions], httpx.Client]


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """httpx's jar stays empty: the actor decides which cookies are sent."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


def default_client(options: ClientOptions) -> httpx.Client:
    return httpx.Client(
        verify=options.verify,
        timeout=options.timeout,
        follow_redirects=False,
        trust_env=False,
        cookies=http.cookiejar.CookieJar(policy=_NoCookies()),
        headers={"user-agent": options.user_agent},
    )


class RateLimiter:
    """At most ``rate`` requests a second over all threads (no bursts); ``0`` means none."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if self.rate <= 0:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + 1.0 / self.rate
        if start > now:
            time.sleep(start - now)


@dataclass(slots=True)
class Exchange:
    """One request and its answer (body cut at 512 KiB)."""

    method: str
    url: str
    request_headers: dict[str, str]
    status: int
    headers: httpx.Headers
    text: str
    started: float  # wall-clock seconds when the request was sent
    finished: float  # ... and when the answer had arrived
    actor: str
    set_cookies: list[SetCookie] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        value: str | None = self.headers.get(name)
        return value

    @property
    def location(self) -> str | None:
        return self.header("location")

    @property
    def redirect(self) -> bool:
        return 300 <= self.status < 400 and self.location is not None

    def cookie(self, name: str) -> SetCookie | None:
        found = [c for c in self.set_cookies if c.name == name]
        return found[-1] if found else None

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None


Observer = Callable[[Exchange], None]


class Network:
    """What every actor shares: the target, the limiter, the observers, the redactor."""

    def __init__(
        self,
        base_url: str,
        *,
        rate: float = 50.0,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 15.0,
        client_factory: ClientFactory = default_client,
    ) -> None:
        self.base_url = base_url
        self.origin = origin_of(base_url)
        self.https = self.origin.startswith("https://")
        self.limiter = RateLimiter(rate)
        self.verify = verify
        self.timeout = timeout
        self.client_factory = client_factory
        self.redactor = Redactor()
        self.observers: list[Observer] = []
        self.requests = 0
        #: Every session token seen (cookie values of the session cookie, bearer tokens).
        self.session_tokens: set[str] = set()
        self._count_lock = threading.Lock()
        self._actors: list[Actor] = []

    def url(self, path_or_url: str) -> str:
        """An absolute URL on the target; anything else raises :class:`OutOfScope`."""
        url = urljoin(self.base_url, path_or_url)
        if origin_of(url) != self.origin:
            raise OutOfScope(f"refusing a request outside {self.origin}: {urlsplit(url).netloc}")
        return url

    def in_scope(self, url: str) -> bool:
        try:
            self.url(url)
        except OutOfScope:
            return False
        return True

    def actor(
        self, name: str, *, user_agent: str = DEFAULT_USER_AGENT, headers: Mapping[str, str] = {}
    ) -> Actor:
        client = self.client_factory(ClientOptions(name, user_agent, self.verify, self.timeout))
        actor = Actor(self, name, client, dict(headers))
        self._actors.append(actor)
        return actor

    def count(self) -> None:
        with self._count_lock:
            self.requests += 1

    def close(self) -> None:
        for actor in self._actors:
            actor.client.close()
        self._actors.clear()


class Actor:
    """One client with its own cookie jar (name -> value) and optional bearer token."""

    def __init__(
        self, network: Network, name: str, client: httpx.Client, headers: dict[str, str]
    ) -> None:
        self.network = network
        self.name = name
        self.client = client
        self.headers = headers
        self.jar: dict[str, str] = {}
        self.bearer: str | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        json: Any = None,
        content: str | None = None,
        headers: Mapping[str, str] | None = None,
        cookies: bool = True,
        observe: bool = True,
    ) -> Exchange:
        url = self.network.url(path)
        sent = dict(self.headers)
        if cookies and self.jar:
            sent["cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        if self.bearer is not None:
            sent["authorization"] = f"Bearer {self.bearer}"
        sent.update({k.lower(): v for k, v in (headers or {}).items()})
        self.network.limiter.acquire()
        self.network.count()
        started = time.time()
        try:
            response = self.client.request(
                method, url, data=form, json=json, content=content, headers=sent
            )
            body = response.read()[:_BODY_LIMIT]
        except httpx.HTTPError as exc:
            raise TargetError(
                f"{method} {urlsplit(url).path}: {type(exc).__name__}: {exc}"
            ) from None
        exchange = Exchange(
            method=method,
            url=url,
            request_headers=sent,
            status=response.status_code,
            headers=response.headers,
            text=body.decode(response.encoding or "utf-8", "replace"),
            started=started,
            finished=time.time(),
            actor=self.name,
        )
        for value in response.headers.get_list("set-cookie"):
            parsed = parse_set_cookie(value)
            if parsed is not None:
                exchange.set_cookies.append(parsed)
                if observe:  # a harvest's thousands of tokens never reach a report
                    self.network.redactor.add(parsed.value)
                if parsed.deletes():
                    self.jar.pop(parsed.name, None)
                else:
                    self.jar[parsed.name] = parsed.value
        if observe:
            for observer in self.network.observers:
                observer(exchange)
        return exchange

    def get(self, path: str, **kw: Any) -> Exchange:
        return self.request("GET", path, **kw)

    def follow(self, exchange: Exchange, *, limit: int = 5) -> Exchange:
        """Follow redirects that stay on the target (as GET), up to ``limit`` hops."""
        hops = 0
        while exchange.redirect and hops < limit:
            target = urljoin(exchange.url, exchange.location or "")
            if not self.network.in_scope(target):
                break
            exchange = self.get(target)
            hops += 1
        return exchange

    def forget(self) -> None:
        self.jar.clear()
        self.bearer = None
