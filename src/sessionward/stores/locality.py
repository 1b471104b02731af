"""The locality capability, shared by sync and async stores (it does no I/O)."""

from __future__ import annotations

from typing import Final, Protocol, runtime_checkable

__all__ = ["MAX_LOCALITY_BYTES", "Locality"]

MAX_LOCALITY_BYTES: Final = 4


@runtime_checkable
class Locality(Protocol):
    """A store that places records by id (Redis Cluster: one user's sessions and index in one
    hash slot) and wants a user's session ids to say where they belong.

    The manager mints every id. For a user's session it puts ``user_locality(user_id)`` first
    and fills the rest of the 12-byte id with random bytes, so at least 64 random bits remain.
    """

    def user_locality(self, user_id: str) -> bytes:
        """At most :data:`MAX_LOCALITY_BYTES` bytes, the same for the same user on every node
        and in every process. Must not reveal the user id: derive it with a keyed hash whose
        key the store keeps to itself."""
