"""The token format: known-answer vectors (tests/vectors/tokens.json) and properties."""

from __future__ import annotations

import ast
import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.core import token as tokens
from sessionward.errors import InvalidToken, SessionwardError

VECTORS_DIR = Path(__file__).resolve().parent.parent / "vectors"
VECTORS: dict[str, Any] = json.loads((VECTORS_DIR / "tokens.json").read_text("utf-8"))
VALID: list[dict[str, Any]] = VECTORS["valid"]
INVALID: list[dict[str, Any]] = VECTORS["invalid"]
INVALID_PARTS: list[dict[str, Any]] = VECTORS["invalid_parts"]

# RFC 6265 section 4.1.1: cookie-octet (no CTLs, whitespace, DQUOTE, comma, semicolon, backslash).
COOKIE_VALUE = re.compile(r"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]+")
# RFC 9110 section 11.2: token68, what ``Authorization: Bearer <token>`` carries.
TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


def _name(vector: dict[str, Any]) -> str:
    return str(vector["name"])


def decode_input(spec: dict[str, Any]) -> object:
    """Turn a JSON description of a presented value into that value."""
    kind = spec["type"]
    value: Any = spec.get("value")
    decoders: dict[str, Any] = {
        "str": lambda: value,
        "none": lambda: None,
        "bytes": lambda: bytes.fromhex(spec["hex"]),
        "bytearray": lambda: bytearray.fromhex(spec["hex"]),
        "memoryview": lambda: memoryview(bytes.fromhex(spec["hex"])),
        "int": lambda: int(value),
        "float": lambda: float(value),
        "bool": lambda: bool(value),
        "list": lambda: list(value),
        "tuple": lambda: tuple(value),
        "dict": lambda: dict(value),
        "object": object,
    }
    return decoders[kind]()


# -- the data file is what the independent generator produces --------------------------------


def test_vectors_match_their_independent_generator() -> None:
    script = VECTORS_DIR / "make_tokens.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_generator_uses_only_the_standard_library() -> None:
    tree = ast.parse((VECTORS_DIR / "make_tokens.py").read_text("utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    stdlib = {"__future__", "base64", "hashlib", "json", "pathlib", "sys", "typing", "zlib"}
    assert imported <= stdlib


def test_vector_file_covers_every_kind_of_garbage() -> None:
    kinds = {v["input"]["type"] for v in INVALID}
    assert {"str", "none", "bytes", "int", "list", "dict", "object"} <= kinds
    assert {v["reason"] for v in INVALID} == {"malformed", "checksum"}
    assert len(VALID) >= 6


def test_format_constants_match_the_vectors() -> None:
    fmt = VECTORS["format"]
    assert fmt["prefix"] == tokens.PREFIX
    assert fmt["length"] == tokens.TOKEN_LENGTH
    assert fmt["id_bytes"] == tokens.ID_BYTES
    assert fmt["secret_bytes"] == tokens.SECRET_BYTES


# -- known answers ----------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VALID, ids=_name)
def test_token_from_parts_gives_the_known_token(vector: dict[str, Any]) -> None:
    secret = bytes.fromhex(vector["secret_hex"])
    assert tokens.token_from_parts(vector["session_id"], secret) == vector["token"]


@pytest.mark.parametrize("vector", VALID, ids=_name)
def test_parse_gives_the_known_parts(vector: dict[str, Any]) -> None:
    parsed = tokens.parse(vector["token"])
    assert parsed.session_id == vector["session_id"]
    assert parsed.secret == bytes.fromhex(vector["secret_hex"])
    assert type(parsed.session_id) is str
    assert type(parsed.secret) is bytes
    raw_id = base64.urlsafe_b64decode(parsed.session_id)
    assert raw_id.hex() == vector["id_hex"]
    assert tokens.is_session_id(parsed.session_id)


@pytest.mark.parametrize("vector", VALID, ids=_name)
def test_verifier_and_constant_time_match(vector: dict[str, Any]) -> None:
    secret = bytes.fromhex(vector["secret_hex"])
    stored = tokens.verifier(secret)
    assert len(stored) == tokens.VERIFIER_BYTES == 16
    assert stored.hex() == vector["secret_sha256_hex"][:32]  # the digest's first 16 bytes
    assert tokens.secret_matches(secret, stored)
    flipped = bytes([secret[0] ^ 1]) + secret[1:]
    assert not tokens.secret_matches(flipped, stored)
    assert not tokens.secret_matches(secret[:-1], stored)
    assert not tokens.secret_matches(secret, None)
    assert not tokens.secret_matches(secret, b"")


@pytest.mark.parametrize("vector", VALID[:1], ids=_name)
def test_only_a_16_byte_verifier_can_match(vector: dict[str, Any]) -> None:
    # One size for every store: a cut, padded or full-digest stored value (a corrupt record, a
    # hand-written row) authenticates nobody, whatever prefix of the digest it holds.
    secret = bytes.fromhex(vector["secret_hex"])
    digest = bytes.fromhex(vector["secret_sha256_hex"])
    for size in range(0, 33):
        assert tokens.secret_matches(secret, digest[:size]) is (size == 16)
    assert not tokens.secret_matches(secret, digest[:16] + b"\x00")


@settings(deadline=None, max_examples=100)
@given(st.binary(max_size=4))
def test_a_new_id_starts_with_the_locality_and_is_random_after_it(locality: bytes) -> None:
    ids = {tokens.new_session_id(locality) for _ in range(20)}
    minted = [tokens.mint(locality=locality)[1].session_id for _ in range(20)]
    for session_id in [*ids, *minted]:
        assert tokens.is_session_id(session_id)
        assert base64.urlsafe_b64decode(session_id).startswith(locality)
    assert len(ids) == 20
    assert len(set(minted)) == 20


@pytest.mark.parametrize("vector", INVALID, ids=_name)
def test_invalid_tokens_are_rejected_with_their_reason(vector: dict[str, Any]) -> None:
    presented = decode_input(vector["input"])
    with pytest.raises(InvalidToken) as caught:
        tokens.parse(presented)
    assert caught.value.reason == vector["reason"]
    # The message is opaque: it never says why, and never echoes the input.
    assert str(caught.value) == "invalid session token"
    assert caught.value.session_id is None


@pytest.mark.parametrize("vector", INVALID_PARTS, ids=_name)
def test_token_from_parts_rejects_bad_parts(vector: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        tokens.token_from_parts(vector["session_id"], bytes.fromhex(vector["secret_hex"]))


def test_mint_keeps_a_given_session_id() -> None:
    token, parsed = tokens.mint(VALID[2]["session_id"])
    assert parsed.session_id == VALID[2]["session_id"]
    assert tokens.parse(token) == parsed
    with pytest.raises(InvalidToken):
        tokens.mint("not an id")


def test_new_session_id_shape() -> None:
    ids = {tokens.new_session_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(tokens.is_session_id(i) for i in ids)
    assert not tokens.is_session_id("A" * 15)
    assert not tokens.is_session_id("A" * 15 + "+")
    assert not tokens.is_session_id(b"A" * 16)


# -- properties -------------------------------------------------------------------------------

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

anything = st.one_of(
    st.text(),
    st.binary(),
    st.integers(),
    st.floats(allow_nan=True),
    st.none(),
    st.booleans(),
    st.lists(st.text(max_size=70), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    st.tuples(st.text(max_size=70)),
    st.builds(object),
    st.text(min_size=64, max_size=64).map(lambda body: tokens.PREFIX + body),
    st.text(alphabet=ALPHABET, min_size=64, max_size=64).map(lambda body: tokens.PREFIX + body),
    st.text(alphabet=ALPHABET, min_size=60, max_size=70).map(lambda body: tokens.PREFIX + body),
    st.binary(min_size=64, max_size=64).map(lambda b: tokens.PREFIX + b.decode("latin-1")),
)


@settings(deadline=None, max_examples=400)
@given(anything)
def test_parse_raises_nothing_but_invalid_token(value: object) -> None:
    # Any other exception propagates and fails the test.
    rejected: InvalidToken | None = None
    try:
        parsed = tokens.parse(value)
    except InvalidToken as exc:
        rejected = exc
    if rejected is not None:
        assert rejected.reason in {"malformed", "checksum"}
        return
    # Only a genuine token may parse, and then it must be the one its parts rebuild.
    assert isinstance(value, str)
    assert tokens.token_from_parts(parsed.session_id, parsed.secret) == value


@settings(deadline=None, max_examples=300)
@given(st.integers(min_value=0, max_value=tokens.TOKEN_LENGTH - 1), st.characters())
def test_any_single_character_change_is_rejected(index: int, char: str) -> None:
    token, _ = tokens.mint()
    if token[index] == char:
        return
    changed = token[:index] + char + token[index + 1 :]
    with pytest.raises(InvalidToken):
        tokens.parse(changed)


def _assert_wire_safe(token: str) -> None:
    assert len(token) == tokens.TOKEN_LENGTH == 68
    assert token.startswith("sw1_")
    assert COOKIE_VALUE.fullmatch(token)
    assert TOKEN68.fullmatch(token)
    assert URL_SAFE.fullmatch(token)
    assert token.isascii()
    assert token.isprintable()


@settings(deadline=None, max_examples=200)
@given(st.binary(min_size=12, max_size=12))
def test_minted_tokens_parse_back_and_are_wire_safe(raw_id: bytes) -> None:
    session_id = base64.urlsafe_b64encode(raw_id).decode("ascii")
    for given_id in (None, session_id):
        token, parsed = tokens.mint(given_id)
        _assert_wire_safe(token)
        assert tokens.parse(token) == parsed
        assert len(parsed.secret) == 32
        assert tokens.token_from_parts(parsed.session_id, parsed.secret) == token
        assert tokens.secret_matches(parsed.secret, tokens.verifier(parsed.secret))
    assert parsed.session_id == session_id


@settings(deadline=None, max_examples=50)
@given(st.integers(min_value=2, max_value=64))
def test_two_mints_never_equal(count: int) -> None:
    minted = [tokens.mint() for _ in range(count)]
    assert len({t for t, _ in minted}) == count
    assert len({p.session_id for _, p in minted}) == count
    assert len({p.secret for _, p in minted}) == count


def test_many_mints_are_distinct_and_wire_safe() -> None:
    minted = [tokens.mint() for _ in range(5000)]
    for token, _ in minted:
        _assert_wire_safe(token)
    assert len({t for t, _ in minted}) == 5000
    assert len({p.secret for _, p in minted}) == 5000
    assert len({p.session_id for _, p in minted}) == 5000


def test_invalid_token_is_one_of_ours() -> None:
    assert issubclass(InvalidToken, SessionwardError)
