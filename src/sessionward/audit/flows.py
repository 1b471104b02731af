"""The scenario's steps over HTTP: log in, check the session, log out, send an action.

Requests look like a browser's: unsafe requests carry the target's ``Origin``, a same-origin
``Sec-Fetch-Site`` and a ``Referer``, and form fields come from the page that holds the form
(hidden anti-CSRF fields included), so a correct site accepts them and a probe can then
remove one thing at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from sessionward.audit.errors import TargetError
from sessionward.audit.forms import find_form, parse_forms
from sessionward.audit.scenario import Expect, RequestSpec, Scenario
from sessionward.audit.transport import Actor, Exchange, Network

__all__ = ["Flows", "LoggedIn", "browser_origin"]


def browser_origin(url: str) -> str:
    """The ``Origin`` a browser sends for pages at ``url`` (default port left out)."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


@dataclass(frozen=True, slots=True)
class LoggedIn:
    token: str
    answer: Exchange  # the login answer (before redirects)
    landing: Exchange  # where the redirects ended


class Flows:
    def __init__(self, scenario: Scenario, network: Network) -> None:
        self.scenario = scenario
        self.network = network
        self.origin = browser_origin(network.base_url)

    # -- the token, wherever the scenario keeps it -----------------------------------------------

    def token(self, actor: Actor) -> str | None:
        if self.scenario.transport == "cookie":
            return actor.jar.get(self.scenario.cookie or "")
        return actor.bearer

    def present(self, actor: Actor, token: str) -> None:
        """Make ``actor`` carry ``token`` (and nothing else of the session)."""
        if self.scenario.transport == "cookie":
            actor.jar[self.scenario.cookie or ""] = token
        else:
            actor.bearer = token

    # -- steps ----------------------------------------------------------------------------------

    def same_origin_headers(
        self, referer: str | None = None, *, json: bool = False
    ) -> dict[str, str]:
        return {
            "origin": self.origin,
            "referer": referer or self.network.base_url,
            "sec-fetch-site": "same-origin",
            "sec-fetch-mode": "cors" if json else "navigate",
            "sec-fetch-dest": "empty" if json else "document",
        }

    def login(self, actor: Actor, *, check: bool = True) -> LoggedIn:
        """Log ``actor`` in. Cookies it already holds are sent (the fixation probe relies
        on it). Raises :class:`TargetError` when the scenario's login does not work."""
        spec = self.scenario.login
        creds = spec.credentials()
        fields: dict[str, Any] = {}
        url = spec.url
        page_url = None
        if spec.page:
            page = actor.follow(actor.get(spec.page))
            page_url = page.url
            if spec.kind == "form":
                target = None if spec.url == spec.page else self.network.url(spec.url)
                form = find_form(parse_forms(page.text, page.url), target, password=True)
                if form is None:
                    raise TargetError(f"no login form with a password field on {spec.page}")
                fields.update(form.fields)
                url = form.action
        fields.update(spec.extra)
        fields[spec.username_field] = creds.username
        fields[spec.password_field] = creds.password
        headers = self.same_origin_headers(page_url, json=spec.kind == "json")
        if spec.kind == "form":
            answer = actor.request(
                "POST", url, form={k: str(v) for k, v in fields.items()}, headers=headers
            )
        else:
            answer = actor.request("POST", url, json=fields, headers=headers)
            token = _dig(answer.json(), spec.token or "")
            if isinstance(token, str) and token:
                actor.bearer = token
                self.network.redactor.add(token)
                self.network.session_tokens.add(token)
        landing = actor.follow(answer)
        token = self.token(actor)
        if token is None:
            raise TargetError(
                f"login answered {answer.status} and gave no session token"
                f" ({self._where_token()}); check the credentials and [login]"
            )
        if check and not self.authenticated(actor)[0]:
            raise TargetError(
                f"after login, {self.scenario.authenticated.path} is not recognised as"
                " authenticated; check [authenticated]"
            )
        return LoggedIn(token, answer, landing)

    def _where_token(self) -> str:
        if self.scenario.transport == "cookie":
            return f"no {self.scenario.cookie} cookie"
        return f"nothing at {self.scenario.login.token} in the JSON answer"

    def authenticated(self, actor: Actor, **kw: Any) -> tuple[bool, Exchange]:
        """Request the authenticated page; did it come back as authenticated?"""
        spec = self.scenario.authenticated
        answer = actor.request(spec.method, spec.path, headers=dict(spec.headers), **kw)
        return matches(answer, self.scenario.recognise), answer

    def logout(self, actor: Actor) -> Exchange | None:
        spec = self.scenario.logout
        if spec is None:
            return None
        return self.send(actor, spec)

    def send(
        self,
        actor: Actor,
        spec: RequestSpec,
        *,
        page_fields: bool = True,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        observe: bool = True,
    ) -> Exchange:
        """Send ``spec`` as a browser would (fields from its page, same-origin headers);
        ``headers`` replace the browser headers, ``page_fields=False`` leaves out the
        fields taken from the page (the anti-CSRF token among them)."""
        form = dict(self.page_fields(actor, spec, observe=observe)) if page_fields else {}
        referer = self.network.url(spec.fields_from) if spec.fields_from else None
        sent = self.same_origin_headers(referer, json=spec.json is not None)
        if headers is not None:
            sent = dict(headers)
        sent.update(spec.headers)
        method = method or spec.method
        if spec.json is not None:
            body = {**form, **spec.json} if isinstance(spec.json, dict) else spec.json
            return actor.request(method, spec.path, json=body, headers=sent, observe=observe)
        form.update(spec.form or {})
        if method == "GET":
            query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in form.items())
            target = f"{spec.path}?{query}" if query else spec.path
            return actor.request("GET", target, headers=sent, observe=observe)
        return actor.request(method, spec.path, form=form or None, headers=sent, observe=observe)

    def page_fields(
        self, actor: Actor, spec: RequestSpec, *, observe: bool = True
    ) -> dict[str, str]:
        if spec.fields_from is None:
            return {}
        page = actor.get(spec.fields_from, observe=observe)
        if page.redirect:
            page = actor.follow(page)
        form = find_form(parse_forms(page.text, page.url), self.network.url(spec.path))
        return dict(form.fields) if form is not None else {}


def matches(answer: Exchange, expect: Expect) -> bool:
    if answer.status not in expect.status:
        return False
    if expect.contains is not None and expect.contains not in answer.text:
        return False
    return expect.location is None or expect.location in (answer.location or "")


def _dig(data: Any, path: str) -> Any:
    for part in path.split(".") if path else []:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _quote(value: str) -> str:
    return quote(str(value), safe="")
