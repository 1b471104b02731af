"""The verified content of an access token (shared by the verifier and the revocation list)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["AccessClaims"]


class AccessClaims(NamedTuple):
    """The verified content of an access token. ``claims`` is every claim, read-only."""

    iss: str
    aud: str
    sub: str
    sid: str
    iat: int
    nbf: int | None
    exp: int
    jti: str
    scope: str
    auth_level: int
    auth_time: int | None
    typ: str
    kid: str
    claims: Mapping[str, Any]

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())

    def has_scope(self, scope: str) -> bool:
        return scope in self.scope.split()

    def __repr__(self) -> str:
        return (
            f"AccessClaims(sub={self.sub!r}, sid={self.sid!r}, jti={self.jti!r}, "
            f"exp={self.exp}, scope={self.scope!r}, auth_level={self.auth_level})"
        )
