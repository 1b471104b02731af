"""The sans-I/O part every adapter shares: configuration, per-request outcome, response headers.

Adapters (ASGI, WSGI) only move bytes between their protocol and these functions; none of
them decides anything about sessions. The session decisions are the manager's.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote_plus

from sessionward.core.dpop import DpopPolicy
from sessionward.core.record import Session
from sessionward.errors import ConfigError
from sessionward.web._http import SAFE_METHODS, authorization, bearer_token
from sessionward.web.binding import DeviceBinding
from sessionward.web.context import ContextCapture
from sessionward.web.cookies import CookiePolicy
from sessionward.web.csrf import CsrfPolicy

__all__ = ["REMEMBER_KEY", "AdapterConfig", "DataChange", "Outcome", "Transport"]

_log = logging.getLogger("sessionward.web")

Transport = Literal["cookie", "bearer"]
DataChange = Callable[[dict[str, Any]], Mapping[str, Any] | None]
#: Session-data key marking a "remember me" session, so renewals keep the persistent cookie.
REMEMBER_KEY = "sessionward.remember"
CLEAR_SITE_DATA = '"cache", "cookies", "storage"'


@dataclass(slots=True)
class Outcome:
    """What happened to the session during one request; turned into headers at the end."""

    accessed: bool = False
    rejected: bool = False
    ended: bool = False
    token: str | None = None
    max_age: int | None = None
    #: The anonymous CSRF nonce the request carried, or the one minted for it (then ``new``).
    nonce: str | None = None
    new_nonce: bool = False

    def minted(self, session: Session, now: float) -> None:
        """Remember a newly minted token (issue, rotation, renewal) for the response."""
        if session.token is None:
            return
        self.token, self.ended = session.token, False
        remember = session.data.get(REMEMBER_KEY) is True
        self.max_age = max(1, round(session.absolute_expires_at - now)) if remember else None

    def end(self) -> None:
        self.token, self.max_age, self.ended = None, None, True

    def anonymous_nonce(self, policy: CsrfPolicy) -> str:
        """The nonce an anonymous form token binds to: the request's, or a new one that the
        response will set in its cookie."""
        if self.nonce is None:
            self.nonce, self.new_nonce = policy.new_nonce(), True
        return self.nonce


@dataclass(frozen=True, slots=True)
class AdapterConfig:
    """Transport and web-layer settings shared by the ASGI and WSGI middleware.

    * ``transport``: ``"cookie"`` (browsers) or ``"bearer"`` (``Authorization: Bearer``; SPAs
      and API clients). The token is read from that transport only.
    * ``csrf``: required with cookie transport (pass ``False`` to opt out explicitly, e.g. when
      another layer does it); ignored for bearer.
    * ``unavailable_status``: answer when the store is down: 503 (default) or 401.
    * ``token_header``: bearer transport only; the response header carrying a new token.
    * ``remember_by_default``: sessions get the persistent "remember me" cookie unless the
      application says otherwise (``login(remember=False)``, ``session.permanent = False``);
      needs ``CookiePolicy(remember_max_age=...)``. Off by default: the cookie then dies with
      the browser.
    * ``binding``: Device Bound Session Credentials (cookie transport; see
      :class:`~sessionward.web.binding.DeviceBinding`).
    * ``dpop``: DPoP proofs (bearer transport; see :class:`~sessionward.core.dpop.DpopPolicy`).
    * ``origin``: the public origin (``https://app.example``) requests are checked against (a
      DPoP proof's ``htu``, a registration's ``aud``); default: the request's scheme and
      ``Host``. Set it behind a proxy that changes either.
    * ``step_up_paths``: paths (and everything under them) a request the risk engine
      challenged still reaches, without its session: the sign-in page, so the user can sign
      in again. The handle's ``challenge`` then holds the reasons and ``confirm()`` ("this was
      me", after the sign-in) restores the session. Elsewhere such a request gets a 401 (a
      browser's page request a redirect to the first of these paths, with ``next``).
    """

    transport: Transport = "cookie"
    cookie: CookiePolicy = field(default_factory=CookiePolicy)
    csrf: CsrfPolicy | Literal[False] | None = None
    context: ContextCapture = field(default_factory=ContextCapture)
    unavailable_status: int = 503
    realm: str = "sessionward"
    token_header: str = "session-token"  # noqa: S105 - a header name
    max_form_bytes: int = 1024 * 1024
    remember_by_default: bool = False
    binding: DeviceBinding | None = None
    dpop: DpopPolicy | None = None
    origin: str | None = None
    step_up_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.step_up_paths, str) or not all(
            isinstance(p, str) and p.startswith("/") and p.isprintable() for p in self.step_up_paths
        ):
            raise ConfigError("step_up_paths must be a list of paths starting with '/'")
        if self.transport not in ("cookie", "bearer"):
            raise ConfigError("transport must be 'cookie' or 'bearer'")
        if self.transport == "cookie" and self.csrf is None:
            raise ConfigError("cookie transport needs csrf=CsrfPolicy(...) (or csrf=False)")
        if self.unavailable_status not in (401, 503):
            raise ConfigError("unavailable_status must be 503 or 401")
        if not self.realm.isprintable() or '"' in self.realm or "\\" in self.realm:
            raise ConfigError("realm must be printable and free of quotes")
        if not self.token_header.isascii() or not self.token_header.replace("-", "").isalnum():
            raise ConfigError("token_header must be a plain header name")
        if self.remember_by_default and self.cookie_mode and self.cookie.remember_max_age is None:
            raise ConfigError("remember_by_default needs CookiePolicy(remember_max_age=...)")
        if self.csrf_policy is not None:
            _ = self.nonce_cookie  # a name too long for the "-csrf" suffix fails here, not later
        if self.binding is not None:
            if not self.cookie_mode:
                raise ConfigError("DBSC binds cookies: binding= needs cookie transport")
            _ = self.binding.bound_cookie(self.cookie)  # a Partitioned cookie fails here
        if self.dpop is not None and self.cookie_mode:
            raise ConfigError("DPoP binds Authorization carriers: dpop= needs bearer transport")
        if self.origin is not None and (
            not re.fullmatch(r"https?://[A-Za-z0-9.:\[\]-]+", self.origin)
        ):
            raise ConfigError("origin must be scheme://host[:port], without a path")

    def reaches_when_challenged(self, path: str) -> bool:
        """Whether a request the risk engine challenged still runs for ``path``."""
        for allowed in self.step_up_paths:
            base = allowed.rstrip("/")
            if path in (allowed, base) or path.startswith(base + "/"):
                return True
        return False

    @property
    def cookie_mode(self) -> bool:
        return self.transport == "cookie"

    @property
    def csrf_policy(self) -> CsrfPolicy | None:
        return self.csrf if self.cookie_mode and isinstance(self.csrf, CsrfPolicy) else None

    @property
    def nonce_cookie(self) -> CookiePolicy:
        """The cookie of the anonymous CSRF nonce: the session cookie's flags, its name plus
        ``-csrf``, never persistent."""
        return _nonce_cookie(self.cookie)

    def outcome(self, headers: dict[str, str]) -> Outcome:
        """A fresh outcome for a request, holding the request's anonymous CSRF nonce."""
        if self.csrf_policy is None:
            return Outcome()
        nonce = self.nonce_cookie.read(headers.get("cookie"))
        return Outcome(nonce=nonce if CsrfPolicy.is_nonce(nonce) else None)

    def token_from(self, headers: dict[str, str]) -> str | None:
        """The presented token, from the configured transport and nowhere else."""
        if self.cookie_mode:
            return self.cookie.read(headers.get("cookie"))
        if self.dpop is not None:  # ``Authorization: DPoP <token>`` too (RFC 9449 §7.1)
            found = authorization(headers)
            return None if found is None else found[1]
        return bearer_token(headers)

    def csrf_refusal(
        self, method: str, headers: dict[str, str], session_id: str | None, form: bytes | None
    ) -> str | None:
        """Why an unsafe cookie-mode request is refused, or ``None``. ``form`` is the
        urlencoded body, when the adapter read one because the header token was absent."""
        policy = self.csrf_policy
        if policy is None:
            return None
        reason = policy.refusal(method, headers)
        if reason is not None or not policy.require_token or method.upper() in SAFE_METHODS:
            return reason
        presented = headers.get(policy.header_name)
        if presented is None and form is not None:
            presented = form_value(form, policy.field_name)
        nonce = self.nonce_cookie.read(headers.get("cookie"))
        return None if policy.token_valid(session_id, presented, nonce=nonce) else "token"

    @staticmethod
    def refusal_message(reason: str) -> str:
        """What the client reads for a refused request. A missing or stale form token (the
        page was loaded before sign-in or sign-out changed the session) is not a cross-site
        request, and reloading the page fixes it; the exact reason goes to the log only."""
        if reason == "token":
            return (
                "form expired or missing its CSRF token (the session changed since the page"
                " was loaded): reload the page and try again"
            )
        return "cross-site request refused"

    def wants_form(self, method: str, headers: dict[str, str]) -> bool:
        """Whether the adapter must read the body to find the form token."""
        policy = self.csrf_policy
        return (
            policy is not None
            and policy.require_token
            and method.upper() not in SAFE_METHODS
            and policy.header_name not in headers
            and headers.get("content-type", "").split(";")[0].strip().lower()
            == "application/x-www-form-urlencoded"
        )

    def response_headers(self, outcome: Outcome) -> list[tuple[str, str]]:
        """Headers the response needs for this outcome (empty for an untouched session)."""
        out: list[tuple[str, str]] = []
        if outcome.token is not None:
            if self.cookie_mode:
                out.append(
                    ("set-cookie", self.cookie.header(outcome.token, max_age=outcome.max_age))
                )
            else:
                out.append((self.token_header, outcome.token))
            out.append(("cache-control", "no-store"))
        elif outcome.ended:
            if self.cookie_mode:
                out.append(("set-cookie", self.cookie.expire()))
            out.append(("clear-site-data", CLEAR_SITE_DATA))
            out.append(("cache-control", "no-store"))
        elif outcome.rejected and self.cookie_mode:
            out.append(("set-cookie", self.cookie.expire()))
        if outcome.new_nonce and outcome.nonce is not None and self.cookie_mode:
            out.append(("set-cookie", self.nonce_cookie.header(outcome.nonce)))
            if outcome.token is None and not outcome.ended:
                out.append(("cache-control", "no-store"))
        if out or outcome.accessed:
            out.append(("vary", "Cookie" if self.cookie_mode else "Authorization"))
        return out

    def challenge(self, error: str | None = None, **params: str) -> dict[str, str]:
        """``WWW-Authenticate`` for a 401/403 in bearer mode (RFC 6750, RFC 9470); with DPoP
        on, a ``DPoP`` challenge naming the accepted algorithms follows (RFC 9449 §7.1)."""
        if self.cookie_mode:
            return {}
        parts = [f'realm="{self.realm}"']
        if error is not None:
            parts.append(f'error="{error}"')
        parts.extend(f'{k}="{v}"' if k != "max_age" else f"{k}={v}" for k, v in params.items())
        value = "Bearer " + ", ".join(parts)
        if self.dpop is not None:
            value += f', DPoP algs="{self.dpop.algs_param}"'
        return {"www-authenticate": value}

    def url(self, scheme: str, host: str | None, path: str) -> str:
        """The request's absolute URL without its query, as a client names it."""
        if self.origin is not None:
            return self.origin + path
        return f"{scheme}://{host or 'localhost'}{path}"


@functools.lru_cache(maxsize=64)
def _nonce_cookie(cookie: CookiePolicy) -> CookiePolicy:
    return dataclasses.replace(cookie, name=cookie.name + "-csrf", remember_max_age=None)


def merge_headers(
    existing: list[tuple[str, str]], extra: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Add ``extra`` to a response's headers: ``cache-control`` replaces, ``vary`` merges."""
    if not extra:
        return existing
    names = {name for name, _ in extra}
    merged: list[tuple[str, str]] = []
    vary: list[str] = []
    for name, value in existing:
        lower = name.lower()
        if lower == "vary":
            vary.extend(v.strip() for v in value.split(",") if v.strip())
        elif not (lower == "cache-control" and "cache-control" in names):
            merged.append((name, value))
    for name, value in extra:
        if name == "vary":
            if value.lower() not in (v.lower() for v in vary):
                vary.append(value)
        else:
            merged.append((name, value))
    if vary:
        merged.append(("vary", ", ".join(vary)))
    return merged


_FIELD = re.compile(rb"[^&]+")


def form_value(body: bytes, name: str) -> str | None:
    """The first value of field ``name`` in an urlencoded body. Scanned field by field, so a
    body of a million empty fields costs no list of them and raises nothing."""
    for match in _FIELD.finditer(body):
        key, _, value = match.group().partition(b"=")
        if unquote_plus(key.decode("latin-1"), errors="replace") == name:
            return unquote_plus(value.decode("latin-1"), errors="replace")
    return None


def log_refusal(kind: str, reason: str) -> None:
    _log.info("sessionward refused request: %s (%s)", kind, reason)
