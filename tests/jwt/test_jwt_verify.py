"""Issuing and verifying: claims, lifetimes, skew edges, the cache, the revocation lists."""

# ruff: noqa: F811 - the fixtures imported from jwt_fixtures are redefined as parameters

from __future__ import annotations

import base64
import json
import string
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt_fixtures import alg, clock, issuer, keyset, make_verifier, verifier  # noqa: F401
from jwt_forge import AUD, ISS, b64, claims, compact_json, header, token
from jwt_reference import (
    CrossChecked,
    cross_checked,
    joserfc_accepts,
    policy_violations,
    pyjwt_accepts,
)

from sessionward.errors import ConfigError, InvalidArgument, InvalidToken
from sessionward.jwt import AccessTokenIssuer, AccessTokenVerifier, KeySet, Revocations
from sessionward.jwt.keys import P256_ORDER
from sessionward.testing import FakeClock

SID = claims(0)["sid"]
MakeVerifier = Callable[..., AccessTokenVerifier]


def test_issued_claims(issuer: AccessTokenIssuer, verifier: AccessTokenVerifier) -> None:
    now = int(issuer.clock.now())
    issued = issuer.issue(
        subject="alice",
        session_id=SID,
        scopes=["write", "read", "read"],
        auth_level=2,
        auth_time=now - 10.5,
        extra={"tenant": "t1"},
    )
    got = verifier.verify(issued.token)
    assert got == issued.claims
    assert (got.iss, got.aud, got.sub, got.sid, got.typ) == (ISS, AUD, "alice", SID, "at+jwt")
    assert (got.iat, got.nbf, got.exp) == (now, now, now + 300)
    assert got.scopes == {"read", "write"}
    assert got.has_scope("write")
    assert not got.has_scope("x")
    assert (got.auth_level, got.auth_time) == (2, now - 11)
    assert got.claims["tenant"] == "t1"
    assert len(got.jti) == 22
    assert "token" not in repr(issued) or issued.token not in repr(issued)
    with pytest.raises(TypeError):
        got.claims["sub"] = "mallory"  # type: ignore[index]


def test_the_fixture_verifier_is_cross_checked(
    verifier: AccessTokenVerifier, issuer: AccessTokenIssuer, keyset: KeySet, clock: FakeClock
) -> None:
    assert isinstance(verifier, CrossChecked)
    key, now = keyset.signing_key, int(clock.now())
    before = CrossChecked.checked
    verifier.verify(issuer.issue(subject="alice", session_id=SID).token)
    with pytest.raises(InvalidToken):
        verifier.verify(token(header(key, typ="JWT"), claims(now), key))
    assert CrossChecked.checked == before + 2
    # A disagreement fails the test: simulate a verifier bug that reads another payload (a
    # good one) than the token's.
    buggy = cross_checked(verifier)
    good = issuer.issue(subject="alice", session_id=SID).token.split(".")[1]
    good_text = base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)).decode()
    shape = buggy._our_shape
    setattr(buggy, "_our_shape", lambda _text: shape(good_text))  # noqa: B010
    with pytest.raises(AssertionError):
        buggy.verify(token(header(key), claims(now, aud="https://elsewhere.test"), key))


def test_lifetime_default_cap_and_session_end(keyset: KeySet, clock: FakeClock) -> None:
    with pytest.raises(ConfigError):
        AccessTokenIssuer(keyset, issuer=ISS, audience=AUD, lifetime=901)
    with pytest.raises(ConfigError):
        AccessTokenIssuer(keyset, issuer=ISS, audience=AUD, max_lifetime=3600)
    issuer = AccessTokenIssuer(keyset, issuer=ISS, audience=AUD, clock=clock)
    now = int(clock.now())
    assert issuer.issue(subject="a", session_id=SID).claims.exp == now + 300
    assert issuer.issue(subject="a", session_id=SID, lifetime=900).claims.exp == now + 900
    with pytest.raises(InvalidArgument):
        issuer.issue(subject="a", session_id=SID, lifetime=901)
    capped = issuer.issue(subject="a", session_id=SID, not_after=now + 42.9)
    assert capped.claims.exp == now + 42
    with pytest.raises(InvalidArgument):
        issuer.issue(subject="a", session_id=SID, not_after=now + 0.5)
    later = issuer.issue(subject="a", session_id=SID, not_before=now + 0.25)
    assert later.claims.iat == now + 1  # never born before a user's cut-off


def test_issue_arguments_are_checked(issuer: AccessTokenIssuer) -> None:
    for kwargs in (
        {"subject": "", "session_id": SID},
        {"subject": "a", "session_id": "not a session id"},
        {"subject": "a", "session_id": SID, "auth_level": -1},
        {"subject": "a", "session_id": SID, "auth_level": True},
        {"subject": "a", "session_id": SID, "extra": {"exp": 1}},
        {"subject": "a", "session_id": SID, "extra": {"blob": "x" * 9000}},
    ):
        with pytest.raises(InvalidArgument):
            issuer.issue(**kwargs)


@pytest.mark.parametrize("skew", [0, 30, 60])
def test_time_edges_with_skew(skew: int, make_verifier: MakeVerifier, keyset: KeySet) -> None:
    clock = FakeClock(1_800_000_000)
    verifier = make_verifier(skew=skew, cache_size=0)
    verifier.clock = clock
    key = keyset.signing_key
    now = 1_800_000_000
    exp_token = token(header(key), claims(now - 300, exp=now), key)
    clock.set(now + skew - 0.001)
    assert verifier.verify(exp_token)
    clock.set(now + skew)
    with pytest.raises(InvalidToken) as info:
        verifier.verify(exp_token)
    assert info.value.reason == "expired"
    nbf_token = token(header(key), claims(now - 10, nbf=now + 100, exp=now + 200), key)
    clock.set(now + 100 - skew)
    assert verifier.verify(nbf_token)
    clock.set(now + 100 - skew - 0.001)
    with pytest.raises(InvalidToken):
        verifier.verify(nbf_token)
    with pytest.raises(ConfigError):
        make_verifier(skew=61)


def test_non_strings_and_garbage_are_rejected(verifier: AccessTokenVerifier) -> None:
    nested = b64(b"[" * 760)  # the deepest JSON a header of the maximum size can nest
    for value in (
        None,
        b"a.b.c",
        3,
        ["a.b.c"],
        "",
        ".",
        "..",
        "a.b.c",
        "é.é.é",
        "a" * 10_000,
        f"{nested}.{nested}.{nested}",
    ):
        with pytest.raises(InvalidToken):
            verifier.verify(value)


def test_cache_returns_the_same_claims_and_honours_exp(
    issuer: AccessTokenIssuer, verifier: AccessTokenVerifier, clock: FakeClock
) -> None:
    issued = issuer.issue(subject="alice", session_id=SID, lifetime=60)
    first = verifier.verify(issued.token)
    assert verifier.verify(issued.token) is first  # served from the cache
    assert len(verifier) == 1
    clock.advance(60 + 60)
    with pytest.raises(InvalidToken) as info:
        verifier.verify(issued.token)
    assert info.value.reason == "expired"
    assert len(verifier) == 0


def test_cache_is_bounded_lru(
    keyset: KeySet, clock: FakeClock, make_verifier: MakeVerifier
) -> None:
    issuer = AccessTokenIssuer(keyset, issuer=ISS, audience=AUD, clock=clock)
    verifier = make_verifier(cache_size=3)
    tokens = [issuer.issue(subject=f"u{i}", session_id=SID).token for i in range(5)]
    for t in tokens[:3]:
        verifier.verify(t)
    verifier.verify(tokens[0])  # refresh the oldest
    verifier.verify(tokens[3])  # evicts tokens[1], the least recently used
    assert len(verifier) == 3
    kept = set(verifier._cache)
    assert kept == {tokens[0], tokens[2], tokens[3]}
    verifier.forget(tokens[0])
    assert len(verifier) == 2
    verifier.clear_cache()
    assert len(verifier) == 0


def test_revocations_apply_to_cached_tokens(
    keyset: KeySet, clock: FakeClock, make_verifier: MakeVerifier
) -> None:
    revocations = Revocations()
    verifier = make_verifier(revocations=revocations)
    issuer = AccessTokenIssuer(keyset, issuer=ISS, audience=AUD, clock=clock)
    a = issuer.issue(subject="alice", session_id=SID)
    b = issuer.issue(subject="alice", session_id=claims(0)["sid"])
    c = issuer.issue(subject="bob", session_id=claims(0)["sid"])
    for t in (a, b, c):
        verifier.verify(t.token)
    revocations.deny(ISS, a.claims.jti, exp=a.claims.exp, now=clock.now())
    with pytest.raises(InvalidToken) as info:
        verifier.verify(a.token)
    assert info.value.reason == "revoked"
    revocations.revoke_session(b.claims.sid, now=clock.now())
    with pytest.raises(InvalidToken) as info:
        verifier.verify(b.token)
    assert info.value.reason == "session-revoked"
    assert verifier.verify(c.token).sub == "bob"
    clock.advance(1)
    revocations.cut_off_user("bob", now=clock.now())
    with pytest.raises(InvalidToken) as info:
        verifier.verify(c.token)
    assert info.value.reason == "user-cutoff"
    # A token issued after the cut-off is fine, even within the same second.
    fresh = issuer.issue(subject="bob", session_id=SID, not_before=revocations.cutoff_for("bob"))
    assert verifier.verify(fresh.token).sub == "bob"


def test_denylist_is_keyed_by_iss_and_jti_not_by_token_bytes(clock: FakeClock) -> None:
    """An ECDSA signature re-encoded as (r, n - s) is a different token string with the same
    (iss, jti): the denylist still catches it."""
    keyset = KeySet.generate("ES256", now=clock.now())
    revocations = Revocations()
    verifier = AccessTokenVerifier(
        keyset, issuer=ISS, audience=AUD, clock=clock, revocations=revocations
    )
    issuer = AccessTokenIssuer(keyset, issuer=ISS, audience=AUD, clock=clock)
    issued = issuer.issue(subject="alice", session_id=SID)
    h, p, s = issued.token.split(".")
    raw = base64.urlsafe_b64decode(s + "==")
    high_s = (P256_ORDER - int.from_bytes(raw[32:], "big")).to_bytes(32, "big")
    twin = f"{h}.{p}.{b64(raw[:32] + high_s)}"
    assert twin != issued.token
    assert verifier.verify(twin).jti == issued.claims.jti  # a valid malleated twin
    revocations.deny(ISS, issued.claims.jti, exp=issued.claims.exp, now=clock.now())
    for jws in (issued.token, twin):
        with pytest.raises(InvalidToken):
            verifier.verify(jws)


def test_revocation_entries_are_forgotten_after_they_can_match_nothing(clock: FakeClock) -> None:
    revocations = Revocations(retention=960)
    now = clock.now()
    revocations.deny(ISS, "j1", exp=now + 300, now=now)
    revocations.revoke_session(SID, now=now)
    revocations.cut_off_user("alice", now=now)
    assert len(revocations) == 3
    assert revocations.purge(now + 359) == 0
    assert revocations.purge(now + 360) == 1  # exp + skew passed
    assert revocations.purge(now + 960) == 2
    assert len(revocations) == 0
    assert "alice" not in repr(revocations)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    position=st.integers(min_value=0),
    char=st.sampled_from(string.ascii_letters + "0123456789-_.=+/ "),
)
def test_any_one_character_change_is_rejected_and_libraries_agree(position: int, char: str) -> None:
    now = int(time.time())
    clock = FakeClock(now)
    keyset = _FUZZ_KEYSET
    # Issued now (not at import: the run may come more than its 900 s lifetime later).
    issuer = AccessTokenIssuer(keyset, issuer=ISS, audience=AUD, lifetime=900, clock=clock)
    jws = issuer.issue(subject="alice", session_id=SID).token
    i = position % len(jws)
    mutated = jws[:i] + char + jws[i + 1 :]
    verifier = AccessTokenVerifier(keyset, issuer=ISS, audience=AUD, clock=clock, cache_size=0)
    try:
        verifier.verify(mutated)
        ours = True
    except InvalidToken:
        ours = False
    assert ours is (mutated == jws)
    reference = pyjwt_accepts(mutated, keyset, issuer=ISS, audience=AUD) and not policy_violations(
        mutated
    )
    assert reference is ours
    jose = joserfc_accepts(mutated, keyset, now=now, issuer=ISS, audience=AUD)
    assert (jose and not policy_violations(mutated)) is ours


_FUZZ_KEYSET = KeySet.generate("ES256", now=time.time())


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=400), st.binary(max_size=400).map(lambda b: b64(b))))
def test_random_input_only_ever_raises_invalid_token(value: str) -> None:
    keyset = _FUZZ_KEYSET
    verifier = AccessTokenVerifier(keyset, issuer=ISS, audience=AUD, cache_size=0)
    for candidate in (value, f"{value}.{value}.{value}", f"eyJ{value}.eyJ{value}.{value}"):
        with pytest.raises(InvalidToken):
            verifier.verify(candidate)


def _our_json(value: dict[str, object]) -> bytes:
    """The payload spelling of our issuer (compact, raw UTF-8)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _payloads(now: int) -> dict[str, tuple[bytes, bool]]:
    """Payload bytes -> whether the fast path (our issuer's exact shape) should read it."""
    sid = claims(now)["sid"]
    ours = claims(now, sid=sid)
    tail = _our_json(ours)[:-1]
    return {
        "ours": (_our_json(ours), True),
        "utf8-subject": (_our_json({**ours, "sub": "zoë 🙂"}), True),
        "expired": (_our_json(claims(now - 1000, sid=sid, exp=now - 700)), True),
        "not-yet-valid": (_our_json(claims(now, sid=sid, nbf=now + 61)), True),
        "future-iat": (_our_json(claims(now + 61, sid=sid)), True),
        "too-long": (_our_json(claims(now, sid=sid, exp=now + 901)), True),
        "nbf-after-iat": (_our_json(claims(now, sid=sid, nbf=now + 30)), True),
        "escaped-subject": (_our_json({**ours, "sub": 'al"ice\\'}), False),
        "u-escape": (compact_json({**ours, "sub": "zoë"}), False),
        "slash-escape": (tail.replace(b'"sub":"alice"', b'"sub":"al\\/ice"') + b"}", False),
        "control-char": (tail.replace(b'"sub":"alice"', b'"sub":"al\x01ice"') + b"}", False),
        "leading-zero": (tail.replace(b'"lvl":1', b'"lvl":01') + b"}", False),
        "negative-level": (_our_json({**ours, "lvl": -1}), False),
        "float-exp": (_our_json({**ours, "exp": float(now + 300)}), False),
        "bool-level": (_our_json({**ours, "lvl": True}), False),
        "huge-exp": (_our_json({**ours, "exp": 10**20}), False),
        "empty-subject": (_our_json({**ours, "sub": ""}), False),
        "long-jti": (_our_json({**ours, "jti": "j" * 129}), False),
        "bad-sid": (_our_json({**ours, "sid": "not a session id"}), False),
        "short-sid": (_our_json({**ours, "sid": sid[:15]}), False),
        "auth-time": (_our_json({**ours, "auth_time": now}), False),
        "extra-claim": (_our_json({**ours, "org": "acme"}), False),
        "reordered": (_our_json(dict(reversed(ours.items()))), False),
        "whitespace": (json.dumps(ours).encode(), False),
        "duplicate-iss": (tail + b',"iss":"https://evil.test"}', False),
        "duplicate-lvl": (tail + b',"lvl":7}', False),
        "other-issuer": (_our_json({**ours, "iss": ISS + "/"}), False),
        "trailing-data": (_our_json(ours) + b" ", False),
        "not-utf8": (tail.replace(b'"sub":"alice"', b'"sub":"al\xffice"') + b"}", False),
    }


@pytest.mark.parametrize("case", sorted(_payloads(0)))
def test_fast_payload_path_agrees_with_the_full_parser(
    case: str, keyset: KeySet, clock: FakeClock
) -> None:
    """Our issuer's exact payload is read by one pattern instead of the JSON parser: the
    verdict and the claims must be those of the full path, for every near miss too. (Plain
    verifiers: this compares our two paths; the library cross-check is everywhere else.)"""
    now = int(clock.now())
    body, fast = _payloads(now)[case]
    jws = token(header(keyset.signing_key), body, keyset.signing_key)
    fast_verifier, full_verifier = (
        AccessTokenVerifier(keyset, issuer=ISS, audience=AUD, cache_size=0, clock=clock)
        for _ in range(2)
    )
    setattr(full_verifier, "_our_shape", lambda _text: None)  # noqa: B010
    try:
        text: str | None = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    assert (text is not None and fast_verifier._our_shape(text) is not None) is fast
    outcomes = []
    for candidate in (fast_verifier, full_verifier):
        try:
            outcomes.append(candidate.verify(jws))
        except InvalidToken as exc:
            outcomes.append(exc.reason)  # type: ignore[arg-type]
    assert outcomes[0] == outcomes[1]
    if fast and case in {"ours", "utf8-subject", "nbf-after-iat"}:
        assert not isinstance(outcomes[0], str)
        assert dict(outcomes[0].claims) == json.loads(body)
