"""Profiles on disk: create, list, clone, delete, edit; names and settings checked; private
modes whatever the umask; atomic writes; the home directory's defaults."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionward.audit.profiles import (
    Cookie,
    ProfileError,
    ProfileExists,
    ProfileLocked,
    ProfileNotFound,
    Profiles,
    Settings,
    default_home,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def profiles(tmp_path: Path) -> Profiles:
    return Profiles(tmp_path / "home")


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that restricts nothing: the modes below come from the code, not the umask."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def cookie(name: str = "sid", value: str = "v", domain: str = "shop.test", **kw: object) -> Cookie:
    return Cookie(name, value, domain, **kw)  # type: ignore[arg-type]


def test_create_list_and_read(profiles: Profiles) -> None:
    assert profiles.names() == []
    profiles.create("bob")
    alice = profiles.create(
        "alice",
        Settings(user_agent="QA/1", locale="fr-FR", timezone="Europe/Paris", viewport=(800, 600)),
    )
    assert profiles.names() == ["alice", "bob"]
    assert "alice" in profiles
    assert "carol" not in profiles
    data = profiles["alice"].read()
    assert data.name == "alice"
    assert data.settings == Settings("QA/1", "fr-FR", "Europe/Paris", (800, 600))
    assert data.cookies == []
    assert data.local_storage == {}
    assert alice.path == profiles.home / "alice"


def test_files_are_private_whatever_the_umask(tmp_path: Path, open_umask: None) -> None:
    existing = tmp_path / "shared"
    existing.mkdir(mode=0o755)
    profiles = Profiles(existing / "a" / "b" / "home")
    profile = profiles.create("alice")
    with profile.edit() as data:
        data.set_cookie(cookie())
    for directory in (existing / "a", existing / "a" / "b", profiles.home, profile.path):
        assert mode(directory) == 0o700, directory
    for name in ("profile.json", "lock"):
        assert mode(profile.path / name) == 0o600, name
    assert mode(existing) == 0o755  # an existing parent is left alone


def test_names_that_are_not_plain_file_names_are_refused(profiles: Profiles) -> None:
    for bad in ("", "../x", ".hidden", "a/b", "x" * 65, "-dash", "sp ace"):
        with pytest.raises(ProfileError, match="a profile name is"):
            profiles.create(bad)
    assert not profiles.home.exists() or list(profiles.home.iterdir()) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"user_agent": "bad\nagent"}, "user agent"),
        ({"user_agent": ""}, "user agent"),
        ({"locale": "english please"}, "locale"),
        ({"timezone": "Mars/Olympus"}, "time zone"),
        ({"viewport": (0, 600)}, "viewport"),
        ({"viewport": (800,)}, "viewport"),
        ({"proxy": "ftp://proxy:21"}, "proxy"),
        ({"proxy": "http://proxy"}, "proxy"),
        ({"proxy": "http://proxy:8080/path"}, "proxy"),
    ],
)
def test_bad_settings_say_which_field(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        Settings(**settings)  # type: ignore[arg-type]


def test_a_proxy_password_is_masked_and_kept_out_of_repr() -> None:
    settings = Settings(proxy="http://qa:hunter2@proxy.test:3128")
    assert "hunter2" not in repr(settings)
    assert settings.masked_proxy() == "http://qa:***@proxy.test:3128"
    assert Settings(proxy="socks5://proxy.test:1080").masked_proxy() == "socks5://proxy.test:1080"


def test_cookies_are_checked_and_their_values_stay_out_of_repr_and_errors() -> None:
    assert "s3cret" not in repr(cookie(value="s3cret"))
    for bad in ("a;b", "line\nbreak", "tab\there"):
        with pytest.raises(ProfileError) as caught:
            cookie(value=bad)
        assert bad not in str(caught.value)
    with pytest.raises(ProfileError, match="token"):
        cookie(name="bad name")
    with pytest.raises(ProfileError, match="domain"):
        cookie(domain="bad domain")
    with pytest.raises(ProfileError, match="path"):
        cookie(path="relative")
    with pytest.raises(ProfileError, match="SameSite"):
        cookie(same_site="Sometimes")
    assert cookie(same_site="strict").same_site == "Strict"
    assert cookie(domain="Shop.TEST").domain == "shop.test"


def test_cookie_domain_matching() -> None:
    host_only = cookie(domain="shop.test")
    domain = cookie(domain=".shop.test")
    assert host_only.sent_to("shop.test")
    assert not host_only.sent_to("www.shop.test")
    assert domain.sent_to("shop.test")
    assert domain.sent_to("www.shop.test")
    assert not domain.sent_to("evilshop.test")


def test_edit_saves_on_a_clean_exit_only(profiles: Profiles) -> None:
    profile = profiles.create("alice")
    with profile.edit() as data:
        data.set_cookie(cookie("a", "1"))
        data.set_cookie(cookie("a", "2"))  # same domain, path and name: replaced
        data.local_storage["http://shop.test"] = {"k": "v"}
    assert [(c.name, c.value) for c in profile.read().cookies] == [("a", "2")]

    def fail_half_way() -> None:
        with profile.edit() as data:
            data.set_cookie(cookie("b", "1"))
            raise RuntimeError("half-way")

    with pytest.raises(RuntimeError):
        fail_half_way()
    assert [c.name for c in profile.read().cookies] == ["a"]
    assert profile.read().local_storage == {"http://shop.test": {"k": "v"}}


def test_expired_cookies_are_dropped_when_saved(profiles: Profiles) -> None:
    profile = profiles.create("alice")
    with profile.edit() as data:
        data.set_cookie(cookie("old", expires=1.0))
        data.set_cookie(cookie("session"))
        data.set_cookie(cookie("later", expires=4_102_444_800.0))
    assert sorted(c.name for c in profile.read().cookies) == ["later", "session"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    profiles: Profiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = profiles.create("alice")
    with profile.edit() as data:
        data.set_cookie(cookie("kept"))
    before = profile.file.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    data = profile.read()
    data.set_cookie(cookie("lost"))
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        profile.write(data)
    monkeypatch.undo()
    assert profile.file.read_bytes() == before
    assert sorted(p.name for p in profile.path.iterdir()) == ["lock", "profile.json"]


def test_a_damaged_file_is_reported_with_its_path(profiles: Profiles) -> None:
    profile = profiles.create("alice")
    profile.file.write_text("{not json")
    with pytest.raises(ProfileError, match="damaged") as caught:
        profile.read()
    assert str(profile.file) in str(caught.value)
    profile.file.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ProfileError, match="not a sessionward profile"):
        profile.read()


def test_create_twice_and_unknown_names(profiles: Profiles) -> None:
    profiles.create("alice")
    with pytest.raises(ProfileExists):
        profiles.create("alice")
    with pytest.raises(ProfileNotFound):
        profiles["nobody"]
    with pytest.raises(ProfileNotFound):
        profiles.delete("nobody")


def test_clone_copies_settings_cookies_and_storage_but_not_the_browser(profiles: Profiles) -> None:
    alice = profiles.create("alice", Settings(user_agent="QA-alice/1"))
    with alice.edit() as data:
        data.set_cookie(cookie("sid", "alice-token"))
        data.local_storage["http://shop.test"] = {"who": "alice"}
    (alice.browser_dir / "Default").mkdir(parents=True)
    copy = profiles.clone("alice", "alice2")
    cloned, original = copy.read(), alice.read()
    assert cloned.name == "alice2"
    assert (cloned.settings, cloned.cookies, cloned.local_storage) == (
        original.settings,
        original.cookies,
        original.local_storage,
    )
    assert not copy.browser_dir.exists()
    with pytest.raises(ProfileExists):
        profiles.clone("alice", "alice2")


def test_delete_removes_everything_but_not_while_in_use(profiles: Profiles) -> None:
    alice = profiles.create("alice")
    alice.browser_dir.mkdir()
    with alice.lock(), pytest.raises(ProfileLocked):
        profiles.delete("alice")
    assert alice.file.is_file()
    profiles.delete("alice")
    assert not alice.path.exists()
    assert list(profiles.home.iterdir()) == []


def test_a_second_lock_in_the_same_process_is_refused(profiles: Profiles) -> None:
    alice = profiles.create("alice")
    with alice.lock():
        assert alice.in_use()
        assert alice.holder() == os.getpid()
        with pytest.raises(ProfileLocked, match=f"in use by process {os.getpid()}"):
            alice.lock().acquire()
    assert not alice.in_use()
    with alice.lock():  # released: free again
        pass


def test_default_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SESSIONWARD_PROFILES", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_home() == tmp_path / ".local/share/sessionward/profiles"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_home() == tmp_path / "data/sessionward/profiles"
    monkeypatch.setenv("SESSIONWARD_PROFILES", str(tmp_path / "elsewhere"))
    assert default_home() == tmp_path / "elsewhere"
    assert Profiles().home == tmp_path / "elsewhere"
