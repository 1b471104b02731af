"""Stateless mode: signed JWT access tokens backed by rotating opaque refresh tokens.

Needs the ``jwt`` extra (``cryptography``). See docs/jwt.md.

    keyset = keyset_from_env()                       # or KeySet.generate("ES256", now=...)
    tokens = TokenService(SessionManager(SQLiteStore("refresh.db")), keyset,
                          issuer="https://auth.example", audience="https://api.example")
    pair = tokens.login("alice", scopes=["read"])    # access JWT + opaque refresh token
    claims = tokens.authenticate(pair.access_token)  # no store access
    pair = tokens.refresh(pair.refresh_token)        # rotates; reuse after grace = theft
"""

from sessionward.jwt._async.service import AsyncTokenService
from sessionward.jwt._sync.service import TokenService
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
from sessionward.jwt.refresh import TokenPair
from sessionward.jwt.revocation import Revocations

__all__ = [
    "AccessClaims",
    "AccessTokenIssuer",
    "AccessTokenVerifier",
    "AsyncTokenService",
    "EcKey",
    "HmacKey",
    "IssuedToken",
    "Key",
    "KeyEntry",
    "KeySet",
    "KeyState",
    "OkpKey",
    "Revocations",
    "TokenPair",
    "TokenService",
    "generate_key",
    "key_from_jwk",
    "keyset_from_env",
    "keyset_from_text",
    "load_key",
    "load_key_file",
    "load_keyset_file",
    "save_keyset_file",
]
