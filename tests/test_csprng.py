"""Every value meant to be unguessable comes from the operating system's CSPRNG, through
``secrets`` (ASVS 7.2.3, 11.5.1, 6.5.3).

Statistics cannot tell a CSPRNG from a seeded Mersenne Twister (``test_randomness.py`` shows
it: ``test_statistics_cannot_see_predictability``), so these tests pin the source itself, two
independent ways:

* provenance: ``secrets.token_bytes`` (which ``token_urlsafe`` and ``token_hex`` call too) is
  replaced by a recorder that hands out known bytes; every secret part of a minted value must
  be found in what the recorder handed out. A generator that draws from ``random``,
  ``uuid``, the time or a counter is not fed by the recorder and fails;
* the ``random`` module's state: reseeding it identically before two mints must still give
  two different values. A generator drawing from ``random`` fails here even if it reached the
  recorder some other way.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import secrets
import time
from collections.abc import Callable

import pytest
from proofs import Device

from sessionward import MemoryStore, SessionManager
from sessionward.core import token as tokens
from sessionward.jwt import AccessTokenIssuer, KeySet
from sessionward.jwt.keys import HmacKey
from sessionward.manager._sync.binding import Binder
from sessionward.service.html import Page
from sessionward.service.keys import KEY_PREFIX, mint_key
from sessionward.service.passwords import new_totp_secret
from sessionward.service.setup import new_setup_code
from sessionward.service.state import ServiceState


class Recorder:
    """Stands in for ``secrets.token_bytes``: distinct, known bytes, all kept."""

    def __init__(self) -> None:
        self.handed: list[bytes] = []

    def __call__(self, nbytes: int | None = None) -> bytes:
        size = 32 if nbytes is None else nbytes
        out = hashlib.shake_256(b"pinned %d" % len(self.handed)).digest(size)
        self.handed.append(out)
        return out

    def gave(self, part: bytes) -> bool:
        return len(part) >= 12 and any(part in chunk for chunk in self.handed)


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _token_parts(token: str | None) -> list[bytes]:
    assert token is not None
    parsed = tokens.parse(token)
    return [_b64(parsed.session_id), parsed.secret]


def _issued() -> list[bytes]:
    with SessionManager(MemoryStore()) as manager:
        return _token_parts(manager.issue("alice").token)


def _rotated() -> list[bytes]:
    with SessionManager(MemoryStore()) as manager:
        session = manager.issue("alice")
        return [tokens.parse(manager.rotate(session).token).secret]


def _api_key() -> list[bytes]:
    body = mint_key()[len(KEY_PREFIX) :]
    return [_b64(body[:16]), _b64(body[17:])]  # the id, "_", the secret


def _setup_code() -> list[bytes]:
    state = ServiceState(":memory:")
    try:
        return [_b64(new_setup_code(state, time.time()))]
    finally:
        state.close()


def _service_secret() -> list[bytes]:
    state = ServiceState(":memory:")
    try:
        return [state.secret("csrf")]
    finally:
        state.close()


def _dbsc() -> list[bytes]:
    """A DBSC registration offer and two bound cookies with the next challenges: the first
    cookie minted at registration, the second by a refresh."""
    device = Device()
    with SessionManager(MemoryStore()) as manager:
        binder = Binder(manager)
        session = manager.issue("alice")
        offered = binder.reoffer(session)
        assert offered is not None
        challenge, authorization = offered
        current = manager.get(session.id)
        assert current is not None
        registered = binder.register(current, device.registration(challenge, authorization))
        asked = binder.refresh(registered.session, registered.sid, None)
        assert asked.challenge is not None
        assert asked.session is not None
        refreshed = binder.refresh(asked.session, registered.sid, device.refresh(asked.challenge))
        assert refreshed.cookie is not None
        assert refreshed.challenge is not None
        values = [challenge, authorization, registered.cookie, asked.challenge]
        return [_b64(v) for v in (*values, refreshed.cookie, refreshed.challenge)]


def _jwt_id_and_key() -> list[bytes]:
    key = HmacKey.generate()
    issuer = AccessTokenIssuer(KeySet.generate("ES256", now=time.time()), issuer="i", audience="a")
    jti = issuer.issue(subject="alice", session_id=tokens.new_session_id()).claims.jti
    return [_b64(key.private_jwk()["k"]), _b64(jti)]


GENERATORS: dict[str, Callable[[], list[bytes]]] = {
    "token": lambda: _token_parts(tokens.mint()[0]),
    "token-rotation": lambda: [tokens.mint(tokens.new_session_id())[1].secret],
    "session-id": lambda: [_b64(tokens.new_session_id())],
    "manager-issue": _issued,
    "manager-rotate": _rotated,
    "api-key": _api_key,
    "admin-setup-code": _setup_code,
    "service-secret": _service_secret,
    "totp-seed": lambda: [base64.b32decode(new_totp_secret())],
    "jwt-jti-and-hs256-key": _jwt_id_and_key,
    "csp-nonce": lambda: [_b64(Page("t", "b", "/").nonce)],
    "dbsc-challenges-authorization-bound-cookies": _dbsc,
}


@pytest.mark.parametrize("name", GENERATORS)
def test_minted_values_come_from_secrets(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(secrets, "token_bytes", recorder)
    parts = GENERATORS[name]()
    assert parts
    for part in parts:
        assert recorder.gave(part), f"{name}: {len(part)} bytes not drawn from secrets"


@pytest.mark.parametrize("name", GENERATORS)
def test_reseeding_random_does_not_repeat_a_value(name: str) -> None:
    state = random.getstate()
    try:
        random.seed(20240501)
        first = GENERATORS[name]()
        random.seed(20240501)
        second = GENERATORS[name]()
    finally:
        random.setstate(state)
    assert all(a != b for a, b in zip(first, second, strict=True)), name


def test_the_recorder_catches_a_generator_that_uses_random() -> None:
    """The pin itself works: a mint from ``random.randbytes`` is refused by both checks."""
    recorder = Recorder()
    weak = random.Random(7).randbytes(32)
    assert not recorder.gave(weak)
    random.seed(1)
    first = random.randbytes(32)
    random.seed(1)
    assert random.randbytes(32) == first


def test_async_manager_mints_from_secrets_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionward import AsyncMemoryStore, AsyncSessionManager

    recorder = Recorder()
    monkeypatch.setattr(secrets, "token_bytes", recorder)

    async def issue() -> str | None:
        async with AsyncSessionManager(AsyncMemoryStore()) as manager:
            return (await manager.issue("alice")).token

    assert all(recorder.gave(part) for part in _token_parts(asyncio.run(issue())))
