"""Keys from files and the environment, and the key file written with mode 0600."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from sessionward.errors import ConfigError
from sessionward.jwt import KeySet, KeyState, generate_key
from sessionward.jwt.loading import (
    keyset_from_env,
    keyset_from_text,
    load_key_file,
    load_keyset_file,
    save_keyset_file,
)


def test_pem_and_jwk_files(tmp_path: Path) -> None:
    key = generate_key("ES256")
    (tmp_path / "k.pem").write_bytes(key.private_pem())
    (tmp_path / "k.jwk").write_text(json.dumps(key.private_jwk()))
    for name in ("k.pem", "k.jwk"):
        loaded = load_key_file(tmp_path / name)
        assert loaded.kid == key.kid
        assert loaded.verify(b"m", key.sign(b"m"))
        keyset = load_keyset_file(tmp_path / name)
        assert keyset.signing_key.kid == key.kid
    with pytest.raises(ConfigError, match="cannot read"):
        load_key_file(tmp_path / "missing.pem")
    with pytest.raises(ConfigError):
        load_key_file(tmp_path / "k.pem", alg="EdDSA")


def test_private_jwk_set_first_key_signs_the_rest_verify() -> None:
    a, b = generate_key("EdDSA"), generate_key("EdDSA")
    keyset = keyset_from_text(json.dumps({"keys": [a.private_jwk(), b.public_jwk()]}))
    assert keyset.signing_key.kid == a.kid
    assert keyset.get(b.kid) is not None
    assert [e.state for e in keyset.entries] == [KeyState.ACTIVE, KeyState.RETIRED]
    public_only = keyset_from_text(json.dumps({"keys": [a.public_jwk()]}))
    assert public_only.active is None
    assert public_only.get(a.kid) is not None
    for bad in ('{"keys": []}', "{not json", "plain text", '{"kty": "oct", "k": "c2hvcnQ"}'):
        with pytest.raises(ConfigError):
            keyset_from_text(bad)


def test_environment_text_or_file(tmp_path: Path) -> None:
    keyset = KeySet.generate("HS256", now=0)
    path = tmp_path / "keys.json"
    save_keyset_file(path, keyset)
    text = path.read_text()
    by_text = keyset_from_env({"SESSIONWARD_JWT_KEYS": text})
    by_file = keyset_from_env({"SESSIONWARD_JWT_KEYS_FILE": str(path)})
    for loaded in (by_text, by_file):
        assert loaded.signing_key.kid == keyset.signing_key.kid
    for env in ({}, {"SESSIONWARD_JWT_KEYS": text, "SESSIONWARD_JWT_KEYS_FILE": str(path)}):
        with pytest.raises(ConfigError, match="exactly one"):
            keyset_from_env(env)


def test_saved_key_file_is_private_and_round_trips(tmp_path: Path) -> None:
    keyset = KeySet.generate("ES256", now=1.0)
    keyset.add_next(generate_key("ES256"), now=2.0)
    path = tmp_path / "keys.json"
    path.write_text("old")
    path.chmod(0o644)
    save_keyset_file(path, keyset)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_keyset_file(path)
    assert [(e.key.kid, e.state) for e in again.entries] == [
        (e.key.kid, e.state) for e in keyset.entries
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]  # no temporary left behind
