"""Keys from files and the environment (the only module of ``sessionward.jwt`` doing I/O).

Accepted text, detected by its first characters:

* a key-set document written by ``sessionward jwt-keys generate`` (full rotation state);
* a JWK set with private keys — the first key signs, the others only verify;
* one JWK, or one PEM key (PKCS#8, SEC1 or SubjectPublicKeyInfo) — it signs if private.

The environment holds either the text itself (``SESSIONWARD_JWT_KEYS``) or the path of a file
(``SESSIONWARD_JWT_KEYS_FILE``, the form secret managers mount). Key files are written with
mode 0600 through a temporary file and an atomic rename.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sessionward.errors import ConfigError
from sessionward.jwt.keys import Key, key_from_jwk, load_key
from sessionward.jwt.keyset import DOCUMENT_KIND, KeySet

__all__ = [
    "ENV_FILE",
    "ENV_TEXT",
    "keyset_from_env",
    "keyset_from_text",
    "load_key_file",
    "load_keyset_file",
    "save_keyset_file",
]

ENV_TEXT = "SESSIONWARD_JWT_KEYS"
ENV_FILE = "SESSIONWARD_JWT_KEYS_FILE"
_MAX_FILE = 1024 * 1024


def keyset_from_text(text: str | bytes, *, now: float = 0.0, **options: Any) -> KeySet:
    """A key set from any accepted text (see the module docstring). Pure."""
    raw = text.decode("utf-8") if isinstance(text, bytes) else text
    stripped = raw.strip()
    if not stripped.startswith("{"):
        return KeySet.of(load_key(stripped), now=now, **options)
    try:
        document = json.loads(stripped)
    except ValueError:
        raise ConfigError("key text is not valid JSON") from None
    if isinstance(document, dict) and document.get("kind") == DOCUMENT_KIND:
        return KeySet.from_document(document, **options)
    if isinstance(document, dict) and isinstance(document.get("keys"), list):
        keys: list[Key] = [key_from_jwk(jwk) for jwk in document["keys"]]
        if not keys:
            raise ConfigError("the JWK set is empty")
        if keys[0].can_sign:
            return KeySet.of(keys[0], *keys[1:], now=now, **options)
        return KeySet.for_verification(keys, **options)
    return KeySet.of(key_from_jwk(document), now=now, **options)


def _read(path: str | os.PathLike[str]) -> bytes:
    file = Path(path)
    try:
        if file.stat().st_size > _MAX_FILE:
            raise ConfigError(f"key file {file} is larger than 1 MiB")
        return file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read key file {file}: {exc.strerror}") from None


def load_key_file(
    path: str | os.PathLike[str], *, kid: str | None = None, alg: str | None = None
) -> Key:
    """One key from a PEM or JWK file."""
    return load_key(_read(path), kid=kid, alg=alg)


def load_keyset_file(path: str | os.PathLike[str], **options: Any) -> KeySet:
    """A key set from a file holding any accepted text."""
    return keyset_from_text(_read(path), **options)


def keyset_from_env(environ: Mapping[str, str] | None = None, **options: Any) -> KeySet:
    """A key set from ``SESSIONWARD_JWT_KEYS`` (the text) or ``SESSIONWARD_JWT_KEYS_FILE``
    (a path). Exactly one must be set."""
    env = os.environ if environ is None else environ
    text, path = env.get(ENV_TEXT), env.get(ENV_FILE)
    if (text is None) == (path is None):
        raise ConfigError(f"set exactly one of {ENV_TEXT} and {ENV_FILE}")
    if text is not None:
        return keyset_from_text(text, **options)
    return load_keyset_file(path, **options)  # type: ignore[arg-type]


def save_keyset_file(path: str | os.PathLike[str], keyset: KeySet) -> None:
    """Write the key set's full state (private keys included) atomically, mode 0600."""
    target = Path(path)
    text = json.dumps(keyset.to_document(), indent=2, sort_keys=False) + "\n"
    fd, temporary = tempfile.mkstemp(prefix=".keys-", dir=target.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
