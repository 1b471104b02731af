"""A profile's files: private directories, atomic writes and the in-use lock.

Every directory this module creates is 0700 and every file 0600, whatever the umask. A write
goes to a temporary file in the same directory, is flushed to disk, then renamed over the
old file, so a reader (or a crash) sees the old content or the new, never half of each.

The lock is ``flock`` on a file inside the profile: the kernel releases it when its holder
exits, however it exits, so a crashed run never leaves a profile locked. The holder writes
its process id into the file so that a second user can be told who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path

from sessionward.audit.profiles._errors import ProfileLocked, ProfileNotFound

__all__ = ["DIR_MODE", "FILE_MODE", "Lock", "holder", "make_private_dirs", "write_atomic"]

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private_dirs(path: Path) -> None:
    """``mkdir -p`` where every directory created is 0700 (``Path.mkdir(parents=True)``
    would give the parents the umask's mode). Existing directories are left as they are."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            directory.mkdir(mode=DIR_MODE)
            os.chmod(directory, DIR_MODE)  # an unusual umask may have removed owner bits


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` by a 0600 file holding ``data``, all or nothing."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), FILE_MODE)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_directory(path.parent)


def _sync_directory(path: Path) -> None:
    """Make the rename itself durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def holder(lock_file: Path) -> int | None:
    """The process id written by the lock's current (or last) holder, if readable."""
    try:
        text = lock_file.read_text("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


class Lock:
    """The exclusive, non-blocking in-use lock of one profile.

    Locks are per open file, so a second ``Lock`` on the same profile fails even inside the
    process that holds the first: one profile, one user at a time.
    """

    def __init__(self, lock_file: Path, name: str) -> None:
        self.path = lock_file
        self.name = name
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except FileNotFoundError:
            raise ProfileNotFound(self.name) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ProfileLocked(self.name, holder(self.path)) from None
        if not self._still_there(fd):  # deleted between our open and our flock
            os.close(fd)
            raise ProfileNotFound(self.name)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def taken(self) -> bool:
        """Whether another open file holds the lock now (a probe: takes it for an instant
        if free, and writes nothing)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def _still_there(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):  # the profile may just have been deleted
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the last descriptor releases the flock

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
