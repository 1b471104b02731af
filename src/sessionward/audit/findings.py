"""What the auditor can report: severities, the rule catalogue and one finding.

Every rule names the OWASP ASVS 5.0 requirements and WSTG tests it checks, a default
severity and the fix. A :class:`Finding` is one observation of a rule against the target,
with evidence in which every token is already redacted (see ``sessionward.audit.redact``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RULES", "Finding", "Rule", "Severity"]


class Severity(enum.IntEnum):
    """Ordered: ``Severity.HIGH > Severity.LOW``. ``info`` records a measurement, not a flaw."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r}; use one of {names}") from None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    severity: Severity
    asvs: tuple[str, ...]
    wstg: tuple[str, ...]
    remediation: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation. ``evidence`` holds plain JSON values, tokens redacted."""

    rule: Rule
    severity: Severity
    detail: str
    url: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.rule.id

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.rule.id,
            "title": self.rule.title,
            "severity": self.severity.label,
            "detail": self.detail,
            "url": self.url,
            "asvs": [f"ASVS 5.0 {r}" for r in self.rule.asvs],
            "wstg": list(self.rule.wstg),
            "evidence": self.evidence,
            "remediation": self.rule.remediation,
        }


_S = Severity
_RULES = [
    # -- WSTG-SESS-02: cookie attributes --------------------------------------------------------
    Rule("cookie-no-secure", "Session cookie without Secure", _S.HIGH, ("3.3.1",),
         ("WSTG-SESS-02",),
         "Set Secure on every session cookie so it never travels over plain HTTP."),
    Rule("cookie-no-httponly", "Session cookie readable by scripts (no HttpOnly)", _S.MEDIUM,
         ("3.3.4",), ("WSTG-SESS-02",),
         "Set HttpOnly on session cookies; scripts never need the token."),
    Rule("cookie-no-samesite", "Session cookie without an explicit SameSite", _S.MEDIUM,
         ("3.3.2",), ("WSTG-SESS-02", "WSTG-SESS-05"),
         "Send SameSite=Strict (or Lax where cross-site links must keep the session) explicitly;"
         " browser defaults differ."),
    Rule("cookie-samesite-none", "Session cookie sent on cross-site requests (SameSite=None)",
         _S.MEDIUM, ("3.3.2",), ("WSTG-SESS-02", "WSTG-SESS-05"),
         "Use SameSite=Strict or Lax for session cookies; None only for embedded use, with"
         " Partitioned and a CSRF defence."),
    Rule("cookie-no-prefix", "Session cookie name without the __Host- prefix", _S.LOW,
         ("3.3.1", "3.3.3"), ("WSTG-SESS-02",),
         "Name the cookie __Host-<name> (with Secure, Path=/ and no Domain) so sibling hosts and"
         " plain-HTTP pages cannot overwrite it."),
    Rule("cookie-prefix-violated", "Cookie prefix rules broken", _S.MEDIUM, ("3.3.1", "3.3.3"),
         ("WSTG-SESS-02",),
         "A __Host- cookie needs Secure, Path=/ and no Domain; a __Secure- cookie needs Secure."
         " Browsers drop cookies that break these rules."),
    Rule("cookie-domain", "Session cookie shared with other hosts (Domain attribute)", _S.LOW,
         ("3.3.3",), ("WSTG-SESS-02",),
         "Leave Domain out so the cookie is host-only."),
    Rule("cookie-persistent", "Persistent session cookie (Expires/Max-Age)", _S.LOW, ("7.3.1",),
         ("WSTG-SESS-02",),
         "Prefer non-persistent session cookies; let the server enforce the lifetime."),
    Rule("cookie-too-large", "Cookie over 4096 bytes", _S.LOW, ("3.3.5",), ("WSTG-SESS-02",),
         "Keep name plus value under 4096 bytes; browsers silently drop larger cookies."),
    Rule("cookie-weak-attributes", "Non-session cookie without Secure or SameSite", _S.LOW,
         ("3.3.1", "3.3.2"), ("WSTG-SESS-02",),
         "Set Secure and an explicit SameSite on every cookie."),
    # -- WSTG-SESS-01: token randomness and structure ---------------------------------------------
    Rule("token-low-entropy", "Session tokens carry too little effective entropy", _S.MEDIUM,
         ("7.2.3", "11.5.1"), ("WSTG-SESS-01",),
         "Generate tokens from a CSPRNG with at least 128 bits (e.g. Python's"
         " secrets.token_urlsafe(32))."),
    Rule("token-duplicates", "The same session token was issued twice", _S.CRITICAL,
         ("7.2.2", "7.2.3"), ("WSTG-SESS-01",),
         "Tokens must be unique: draw them from a CSPRNG with at least 128 bits."),
    Rule("token-predictable", "Session tokens are predictable", _S.CRITICAL,
         ("7.2.3", "11.5.1"), ("WSTG-SESS-01",),
         "Never derive tokens from counters, clocks or seeded general-purpose PRNGs; use a"
         " CSPRNG."),
    Rule("token-statistics", "Session tokens fail the randomness tests", _S.MEDIUM,
         ("7.2.3",), ("WSTG-SESS-01",),
         "Use a CSPRNG and encode its output directly, without fixed or derived fields."),
    Rule("token-structure", "Session tokens carry readable data", _S.LOW, ("7.2.3", "14.1.1"),
         ("WSTG-SESS-01",),
         "Make tokens opaque random references; keep data on the server."),
    Rule("token-analysis", "Session token analysis", _S.INFO, ("7.2.3",), ("WSTG-SESS-01",),
         "Passing these tests does not prove tokens unpredictable; review the generator."),
    # -- WSTG-SESS-03: fixation --------------------------------------------------------------------
    Rule("fixation-no-rotation", "Token not renewed at login", _S.HIGH, ("7.2.4",),
         ("WSTG-SESS-03",),
         "Issue a new token when the user logs in (and re-authenticates) and end the old one."),
    Rule("fixation-old-token-alive", "Pre-login token still valid after login", _S.HIGH,
         ("7.2.4",), ("WSTG-SESS-03",),
         "End the pre-login session at login; the old token must stop working."),
    Rule("fixation-adopted-id", "Server adopts a session id chosen by the client", _S.HIGH,
         ("7.2.4",), ("WSTG-SESS-03",),
         "Never accept an unknown session id: treat it as anonymous and issue one of your own."),
    Rule("token-reused-across-logins", "Two logins received the same token", _S.HIGH,
         ("7.2.2",), ("WSTG-SESS-01", "WSTG-SESS-03"),
         "Mint a fresh token at every login."),
    # -- WSTG-SESS-04: exposure --------------------------------------------------------------------
    Rule("token-in-url", "Session token in a URL", _S.HIGH, ("14.2.1",), ("WSTG-SESS-04",),
         "Never put tokens in URLs: they leak through Referer, logs and history."),
    Rule("token-accepted-from-url", "Session token accepted from the query string", _S.MEDIUM,
         ("14.2.1", "7.2.4"), ("WSTG-SESS-04", "WSTG-SESS-03"),
         "Accept the token only from its transport (cookie or Authorization header)."),
    Rule("token-in-body", "Session token echoed in a response body", _S.MEDIUM, ("3.3.4",),
         ("WSTG-SESS-04",),
         "Deliver cookie tokens only through Set-Cookie; never print them into pages."),
    Rule("cache-missing", "Responses with tokens or private data are cacheable", _S.MEDIUM,
         ("14.3.2",), ("WSTG-SESS-04",),
         "Send Cache-Control: no-store on responses that set tokens or show private data."),
    Rule("cache-weak", "Cache-Control without no-store", _S.INFO, ("14.3.2",),
         ("WSTG-SESS-04",),
         "Prefer Cache-Control: no-store over no-cache or max-age=0."),
    Rule("hsts-missing", "No Strict-Transport-Security", _S.MEDIUM, ("3.4.1",),
         ("WSTG-SESS-04", "WSTG-SESS-09"),
         "Send Strict-Transport-Security: max-age=31536000; includeSubDomains on every"
         " response."),
    Rule("hsts-weak", "Strict-Transport-Security too short or without includeSubDomains",
         _S.LOW, ("3.4.1",), ("WSTG-SESS-04", "WSTG-SESS-09"),
         "Use max-age of at least one year (31536000) and includeSubDomains."),
    Rule("plain-http", "Target served over plain HTTP", _S.HIGH, ("12.2.1",),
         ("WSTG-SESS-04",),
         "Serve the whole site over HTTPS and redirect HTTP to HTTPS before any cookie is set."),
    # -- WSTG-SESS-05: CSRF -----------------------------------------------------------------------
    Rule("csrf-cross-site", "State-changing request accepted from another site", _S.HIGH,
         ("3.5.1", "3.5.2"), ("WSTG-SESS-05",),
         "Require an anti-CSRF token bound to the session, and reject Sec-Fetch-Site:"
         " cross-site and foreign Origin headers on unsafe methods."),
    Rule("csrf-no-origin-check", "Cross-site request accepted when it carries the token",
         _S.LOW, ("3.5.1",), ("WSTG-SESS-05",),
         "Check Sec-Fetch-Site (or Origin) as well, so one leaked token is not enough."),
    Rule("csrf-token-optional", "State change accepted without token or origin headers",
         _S.MEDIUM, ("3.5.1",), ("WSTG-SESS-05",),
         "Fail closed: reject unsafe requests that carry neither a valid token nor"
         " Sec-Fetch-Site/Origin."),
    Rule("csrf-content-type", "JSON endpoint accepts a text/plain body from another site",
         _S.HIGH, ("3.5.2",), ("WSTG-SESS-05",),
         "Accept only application/json (which needs a CORS preflight) and check Origin."),
    Rule("csrf-get", "State change reachable with GET", _S.MEDIUM, ("3.5.3",),
         ("WSTG-SESS-05",),
         "Change state only on POST, PUT, PATCH or DELETE."),
    Rule("csrf-login", "Login form accepts cross-site posts (login CSRF)", _S.LOW,
         ("3.5.1", "7.6.2"),
         ("WSTG-SESS-05",),
         "Protect the login form with a pre-session token or Fetch Metadata checks."),
    # -- WSTG-SESS-06: logout ----------------------------------------------------------------------
    Rule("logout-replay", "Token still valid after logout", _S.HIGH, ("7.4.1",),
         ("WSTG-SESS-06",),
         "End the session on the server at logout; for JWTs keep a denylist or per-user cut-off."),
    Rule("logout-cookie-kept", "Logout does not expire the session cookie", _S.LOW, ("7.4.1",),
         ("WSTG-SESS-06",),
         "Answer logout with the cookie expired (empty value, Max-Age=0) and Clear-Site-Data."),
    # -- WSTG-SESS-07: timeouts -------------------------------------------------------------------
    Rule("timeout-idle", "Idle timeout", _S.INFO, ("7.1.1", "7.3.1"), ("WSTG-SESS-07",),
         "Enforce the documented idle timeout on the server."),
    Rule("timeout-idle-exceeded", "Session outlives the stated idle timeout", _S.MEDIUM,
         ("7.3.1",), ("WSTG-SESS-07",),
         "Enforce the documented idle timeout on the server."),
    Rule("timeout-absolute", "Absolute session lifetime", _S.INFO, ("7.1.1", "7.3.2"),
         ("WSTG-SESS-07",),
         "Enforce the documented absolute lifetime on the server."),
    Rule("timeout-absolute-exceeded", "Active session outlives the stated absolute lifetime",
         _S.MEDIUM, ("7.3.2",), ("WSTG-SESS-07",),
         "End sessions at the documented absolute lifetime, however active."),
    # -- WSTG-SESS-09 / SESS-06: replay from another client -----------------------------------
    # No ASVS 5.0 requirement asks for binding a session to its client: a measurement only.
    Rule("replay-other-client", "Token accepted from a second client", _S.INFO, (),
         ("WSTG-SESS-09", "WSTG-SESS-06"),
         "Bearer tokens work wherever they are presented; consider anomaly detection on"
         " device and network changes, and device-bound sessions."),
    # -- WSTG-SESS-11: concurrent sessions ----------------------------------------------------
    Rule("concurrent-sessions", "Concurrent sessions per account", _S.INFO, ("7.1.2",),
         ("WSTG-SESS-11",),
         "Document the limit and what happens when it is reached."),
    Rule("concurrent-over-limit", "More concurrent sessions than the stated limit", _S.MEDIUM,
         ("7.1.2",), ("WSTG-SESS-11",),
         "Enforce the documented per-account session cap."),
    # -- WSTG-SESS-10: JWT --------------------------------------------------------------------
    Rule("jwt-alg-none", "JWT accepted with alg none", _S.CRITICAL, ("9.1.1", "9.1.2"),
         ("WSTG-SESS-10",),
         "Verify against an exact allowlist of algorithms per key; never accept none."),
    Rule("jwt-signature-unchecked", "JWT accepted with a missing or stale signature",
         _S.CRITICAL, ("9.1.1",), ("WSTG-SESS-10",),
         "Verify the signature before reading any claim."),
    Rule("jwt-key-confusion", "JWT accepted when HMAC-signed with the public key", _S.CRITICAL,
         ("9.1.2",), ("WSTG-SESS-10",),
         "Bind each key to exactly one algorithm and check it at verification."),
    Rule("jwt-psychic-signature", "ECDSA JWT accepted with a zero signature", _S.CRITICAL,
         ("9.1.1",), ("WSTG-SESS-10",),
         "Use a maintained JOSE library on a patched runtime (CVE-2022-21449)."),
    Rule("jwt-weak-secret", "JWT HMAC secret found in a wordlist", _S.CRITICAL, ("9.1.1",),
         ("WSTG-SESS-10",),
         "Use a random HMAC key of at least 256 bits, never a password."),
    Rule("jwt-expired-accepted", "Expired JWT accepted", _S.HIGH, ("9.2.1",),
         ("WSTG-SESS-10",),
         "Reject tokens past exp (allow at most a minute of clock skew)."),
    Rule("jwt-no-expiry", "JWT without exp", _S.MEDIUM, ("9.2.1",), ("WSTG-SESS-10",),
         "Put a short exp in every access token and enforce it."),
    Rule("jwt-long-lifetime", "JWT lifetime over a day", _S.LOW, ("9.2.1",), ("WSTG-SESS-10",),
         "Keep access tokens short-lived (minutes) and refresh them."),
    Rule("jwt-no-audience", "JWT without aud", _S.LOW, ("9.2.3", "9.2.4"), ("WSTG-SESS-10",),
         "Put the intended audience in aud and check it at the receiver."),
    Rule("jwt-sensitive-claims", "JWT payload carries personal or secret data", _S.LOW,
         ("14.1.1",), ("WSTG-SESS-10",),
         "JWT payloads are readable by anyone: keep claims minimal."),
    Rule("jwt-claims", "JWT structure", _S.INFO, ("9.1.1",), ("WSTG-SESS-10",),
         "Keep claims minimal and lifetimes short."),
]  # fmt: skip

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}
