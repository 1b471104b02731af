"""Cross-site request forgery (WSTG-SESS-05, ASVS 3.5.1-3.5.3).

For each ``[[action]]``: a logged-in victim first sends it as the site's own page would (it
must succeed, or the probe says so and moves on). Then, each from a freshly logged-in
victim, the requests a hostile page can make the victim's browser send:

* cross-site, without the page's fields (the anti-CSRF token): ``Origin`` of another site,
  ``Sec-Fetch-Site: cross-site``, no ``Referer``;
* without the page's fields and without any origin header (a fail-open check);
* cross-site with the page's fields (is ``Origin``/Fetch Metadata checked at all?);
* a JSON action's body as ``text/plain`` (a form can send that without a CORS preflight);
* the action as a top-level cross-site GET with its fields in the query string.

Login CSRF: the login form posted cross-site without the page's fields. A hostile page can
only send what a browser sends, so success here means the action went through.
"""

from __future__ import annotations

import html
import json

from sessionward.audit.context import Context
from sessionward.audit.flows import matches
from sessionward.audit.scenario import Action
from sessionward.audit.transport import Actor, Exchange

__all__ = ["plan", "run"]

ATTACKER = "https://attacker.example"
_CROSS_SITE = {
    "origin": ATTACKER,
    "sec-fetch-site": "cross-site",
    "sec-fetch-mode": "navigate",
    "sec-fetch-dest": "document",
}


def run(ctx: Context) -> None:
    for action in ctx.scenario.actions:
        _action(ctx, action)
    _login(ctx)
    if not ctx.scenario.actions:
        ctx.note("csrf: no [[action]] in the scenario; only the login form was tested")


def _victim(ctx: Context, name: str) -> Actor:
    actor = ctx.actor(name)
    ctx.flows.login(actor)
    return actor


def _action(ctx: Context, action: Action) -> None:
    flows = ctx.flows
    baseline = flows.send(_victim(ctx, "csrf-baseline"), action.request)
    if not matches(baseline, action.expect):
        ctx.note(
            f"csrf: '{action.name}' did not succeed as a same-origin request"
            f" (status {baseline.status}); check its [[action]].expect"
        )
        return
    spec = action.request
    evidence = {"action": action.name, "request": f"{spec.method} {spec.path}"}
    cross = flows.send(_victim(ctx, "csrf-cross"), spec, page_fields=False, headers=_CROSS_SITE)
    if matches(cross, action.expect):
        ctx.report(
            "csrf-cross-site",
            f"'{action.name}' succeeds from another site without the page's token",
            url=cross.url,
            evidence={**evidence, "status": cross.status, "poc": _poc(ctx, action)},
            key=action.name,
        )
    else:
        bare = flows.send(_victim(ctx, "csrf-bare"), spec, page_fields=False, headers={})
        if matches(bare, action.expect):
            ctx.report(
                "csrf-token-optional",
                f"'{action.name}' succeeds without the page's"
                " token and without Origin or Sec-Fetch-Site",
                url=bare.url,
                evidence={**evidence, "status": bare.status},
                key=action.name,
            )
        with_token = flows.send(_victim(ctx, "csrf-token"), spec, headers=_CROSS_SITE)
        if matches(with_token, action.expect):
            ctx.report(
                "csrf-no-origin-check",
                f"'{action.name}' succeeds with a cross-site"
                " Origin and Sec-Fetch-Site when the token is present",
                url=with_token.url,
                evidence={**evidence, "status": with_token.status},
                key=action.name,
            )
    if spec.json is not None:
        victim = _victim(ctx, "csrf-text-plain")
        plain = victim.request(
            spec.method,
            spec.path,
            content=json.dumps(spec.json),
            headers={**_CROSS_SITE, "content-type": "text/plain"},
        )
        if matches(plain, action.expect):
            ctx.report(
                "csrf-content-type",
                f"'{action.name}' accepts its JSON body sent cross-site as text/plain",
                url=plain.url,
                evidence={**evidence, "status": plain.status},
                key=action.name,
            )
    else:
        victim = _victim(ctx, "csrf-get")
        got = flows.send(victim, spec, page_fields=False, headers=_CROSS_SITE, method="GET")
        if matches(got, action.expect):
            ctx.report(
                "csrf-get",
                f"'{action.name}' also works as a GET",
                url=got.url,
                evidence={**evidence, "status": got.status},
                key=action.name,
            )


def _login(ctx: Context) -> None:
    spec = ctx.scenario.login
    creds = spec.credentials()
    fields = {
        **spec.extra,
        spec.username_field: creds.username,
        spec.password_field: creds.password,
    }
    actor = ctx.actor("login-csrf")
    answer: Exchange
    if spec.kind == "form":
        form_fields = {k: str(v) for k, v in fields.items()}
        answer = actor.request("POST", spec.url, form=form_fields, headers=_CROSS_SITE)
    else:
        answer = actor.request(
            "POST",
            spec.url,
            content=json.dumps(fields),
            headers={**_CROSS_SITE, "content-type": "text/plain"},
        )
    actor.follow(answer)
    if ctx.flows.token(actor) is not None and ctx.flows.authenticated(actor)[0]:
        ctx.report(
            "csrf-login",
            "a cross-site post of the login form signs the browser in",
            url=answer.url,
            evidence={"status": answer.status},
        )


def _poc(ctx: Context, action: Action) -> str:
    """A page that performs the action from another site (HTML, for the report)."""
    spec = action.request
    url = html.escape(ctx.network.url(spec.path), quote=True)
    if spec.json is not None:
        body = html.escape(json.dumps(spec.json), quote=True)
        return (
            f'<form action="{url}" method="POST" enctype="text/plain">'
            f"<input name='{body}' value=\"\"></form><script>document.forms[0].submit()"
            "</script>"
        )
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k, quote=True)}"'
        f' value="{html.escape(v, quote=True)}">'
        for k, v in (spec.form or {}).items()
    )
    return (
        f'<form action="{url}" method="POST">{inputs}</form>'
        "<script>document.forms[0].submit()</script>"
    )


def plan(ctx: Context) -> list[str]:
    lines = []
    for action in ctx.scenario.actions:
        spec = action.request
        lines.append(
            f"csrf: '{action.name}': up to 6 logins; {spec.method} {spec.path} same-origin,"
            f" cross-site without token (Origin {ATTACKER}, Sec-Fetch-Site: cross-site),"
            " without any origin header, cross-site with token, "
            + ("as text/plain" if spec.json is not None else "as GET")
        )
    lines.append(f"csrf: POST {ctx.scenario.login.url} cross-site without the page's fields")
    return lines
