"""The key set lifecycle: publish before signing, retire after the last token, revoke now."""

# ruff: noqa: F811 - the fixtures imported from jwt_fixtures are redefined as parameters

from __future__ import annotations

import json

import pytest
from jwt_fixtures import clock  # noqa: F401
from jwt_forge import AUD, ISS, claims, header, token

from sessionward.errors import ConfigError, InvalidToken
from sessionward.jwt import (
    AccessTokenIssuer,
    AccessTokenVerifier,
    KeySet,
    KeyState,
    generate_key,
)
from sessionward.testing import FakeClock


def _pair(keyset: KeySet, clock: FakeClock) -> tuple[AccessTokenIssuer, AccessTokenVerifier]:
    return (
        AccessTokenIssuer(keyset, issuer=ISS, audience=AUD, clock=clock),
        AccessTokenVerifier(keyset, issuer=ISS, audience=AUD, clock=clock),
    )


def test_next_key_is_published_and_verifies_before_it_signs(clock: FakeClock) -> None:
    keyset = KeySet.generate("ES256", now=clock.now(), publish_lead=600)
    issuer, verifier = _pair(keyset, clock)
    first = keyset.signing_key
    upcoming = generate_key("ES256")
    keyset.add_next(upcoming, now=clock.now())
    assert [k["kid"] for k in keyset.jwks()["keys"]] == [first.kid, upcoming.kid]
    assert keyset.signing_key is first  # published, not signing
    # Another process that already rotated signs with it: we accept it.
    early = token(header(upcoming), claims(int(clock.now())), upcoming)
    assert verifier.verify(early).kid == upcoming.kid
    with pytest.raises(ConfigError, match="may sign after"):
        keyset.rotate(now=clock.advance(599))
    clock.advance(1)
    assert keyset.ready_at() == clock.now()
    assert keyset.rotate(now=clock.now()) is upcoming
    assert keyset.signing_key is upcoming
    issued = issuer.issue(subject="alice", session_id=claims(0)["sid"])
    assert issued.claims.kid == upcoming.kid
    assert verifier.verify(issued.token).kid == upcoming.kid


def test_retired_key_verifies_until_its_last_token_expired(clock: FakeClock) -> None:
    keyset = KeySet.generate("ES256", now=clock.now(), publish_lead=0)
    issuer = AccessTokenIssuer(keyset, issuer=ISS, audience=AUD, clock=clock, lifetime=900)
    verifier = AccessTokenVerifier(keyset, issuer=ISS, audience=AUD, clock=clock)
    old = keyset.signing_key
    keyset.add_next(generate_key("ES256"), now=clock.now())
    last = issuer.issue(subject="alice", session_id=claims(0)["sid"])  # just before rotation
    keyset.rotate(now=clock.now())
    entry = next(e for e in keyset.entries if e.key is old)
    assert entry.state is KeyState.RETIRED
    assert entry.verify_until == clock.now() + 900 + 60
    assert old.kid in [k["kid"] for k in keyset.jwks()["keys"]]
    clock.advance(900 + 59)
    assert verifier.verify(last.token).sub == "alice"  # inside exp + skew
    clock.advance(1)
    assert keyset.prune(clock.now()) == [old.kid]
    assert keyset.get(old.kid) is None
    assert old.kid not in [k["kid"] for k in keyset.jwks()["keys"]]
    with pytest.raises(InvalidToken):
        verifier.verify(last.token)


def test_revoking_the_active_key_kills_its_tokens_and_promotes_the_next(clock: FakeClock) -> None:
    keyset = KeySet.generate("EdDSA", now=clock.now())
    issuer, verifier = _pair(keyset, clock)
    compromised = keyset.signing_key
    backup = generate_key("EdDSA")
    keyset.add_next(backup, now=clock.now())
    issued = issuer.issue(subject="alice", session_id=claims(0)["sid"])
    assert verifier.verify(issued.token).sub == "alice"  # now in the verified-token cache
    keyset.revoke(compromised.kid, now=clock.now())
    with pytest.raises(InvalidToken) as info:
        verifier.verify(issued.token)
    assert info.value.reason == "key-revoked"
    assert keyset.signing_key is backup  # promoted at once, no publish_lead in an emergency
    assert verifier.verify(issuer.issue(subject="bob", session_id=claims(0)["sid"]).token)
    with pytest.raises(ConfigError, match="revoked"):
        keyset.add_next(compromised, now=clock.now())
    assert compromised.kid not in json.dumps(keyset.jwks())


def test_revoke_with_replacement_or_without_any_key(clock: FakeClock) -> None:
    keyset = KeySet.generate("ES256", now=clock.now())
    first = keyset.signing_key
    fresh = generate_key("ES256")
    keyset.revoke(first.kid, now=clock.now(), replacement=fresh)
    assert keyset.signing_key is fresh
    keyset.revoke(fresh.kid, now=clock.now())
    with pytest.raises(ConfigError, match="no active"):
        keyset.signing_key  # noqa: B018 - the property raises
    with pytest.raises(ConfigError):
        keyset.revoke("never-there", now=clock.now())


def test_invariants(clock: FakeClock) -> None:
    now = clock.now()
    keyset = KeySet.generate("ES256", now=now)
    keyset.add_next(generate_key("ES256"), now=now)
    with pytest.raises(ConfigError):
        keyset.add_next(generate_key("ES256"), now=now)
    with pytest.raises(ConfigError, match="mix"):
        KeySet.of(generate_key("ES256"), generate_key("HS256"))
    key = generate_key("ES256")
    with pytest.raises(ConfigError, match="kid"):
        KeySet.of(key, key)
    with pytest.raises(ConfigError):
        KeySet.of(generate_key("ES256").public_key())  # a public key cannot be active
    with pytest.raises(ConfigError):
        KeySet(max_token_lifetime=901)
    with pytest.raises(ConfigError):
        KeySet(skew=61)
    with pytest.raises(ConfigError, match="no next"):
        KeySet.generate("ES256", now=now).rotate(now=now)


def test_jwks_never_holds_private_or_symmetric_material(clock: FakeClock) -> None:
    keyset = KeySet.generate("ES256", now=clock.now())
    keyset.add_next(generate_key("ES256"), now=clock.now())
    text = json.dumps(keyset.jwks())
    assert '"d"' not in text
    for jwk in keyset.jwks()["keys"]:
        assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert KeySet.generate("HS256", now=clock.now()).jwks() == {"keys": []}
    mirror = KeySet.from_jwks(keyset.jwks())
    assert all(not e.key.can_sign for e in mirror.entries)
    with pytest.raises(ConfigError):
        KeySet.from_jwks({"keys": [generate_key("ES256").private_jwk()]})


def test_document_round_trip_keeps_state_and_revocations(clock: FakeClock) -> None:
    keyset = KeySet.generate("ES256", now=clock.now())
    keyset.add_next(generate_key("ES256"), now=clock.now())
    doomed = keyset.signing_key
    keyset.rotate(now=clock.advance(600), next_key=generate_key("ES256"))
    keyset.revoke(doomed.kid, now=clock.now())
    document = json.loads(json.dumps(keyset.to_document()))
    again = KeySet.from_document(document)
    assert [(e.key.kid, e.state, e.verify_until) for e in again.entries] == [
        (e.key.kid, e.state, e.verify_until) for e in keyset.entries
    ]
    assert again.is_revoked(doomed.kid)
    assert again.signing_key.verify(b"m", keyset.signing_key.sign(b"m"))
    bad: object
    for bad in ({}, {"kind": "sessionward-keyset", "version": 2, "keys": []}, []):
        with pytest.raises(ConfigError):
            KeySet.from_document(bad)
    broken = json.loads(json.dumps(document))
    broken["keys"][0]["state"] = "signing"
    with pytest.raises(ConfigError):
        KeySet.from_document(broken)


def test_repr_lists_kids_not_keys(clock: FakeClock) -> None:
    keyset = KeySet.generate("HS256", now=clock.now())
    text = repr(keyset)
    assert keyset.signing_key.kid in text
    assert keyset.signing_key.private_jwk()["k"] not in text
