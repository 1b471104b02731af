"""The SETs we sign, read back by independent JOSE libraries (PyJWT, joserfc) and compared
field by field with the examples of RFC 8417, CAEP 1.0 and SSF 1.0 (tests/vectors); and SETs
signed by PyJWT checked by our verifier, refused for every broken part."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any, cast

import jwt as pyjwt
import pytest
from joserfc import jws as rfc_jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet as RfcKeySet

from sessionward.jwt import KeySet, generate_key
from sessionward.signals.caep import (
    CREDENTIAL_CHANGE,
    DEVICE_COMPLIANCE_CHANGE,
    SESSION_REVOKED,
    TOKEN_CLAIMS_CHANGE,
    signals_of,
)
from sessionward.signals.set import (
    VERIFICATION,
    SetRejected,
    set_claims,
    sign_set,
    verify_set,
)

EXAMPLES: dict[str, Any] = json.loads(
    (Path(__file__).parent.parent / "vectors" / "ssf_examples.json").read_text("utf-8")
)
ISSUER = "https://sessions.example"
ENTITIES = {"admin", "user", "policy", "system"}
#: CAEP 1.0 §2: the optional claims of every event; §3: each event's own claims.
OPTIONAL = {"event_timestamp", "initiating_entity", "reason_admin", "reason_user"}
SPECIFIC = {
    SESSION_REVOKED: set(),
    TOKEN_CLAIMS_CHANGE: {"claims"},
    CREDENTIAL_CHANGE: {
        "credential_type", "change_type", "friendly_name", "x509_issuer", "x509_serial",
        "fido2_aaguid",
    },
    DEVICE_COMPLIANCE_CHANGE: {"previous_status", "current_status"},
}  # fmt: skip


@pytest.fixture(scope="module", params=["ES256", "EdDSA"])
def keys(request: pytest.FixtureRequest) -> KeySet:
    return KeySet.generate(request.param, now=time.time())


def read_with_pyjwt(token: str, keys: KeySet, audience: str) -> dict[str, Any]:
    header = pyjwt.get_unverified_header(token)
    key = pyjwt.PyJWKSet.from_dict(keys.jwks())[header["kid"]]
    claims: dict[str, Any] = pyjwt.decode(
        token, key, algorithms=[header["alg"]], audience=audience, issuer=ISSUER,
        options={"verify_iat": False},
    )  # fmt: skip
    return claims


def read_with_joserfc(token: str, keys: KeySet) -> tuple[dict[str, Any], dict[str, Any]]:
    header = pyjwt.get_unverified_header(token)
    with warnings.catch_warnings():  # joserfc prefers the name "Ed25519" (RFC 9864)
        warnings.simplefilter("ignore", SecurityWarning)
        found = rfc_jws.deserialize_compact(
            token, RfcKeySet.import_key_set(cast(Any, keys.jwks())), algorithms=[header["alg"]]
        )
    return dict(found.headers()), json.loads(found.payload)


def shape(value: Any) -> Any:
    """The JSON type structure of ``value`` (names and kinds, not contents)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return ["array"]
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def signed(keys: KeySet, signal_entry: dict[str, Any], audience: str = "rp") -> str:
    (signal,) = signals_of(signal_entry, issuer=ISSUER)
    claims = set_claims(
        issuer=ISSUER, audience=audience, jti="24c63fb56e5a2d77a6b512616ca9fa24", iat=1615305159,
        event_type=signal.event_type, event=signal.event, sub_id=signal.sub_id, txn=signal.txn,
    )  # fmt: skip
    return sign_set(claims, keys)


def entry(kind: str, **fields: Any) -> dict[str, Any]:
    base = {"kind": kind, "session_id": "dMTlD16008AAAAAA", "user_id": "jane", "at": 1615304991.5}
    return {**base, "application": "shop", **fields}


def test_rfc8417_figure_1_field_by_field(keys: KeySet) -> None:
    example = EXAMPLES["rfc8417:figure-1"]
    want = example["claims"]
    (event_type, event), = want["events"].items()  # fmt: skip
    claims = set_claims(
        issuer=want["iss"], audience=want["aud"], jti=want["jti"], iat=want["iat"],
        event_type=event_type, event=event, sub_id={"format": "opaque", "id": "x"},
    )  # fmt: skip
    token = sign_set(claims, keys)
    header, got = read_with_joserfc(token, keys)
    assert header["typ"] == example["header"]["typ"]
    assert header["alg"] == keys.signing_key.alg
    assert header["kid"] == keys.signing_key.kid
    for name, value in want.items():  # every claim of the example, with its value
        assert got[name] == value, name
    assert set(got) - set(want) == {"sub_id"}  # SSF 1.0 §3: the subject is in sub_id


@pytest.mark.parametrize(
    ("example", "event", "required"),
    [
        ("caep:session-revoked-example-user-sub", entry("revoked", reason="risk"), set()),
        ("caep:session-revoked-example-session-id-req", entry("revoked", reason="admin"), set()),
        (
            "caep:credential-change-example-fido2",
            entry("factor-changed", session_id=None, factor="totp", change="enrolled"),
            {"credential_type", "change_type"},
        ),
        ("caep:token-claims-change-example-oidc", entry("elevated", auth_level=2), {"claims"}),
        (
            "caep:device-compliance-change-examples-out-of-compliance",
            entry("theft-suspected", detail="binding-proof-mismatch", jkt="0ZcOCORZNYy"),
            {"current_status", "previous_status"},
        ),
    ],
)
def test_caep_examples_field_by_field(
    keys: KeySet, example: str, event: dict[str, Any], required: set[str]
) -> None:
    want = EXAMPLES[example]
    token = signed(keys, event, audience=want["aud"])
    got = read_with_pyjwt(token, keys, want["aud"])
    assert list(got) == list(want)  # the same claims, in the examples' order
    assert shape({k: got[k] for k in ("iss", "jti", "iat", "aud", "txn")}) == shape(
        {k: want[k] for k in ("iss", "jti", "iat", "aud", "txn")}
    )
    assert list(got["events"]) == list(want["events"])
    ((event_type, ours),) = got["events"].items()
    ((_, theirs),) = want["events"].items()
    assert required <= set(ours)
    assert set(ours) <= OPTIONAL | SPECIFIC[event_type]  # only members CAEP defines
    for name, value in ours.items():  # with the types the examples show them with
        if name in ("reason_admin", "reason_user"):
            assert value
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        elif name in theirs and name != "claims":
            assert shape(value) == shape(theirs[name]), name
    assert isinstance(ours["event_timestamp"], int)
    assert ours.get("initiating_entity", "user") in ENTITIES
    sub, their_sub = got["sub_id"], want["sub_id"]
    if their_sub["format"] == "complex":
        assert sub["format"] == "complex"
        members = set(sub) - {"format"}
        assert members, sub
        for name in members:  # session, user, device: the example's identifier formats
            if name in their_sub:
                assert shape(sub[name]) == shape(their_sub[name]), name
                assert sub[name]["format"] == their_sub[name]["format"], name
    else:
        assert sub["format"] in ("iss_sub", "complex", "opaque")


def test_credential_change_and_compliance_values(keys: KeySet) -> None:
    change = entry("factor-changed", factor="password", change="replaced")
    (signal,) = signals_of(change, issuer=ISSUER)
    assert signal.event_type == CREDENTIAL_CHANGE
    assert signal.event["credential_type"] == "password"
    assert signal.event["change_type"] == "update"
    assert signal.sub_id == {"format": "iss_sub", "iss": ISSUER, "sub": "jane"}
    bound = entry("bound", method="dbsc", jkt="thumb")
    (signal,) = signals_of(bound, issuer=ISSUER)
    assert signal.event_type == DEVICE_COMPLIANCE_CHANGE
    assert (signal.event["previous_status"], signal.event["current_status"]) == (
        "not-compliant",
        "compliant",
    )
    assert signal.sub_id["device"] == {"format": "iss_sub", "iss": ISSUER, "sub": "thumb"}


def test_what_maps_to_nothing_and_what_shares_a_cause() -> None:
    assert signals_of(entry("revoked", user_id=None, reason="login-upgrade"), issuer=ISSUER) == []
    for kind in ("created", "rotated", "expired", "rejected", "risk", "authentication"):
        assert signals_of(entry(kind), issuer=ISSUER) == [], kind
    assert signals_of(entry("theft-suspected", detail="rotated-secret-reused"), issuer=ISSUER) == []
    theft = signals_of(entry("theft-suspected", detail="binding-proof-x"), issuer=ISSUER)
    revoked = signals_of(entry("revoked", reason="theft"), issuer=ISSUER)
    assert theft[0].txn == revoked[0].txn  # one cause, one txn (SSF 1.0 §4.1.9)
    other = signals_of(entry("revoked", reason="theft", session_id="other1"), issuer=ISSUER)
    assert other[0].txn != revoked[0].txn
    everyone = signals_of(entry("all-revoked", user_id=None, session_id=None), issuer=ISSUER)
    assert everyone[0].event_type == SESSION_REVOKED
    assert everyone[0].sub_id == {"format": "complex", "tenant": {"format": "opaque", "id": "shop"}}
    claims = signals_of(entry("elevated", auth_level=3), issuer=ISSUER)
    assert claims[0].event_type == TOKEN_CLAIMS_CHANGE


def test_public_user_removes_the_application_prefix() -> None:
    (signal,) = signals_of(
        entry("revoked", user_id="shop/jane", reason="logout"),
        issuer=ISSUER,
        public_user=lambda stored: stored.partition("/")[2],
    )
    assert signal.sub_id["user"]["sub"] == "jane"
    assert signal.event["reason_user"] == {"en": "You signed out."}


def test_verification_event_matches_the_ssf_example(keys: KeySet) -> None:
    want = EXAMPLES["ssf:verification-event"]
    claims = set_claims(
        issuer=want["iss"], audience=want["aud"], jti=want["jti"], iat=want["iat"],
        event_type=VERIFICATION, event=want["events"][VERIFICATION], sub_id=want["sub_id"],
    )  # fmt: skip
    _, got = read_with_joserfc(sign_set(claims, keys), keys)
    assert got == want


# -- our verifier, fed SETs an independent library signed -------------------------------------


def pyjwt_set(keys: KeySet, claims: dict[str, Any], **header: Any) -> str:
    key = keys.signing_key
    pem = key.private_pem()
    headers = {"typ": "secevent+jwt", "kid": key.kid, **header}
    return pyjwt.encode(claims, pem, algorithm=key.alg, headers=headers)


def good_claims() -> dict[str, Any]:
    return set_claims(
        issuer=ISSUER, audience=["rp", "other"], jti="j1", iat=int(time.time()),
        event_type=SESSION_REVOKED, event={"event_timestamp": 1},
        sub_id={"format": "opaque", "id": "s"},
    )  # fmt: skip


def test_verify_accepts_a_pyjwt_signed_set(keys: KeySet) -> None:
    event = verify_set(pyjwt_set(keys, good_claims()), keys, issuer=ISSUER, audience="rp")
    assert event.event_type == SESSION_REVOKED
    assert event.jti == "j1"
    assert event.sub_id == {"format": "opaque", "id": "s"}
    jwks_only = KeySet.from_jwks(keys.jwks())  # a receiver holds the public keys only
    assert verify_set(pyjwt_set(keys, good_claims()), jwks_only, issuer=ISSUER, audience="rp")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"iss": "https://evil.example"}, "issuer"),
        ({"aud": "someone-else"}, "audience"),
        ({"sub": "x"}, "claims"),
        ({"exp": 2_000_000_000}, "claims"),
        ({"events": {}}, "claims"),
        ({"events": {"a": {}, "b": {}}}, "claims"),
        ({"jti": 5}, "claims"),
        ({"sub_id": None}, "claims"),
    ],
)
def test_verify_refuses_bad_claims(keys: KeySet, change: dict[str, Any], reason: str) -> None:
    token = pyjwt_set(keys, {**good_claims(), **change})
    with pytest.raises(SetRejected) as caught:
        verify_set(token, keys, issuer=ISSUER, audience="rp")
    assert caught.value.reason == reason
    assert str(caught.value) == "security event token rejected"


def test_verify_refuses_bad_headers_and_signatures(keys: KeySet) -> None:
    claims = good_claims()
    kid = keys.signing_key.kid
    token = pyjwt_set(keys, claims)
    head, body, sig = token.split(".")
    hmac = generate_key("HS256")
    cases = [
        ("typ", pyjwt_set(keys, claims, typ="JWT")),
        ("kid", pyjwt_set(keys, claims, kid="unknown")),
        ("signature", pyjwt_set(KeySet.generate(keys.signing_key.alg, now=0), claims, kid=kid)),
        ("signature", f"{head}.{body}.{('A' if sig[0] != 'A' else 'B') + sig[1:]}"),
        ("signature", pyjwt.encode(  # HS256 with a public key's kid: alg confusion
            claims, hmac.private_jwk()["k"], algorithm="HS256",
            headers={"typ": "secevent+jwt", "kid": kid},
        )),
        ("malformed", "not.a.token"),
        ("malformed", token + "." + sig),
    ]  # fmt: skip
    for reason, bad in cases:
        with pytest.raises(SetRejected) as caught:
            verify_set(bad, keys, issuer=ISSUER, audience="rp")
        assert caught.value.reason == reason, bad


def test_verify_bounds_the_age_when_asked(keys: KeySet) -> None:
    token = pyjwt_set(keys, {**good_claims(), "iat": 1000})
    assert verify_set(token, keys, issuer=ISSUER, audience="rp").jti == "j1"
    with pytest.raises(SetRejected):
        verify_set(token, keys, issuer=ISSUER, audience="rp", now=5000.0, max_age=3600)


def test_an_hmac_key_cannot_sign_a_set() -> None:
    from sessionward.errors import ConfigError

    with pytest.raises(ConfigError):
        sign_set(good_claims(), KeySet.generate("HS256", now=0))
