"""DPoP server nonces (RFC 9449 §8), with an injected clock: a nonce is the HMAC of a time
window under the deployment's key, accepted in its own window and the next one (so it lives
between one and two windows), refused before its window (made ahead of time), after the next
one, and under any other key; a forged or altered one is refused. The check through the
binder spends no ``jti`` and reports no theft for a request that only lacks the nonce."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from proofs import Device, b64

from sessionward import AsyncSessionManager, Policy
from sessionward.core.dpop import DpopPolicy
from sessionward.core.events import TheftSuspected, TokenRejected
from sessionward.core.jose import b64decode
from sessionward.errors import InvalidProof
from sessionward.manager._async.binding import AsyncBinder
from sessionward.stores import AsyncMemoryStore
from sessionward.testing import FakeClock

URL = "https://api.example/orders"
WINDOW = 60.0
START = 1_700_000_040.0  # a window boundary: 1_700_000_040 / 60 is whole
KEY = secrets.token_bytes(32)


def _policy(key: bytes = KEY) -> DpopPolicy:
    return DpopPolicy(nonce_key=key, nonce_lifetime=WINDOW)


def _accepted(nonce: object, clock: FakeClock, policy: DpopPolicy | None = None) -> bool:
    device = Device()
    proof = device.sign(
        {"typ": "dpop+jwt", "alg": "ES256", "jwk": device.jwk},
        {
            "jti": secrets.token_urlsafe(16),
            "htm": "GET",
            "htu": URL,
            "iat": int(clock.now()),
            "nonce": nonce,
        },
    )
    try:
        (policy or _policy()).verify(proof, method="GET", url=URL, now=clock.now())
    except InvalidProof as exc:
        reason = exc.reason
    else:
        return True
    assert reason == "use_dpop_nonce"
    return False


def test_a_nonce_lives_through_its_window_and_the_next() -> None:
    assert START % WINDOW == 0
    clock = FakeClock(START)
    nonce = _policy().nonce(clock.now())
    assert _accepted(nonce, clock)
    clock.advance(WINDOW - 0.001)  # the end of its window: the same nonce is current
    assert _policy().nonce(clock.now()) == nonce
    assert _accepted(nonce, clock)
    clock.advance(0.001)  # the next window: a new current nonce, the old one still good
    assert _policy().nonce(clock.now()) != nonce
    assert _accepted(nonce, clock)
    clock.advance(WINDOW - 0.001)
    assert _accepted(nonce, clock)
    clock.advance(0.001)  # two windows on: stale
    assert not _accepted(nonce, clock)


def test_a_nonce_issued_late_in_its_window_still_lives_one_window() -> None:
    clock = FakeClock(START + WINDOW - 1)
    nonce = _policy().nonce(clock.now())
    clock.advance(WINDOW)  # one full window later
    assert _accepted(nonce, clock)
    clock.advance(1)
    assert not _accepted(nonce, clock)


def test_a_nonce_made_ahead_of_time_is_refused() -> None:
    """Whoever borrows the key for a while (or a node's clock far ahead) cannot make
    nonces for windows still to come."""
    clock = FakeClock(START)
    ahead = _policy().nonce(clock.now() + WINDOW)
    assert not _accepted(ahead, clock)
    clock.advance(WINDOW)
    assert _accepted(ahead, clock)  # once its window has come


def test_forged_altered_and_foreign_nonces_are_refused() -> None:
    clock = FakeClock(START)
    nonce = _policy().nonce(clock.now())
    assert nonce is not None
    other_window = _policy().nonce(clock.now() - WINDOW)
    assert other_window is not None
    # the previous window's number with the current window's MAC, and the other way round
    spliced = b64(b64decode(other_window)[:8] + b64decode(nonce)[8:])
    spliced_back = b64(b64decode(nonce)[:8] + b64decode(other_window)[8:])
    flipped = nonce[:-2] + ("A" if nonce[-2] != "A" else "B") + nonce[-1]
    refused: list[object] = [
        None,
        "",
        42,
        ["a"],
        nonce + "A",
        nonce[:-1],
        nonce.upper() if nonce.upper() != nonce else nonce.lower(),
        nonce + "==",
        b64(secrets.token_bytes(24)),  # the right shape, made up
        spliced,
        spliced_back,
        flipped,
        _policy(secrets.token_bytes(32)).nonce(clock.now()),  # another deployment's key
    ]
    for value in refused:
        assert not _accepted(value, clock), value
    assert _accepted(nonce, clock)
    assert DpopPolicy().nonce(clock.now()) is None  # nonces off: none to hand out
    assert _accepted(None, clock, DpopPolicy())  # and none required


def test_nodes_with_the_same_key_make_the_same_nonces() -> None:
    clock = FakeClock(START + 17)
    one, two = _policy(bytes(KEY)), _policy(bytes(KEY))
    assert one.nonce(clock.now()) == two.nonce(clock.now())
    assert _accepted(one.nonce(clock.now()), clock, two)


def test_a_request_for_the_nonce_spends_no_jti_and_reports_no_theft() -> None:
    async def run() -> None:
        clock = FakeClock(START)
        manager = AsyncSessionManager(
            AsyncMemoryStore(), policy=Policy(idle_timeout=600, absolute_timeout=3600), clock=clock
        )
        seen: list[object] = []
        manager.events.subscribe(seen.append)
        device, policy = Device(), _policy()
        binder = AsyncBinder(manager)
        session = await manager.issue("ann")
        jkt = device.thumbprint
        jti = secrets.token_urlsafe(16)
        stale = policy.nonce(clock.now() - 2 * WINDOW)
        for nonce in (None, stale):
            proof = device.dpop("GET", URL, iat=clock.now(), nonce=nonce, jti=jti)
            with pytest.raises(InvalidProof) as asked:
                await binder.check_dpop(
                    policy, proof, method="GET", url=URL, jkt=jkt, session=session
                )
            assert asked.value.reason == "use_dpop_nonce"
        assert not [e for e in seen if isinstance(e, TheftSuspected | TokenRejected)]
        # the same jti with the current nonce: not spent by the refusals above
        proof = device.dpop("GET", URL, iat=clock.now(), nonce=policy.nonce(clock.now()), jti=jti)
        checked = await binder.check_dpop(policy, proof, method="GET", url=URL, jkt=jkt)
        assert checked.jkt == jkt
        with pytest.raises(InvalidProof) as replayed:
            await binder.check_dpop(policy, proof, method="GET", url=URL, jkt=jkt)
        assert replayed.value.reason == "replayed"
        await manager.close()

    asyncio.run(run())
