"""Stateless mode: signed JWT access tokens backed by rotating opaque refresh tokens.

Needs the ``jwt`` extra (``cryptography``). See docs/jwt.md.
"""

from sessionward.jwt.access import (
    AccessClaims,
    AccessTokenIssuer,
    AccessTokenVerifier,
    IssuedToken,
)
from sessionward.jwt.keys import EcKey, HmacKey, Key, OkpKey, generate_key, key_from_jwk, load_key
from sessionward.jwt.keyset import KeyEntry, KeySet, KeyState
from sessionward.jwt.loading import (
    keyset_from_env,
    keyset_from_text,
    load_key_file,
    load_keyset_file,
    save_keyset_file,
)
from sessionward.jwt.revocation import Revocations

__all__ = [
    "AccessClaims",
    "AccessTokenIssuer",
    "AccessTokenVerifier",
    "EcKey",
    "HmacKey",
    "IssuedToken",
    "Key",
    "KeyEntry",
    "KeySet",
    "KeyState",
    "OkpKey",
    "Revocations",
    "generate_key",
    "key_from_jwk",
    "keyset_from_env",
    "keyset_from_text",
    "load_key",
    "load_key_file",
    "load_keyset_file",
    "save_keyset_file",
]
