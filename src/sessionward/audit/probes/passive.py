"""Checks that watch every answer the other probes provoke (nothing of their own is sent but
one request for the query-string test).

* cookies: every ``Set-Cookie`` is linted (WSTG-SESS-02), once per cookie and problem;
* exposure (WSTG-SESS-04): a session token in a URL (request, ``Location``, links in a page),
  in a body, cacheable answers that set a token or show the authenticated page, HSTS on
  HTTPS targets, plain HTTP; and, actively, whether the token is accepted from the query
  string.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, urlsplit

from sessionward.audit.context import Context
from sessionward.audit.cookies import lint
from sessionward.audit.findings import Severity
from sessionward.audit.flows import matches
from sessionward.audit.transport import Exchange

__all__ = ["Watch", "plan", "url_token_probe"]

_HEURISTIC = {200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501}
_LINK = r"""(?:href|src|action)\s*=\s*["'][^"']*{}"""
_HSTS_YEAR = 31_536_000
_QUERY_NAMES = ("sid", "session", "sessionid", "token", "access_token")


class Watch:
    """The passive observer: attach with ``network.observers.append(watch)``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.https = ctx.network.https
        self.hsts_missing = 0
        self.hsts_seen: set[str] = set()
        self.answers = 0

    def __call__(self, exchange: Exchange) -> None:
        self.answers += 1
        self._learn(exchange)
        self._cookies(exchange)
        self._urls(exchange)
        self._body(exchange)
        self._cache(exchange)
        if self.https:
            value = exchange.header("strict-transport-security")
            if value is None:
                self.hsts_missing += 1
            else:
                self.hsts_seen.add(value)

    def _learn(self, exchange: Exchange) -> None:
        name = self.ctx.scenario.cookie
        for cookie in exchange.set_cookies:
            if cookie.name == name and not cookie.deletes():
                self.ctx.network.session_tokens.add(cookie.value)

    def _cookies(self, exchange: Exchange) -> None:
        path = urlsplit(exchange.url).path
        for cookie in exchange.set_cookies:
            session = cookie.name == self.ctx.scenario.cookie
            for issue in lint(cookie, session=session, https=self.https):
                self.ctx.report(
                    issue.rule,
                    f"{issue.cookie}: {issue.problem}",
                    url=exchange.url,
                    evidence={
                        "set_cookie": cookie.shape(),
                        "answer_to": f"{exchange.method} {path}",
                    },
                    key=f"{issue.cookie}:{issue.problem}",
                )

    def _tokens_in(self, text: str) -> list[str]:
        return [t for t in self.ctx.network.session_tokens if t in text]

    def _urls(self, exchange: Exchange) -> None:
        for place, url in (("request URL", exchange.url), ("Location header", exchange.location)):
            if url and self._tokens_in(url):
                self.ctx.report(
                    "token-in-url",
                    f"a session token appears in the {place}",
                    url=exchange.url,
                    evidence={"where": place, "value": url, "status": exchange.status},
                )
        for token in self._tokens_in(exchange.text):
            if re.search(_LINK.format(re.escape(token)), exchange.text):
                self.ctx.report(
                    "token-in-url",
                    "a page links to a URL that carries the session token",
                    url=exchange.url,
                    evidence={"where": "link in the page", "status": exchange.status},
                )

    def _body(self, exchange: Exchange) -> None:
        login = self.ctx.network.url(self.ctx.scenario.login.url)
        if self.ctx.scenario.transport == "bearer" and exchange.url == login:
            return  # the login answer is where a bearer token is meant to be
        if self._tokens_in(exchange.text):
            self.ctx.report(
                "token-in-body",
                "a session token is printed in a response body",
                url=exchange.url,
                evidence={
                    "answer_to": f"{exchange.method} {urlsplit(exchange.url).path}",
                    "status": exchange.status,
                },
                key="body",
            )

    def _cache(self, exchange: Exchange) -> None:
        why = self._private(exchange)
        if why is None:
            return
        control = (exchange.header("cache-control") or "").lower()
        if "no-store" in control:
            return
        weak = "no-cache" in control or "max-age=0" in control or _expired(exchange)
        if not weak and not _cacheable(exchange, control):
            return
        path = urlsplit(exchange.url).path
        self.ctx.report(
            "cache-weak" if weak else "cache-missing",
            f"an answer that {why} is {'revalidated but stored' if weak else 'cacheable'}",
            url=exchange.url,
            evidence={
                "answer_to": f"{exchange.method} {path}",
                "status": exchange.status,
                "cache_control": control or None,
                "expires": exchange.header("expires"),
            },
            key=why,
        )

    def _private(self, exchange: Exchange) -> str | None:
        scenario = self.ctx.scenario
        name = scenario.cookie
        if any(c.name == name and not c.deletes() for c in exchange.set_cookies):
            return "sets the session token"
        if scenario.transport == "bearer" and self._tokens_in(exchange.text):
            return "carries a token"
        path = urlsplit(exchange.url).path
        if path == scenario.authenticated.path and 200 <= exchange.status < 300:
            sent = exchange.request_headers
            if "cookie" in sent or "authorization" in sent:
                return "shows the authenticated page"
        return None

    def finish(self) -> None:
        ctx = self.ctx
        if not self.https:
            host = urlsplit(ctx.network.base_url).hostname or ""
            local = _loopback(host)
            ctx.report(
                "plain-http",
                "the target is plain HTTP"
                + (" on a loopback address: transport checks (HSTS) are skipped" if local else ""),
                url=ctx.network.base_url,
                severity=Severity.INFO if local else None,
            )
            return
        if self.hsts_missing:
            ctx.report(
                "hsts-missing",
                f"{self.hsts_missing} of {self.answers} answers carry no Strict-Transport-Security",
                url=ctx.network.base_url,
            )
        for value in sorted(self.hsts_seen):
            problems = _hsts_problems(value)
            if problems:
                ctx.report(
                    "hsts-weak",
                    "; ".join(problems),
                    url=ctx.network.base_url,
                    evidence={"strict_transport_security": value},
                    key=value,
                )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _hsts_problems(value: str) -> list[str]:
    lowered = value.lower()
    match = re.search(r"max-age\s*=\s*\"?(\d+)", lowered)
    problems = []
    if match is None or int(match.group(1)) < _HSTS_YEAR:
        problems.append("max-age below one year")
    if "includesubdomains" not in lowered:
        problems.append("no includeSubDomains")
    return problems


def _expired(exchange: Exchange) -> bool:
    expires = exchange.header("expires")
    return expires is not None and expires.strip() in ("0", "-1")


def _cacheable(exchange: Exchange, control: str) -> bool:
    if re.search(r"(?:max-age|s-maxage)\s*=\s*[1-9]", control) or "public" in control:
        return True
    return exchange.status in _HEURISTIC


def url_token_probe(ctx: Context) -> None:
    """Log in, then present the token only in the query string from a fresh client."""
    victim = ctx.actor("url-victim")
    token = ctx.flows.login(victim).token
    names = [ctx.scenario.cookie or "", *_QUERY_NAMES]
    path = ctx.scenario.authenticated.path
    for name in dict.fromkeys(n for n in names if n):
        stranger = ctx.actor("url-stranger")
        sep = "&" if "?" in path else "?"
        # Not observed: this request puts the token in a URL on purpose.
        answer = stranger.get(f"{path}{sep}{quote(name)}={quote(token, safe='')}", observe=False)
        if matches(answer, ctx.scenario.recognise):
            ctx.report(
                "token-accepted-from-url",
                f"the authenticated page answers a client that sends the token only as ?{name}=",
                url=answer.url,
                evidence={"parameter": name, "status": answer.status},
            )
            return


def plan(ctx_scenario_cookie: str | None, authenticated: str) -> list[str]:
    names = ", ".join(dict.fromkeys(n for n in (ctx_scenario_cookie, *_QUERY_NAMES) if n))
    return [
        "cookies: lint every Set-Cookie the other probes receive (no requests of their own)",
        "exposure: watch URLs, bodies, caching and HSTS of every answer",
        f"exposure: log in once; GET {authenticated}?NAME=<token> from a fresh client for"
        f" NAME in {names}",
    ]
