"""``sessionward keys``: generate, two-step rotation, JWKS, list, emergency revoke."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from jwt_forge import AUD, ISS, claims

from sessionward.cli import main
from sessionward.jwt import AccessTokenIssuer, AccessTokenVerifier, KeySet, load_keyset_file
from sessionward.testing import FakeClock


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _secrets(path: Path) -> list[str]:
    document = json.loads(path.read_text())
    return [k["jwk"].get("d") or k["jwk"].get("k") for k in document["keys"]]


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "HS256"])
def test_generate_writes_a_private_file_once(
    alg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    status, out, _ = run(capsys, "jwt-keys", "generate", "--out", str(path), "--alg", alg)
    assert status == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keyset = load_keyset_file(path)
    assert keyset.signing_key.alg == alg
    assert keyset.signing_key.kid in out
    for secret in _secrets(path):
        assert secret not in out
    status, _, err = run(capsys, "jwt-keys", "generate", "--out", str(path))
    assert status == 2
    assert "exists" in err
    assert load_keyset_file(path).signing_key.kid == keyset.signing_key.kid


def test_rotation_publishes_first_and_signs_later(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    run(capsys, "jwt-keys", "generate", "--out", str(path), "--kid", "k1")
    status, out, _ = run(capsys, "jwt-keys", "rotate", str(path))
    assert status == 0
    assert "published next key" in out
    keyset = load_keyset_file(path)
    upcoming = keyset.next
    assert upcoming is not None
    assert keyset.signing_key.kid == "k1"
    status, out, _ = run(capsys, "jwt-keys", "jwks", str(path))
    assert [k["kid"] for k in json.loads(out)["keys"]] == ["k1", upcoming.key.kid]
    # Too early: refused with status 1, nothing changes.
    status, _, err = run(capsys, "jwt-keys", "rotate", str(path))
    assert status == 1
    assert "may sign after" in err
    assert load_keyset_file(path).signing_key.kid == "k1"
    # After the publish lead (0 s here) the next key signs and a fresh next is published.
    status, out, _ = run(capsys, "jwt-keys", "rotate", str(path), "--publish-lead", "0")
    assert status == 0
    keyset = load_keyset_file(path)
    assert keyset.signing_key.kid == upcoming.key.kid
    assert keyset.next is not None
    assert "k1 retired" in out
    status, out, _ = run(capsys, "jwt-keys", "list", str(path), "--json")
    states = {row["kid"]: row["state"] for row in json.loads(out)["keys"]}
    assert states["k1"] == "retired"
    assert states[upcoming.key.kid] == "active"
    for secret in _secrets(path):
        assert secret not in out


def test_jwks_output_verifies_tokens_of_the_key_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    run(capsys, "jwt-keys", "generate", "--out", str(path), "--alg", "EdDSA")
    status, out, _ = run(capsys, "jwt-keys", "jwks", str(path))
    assert status == 0
    assert '"d"' not in out
    clock = FakeClock()
    issued = AccessTokenIssuer(load_keyset_file(path), issuer=ISS, audience=AUD, clock=clock).issue(
        subject="alice", session_id=claims(0)["sid"]
    )
    verifier = AccessTokenVerifier(
        KeySet.from_jwks(json.loads(out)), issuer=ISS, audience=AUD, clock=clock
    )
    assert verifier.verify(issued.token).sub == "alice"


def test_emergency_revoke_needs_confirmation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    run(capsys, "jwt-keys", "generate", "--out", str(path), "--kid", "k1")
    run(capsys, "jwt-keys", "rotate", str(path))
    status, _, err = run(capsys, "jwt-keys", "revoke", str(path), "k1")
    assert status == 2
    assert "--yes" in err
    assert load_keyset_file(path).signing_key.kid == "k1"
    status, out, _ = run(capsys, "jwt-keys", "revoke", str(path), "k1", "--yes")
    assert status == 0
    keyset = load_keyset_file(path)
    assert keyset.is_revoked("k1")
    assert keyset.get("k1") is None
    assert keyset.signing_key.kid in out  # the next key took over at once
    status, _, err = run(capsys, "jwt-keys", "revoke", str(path), "k1", "--yes")
    assert status == 1
    status, _, err = run(capsys, "jwt-keys", "jwks", str(tmp_path / "missing.json"))
    assert status == 2
    assert "no key file" in err


def test_console_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    result = subprocess.run(
        [sys.executable, "-m", "sessionward", "jwt-keys", "generate", "--out", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert load_keyset_file(path).signing_key.alg == "ES256"
