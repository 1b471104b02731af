"""Where profiles live and what can be done to one: create, list, read, edit, clone, delete,
export, import. The clients bound to a profile are in ``http`` and ``browser``.

The home directory is ``$SESSIONWARD_PROFILES`` or ``$XDG_DATA_HOME/sessionward/profiles``
(``~/.local/share/sessionward/profiles``). Each profile is a 0700 directory of its own::

    <home>/<name>/profile.json   settings, cookies, localStorage (0600, replaced atomically)
    <home>/<name>/lock           the in-use lock (holds the holder's process id)
    <home>/<name>/browser/       chromium's user data directory for ``open``

Creating and deleting go through a rename, so a profile is never seen half made or half gone.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Final

from sessionward.audit.profiles._disk import Lock, holder, make_private_dirs, write_atomic
from sessionward.audit.profiles._errors import (
    ProfileError,
    ProfileExists,
    ProfileNotFound,
)
from sessionward.audit.profiles.formats import Format, Imported, dumps, loads
from sessionward.audit.profiles.model import ProfileData, Settings, check_name

__all__ = ["ENV_HOME", "MAX_IMPORT_BYTES", "Profile", "Profiles", "default_home"]

ENV_HOME: Final = "SESSIONWARD_PROFILES"
MAX_IMPORT_BYTES: Final = 16 * 1024 * 1024
_FILE: Final = "profile.json"
_LOCK: Final = "lock"
_BROWSER: Final = "browser"


def default_home() -> Path:
    """``$SESSIONWARD_PROFILES``, else the per-user data directory."""
    explicit = os.environ.get(ENV_HOME)
    if explicit:
        return Path(explicit).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "sessionward" / "profiles"


class Profile:
    """A handle on one profile (it reads the disk on every call; it holds no data)."""

    def __init__(self, home: Path, name: str) -> None:
        self.name = check_name(name)
        self.path = home / name
        self.file = self.path / _FILE
        self.browser_dir = self.path / _BROWSER

    def __repr__(self) -> str:
        return f"Profile({self.name!r}, path={str(self.path)!r})"

    def read(self) -> ProfileData:
        """The profile's content now (no lock needed: writes are atomic)."""
        try:
            text = self.file.read_text("utf-8")
        except FileNotFoundError:
            raise ProfileNotFound(self.name) from None
        try:
            item = json.loads(text)
        except json.JSONDecodeError:
            raise ProfileError(f"{self.file} is damaged (not JSON)") from None
        try:
            return ProfileData.from_json(item, name=self.name)
        except ProfileError as exc:
            raise ProfileError(f"{self.file} is damaged: {exc}") from None

    def lock(self) -> Lock:
        """The in-use lock, not yet taken: ``with profile.lock(): ...``. Raises
        :class:`ProfileLocked` at once (no waiting) when another run holds it."""
        return Lock(self.path / _LOCK, self.name)

    def in_use(self) -> bool:
        """Whether a run holds the profile's lock now."""
        return self.lock().taken()

    def holder(self) -> int | None:
        """The process id the lock's holder wrote (meaningful while :meth:`in_use`)."""
        return holder(self.path / _LOCK)

    def write(self, data: ProfileData) -> None:
        """Save ``data`` atomically; hold :meth:`lock` around read-change-write."""
        if data.name != self.name:
            data = replace(data, name=self.name)
        data.drop_expired()
        write_atomic(self.file, _encode(data))

    @contextmanager
    def edit(self) -> Iterator[ProfileData]:
        """Lock, read, let the block change the data, save it when the block ends cleanly."""
        with self.lock():
            data = self.read()
            yield data
            self.write(data)

    def export(self, fmt: Format) -> str:
        """The profile in ``fmt`` (raw cookie values)."""
        data = self.read()
        data.drop_expired()
        return dumps(data, fmt)

    def import_text(
        self, text: str, fmt: Format | None = None, *, replace_all: bool = False
    ) -> Imported:
        """Bring an export into this profile. Cookies replace those with the same domain,
        path and name, localStorage entries those with the same origin and key; with
        ``replace_all`` the jar and the storage are emptied first. A JSON export's settings
        replace the profile's."""
        if len(text.encode("utf-8")) > MAX_IMPORT_BYTES:
            raise ProfileError(f"the file is over {MAX_IMPORT_BYTES // 2**20} MiB")
        imported = loads(text, fmt)
        with self.edit() as data:
            if replace_all:
                data.cookies, data.local_storage = [], {}
            for cookie in imported.cookies:
                data.set_cookie(cookie)
            for origin, items in imported.local_storage.items():
                data.local_storage.setdefault(origin, {}).update(items)
            if imported.settings is not None:
                data.settings = imported.settings
        return imported


class Profiles:
    """The profiles in one home directory (``None``: :func:`default_home`)."""

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        self.home = Path(home).expanduser() if home is not None else default_home()

    def __getitem__(self, name: str) -> Profile:
        """The profile ``name``; :class:`ProfileNotFound` if there is none."""
        profile = Profile(self.home, name)
        if not profile.file.is_file():
            raise ProfileNotFound(name)
        return profile

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and Profile(self.home, name).file.is_file()

    def names(self) -> list[str]:
        """Every profile's name, sorted."""
        if not self.home.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.home.iterdir()
            if not entry.name.startswith(".") and (entry / _FILE).is_file()
        )

    def create(self, name: str, settings: Settings | None = None) -> Profile:
        """A new, empty profile; :class:`ProfileExists` if the name is taken."""
        return self._create(ProfileData(check_name(name), time.time(), settings or Settings()))

    def clone(self, source: str, name: str) -> Profile:
        """A new profile with ``source``'s settings, cookies and localStorage (not its
        browser directory: cache, history and IndexedDB stay behind)."""
        original = self[source]
        with original.lock():
            data = original.read()
        return self._create(replace(data, name=check_name(name), created_at=time.time()))

    def delete(self, name: str) -> None:
        """Remove the profile and its browser directory; :class:`ProfileLocked` while in use."""
        profile = self[name]
        with profile.lock():
            grave = self.home / f".deleted-{name}-{secrets.token_hex(4)}"
            os.rename(profile.path, grave)
        shutil.rmtree(grave)

    def _create(self, data: ProfileData) -> Profile:
        profile = Profile(self.home, data.name)
        if profile.path.exists():
            raise ProfileExists(data.name)
        make_private_dirs(self.home)
        nursery = self.home / f".new-{data.name}-{secrets.token_hex(4)}"
        make_private_dirs(nursery)
        try:
            _write_into(nursery, data)
            os.rename(nursery, profile.path)
        except OSError as exc:
            shutil.rmtree(nursery, ignore_errors=True)
            if profile.path.exists():
                raise ProfileExists(data.name) from None
            raise ProfileError(f"cannot create {profile.path}: {exc.strerror or exc}") from None
        return profile


def _encode(data: ProfileData) -> bytes:
    return (json.dumps(data.to_json(), indent=1) + "\n").encode("utf-8")


def _write_into(directory: Path, data: ProfileData) -> None:
    write_atomic(directory / _FILE, _encode(data))
    fd = os.open(directory / _LOCK, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    os.close(fd)
