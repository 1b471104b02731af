"""Every RFC 8725 pitfall against the strict verifier, cross-checked.

Each case builds one token and states the expected verdict. For every token the test asserts:

* our verifier's verdict (uncached and cached);
* the reference verdict — PyJWT, and separately joserfc, configured carefully, AND the
  independent policy rules of ``jwt_reference`` — equals it;
* what each library says on its own: it agrees with us unless the case names the library as
  ``lenient`` (it accepts a token our profile rejects, and ``policy_violations`` says which
  rule of ours makes the difference). So every divergence from a well-kept library is
  deliberate, named and pinned.
"""

# ruff: noqa: F811 - the fixtures imported from jwt_fixtures are redefined as parameters

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwt_fixtures import clock  # noqa: F401
from jwt_forge import AUD, DROP, ISS, b64, claims, compact_json, header, token
from jwt_reference import joserfc_accepts, policy_violations, pyjwt_accepts
from servers import wait_until

from sessionward.errors import InvalidToken
from sessionward.jwt import AccessTokenIssuer, AccessTokenVerifier, Key, KeySet, generate_key
from sessionward.jwt.keys import P256_ORDER, EcKey
from sessionward.testing import FakeClock

ALL = ("ES256", "EdDSA", "HS256")
ASYMMETRIC = ("ES256", "EdDSA")
BOTH = frozenset({"pyjwt", "joserfc"})


@dataclass
class Ctx:
    keyset: KeySet
    key: Key
    now: int
    issuer: AccessTokenIssuer
    attacker: dict[str, Key]


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Ctx], str]
    accept: bool
    lenient: frozenset[str] = field(default_factory=frozenset)
    algs: tuple[str, ...] = ALL


def _hs256(secret: bytes, head: dict[str, object], body: dict[str, object]) -> str:
    h, p = b64(compact_json(head)), b64(compact_json(body))
    sig = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(sig)}"


def _with_signature(jws: str, signature: str) -> str:
    h, p, _ = jws.split(".")
    return f"{h}.{p}.{signature}"


def _ecdsa_raw(c: Ctx, r: int, s: int) -> str:
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return token(header(c.key), claims(c.now), None, signature=signature)


def _high_s(c: Ctx) -> str:
    jws = token(header(c.key), claims(c.now), c.key)
    raw = base64.urlsafe_b64decode(jws.split(".")[2] + "==")
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    return _with_signature(jws, b64(r + (P256_ORDER - s).to_bytes(32, "big")))


def _noncanonical_signature(c: Ctx) -> str:
    jws = token(header(c.key), claims(c.now), c.key)
    sig = jws.split(".")[2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # 32- and 64-byte signatures leave unused low bits in the last character: set one.
    last = alphabet[alphabet.index(sig[-1]) | 1]
    return _with_signature(jws, sig[:-1] + last)


def _noncanonical_payload(c: Ctx) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for extra in range(4):  # a payload length that leaves unused bits in the last character
        body = b64(compact_json(claims(c.now, note="x" * extra)))
        if len(body) % 4 in (2, 3):
            break
    head = b64(compact_json(header(c.key)))
    body = body[:-1] + alphabet[alphabet.index(body[-1]) | 1]
    signing_input = f"{head}.{body}".encode("ascii")
    return f"{head}.{body}.{b64(c.key.sign(signing_input))}"


def _edited_payload(c: Ctx) -> str:
    good = token(header(c.key), claims(c.now), c.key)
    h, _, sig = good.split(".")
    evil = b64(compact_json(claims(c.now, sub="admin", scope="admin")))
    return f"{h}.{evil}.{sig}"


def _utf16_header(c: Ctx) -> str:
    head = json.dumps(header(c.key)).encode("utf-16")
    return token(head, claims(c.now), c.key)


def _latin1_payload(c: Ctx) -> str:
    body = json.dumps(claims(c.now, sub="zoë"), ensure_ascii=False).encode("latin-1")
    return token(header(c.key), body, c.key)


def _duplicate_alg(c: Ctx) -> str:
    raw = (f'{{"alg":"none","alg":"{c.key.alg}","kid":"{c.key.kid}","typ":"at+jwt"}}').encode()
    return token(raw, claims(c.now), c.key)


def _json_serialization(c: Ctx) -> str:
    h, p, s = token(header(c.key), claims(c.now), c.key).split(".")
    return json.dumps({"protected": h, "payload": p, "signature": s})


def _json_general(c: Ctx) -> str:
    h, p, s = token(header(c.key), claims(c.now), c.key).split(".")
    return json.dumps({"payload": p, "signatures": [{"protected": h, "signature": s}]})


def _foreign_header_order(c: Ctx) -> str:
    raw = json.dumps({"typ": "at+jwt", "kid": c.key.kid, "alg": c.key.alg}).encode()
    return token(raw, claims(c.now), c.key)


def _confusion_public_pem(c: Ctx) -> str:
    return _hs256(c.key.public_pem(), header(c.key, alg="HS256"), claims(c.now))


def _confusion_public_jwk(c: Ctx) -> str:
    jwk = json.dumps(c.key.public_jwk(), separators=(",", ":")).encode()
    return _hs256(jwk, header(c.key, alg="HS256"), claims(c.now))


def _attacker_es256_on_hs_kid(c: Ctx) -> str:
    return token(header(c.key, alg="ES256"), claims(c.now), c.attacker["ES256"])


def _foreign_key_header(member: str) -> Callable[[Ctx], str]:
    def build(c: Ctx) -> str:
        evil = c.attacker[c.key.alg]
        values: dict[str, object] = {
            "jku": "http://127.0.0.1:9/jwks.json",
            "x5u": "http://127.0.0.1:9/cert.pem",
            "jwk": evil.private_jwk() if evil.symmetric else evil.public_jwk(),
            "x5c": [b64(b"not really a certificate")],
        }
        return token(header(c.key, **{member: values[member]}), claims(c.now), evil)

    return build


def _our_key_with(member: str, value: object) -> Callable[[Ctx], str]:
    return lambda c: token(header(c.key, **{member: value}), claims(c.now), c.key)


def _retired_then_revoked(c: Ctx) -> str:
    jws = token(header(c.key), claims(c.now), c.key)
    c.keyset.add_next(generate_key(c.key.alg), now=c.now)
    c.keyset.rotate(now=c.now, force=True)
    c.keyset.revoke(c.key.kid, now=c.now)
    return jws


def _retired_only(c: Ctx) -> str:
    jws = token(header(c.key), claims(c.now), c.key)
    c.keyset.add_next(generate_key(c.key.alg), now=c.now)
    c.keyset.rotate(now=c.now, force=True)
    return jws


def _alg_header(alg: str, *, signed: bool) -> Callable[[Ctx], str]:
    return lambda c: token(header(c.key, alg=alg), claims(c.now), c.key if signed else None)


def _padded(c: Ctx) -> str:
    return token(header(c.key), claims(c.now), c.key) + "=="


def _oversized(c: Ctx) -> str:
    return token(header(c.key), claims(c.now, blob="x" * 9000), c.key)


NONE_VARIANTS = ("none", "None", "NONE", "nOnE")

CASES: list[Case] = [
    # -- positive controls -----------------------------------------------------------------
    Case(
        "issued-by-us",
        lambda c: c.issuer.issue(subject="alice", session_id=claims(0)["sid"]).token,
        True,
    ),
    Case("forged-with-our-key", lambda c: token(header(c.key), claims(c.now), c.key), True),
    Case("other-header-order", _foreign_header_order, True),
    Case("no-nbf", lambda c: token(header(c.key), claims(c.now, nbf=DROP), c.key), True),
    Case(
        "within-skew-expired-30s",
        lambda c: token(header(c.key), claims(c.now - 330, exp=c.now - 30), c.key),
        True,
    ),
    Case("retired-key-still-verifies", _retired_only, True),
    Case("ecdsa-high-s-is-valid-ecdsa", _high_s, True, algs=("ES256",)),
    # -- alg none, every spelling, with and without a signature ----------------------------
    *[
        Case(
            f"alg-{v}-empty-signature",
            _alg_header(v, signed=False),
            False,
        )
        for v in NONE_VARIANTS
    ],
    *[
        Case(
            f"alg-{v}-our-signature",
            _alg_header(v, signed=True),
            False,
        )
        for v in NONE_VARIANTS
    ],
    Case(
        "alg-none-no-kid",
        lambda c: token({"alg": "none", "typ": "at+jwt"}, claims(c.now), None),
        False,
    ),
    Case("alg-missing", lambda c: token(header(c.key, alg=DROP), claims(c.now), c.key), False),
    # -- key confusion ---------------------------------------------------------------------
    Case("hs256-keyed-with-our-public-pem", _confusion_public_pem, False, algs=ASYMMETRIC),
    Case("hs256-keyed-with-our-public-jwk", _confusion_public_jwk, False, algs=ASYMMETRIC),
    Case("es256-by-attacker-on-our-hs-kid", _attacker_es256_on_hs_kid, False, algs=("HS256",)),
    Case(
        "eddsa-header-on-es256-key",
        lambda c: token(header(c.key, alg="EdDSA"), claims(c.now), c.attacker["EdDSA"]),
        False,
        algs=("ES256",),
    ),
    # -- signatures ------------------------------------------------------------------------
    Case(
        "signature-stripped",
        lambda c: ".".join(token(header(c.key), claims(c.now), c.key).split(".")[:2]),
        False,
    ),
    Case(
        "signature-empty",
        lambda c: _with_signature(token(header(c.key), claims(c.now), c.key), ""),
        False,
    ),
    Case("signature-truncated", lambda c: token(header(c.key), claims(c.now), c.key)[:-2], False),
    Case("signature-noncanonical-base64", _noncanonical_signature, False),
    Case("payload-noncanonical-base64-signed", _noncanonical_payload, False),
    Case("payload-edited-signature-kept", _edited_payload, False),
    Case(
        "psychic-signature-der",
        lambda c: _with_signature(token(header(c.key), claims(c.now), c.key), "MAYCAQACAQA"),
        False,
        algs=("ES256",),
    ),
    Case("psychic-signature-raw-zeros", lambda c: _ecdsa_raw(c, 0, 0), False, algs=("ES256",)),
    Case("ecdsa-r-zero", lambda c: _ecdsa_raw(c, 0, 1), False, algs=("ES256",)),
    Case(
        "ecdsa-r-s-equal-order",
        lambda c: _ecdsa_raw(c, P256_ORDER, P256_ORDER),
        False,
        algs=("ES256",),
    ),
    # -- kid injection ---------------------------------------------------------------------
    Case(
        "kid-path-traversal-empty-key",
        lambda c: _hs256(
            b"", header(c.key, alg="HS256", kid="../../../../../../dev/null"), claims(c.now)
        ),
        False,
    ),
    Case(
        "kid-sql-injection",
        lambda c: _hs256(
            b"k", header(c.key, alg="HS256", kid="x' UNION SELECT 'k'--"), claims(c.now)
        ),
        False,
    ),
    Case(
        "kid-absolute-path",
        lambda c: token(header(c.key, kid="/etc/passwd"), claims(c.now), c.key),
        False,
    ),
    Case("kid-empty", lambda c: token(header(c.key, kid=""), claims(c.now), c.key), False),
    Case("kid-number", lambda c: token(header(c.key, kid=1), claims(c.now), c.key), False),
    Case("kid-missing", lambda c: token(header(c.key, kid=DROP), claims(c.now), c.key), False),
    # -- keys named by the token -----------------------------------------------------------
    *[
        Case(f"foreign-{m}-attacker-signed", _foreign_key_header(m), False)
        for m in ("jku", "x5u", "jwk", "x5c")
    ],
    Case("jku-on-our-own-token", _our_key_with("jku", "http://127.0.0.1:9/jwks.json"), False, BOTH),
    Case("x5u-on-our-own-token", _our_key_with("x5u", "http://127.0.0.1:9/c.pem"), False, BOTH),
    Case("crit-unknown-extension", _our_key_with("crit", ["exp-ext"]), False),
    # -- claims ----------------------------------------------------------------------------
    Case(
        "expired",
        lambda c: token(header(c.key), claims(c.now - 3900, exp=c.now - 3600), c.key),
        False,
    ),
    Case(
        "not-yet-valid-nbf",
        lambda c: token(header(c.key), claims(c.now, nbf=c.now + 600), c.key),
        False,
    ),
    Case("issued-in-the-future", lambda c: token(header(c.key), claims(c.now + 600), c.key), False),
    Case(
        "wrong-aud",
        lambda c: token(header(c.key), claims(c.now, aud="https://sibling.example.test"), c.key),
        False,
    ),
    Case("missing-aud", lambda c: token(header(c.key), claims(c.now, aud=DROP), c.key), False),
    Case(
        "aud-list-with-ours",
        lambda c: token(header(c.key), claims(c.now, aud=[AUD, "https://other"]), c.key),
        False,
        frozenset({"joserfc"}),
    ),
    Case(
        "wrong-iss",
        lambda c: token(header(c.key), claims(c.now, iss="https://evil.example.test"), c.key),
        False,
    ),
    Case("missing-exp", lambda c: token(header(c.key), claims(c.now, exp=DROP), c.key), False),
    Case("missing-iat", lambda c: token(header(c.key), claims(c.now, iat=DROP), c.key), False),
    Case("missing-jti", lambda c: token(header(c.key), claims(c.now, jti=DROP), c.key), False),
    Case("missing-sub", lambda c: token(header(c.key), claims(c.now, sub=DROP), c.key), False),
    Case("wrong-typ-jwt", _our_key_with("typ", "JWT"), False, BOTH),
    Case("wrong-typ-refresh", _our_key_with("typ", "refresh+jwt"), False, BOTH),
    Case("typ-case-variant", _our_key_with("typ", "AT+JWT"), False, BOTH),
    Case(
        "missing-typ", lambda c: token(header(c.key, typ=DROP), claims(c.now), c.key), False, BOTH
    ),
    Case(
        "float-exp",
        lambda c: token(header(c.key), claims(c.now, exp=c.now + 300.5), c.key),
        False,
        BOTH,
    ),
    Case(
        "lifetime-over-15-min",
        lambda c: token(header(c.key), claims(c.now, exp=c.now + 3600), c.key),
        False,
        BOTH,
    ),
    Case(
        "missing-sid", lambda c: token(header(c.key), claims(c.now, sid=DROP), c.key), False, BOTH
    ),
    # -- keys ------------------------------------------------------------------------------
    Case("retired-and-revoked-key", _retired_then_revoked, False),
    Case(
        "unknown-key-same-alg",
        lambda c: token(header(c.attacker[c.key.alg]), claims(c.now), c.attacker[c.key.alg]),
        False,
    ),
    # -- encodings and formats -------------------------------------------------------------
    Case("json-serialization-flattened", _json_serialization, False),
    Case("json-serialization-general", _json_general, False),
    Case(
        "jwe-five-segments",
        lambda c: token(header(c.key), claims(c.now), c.key) + ".AAAA.BBBB",
        False,
    ),
    Case("utf16-header", _utf16_header, False, BOTH),
    Case("latin1-payload", _latin1_payload, False),
    Case("duplicate-alg-member", _duplicate_alg, False, BOTH),
    # PyJWT accepts "=" padding (some issuers send it); our compact form has none. With a
    # 32-byte HMAC the padded length is impossible, so PyJWT rejects that one too.
    Case("padding-in-signature", _padded, False, frozenset({"pyjwt"}), algs=ASYMMETRIC),
    Case("padding-in-signature", _padded, False, algs=("HS256",)),
    Case("oversized-token", _oversized, False, BOTH),
]


def _params() -> Iterator[object]:
    for case in CASES:
        for alg in case.algs:
            yield pytest.param(case, alg, id=f"{case.name}-{alg}")


def _ours(verifier: AccessTokenVerifier, jws: str) -> bool:
    try:
        verifier.verify(jws)
    except InvalidToken:
        return False
    return True


@pytest.mark.parametrize(("case", "case_alg"), list(_params()))
def test_pitfall_verdicts_agree_with_pyjwt_and_joserfc(case: Case, case_alg: str) -> None:
    now = int(time.time())
    clock = FakeClock(now)
    keyset = KeySet.generate(case_alg, now=now)
    ctx = Ctx(
        keyset,
        keyset.signing_key,
        now,
        AccessTokenIssuer(keyset, issuer=ISS, audience=AUD, clock=clock),
        {alg: generate_key(alg) for alg in ALL},
    )
    jws = case.build(ctx)
    uncached = AccessTokenVerifier(keyset, issuer=ISS, audience=AUD, clock=clock, cache_size=0)
    cached = AccessTokenVerifier(keyset, issuer=ISS, audience=AUD, clock=clock)

    ours = _ours(uncached, jws)
    py = pyjwt_accepts(jws, keyset, issuer=ISS, audience=AUD)
    jo = joserfc_accepts(jws, keyset, now=now, issuer=ISS, audience=AUD)
    violations = policy_violations(jws)

    assert ours is case.accept
    assert [_ours(cached, jws), _ours(cached, jws)] == [case.accept, case.accept]
    assert (py and not violations) is case.accept, (py, violations)
    assert (jo and not violations) is case.accept, (jo, violations)
    # What each library decides alone: the same, unless the case names it lenient.
    assert py is (case.accept or "pyjwt" in case.lenient)
    assert jo is (case.accept or "joserfc" in case.lenient)
    if case.lenient:
        assert violations, "a lenient library must be overruled by a named rule of ours"


def test_every_pitfall_of_the_brief_has_a_case() -> None:
    names = {c.name for c in CASES}
    required = {
        *(f"alg-{v}-empty-signature" for v in NONE_VARIANTS),
        "hs256-keyed-with-our-public-pem",
        "signature-stripped",
        "signature-empty",
        "psychic-signature-der",
        "psychic-signature-raw-zeros",
        "kid-path-traversal-empty-key",
        "kid-sql-injection",
        "foreign-jku-attacker-signed",
        "foreign-jwk-attacker-signed",
        "foreign-x5u-attacker-signed",
        "foreign-x5c-attacker-signed",
        "expired",
        "not-yet-valid-nbf",
        "wrong-aud",
        "wrong-typ-jwt",
        "wrong-iss",
        "retired-and-revoked-key",
        "json-serialization-flattened",
        "utf16-header",
        "payload-edited-signature-kept",
    }
    assert required <= names


def test_psychic_signature_der_spelling_is_r_s_zero() -> None:
    der = base64.urlsafe_b64decode("MAYCAQACAQA=")
    assert der == encode_dss_signature(0, 0)


def test_reason_codes(clock: FakeClock) -> None:
    """The reason tells operators what failed (the message never does)."""
    keyset = KeySet.generate("ES256", now=clock.now())
    key = keyset.signing_key
    now = int(clock.now())
    verifier = AccessTokenVerifier(keyset, issuer=ISS, audience=AUD, clock=clock)
    cases = {
        "malformed": "a.b",
        "header": token(header(key, jku="http://127.0.0.1:9/"), claims(now), key),
        "alg": token(header(key, alg="none"), claims(now), key),
        "typ": token(header(key, typ="JWT"), claims(now), key),
        "unknown-key": token(header(key, kid="nope"), claims(now), key),
        "signature": _edited_payload(Ctx(keyset, key, now, None, {})),  # type: ignore[arg-type]
        "issuer": token(header(key), claims(now, iss="x"), key),
        "audience": token(header(key), claims(now, aud="x"), key),
        "expired": token(header(key), claims(now - 1000, exp=now - 700), key),
        "not-yet-valid": token(header(key), claims(now, nbf=now + 61), key),
        "lifetime": token(header(key), claims(now, exp=now + 901), key),
        "claims": token(header(key), claims(now, sid="not a session id"), key),
        "too-large": token(header(key), claims(now, blob="x" * 9000), key),
    }
    for reason, jws in cases.items():
        with pytest.raises(InvalidToken) as info:
            verifier.verify(jws)
        assert info.value.reason == reason, jws
        assert str(info.value) == "invalid session token"


class _Listener:
    """A loopback TCP listener that records whether anyone connects (an SSRF probe)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def test_key_urls_in_headers_are_never_fetched(clock: FakeClock) -> None:
    listener = _Listener()
    try:
        keyset = KeySet.generate("ES256", now=clock.now())
        evil = EcKey.generate()
        verifier = AccessTokenVerifier(keyset, issuer=ISS, audience=AUD, clock=clock)
        now = int(clock.now())
        url = f"http://127.0.0.1:{listener.port}/jwks.json"
        for member in ("jku", "x5u"):
            for kid in (keyset.signing_key.kid, evil.kid):
                jws = token(header(evil, kid=kid, **{member: url}), claims(now), evil)
                with pytest.raises(InvalidToken):
                    verifier.verify(jws)
        # The probe works: a connection to it is seen.
        socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()
        wait_until(lambda: listener.connections, "the probe's thread to count the connection")
        assert listener.connections == 1
    finally:
        listener.close()


def test_ecdsa_signature_of_our_key_from_der_library_output_verifies(clock: FakeClock) -> None:
    """Our raw r||s handling matches cryptography's DER signatures for many signatures."""
    key = EcKey.generate()
    private = ec.derive_private_key(
        int.from_bytes(base64.urlsafe_b64decode(key.private_jwk()["d"] + "="), "big"),
        ec.SECP256R1(),
    )
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    for i in range(200):
        data = f"message {i}".encode()
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        assert key.verify(data, raw)
        assert not key.verify(data + b"!", raw)
