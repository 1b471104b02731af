"""Known answers: registration and refresh JWTs that Chromium signed itself (ES256 and RS256,
software keys), recorded from a run of the browser test (``tests/vectors/dbsc_chromium.json``).
They pin the exact shape Chromium sends: ``jwk`` in the registration header only, raw
``r || s`` ECDSA, ``authorization`` and ``jti`` claims, nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sessionward.core import dbsc
from sessionward.core.jws import parse_compact
from sessionward.errors import InvalidProof

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "dbsc_chromium.json").read_text()
)["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["alg"] for v in VECTORS])
def test_chromium_registration_and_refreshes_verify(vector: dict[str, Any]) -> None:
    registration = dbsc.verify_registration(
        vector["registration"], authorization=vector["authorization"], algorithms=[vector["alg"]]
    )
    assert registration.jti == vector["challenge"]
    assert registration.key.alg == vector["alg"]
    header = parse_compact(vector["registration"]).header
    assert set(header) == {"alg", "jwk", "typ"}
    assert vector["refreshes"]
    for refresh in vector["refreshes"]:
        assert set(parse_compact(refresh["jwt"]).header) == {"alg", "typ"}
        assert dbsc.verify_refresh(refresh["jwt"], registration.key) == refresh["challenge"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["alg"] for v in VECTORS])
def test_chromium_jwts_refused_when_altered(vector: dict[str, Any]) -> None:
    head, body, signature = vector["registration"].split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(InvalidProof):
        dbsc.verify_registration(f"{head}.{body}.{flipped}", authorization=vector["authorization"])
    with pytest.raises(InvalidProof):
        dbsc.verify_registration(vector["registration"], authorization="another-value")
    others = [v for v in VECTORS if v is not vector]
    other_key = dbsc.verify_registration(others[0]["registration"]).key
    with pytest.raises(InvalidProof):  # signed by the other browser key
        dbsc.verify_refresh(vector["refreshes"][0]["jwt"], other_key)
