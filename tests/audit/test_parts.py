"""The auditor's parts on their own: scenario checks, the cookie lint, redaction, scope, the
rate limit, forms, JOSE helpers, and the catalogue."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from sessionward.audit.cookies import lint, parse_set_cookie
from sessionward.audit.errors import OutOfScope, ScenarioError
from sessionward.audit.findings import RULES, Severity
from sessionward.audit.forms import find_form, parse_forms
from sessionward.audit.jose import b64e, compact, crack_hmac, pem_variants, wordlist
from sessionward.audit.redact import Redactor, mask
from sessionward.audit.transport import Network, RateLimiter, origin_of

from .conftest import scenario

MINIMAL = """
[session]
cookie = "__Host-id"
[login]
form = "/login"
[authenticated]
path = "/me"
"""


def test_a_minimal_scenario_takes_the_defaults() -> None:
    parsed = scenario(MINIMAL)
    assert parsed.transport == "cookie"
    assert parsed.login.page == "/login"
    assert parsed.login.username_env == "SESSIONWARD_AUDIT_USER"
    assert parsed.recognise.status == (200,)
    assert parsed.harvest is None  # each sample is then a login


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[timeouts]\nidel = 5", "unknown key timeouts.idel"),
        ("[timeouts]\nidle = 'soon'", "timeouts.idle must be a positive duration"),
        ("[logout]\npath = 'https://evil.example/x'", "logout.path must be a path"),
        ("[harvest]\npath = '//evil.example/'", "harvest.path must be a path"),
        ("[[action]]\npath = '/x'\nmethod = 'GET'", "its method is not GET"),
        ("[sessions]\nmax_per_user = 0", "max_per_user must be a positive integer"),
    ],
)
def test_scenario_mistakes_are_named(extra: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        scenario(MINIMAL + extra)


def test_durations_and_bearer_rules() -> None:
    assert scenario(MINIMAL + "[timeouts]\nidle = '15m'\nabsolute = '8h'").idle_timeout == 900
    with pytest.raises(ScenarioError, match=r"login\.token"):
        scenario(MINIMAL.replace('cookie = "__Host-id"', 'transport = "bearer"'))


def test_missing_credentials_name_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SESSIONWARD_AUDIT_USER", raising=False)
    monkeypatch.setenv("SESSIONWARD_AUDIT_PASSWORD", "x")
    with pytest.raises(ScenarioError, match=r"set SESSIONWARD_AUDIT_USER$"):
        scenario(MINIMAL).login.credentials()
    monkeypatch.setenv("SESSIONWARD_AUDIT_USER", "u")
    assert "x" not in repr(scenario(MINIMAL).login.credentials())


# -- cookies ---------------------------------------------------------------------------------


def rules(header: str, *, session: bool = True, https: bool = True) -> list[str]:
    cookie = parse_set_cookie(header)
    assert cookie is not None
    return sorted(issue.rule for issue in lint(cookie, session=session, https=https))


def test_the_strongest_session_cookie_passes() -> None:
    assert rules("__Host-id=abc; Path=/; Secure; HttpOnly; SameSite=Strict") == []


def test_a_bare_session_cookie_fails_every_rule() -> None:
    assert rules("SID=abc") == [
        "cookie-no-httponly", "cookie-no-prefix", "cookie-no-samesite", "cookie-no-secure",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("__Host-id=a; Path=/x; Secure; HttpOnly; SameSite=Lax", ["cookie-prefix-violated"]),
        ("__host-id=a; Path=/; Domain=x.example; Secure; HttpOnly; SameSite=Lax",
         ["cookie-domain", "cookie-prefix-violated"]),
        ("__Secure-id=a; Path=/; HttpOnly; SameSite=Lax",
         ["cookie-no-secure", "cookie-prefix-violated"]),
        ("__Host-id=a; Path=/; Secure; HttpOnly; SameSite=None", ["cookie-samesite-none"]),
        ("__Host-id=a; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600",
         ["cookie-persistent"]),
        ("__Host-id=; Path=/; Max-Age=0", []),  # a deletion is not linted
    ],
)  # fmt: skip
def test_cookie_rules(header: str, expected: list[str]) -> None:
    assert rules(header) == expected


def test_other_cookies_need_only_secure_and_samesite() -> None:
    assert rules("theme=dark; Path=/", session=False) == ["cookie-weak-attributes"]
    assert rules("csrf=x; Path=/; Secure; SameSite=Strict", session=False) == []


def test_set_cookie_shape_hides_the_value() -> None:
    cookie = parse_set_cookie("SID=supersecretvalue; Path=/; HttpOnly")
    assert cookie is not None
    assert cookie.shape() == "SID=<16 chars>; path=/; httponly"


# -- redaction, scope, rate ------------------------------------------------------------------


def test_redaction_masks_known_tokens_and_any_jwt() -> None:
    redactor = Redactor()
    redactor.add("sw1_abcdefghijklmnop")
    redactor.add("short")  # too short to mask safely
    jwt = compact({"alg": "HS256"}, {"sub": "alice"}, b"signature")
    text = redactor.text(f"Location: /a?sid=sw1_abcdefghijklmnop&x=short {jwt}")
    assert "sw1_abcdefghijklmnop" not in text
    assert jwt not in text
    assert text.count("«token ") == 2
    assert "x=short" in text
    masked = mask("sw1_abcdefghijklmnop")
    assert masked.startswith("«token 20 chars #")
    assert redactor.evidence({"a": ["sw1_abcdefghijklmnop", 3]}) == {"a": [masked, 3]}


def test_requests_outside_the_origin_are_refused() -> None:
    network = Network("https://shop.example/app/")
    assert network.url("/login") == "https://shop.example/login"
    assert network.url("https://SHOP.example:443/x") == "https://SHOP.example:443/x"
    for outside in ("//evil.example/x", "http://shop.example/x", "https://shop.example:8443/",
                    "https://evil.example/", "file:///etc/passwd"):  # fmt: skip
        with pytest.raises(OutOfScope):
            network.url(outside)
    assert origin_of("http://[::1]/x") == "http://[::1]:80"


def test_the_rate_limit_spaces_requests() -> None:
    limiter = RateLimiter(200)
    start = time.monotonic()
    for _ in range(41):
        limiter.acquire()
    assert time.monotonic() - start >= 0.19  # 40 gaps of 5 ms


# -- forms, JOSE, catalogue ------------------------------------------------------------------


def test_forms_give_what_a_browser_submits() -> None:
    page = (
        '<form action="/cart/add" method="post"><input type="hidden" name="csrf" value="t1">'
        '<input name="item" value="tea"><input type="checkbox" name="gift">'
        '<button name="go">Add</button></form>'
        '<form action="/login" method="post"><input name="u"><input type="password" name="p">'
        "</form>"
    )
    forms = parse_forms(page, "https://shop.example/")
    cart = find_form(forms, "https://shop.example/cart/add")
    assert cart is not None
    assert cart.fields == {"csrf": "t1", "item": "tea"}
    assert cart.hidden() == {"csrf": "t1"}
    login = find_form(forms, password=True)
    assert login is not None
    assert login.action == "https://shop.example/login"


def test_pem_variants_match_what_the_key_library_writes() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from sessionward.jwt.keys import key_from_jwk  # noqa: F401 - the JWK shape is standard

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    numbers = rsa_key.public_numbers()
    jwk = {"kty": "RSA", "n": b64e(numbers.n.to_bytes(256, "big")), "e": b64e(b"\x01\x00\x01")}
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    pkcs1 = serialization.PublicFormat.PKCS1
    pem = serialization.Encoding.PEM
    assert rsa_key.public_bytes(pem, spki) in pem_variants(jwk)
    assert rsa_key.public_bytes(pem, pkcs1) in pem_variants(jwk)
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = ec_key.public_numbers()
    ec_jwk = {"kty": "EC", "crv": "P-256", "x": b64e(point.x.to_bytes(32, "big")),
              "y": b64e(point.y.to_bytes(32, "big"))}  # fmt: skip
    assert ec_key.public_bytes(pem, spki) in pem_variants(ec_jwk)


def test_a_wordlist_secret_is_cracked_offline() -> None:
    words = list(wordlist())
    assert "your-256-bit-secret" in words
    assert len(words) >= 150
    head = compact({"alg": "HS256", "typ": "JWT"}, {"sub": "alice"}).rsplit(".", 1)[0]
    mac = hmac.new(b"changeme", head.encode(), hashlib.sha256).digest()
    assert crack_hmac(f"{head}.{b64e(mac)}", words) == "changeme"
    strong = hmac.new(b"\x00" * 32, head.encode(), hashlib.sha256).digest()
    assert crack_hmac(f"{head}.{b64e(strong)}", words) is None


def test_every_rule_names_wstg_and_asvs() -> None:
    for rule in RULES.values():
        assert rule.wstg
        assert all(w.startswith("WSTG-SESS-") for w in rule.wstg)
        assert rule.asvs or rule.id == "replay-other-client"  # no requirement covers it
        assert rule.remediation.endswith(".")
    assert Severity.parse("HIGH") is Severity.HIGH
    with pytest.raises(ValueError, match="unknown severity"):
        Severity.parse("urgent")
