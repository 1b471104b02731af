"""Web glue for stateless mode, the SPA pattern: the access token travels as
``Authorization: Bearer``, the refresh token only in an HttpOnly cookie scoped to the token
endpoints' path, so page scripts can never read it and no other URL ever receives it.

Framework-neutral: the handlers take the method and the lower-cased request headers and return
a :class:`Reply` (status, headers, JSON body) that any adapter can send::

    endpoints = TokenEndpoints(csrf=CsrfPolicy(["https://app.example"], keys=[...]))
    reply = endpoints.login(pair, now=clock.now())            # after checking the password
    reply = endpoints.refresh(tokens, method, headers)        # POST /auth/refresh
    reply = endpoints.logout(tokens, method, headers)         # POST /auth/logout
    claims = authenticate(tokens, headers)                    # any API route; 401 on failure

The cookie is ``__Secure-rt=…; Path=/auth; Secure; HttpOnly; SameSite=Strict; Max-Age=…``
(``__Host-`` would force ``Path=/``). Because it rides on a POST, the cookie-carrying endpoints
check the request's provenance (``Sec-Fetch-Site`` / ``Origin`` / ``Referer``, through
:class:`~sessionward.web.csrf.CsrfPolicy`) and fail closed. Replies carrying tokens send
``Cache-Control: no-store``. The refresh token is never put in a body.

With a service built with ``dpop=DpopPolicy(...)``, pass the request's absolute ``url``: a
family bound to a DPoP key refreshes and logs out only with a proof of that key, and its access
tokens (``Authorization: DPoP <token>``) are accepted only with one. The token endpoints refuse
a proof as a token endpoint does (:func:`dpop_token_error`: ``400``, ``invalid_dpop_proof`` or
``use_dpop_nonce``); an API route as a resource server does (:func:`dpop_unauthorized`:
``401``, ``WWW-Authenticate: DPoP``). Both send the current nonce in ``DPoP-Nonce`` when nonces
are on, and so do the token endpoints' successful replies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sessionward.core.dpop import NONCE_HEADER, bound_jkt
from sessionward.errors import ConfigError, InvalidArgument, InvalidProof, InvalidToken
from sessionward.jwt._async.service import AsyncTokenService
from sessionward.jwt._sync.service import TokenService
from sessionward.jwt.access import AccessClaims
from sessionward.jwt.refresh import TokenPair
from sessionward.web._http import Reply, authorization, bearer_token
from sessionward.web.csrf import CsrfPolicy

__all__ = [
    "RefreshCookie",
    "Reply",
    "TokenEndpoints",
    "authenticate",
    "authenticate_async",
    "dpop_token_error",
    "dpop_unauthorized",
]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
_PATH = re.compile(r"/[A-Za-z0-9._~/-]{0,200}")
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"


@dataclass(frozen=True, slots=True)
class RefreshCookie:
    """The refresh-token cookie: ``__Secure-<name>``, sent by the browser only to ``path``.

    ``insecure_http_localhost`` drops ``Secure`` and the prefix for ``http://localhost``
    development only.
    """

    name: str = "rt"
    path: str = "/auth"
    same_site: Literal["Strict", "Lax"] = "Strict"
    insecure_http_localhost: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigError("refresh cookie name: 1-32 characters of [A-Za-z0-9_-]")
        if not isinstance(self.path, str) or not _PATH.fullmatch(self.path) or self.path == "/":
            raise ConfigError("refresh cookie path must be the token endpoints' path, not '/'")
        if self.same_site not in ("Strict", "Lax"):
            raise ConfigError("same_site must be 'Strict' or 'Lax'")

    @property
    def cookie_name(self) -> str:
        return self.name if self.insecure_http_localhost else "__Secure-" + self.name

    def _attributes(self) -> str:
        secure = "" if self.insecure_http_localhost else "; Secure"
        return f"; Path={self.path}{secure}; HttpOnly; SameSite={self.same_site}"

    def header(self, token: str, *, max_age: int) -> str:
        """``Set-Cookie`` for ``token``, persisted for ``max_age`` seconds (the refresh
        token's remaining life, so the cookie and the server-side family end together)."""
        if not isinstance(token, str) or not token.startswith("sw1_") or not token.isascii():
            raise InvalidArgument("not a refresh token")
        if max_age <= 0:
            raise InvalidArgument("max_age must be positive; use expire()")
        return f"{self.cookie_name}={token}{self._attributes()}; Max-Age={int(max_age)}"

    def expire(self) -> str:
        return f"{self.cookie_name}={self._attributes()}; Max-Age=0; Expires={_EPOCH}"

    def read(self, cookie_header: str | None) -> str | None:
        if not cookie_header:
            return None
        for part in cookie_header.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name == self.cookie_name:
                return value.strip() or None
        return None


_NO_STORE = [
    ("content-type", "application/json"),
    ("cache-control", "no-store"),
    ("pragma", "no-cache"),
]


def _json(status: int, body: Mapping[str, Any], *extra: tuple[str, str]) -> Reply:
    text = json.dumps(body, separators=(",", ":")).encode("utf-8")
    return Reply(status, [*_NO_STORE, *extra], text)


class TokenEndpoints:
    """Login, refresh and logout replies with the refresh token in :class:`RefreshCookie`.

    ``csrf`` checks where cookie-carrying requests come from (its form-token part is not used:
    the endpoints answer JSON to ``fetch``).
    """

    def __init__(self, *, csrf: CsrfPolicy, cookie: RefreshCookie | None = None) -> None:
        self.csrf = csrf
        self.cookie = cookie or RefreshCookie()

    # -- replies ----------------------------------------------------------------------------

    def login(self, pair: TokenPair, *, now: float, nonce: str | None = None) -> Reply:
        """200 with the access token in the body and the refresh token in the cookie (and
        ``nonce``, the service's :meth:`~sessionward.jwt.TokenService.dpop_nonce`, in
        ``DPoP-Nonce``)."""
        body = {
            "access_token": pair.access_token,
            "token_type": pair.token_type,  # "DPoP" for a family bound to a key
            "expires_in": max(0, int(pair.access_expires_at - now)),
        }
        max_age = max(1, int(pair.refresh_expires_at - now))
        cookie = ("set-cookie", self.cookie.header(pair.refresh_token, max_age=max_age))
        return _json(200, body, cookie, *(() if nonce is None else ((NONCE_HEADER, nonce),)))

    def _refused(self, method: str, headers: Mapping[str, str]) -> Reply | None:
        if method.upper() != "POST":
            return _json(405, {"error": "method_not_allowed"}, ("allow", "POST"))
        if self.csrf.refusal(method, headers) is not None:
            return _json(403, {"error": "forbidden"})
        return None

    def _invalid(self) -> Reply:
        return _json(401, {"error": "invalid_grant"}, ("set-cookie", self.cookie.expire()))

    # -- sync -------------------------------------------------------------------------------

    def refresh(
        self,
        service: TokenService,
        method: str,
        headers: Mapping[str, str],
        *,
        url: str | None = None,
    ) -> Reply:
        """``POST <path>/refresh``: trade the cookie's refresh token for a new pair. With
        DPoP on, ``url`` is this request's absolute URL and a proof is checked when sent."""
        refused = self._refused(method, headers)
        if refused is not None:
            return refused
        token = self.cookie.read(headers.get("cookie"))
        if token is None:
            return self._invalid()
        try:
            jkt = None
            if service.dpop is not None and "dpop" in headers and url is not None:
                jkt = service.check_proof(headers.get("dpop"), method=method, url=url).jkt
            pair = service.refresh(token, dpop_jkt=jkt)
        except InvalidProof as exc:
            return dpop_token_error(service, exc)
        except InvalidToken:
            return self._invalid()
        return self.login(pair, now=service.clock.now(), nonce=service.dpop_nonce())

    def logout(
        self,
        service: TokenService,
        method: str,
        headers: Mapping[str, str],
        *,
        access: AccessClaims | None = None,
        url: str | None = None,
    ) -> Reply:
        """``POST <path>/logout``: end the family and clear the cookie (200, also for a
        refresh token that was dead already). A family bound to a DPoP key ends only with a
        proof of that key: the request's own (with DPoP on and ``url`` given), or the one
        ``authenticate`` checked for ``access``; without it the reply is
        :func:`dpop_token_error` and nothing ends."""
        refused = self._refused(method, headers)
        if refused is not None:
            return refused
        token = self.cookie.read(headers.get("cookie"))
        try:
            jkt = None if access is None else bound_jkt(access.claims)
            if jkt is None and service.dpop is not None and "dpop" in headers and url is not None:
                jkt = service.check_proof(headers.get("dpop"), method=method, url=url).jkt
            service.logout(refresh_token=token, access=access, dpop_jkt=jkt)
        except InvalidProof as exc:
            return dpop_token_error(service, exc)
        except InvalidToken:
            pass  # ended already, or garbage: clear the cookie anyway
        return self._logged_out()

    def _logged_out(self) -> Reply:
        return _json(
            200,
            {"status": "logged-out"},
            ("set-cookie", self.cookie.expire()),
            ("clear-site-data", '"cookies", "storage"'),
        )

    # -- async ------------------------------------------------------------------------------

    async def refresh_async(
        self,
        service: AsyncTokenService,
        method: str,
        headers: Mapping[str, str],
        *,
        url: str | None = None,
    ) -> Reply:
        """The :meth:`refresh` of an :class:`AsyncTokenService`."""
        refused = self._refused(method, headers)
        if refused is not None:
            return refused
        token = self.cookie.read(headers.get("cookie"))
        if token is None:
            return self._invalid()
        try:
            jkt = None
            if service.dpop is not None and "dpop" in headers and url is not None:
                jkt = (await service.check_proof(headers.get("dpop"), method=method, url=url)).jkt
            pair = await service.refresh(token, dpop_jkt=jkt)
        except InvalidProof as exc:
            return dpop_token_error(service, exc)
        except InvalidToken:
            return self._invalid()
        return self.login(pair, now=service.clock.now(), nonce=service.dpop_nonce())

    async def logout_async(
        self,
        service: AsyncTokenService,
        method: str,
        headers: Mapping[str, str],
        *,
        access: AccessClaims | None = None,
        url: str | None = None,
    ) -> Reply:
        """The :meth:`logout` of an :class:`AsyncTokenService`."""
        refused = self._refused(method, headers)
        if refused is not None:
            return refused
        token = self.cookie.read(headers.get("cookie"))
        try:
            jkt = None if access is None else bound_jkt(access.claims)
            if jkt is None and service.dpop is not None and "dpop" in headers and url is not None:
                jkt = (await service.check_proof(headers.get("dpop"), method=method, url=url)).jkt
            await service.logout(refresh_token=token, access=access, dpop_jkt=jkt)
        except InvalidProof as exc:
            return dpop_token_error(service, exc)
        except InvalidToken:
            pass  # ended already, or garbage: clear the cookie anyway
        return self._logged_out()


UNAUTHORIZED = Reply(
    401,
    [*_NO_STORE, ("www-authenticate", 'Bearer error="invalid_token"')],
    b'{"error":"invalid_token"}',
)


def dpop_unauthorized(service: TokenService | AsyncTokenService, exc: InvalidProof) -> Reply:
    """The ``401`` refusing a DPoP request (RFC 9449 §7.1): ``use_dpop_nonce`` with the current
    nonce, ``invalid_token`` for a bound token sent as a bearer token, ``invalid_dpop_proof``
    otherwise."""
    policy = service.dpop
    algs = policy.algs_param if policy is not None else "ES256"
    if exc.reason == "use_dpop_nonce":
        error = "use_dpop_nonce"
    elif exc.reason == "dpop-scheme":
        error = "invalid_token"
    else:
        error = "invalid_dpop_proof"
    headers = [*_NO_STORE, ("www-authenticate", f'DPoP error="{error}", algs="{algs}"')]
    nonce = service.dpop_nonce()
    if nonce is not None:
        headers.append((NONCE_HEADER, nonce))
    return Reply(401, headers, json.dumps({"error": error}).encode("ascii"))


def dpop_token_error(service: TokenService | AsyncTokenService, exc: InvalidProof) -> Reply:
    """A token endpoint's refusal of a DPoP proof (RFC 9449 §5, §8): ``400`` with
    ``{"error": "use_dpop_nonce"}`` (sign again with the nonce in ``DPoP-Nonce``) or
    ``{"error": "invalid_dpop_proof"}``, and the current nonce when nonces are on."""
    error = "use_dpop_nonce" if exc.reason == "use_dpop_nonce" else "invalid_dpop_proof"
    nonce = service.dpop_nonce()
    extra = () if nonce is None else ((NONCE_HEADER, nonce),)
    return _json(400, {"error": error}, *extra)


def _credentials(headers: Mapping[str, str], dpop: bool) -> tuple[str, str]:
    if not dpop:
        token = bearer_token(headers)
        if token is None:
            raise InvalidToken("missing")
        return "bearer", token
    found = authorization(headers)
    if found is None:
        raise InvalidToken("missing")
    return found


def authenticate(
    service: TokenService,
    headers: Mapping[str, str],
    *,
    check_session: bool = False,
    method: str = "GET",
    url: str | None = None,
) -> AccessClaims:
    """The claims of the request's Bearer access token; ``InvalidToken`` otherwise (answer it
    with :data:`UNAUTHORIZED`, or :func:`dpop_unauthorized` for an ``InvalidProof``). The token
    is read from ``Authorization`` only, never from a cookie, the query string or the body.
    With DPoP on, pass the request's ``method`` and absolute ``url``."""
    scheme, token = _credentials(headers, service.dpop is not None)
    return service.authenticate(
        token,
        check_session=check_session,
        proof=headers.get("dpop"),
        method=method,
        url=url,
        scheme=scheme,
    )


async def authenticate_async(
    service: AsyncTokenService,
    headers: Mapping[str, str],
    *,
    check_session: bool = False,
    method: str = "GET",
    url: str | None = None,
) -> AccessClaims:
    """The :func:`authenticate` of an :class:`AsyncTokenService`."""
    scheme, token = _credentials(headers, service.dpop is not None)
    return await service.authenticate(
        token,
        check_session=check_session,
        proof=headers.get("dpop"),
        method=method,
        url=url,
        scheme=scheme,
    )
