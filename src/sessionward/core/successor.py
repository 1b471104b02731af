"""Successor links: how a secret rotated out inside its grace window finds the current one.

A rotation stores, for each secret still inside its grace window, a *link*: the current secret
XOR a keystream that only a holder of that older secret can compute,
``HMAC-SHA256(key=older secret, "sessionward successor v1" || session id)``. A request that
presents the older secret derives the keystream, recovers a candidate and accepts it only if
its verifier is the record's current one, so a link both hands over the successor and
authenticates the older secret. The store keeps verifiers and links, never a usable token.

A rotation from the current secret ``S`` to ``S'`` writes the link for ``S`` and carries every
older link that is still open forward by XOR-ing it with ``S ^ S'``: a link for ``S0`` held
``S ^ K(S0)`` and now holds ``S' ^ K(S0)``. So a token inside its grace window keeps resolving
to the current secret across several rotations, and repeated rotations never strand it.

``successor`` field layout: up to :data:`MAX_LINKS` links, newest first, each the grace
deadline (8-byte big-endian IEEE double) followed by the 32-byte link.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterator
from typing import Final

from sessionward.core import token as tokens
from sessionward.core.record import SessionRecord

__all__ = ["MAX_LINKS", "links_after_rotation", "successor_of"]

MAX_LINKS: Final = 8
_LABEL: Final = b"sessionward successor v1\x00"
_LINK = struct.Struct(">d32s")
_SIZE: Final = tokens.SECRET_BYTES


def _keystream(secret: bytes, session_id: str) -> bytes:
    return hmac.new(secret, _LABEL + session_id.encode("ascii"), hashlib.sha256).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a) ^ int.from_bytes(b)).to_bytes(_SIZE)


def _open_links(successor: bytes | None, now: float) -> Iterator[tuple[float, bytes]]:
    """The links whose grace window is open at ``now``; a malformed field yields none."""
    if not successor or len(successor) % _LINK.size:
        return
    for deadline, link in _LINK.iter_unpack(successor):
        if now < deadline:
            yield deadline, link


def successor_of(record: SessionRecord, presented: bytes, now: float) -> bytes | None:
    """The record's current secret, if ``presented`` is a secret rotated out of it whose
    grace window is still open; ``None`` otherwise."""
    if not record.successor:
        return None
    stream = _keystream(presented, record.id)
    for _, link in _open_links(record.successor, now):
        candidate = _xor(link, stream)
        if tokens.secret_matches(candidate, record.secret_hash):
            return candidate
    return None


def links_after_rotation(
    record: SessionRecord, old: bytes, new: bytes, now: float, grace: float
) -> bytes | None:
    """The ``successor`` field of ``record`` rotated from its current secret ``old`` to
    ``new``, with ``grace`` seconds for ``old``; ``None`` when no window is open."""
    if grace <= 0:
        return None
    links = [_LINK.pack(now + grace, _xor(new, _keystream(old, record.id)))]
    shift = _xor(old, new)
    for deadline, link in _open_links(record.successor, now):
        if len(links) == MAX_LINKS:
            break
        links.append(_LINK.pack(deadline, _xor(link, shift)))
    return b"".join(links)
