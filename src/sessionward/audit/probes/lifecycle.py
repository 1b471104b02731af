"""A session's life from outside: fixation at login (WSTG-SESS-03), logout (WSTG-SESS-06),
the same token from a second client (WSTG-SESS-09) and many sessions at once (WSTG-SESS-11).

Every replay goes through a fresh client holding only the token under test, so nothing else
in a jar can make a dead token look alive.
"""

from __future__ import annotations

import secrets
import string

from sessionward.audit.context import OTHER_USER_AGENT, Context
from sessionward.audit.transport import Actor

__all__ = [
    "alive",
    "concurrent",
    "fixation",
    "logout",
    "plan_concurrent",
    "plan_fixation",
    "plan_logout",
    "plan_replay",
    "replay",
]

_FORWARDED = "203.0.113.7"  # TEST-NET-3 (RFC 5737): never a real client


def alive(ctx: Context, token: str, name: str = "replayer", **headers: str) -> bool:
    """Does ``token`` alone, from a fresh client, reach the authenticated page?"""
    actor = ctx.actor(name, **headers)
    ctx.flows.present(actor, token)
    return ctx.flows.authenticated(actor)[0]


def fixation(ctx: Context) -> None:
    flows, scenario = ctx.flows, ctx.scenario
    victim = ctx.actor("fixation-victim")
    if scenario.login.page:
        victim.follow(victim.get(scenario.login.page))
    before = flows.token(victim)
    after = flows.login(victim).token
    login_url = ctx.network.url(scenario.login.url)
    if before is not None:
        if before == after:
            ctx.report(
                "fixation-no-rotation",
                "the session token held before login is the one used after it",
                url=login_url,
            )
        elif alive(ctx, before):
            ctx.report(
                "fixation-old-token-alive",
                "the pre-login token reaches the authenticated page after login",
                url=login_url,
            )
    second = ctx.actor("second-login")
    if flows.login(second).token == after:
        ctx.report(
            "token-reused-across-logins",
            "two separate logins received the same token",
            url=login_url,
        )
    if scenario.transport != "cookie":
        return
    planted = _lookalike(after)
    attacker_choice = ctx.actor("fixation-planted")
    attacker_choice.jar[scenario.cookie or ""] = planted
    ctx.network.redactor.add(planted)
    if flows.login(attacker_choice).token == planted:
        ctx.report(
            "fixation-adopted-id",
            "a session id made up by the client was kept through"
            " login: an attacker can fix a victim's session id",
            url=login_url,
        )


def _lookalike(token: str) -> str:
    """A value of the same length and alphabet as ``token``, never issued by the server."""
    alphabet = sorted(set(token)) if len(set(token)) >= 8 else list(string.hexdigits.lower())
    keep = len(token) // 8  # a static prefix such as a version often leads
    return token[:keep] + "".join(secrets.choice(alphabet) for _ in token[keep:])


def logout(ctx: Context) -> None:
    if ctx.scenario.logout is None:
        ctx.note("logout: no [logout] in the scenario; logout probe skipped")
        return
    user = ctx.actor("logout-user")
    token = ctx.flows.login(user).token
    answer = ctx.flows.logout(user)
    if answer is None:
        return
    if ctx.scenario.transport == "cookie" and answer.cookie(ctx.scenario.cookie or "") is None:
        ctx.report(
            "logout-cookie-kept",
            "the logout answer does not expire or replace the session cookie",
            url=answer.url,
            evidence={"status": answer.status},
        )
    if alive(ctx, token):
        ctx.report(
            "logout-replay",
            "after logout, the old token still reaches the authenticated page",
            url=answer.url,
            evidence={"logout_status": answer.status},
        )


def replay(ctx: Context) -> None:
    victim = ctx.actor("victim")
    token = ctx.flows.login(victim).token
    headers = {"accept-language": "fr-CH,fr;q=0.9"}
    if ctx.scenario.trusts_forwarded_for:
        headers["x-forwarded-for"] = _FORWARDED
    accepted = alive(ctx, token, "second-client", user_agent=OTHER_USER_AGENT, **headers)
    victim_alive = ctx.flows.authenticated(victim)[0]
    changed = "user agent and language" + (
        " and client address (X-Forwarded-For)" if ctx.scenario.trusts_forwarded_for else ""
    )
    if accepted:
        outcome = "accepted" + ("" if victim_alive else "; the victim's session then ended")
    else:
        outcome = "rejected: the session is bound to its client"
    ctx.report(
        "replay-other-client",
        f"the victim's token from a second client with another {changed}: {outcome}",
        evidence={"accepted": accepted, "victim_still_signed_in": victim_alive, "changed": changed},
    )


def concurrent(ctx: Context) -> None:
    count = ctx.options.concurrent_logins
    actors: list[Actor] = []
    with ctx.progress.task(f"{count} concurrent logins", count) as advance:
        for index in range(count):
            actor = ctx.actor(f"concurrent-{index}")
            ctx.flows.login(actor)
            actors.append(actor)
            advance(1)
    alive_now = [ctx.flows.authenticated(a)[0] for a in actors]
    valid = sum(alive_now)
    oldest = "ended" if not alive_now[0] else "still valid"
    detail = (
        f"{count} logins of one account: {valid} sessions valid afterwards; the first"
        f" session is {oldest}"
    )
    evidence = {"logins": count, "valid": valid, "valid_by_login_order": alive_now}
    ctx.data["concurrent"] = evidence
    ctx.report("concurrent-sessions", detail, evidence=evidence)
    stated = ctx.scenario.max_sessions
    if stated is not None and valid > stated:
        ctx.report(
            "concurrent-over-limit",
            f"{valid} sessions valid at once; the stated limit is {stated}",
            evidence=evidence,
        )


def _steps(ctx: Context) -> tuple[str, str]:
    login = ctx.scenario.login
    how = f"{'GET ' + login.page + ', ' if login.page else ''}POST {login.url}"
    return how, f"GET {ctx.scenario.authenticated.path}"


def plan_fixation(ctx: Context) -> list[str]:
    how, auth = _steps(ctx)
    return [
        f"fixation: log in 3 times ({how}), once holding a made-up session id; {auth}"
        " with the pre-login token"
    ]


def plan_logout(ctx: Context) -> list[str]:
    spec = ctx.scenario.logout
    if spec is None:
        return ["logout: skipped (no [logout])"]
    return [f"logout: log in, {spec.method} {spec.path}, {_steps(ctx)[1]} with the old token"]


def plan_replay(ctx: Context) -> list[str]:
    extra = ", X-Forwarded-For" if ctx.scenario.trusts_forwarded_for else ""
    return [f"replay: log in, {_steps(ctx)[1]} from a second client (other user agent{extra})"]


def plan_concurrent(ctx: Context) -> list[str]:
    n = ctx.options.concurrent_logins
    return [f"concurrent: log in {n} times, then {_steps(ctx)[1]} with each token"]
