"""Notice commits to a SQLite WAL database without asking SQLite, in a fraction of a microsecond.

Every connection to a database in WAL mode shares the WAL-index, a memory-mapped ``-shm`` file
whose first 48 bytes are a header that the committing connection rewrites on every commit:
a change counter, the last valid frame, salts and a checksum over them
(https://www.sqlite.org/walformat.html, "The WAL-Index Header"). Two reads of those bytes that
are identical therefore bracket an interval with no commit by any connection of any process.

``SQLiteStore`` uses this to serve repeat reads of a session from process memory: an entry is
stamped with the header read *before* its row was selected, and is served only while the header
is still byte-for-byte the same. Any write anywhere (another thread, another process, the CLI)
changes the header and so invalidates every entry at once; correctness never depends on
knowing which row changed.

Safety conditions, each checked or guaranteed by the caller:
* the database is in WAL mode and this process holds a connection open for as long as the
  map is used (SQLite truncates ``-shm`` only when the first connection opens it, which cannot
  happen while another holds it);
* the header reports the WAL-index format this module knows (version 3007000) and is
  initialised; otherwise no watch is created and every read goes to SQLite.
A torn read of a header that is being rewritten differs from the stamp, which only costs a
cache miss.
"""

from __future__ import annotations

import mmap
import os
import struct

__all__ = ["WalIndexWatch"]

_HEADER = 48
_FORMAT_VERSION = 3007000


class WalIndexWatch:
    """A read-only map of a database's WAL-index header."""

    __slots__ = ("_map",)

    def __init__(self, mapped: mmap.mmap) -> None:
        self._map = mapped

    @classmethod
    def open(cls, database: str) -> WalIndexWatch | None:
        """Map ``database + "-shm"``, or ``None`` when the file is absent or not understood."""
        try:
            fd = os.open(database + "-shm", os.O_RDONLY)
        except OSError:
            return None
        try:
            if os.fstat(fd).st_size < 2 * _HEADER:
                return None
            mapped = mmap.mmap(fd, 2 * _HEADER, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)
        version, _, _, is_init = struct.unpack_from("=IIIB", mapped, 0)
        if version != _FORMAT_VERSION or is_init != 1:
            mapped.close()
            return None
        return cls(mapped)

    def stamp(self) -> bytes:
        """The current header bytes: equal stamps mean no commit happened in between."""
        return self._map[:_HEADER]

    def close(self) -> None:
        self._map.close()
