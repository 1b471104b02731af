"""Fixtures for the JWT tests: a fake clock near the real time (PyJWT reads the real clock),
key sets of each algorithm, and factories for issuers and verifiers.

Not a ``conftest.py``: this directory is not a package (a ``tests/jwt`` package would shadow
PyJWT's ``jwt``), so a conftest here would be imported as the top-level module ``conftest``
and hide ``tests/conftest.py`` from the modules that import it. Test modules import the
fixtures they use from here instead."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import pytest
from jwt_forge import AUD, ISS
from jwt_reference import cross_checked

from sessionward.jwt import AccessTokenIssuer, AccessTokenVerifier, KeySet
from sessionward.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(int(time.time()))


@pytest.fixture(params=["ES256", "EdDSA", "HS256"])
def alg(request: pytest.FixtureRequest) -> str:
    return cast(str, request.param)


@pytest.fixture
def keyset(alg: str, clock: FakeClock) -> KeySet:
    return KeySet.generate(alg, now=clock.now())


MakeVerifier = Callable[..., AccessTokenVerifier]


@pytest.fixture
def make_verifier(keyset: KeySet, clock: FakeClock) -> MakeVerifier:
    def make(**options: Any) -> AccessTokenVerifier:
        options.setdefault("issuer", ISS)
        options.setdefault("audience", AUD)
        plain = AccessTokenVerifier(options.pop("keyset", keyset), clock=clock, **options)
        return cross_checked(plain)

    return make


@pytest.fixture
def verifier(make_verifier: MakeVerifier) -> AccessTokenVerifier:
    return make_verifier()


@pytest.fixture
def issuer(keyset: KeySet, clock: FakeClock) -> AccessTokenIssuer:
    return AccessTokenIssuer(keyset, issuer=ISS, audience=AUD, clock=clock)
