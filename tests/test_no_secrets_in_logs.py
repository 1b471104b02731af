"""No raw token, secret or secret hash ever reaches a log record, an event, an exception or a
repr, whatever happens to a session (ASVS 16.2.5).

The scenario drives every manager operation, including every kind of bad token, with the
default logging subscriber on and the root logger at DEBUG, then searches everything that
came out for every spelling of every secret involved. Session ids are public and must show up:
that is the positive control proving the capture works.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import traceback
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import pytest
from conftest import Harness, MakeHarness

from sessionward import Policy, RequestContext, Session
from sessionward.core import token as tokens
from sessionward.core.events import Event, EventBus, log_event
from sessionward.core.record import SessionRecord
from sessionward.errors import SessionwardError, UpdateConflict

VECTORS = json.loads((Path(__file__).parent / "vectors" / "tokens.json").read_text("utf-8"))


# A leak is any run of this many consecutive characters of a secret's (or its hash's)
# base64 spelling (60 bits), or of its hex or bytes-repr spelling (64 bits): enough to catch
# "masked" logging such as token[:30], short enough to stay clear of chance collisions.
B64_WINDOW = 10
HEX_WINDOW = 16


def _windows(text: str, size: int) -> set[str]:
    return {text[i : i + size] for i in range(len(text) - size + 1)}


def fragments(token: str) -> tuple[set[str], set[str]]:
    """Every window of every spelling of the token's secret and of the secret's hash."""
    secret = tokens.parse(token).secret
    digest = hashlib.sha256(secret).digest()
    b64 = _windows(token[20:], B64_WINDOW)  # the token after the public id: secret and crc
    hexes: set[str] = set()
    for raw in (secret, digest):
        for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
            b64 |= _windows(encoded.decode().rstrip("="), B64_WINDOW)
        for spelling in (raw.hex(), raw.hex().upper(), repr(raw)[2:-1]):
            hexes |= _windows(spelling, HEX_WINDOW)
    return b64, hexes


def leaks(haystacks: Iterable[str], tokens_seen: Iterable[str]) -> list[str]:
    b64: set[str] = set()
    hexes: set[str] = set()
    for token in tokens_seen:
        more_b64, more_hex = fragments(token)
        b64 |= more_b64
        hexes |= more_hex
    found: set[str] = set()
    for text in set(haystacks):
        found |= _windows(text, B64_WINDOW) & b64
        found |= _windows(text, HEX_WINDOW) & hexes
    return sorted(found)


def record_texts(record: logging.LogRecord) -> list[str]:
    texts = [record.getMessage(), str(record.msg), repr(record.args)]
    texts += [f"{key}={value!r}" for key, value in vars(record).items()]
    if record.exc_info:
        texts.append("".join(traceback.format_exception(*record.exc_info)))
    return texts


def exception_texts(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), repr(vars(exc)), repr(exc.args)]
    texts.append("".join(traceback.format_exception(exc)))
    return texts


class Scenario:
    """Runs the operations and keeps every token minted or presented, and every output."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.tokens: list[str] = []
        self.sessions: list[Session] = []
        self.errors: list[BaseException] = []
        self.stored: list[SessionRecord | None] = []

    def keep(self, session: Session) -> Session:
        self.sessions.append(session)
        if session.token is not None:
            self.tokens.append(session.token)
        return session

    def fails(self, call: Callable[[], object]) -> None:
        try:
            result = call()
        except SessionwardError as exc:
            self.errors.append(exc)
        else:
            pytest.fail(f"expected an error, got {result!r}")

    def run(self) -> None:
        """One story, told in order."""
        h, m = self.h, self.h.m
        ctx = RequestContext(ip="192.0.2.7", user_agent="Browser/1", accept_language="en")
        anon = self.keep(m.issue(data={"cart": ["tea"]}, context=ctx))
        alice = self.keep(m.issue("alice", previous=anon, scopes=["read"], context=ctx))
        assert alice.token is not None
        assert anon.token is not None
        self.keep(m.validate(alice.token, context=ctx))
        self.fails(lambda: m.validate(anon.token))  # killed by the login upgrade

        # Every kind of bad token, several of them built from a real one.
        real = alice.token
        bad: list[object] = [
            v["input"]["value"] for v in VECTORS["invalid"] if v["input"]["type"] == "str"
        ]
        bad += [
            real + "\n",
            " " + real,
            real[:-1],
            real[:-1] + ("A" if real[-1] != "A" else "B"),
            real.replace("sw1_", "sw2_"),
            real.encode(),
            [real],
            None,
        ]
        forged = tokens.token_from_parts(alice.id, bytes(range(32)))
        unknown, _ = tokens.mint()
        self.tokens += [forged, unknown]
        for value in [*bad, forged, unknown]:
            self.fails(partial(m.validate, value))

        # Renewal on validate, explicit rotation, elevation.
        h.clock.advance(61)
        renewed = self.keep(m.validate(real))
        assert renewed.token is not None
        rotated = self.keep(m.rotate(renewed))
        elevated = self.keep(m.elevate(rotated, auth_level=2))
        assert elevated.token is not None
        self.fails(lambda: m.validate(renewed.token))  # rotated, then elevated: dead
        self.fails(lambda: m.require_recent_auth(elevated, min_level=3))

        # Data updates, including one that keeps losing races.
        self.keep(m.update_data(elevated, lambda d: d.update(n=1)))
        h.store.conflicts = -1
        self.fails(lambda: m.update_data(elevated, lambda d: d.update(n=2), retries=2))
        h.store.conflicts = 0
        assert any(isinstance(e, UpdateConflict) for e in self.errors)
        self.fails(lambda: m.update_data(elevated, lambda d: d.update(big="x" * 100_000)))

        # Theft: a rotated-out secret presented after the grace window.
        bob = self.keep(m.issue("bob"))
        bob_new = self.keep(m.rotate(bob))
        h.clock.advance(31)
        self.fails(lambda: m.validate(bob.token))
        self.fails(lambda: m.validate(bob_new.token))

        # The cap (evicts), revoke, revoke_user, expiry, purge.
        carol = [self.keep(m.issue("carol")) for _ in range(3)]
        h.clock.advance(1)
        self.keep(m.issue("carol"))
        m.revoke(carol[-1])
        m.revoke(carol[-1].id)
        dave = [self.keep(m.issue("dave")) for _ in range(3)]
        m.revoke_user("dave", keep=dave[0])
        m.revoke_user("alice")
        idle = h.policy.idle_timeout
        self.stored = [h.stored(s.id) for s in self.sessions]
        h.clock.advance(idle)
        self.fails(lambda: m.validate(dave[0].token))
        m.purge_expired()
        m.list_user("carol")


@pytest.fixture
def scenario(make_harness: MakeHarness, caplog: pytest.LogCaptureFixture) -> Scenario:
    def boom(event: Event) -> None:
        raise RuntimeError("subscriber failure")

    caplog.set_level(logging.DEBUG)  # the root logger: every logger's records are captured
    policy = Policy(
        idle_timeout=600,
        absolute_timeout=3600,
        rotate_after=60,
        rotation_grace=30,
        max_sessions_per_user=3,
        max_data_bytes=1024,
    )
    h = make_harness(policy, events=EventBus([log_event, boom]))
    story = Scenario(h)
    story.run()
    return story


def test_the_detector_finds_a_leak() -> None:
    token, parsed = tokens.mint()
    for leaked in (
        f"token={token}",
        f"secret={parsed.secret!r}",
        f"hash={hashlib.sha256(parsed.secret).hexdigest()}",
        f"b64={base64.urlsafe_b64encode(parsed.secret).decode()}",
        f"masked={token[:30]}...",
        f"tail=...{token[-10:]}",
        f"hash={hashlib.sha256(parsed.secret).hexdigest()[-16:]}",
        f"bytes={parsed.secret[:16]!r}",
    ):
        assert leaks([leaked], [token]), leaked
    assert leaks([f"session {parsed.session_id}"], [token]) == []


def test_no_secret_in_log_records(scenario: Scenario, caplog: pytest.LogCaptureFixture) -> None:
    records = caplog.get_records("setup")  # the scenario ran in the fixture
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logged = "\n".join(formatter.format(record) for record in records)
    texts = [text for record in records for text in record_texts(record)] + [logged]
    assert leaks(texts, scenario.tokens) == []
    # Positive control: the capture saw the lifecycle, by public id.
    assert all(s.id in logged for s in scenario.sessions)
    for kind in ("created", "rotated", "elevated", "revoked", "theft-suspected", "expired"):
        assert f"kind={kind}" in logged, kind
    assert any(r.levelno == logging.WARNING for r in records)  # theft
    assert any("subscriber" in r.getMessage() and r.exc_info for r in records)


def test_no_secret_in_events(scenario: Scenario) -> None:
    events = scenario.h.events.events
    assert len(events) > 40
    kinds = {e.kind for e in events}
    assert {"created", "validated-with-rotation", "rotated", "elevated", "revoked"} <= kinds
    assert {"theft-suspected", "expired", "rejected"} <= kinds
    texts = [repr(e.to_dict()) for e in events] + [repr(e) for e in events]
    assert leaks(texts, scenario.tokens) == []


def test_no_secret_in_exceptions(scenario: Scenario) -> None:
    assert len(scenario.errors) > 60
    texts = [t for exc in scenario.errors for t in exception_texts(exc)]
    assert leaks(texts, scenario.tokens) == []
    reasons = {getattr(e, "reason", None) for e in scenario.errors}
    assert {"malformed", "checksum", "unknown", "mismatch", "reused", "expired-idle"} <= reasons


def test_no_secret_in_session_reprs(scenario: Scenario) -> None:
    minted = [s for s in scenario.sessions if s.token is not None]
    assert minted
    texts = [repr(s) for s in scenario.sessions] + [str(s) for s in scenario.sessions]
    texts += [repr(s.record) for s in scenario.sessions]
    assert leaks(texts, scenario.tokens) == []
    assert all("<new token>" in repr(s) for s in minted)


def test_no_raw_secret_in_the_store(scenario: Scenario, tmp_path: Path) -> None:
    """The store keeps hashes only: the database file holds no token and no raw secret."""
    if scenario.h.backend != "sqlite":
        texts = [repr(tuple(r)) for r in scenario.stored if r is not None]
        assert texts
        raw = [tokens.parse(t).secret for t in scenario.tokens]
        assert not any(repr(secret) in text for secret in raw for text in texts)
        assert not any(token in text for token in scenario.tokens for text in texts)
        return
    blobs = b"".join(p.read_bytes() for p in tmp_path.glob("*.db*"))
    assert blobs
    for token in scenario.tokens:
        secret = tokens.parse(token).secret
        assert token.encode() not in blobs
        assert secret not in blobs
        assert secret.hex().encode() not in blobs
