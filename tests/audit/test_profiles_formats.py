"""Export and import: cookies.txt (checked against the real curl), Playwright storage state
and the JSON profile export."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from sessionward.audit.profiles import Cookie, ProfileError, Profiles, Settings
from sessionward.audit.profiles.formats import detect, dumps, loads
from sessionward.audit.profiles.model import ProfileData

from ._profiles_sites import notes_app, serve

FAR = 4_102_444_800.0  # 2100-01-01

JAR = [
    Cookie("sid", "s-1", "shop.test", "/", None, True, True, "Strict"),
    Cookie("pref", "dark", ".shop.test", "/", FAR, False, False, "Lax"),
    Cookie("scoped", "x", "shop.test", "/admin", FAR, True, False, "None"),
    Cookie("empty", "", "localhost", "/", None, False, False, "Lax"),
]


def profile_data() -> ProfileData:
    data = ProfileData("alice", 1.0, Settings(user_agent="QA-alice/1", timezone="Asia/Tokyo"))
    for cookie in JAR:
        data.set_cookie(cookie)
    data.local_storage = {"https://shop.test": {"cart": "[1,2]", "theme": "dark"}}
    return data


def test_cookies_txt_round_trip_keeps_everything_but_samesite() -> None:
    text = dumps(profile_data(), "cookies.txt")
    assert text.startswith("# Netscape HTTP Cookie File\n")
    assert "#HttpOnly_shop.test\tFALSE\t/\tTRUE\t0\tsid\ts-1" in text
    assert ".shop.test\tTRUE\t/\tFALSE\t4102444800\tpref\tdark" in text
    back = loads(text)
    assert back.format == "cookies.txt"
    assert back.local_storage == {}
    assert back.cookies == [
        Cookie(c.name, c.value, c.domain, c.path, c.expires, c.secure, c.http_only) for c in JAR
    ]


def test_cookies_txt_as_other_tools_write_it() -> None:
    text = (
        "# Netscape HTTP Cookie File\n"
        "# https://curl.se/docs/http-cookies.html\n"
        "\n"
        "#HttpOnly_.example.com\tTRUE\t/\tFALSE\t0\tsession\tabc\r\n"
        "example.com\tTRUE\t/x\tTRUE\t1999999999\twide\tv\n"  # subdomains without the dot
        "example.com\tFALSE\t/\tFALSE\t0\tnovalue\n"  # a six-field line
    )
    cookies = loads(text).cookies
    assert cookies == [
        Cookie("session", "abc", ".example.com", "/", None, False, True),
        Cookie("wide", "v", ".example.com", "/x", 1999999999.0, True),
        Cookie("novalue", "", "example.com"),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("example.com\tMAYBE\t/\tFALSE\t0\tn\tsecret-value", "line 2: not 7"),
        ("example.com\tFALSE\t/\tFALSE\tsoon\tn\tsecret-value", "line 2: the expiry"),
        ("exa mple.com\tFALSE\t/\tFALSE\t0\tn\tsecret-value", "line 2: cookie 'n': not a domain"),
        ("just some text", "line 2: not 7"),
    ],
)
def test_bad_cookies_txt_lines_are_named_without_their_values(line: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message) as caught:
        loads("# Netscape HTTP Cookie File\n" + line + "\n", "cookies.txt")
    assert "secret-value" not in str(caught.value)


def test_storage_state_round_trip() -> None:
    text = dumps(profile_data(), "storage-state")
    state = json.loads(text)
    assert state["origins"] == [
        {
            "origin": "https://shop.test",
            "localStorage": [
                {"name": "cart", "value": "[1,2]"},
                {"name": "theme", "value": "dark"},
            ],
        }
    ]
    assert state["cookies"][0] == {
        "name": "sid",
        "value": "s-1",
        "domain": "shop.test",
        "path": "/",
        "expires": -1,
        "httpOnly": True,
        "secure": True,
        "sameSite": "Strict",
    }
    back = loads(text)
    assert back.format == "storage-state"
    assert back.cookies == JAR
    assert back.local_storage == profile_data().local_storage
    assert back.settings is None


def test_storage_state_parts_a_profile_does_not_keep_are_reported() -> None:
    state = {
        "cookies": [],
        "origins": [
            {
                "origin": "https://shop.test:443",
                "localStorage": [{"name": "a", "value": "1"}],
                "indexedDB": [{"name": "db", "version": 1, "stores": []}],
            }
        ],
    }
    imported = loads(json.dumps(state))
    assert imported.local_storage == {"https://shop.test": {"a": "1"}}  # default port dropped
    assert imported.ignored == ["indexedDB of https://shop.test"]


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"cookies": {}}, "cookies must be a list"),
        ({"cookies": [{"name": "a"}]}, "at least name, value and domain"),
        ({"cookies": [{"name": "a", "value": "b", "domain": "x", "expires": "never"}]}, "expires"),
        ({"origins": [{"localStorage": []}]}, "origin"),
        ({"origins": [{"origin": "ftp://x", "localStorage": []}]}, "http:// or https://"),
        ({"origins": [{"origin": "http://x", "localStorage": [{"name": 1}]}]}, "name, value"),
    ],
)
def test_bad_storage_states_are_refused(state: dict[str, object], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        loads(json.dumps(state), "storage-state")


def test_the_json_export_carries_the_settings() -> None:
    text = dumps(profile_data(), "json")
    imported = loads(text)
    assert imported.format == "json"
    assert imported.settings == Settings(user_agent="QA-alice/1", timezone="Asia/Tokyo")
    assert imported.cookies == JAR


def test_the_format_is_recognised_from_the_content() -> None:
    data = profile_data()
    for fmt in ("cookies.txt", "storage-state", "json"):
        assert detect(dumps(data, fmt)) == fmt
    assert detect("example.com\tFALSE\t/\tFALSE\t0\tn\tv\n") == "cookies.txt"
    for text, message in [
        ("{oops", "not valid JSON"),
        ("[1]", "not recognised"),
        ('{"a": 1}', "neither"),
    ]:
        with pytest.raises(ProfileError, match=message):
            detect(text)


def test_import_merges_or_replaces(tmp_path: Path) -> None:
    profile = Profiles(tmp_path).create("alice")
    with profile.edit() as data:
        data.set_cookie(Cookie("keep", "1", "shop.test"))
        data.set_cookie(Cookie("sid", "old", "shop.test"))
        data.local_storage = {"https://shop.test": {"keep": "1", "cart": "old"}}
    profile.import_text(dumps(profile_data(), "storage-state"))
    merged = profile.read()
    assert {c.name: c.value for c in merged.cookies} == {
        "keep": "1", "sid": "s-1", "pref": "dark", "scoped": "x", "empty": ""
    }  # fmt: skip
    assert merged.local_storage == {
        "https://shop.test": {"keep": "1", "cart": "[1,2]", "theme": "dark"}
    }
    assert merged.settings == Settings()  # a storage state has none
    profile.import_text(dumps(profile_data(), "json"), replace_all=True)
    replaced = profile.read()
    assert replaced.cookies == JAR
    assert replaced.local_storage == profile_data().local_storage
    assert replaced.settings.user_agent == "QA-alice/1"
    assert replaced.name == "alice"  # the export's name does not rename the profile


def curl(*args: str) -> str:
    executable = shutil.which("curl")
    if executable is None:
        pytest.skip("curl is not installed")
    done = subprocess.run(
        [executable, "--silent", "--show-error", "--max-time", "20", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def sent(header: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in header.split("; ") if part)


def test_cookies_txt_is_what_curl_reads_and_writes(tmp_path: Path) -> None:
    profile = Profiles(tmp_path / "home").create("alice")
    with serve(notes_app()) as base:
        host = base.split("//")[1].split(":")[0]
        with profile.edit() as data:
            data.set_cookie(Cookie("sid", "alice-1", host, "/", None, False, True))
            data.set_cookie(Cookie("__Host-pref", "tea", host, "/", FAR, True))
            data.set_cookie(Cookie("scoped", "no", host, "/admin", FAR))
            data.set_cookie(Cookie("elsewhere", "no", "other.test"))
            data.set_cookie(Cookie("gone", "no", host, "/", 1.0))
        jar = tmp_path / "cookies.txt"
        jar.write_text(profile.export("cookies.txt"))
        assert "gone" not in jar.read_text()

        # curl sends exactly the cookies a browser would send to this URL (loopback counts
        # as a secure origin for curl too, so the Secure cookie goes).
        assert sent(curl("-b", str(jar), f"{base}/echo")) == {
            "sid": "alice-1",
            "__Host-pref": "tea",
        }
        assert sent(curl("-b", str(jar), f"{base}/admin/echo")).get("scoped") == "no"

        # What curl writes back (a new sid and a user cookie from the site) imports as is.
        written = tmp_path / "curl-jar.txt"
        curl("-b", str(jar), "-c", str(written), f"{base}/login?user=zoe")
        imported = profile.import_text(written.read_text())
    assert imported.format == "cookies.txt"
    after = {c.name: c for c in profile.read().cookies}
    assert after["user"].value == "zoe"
    assert after["sid"].value not in ("alice-1", "")
    assert after["sid"].http_only is True
    assert after["__Host-pref"].value == "tea"
    assert after["__Host-pref"].secure
    assert after["elsewhere"].domain == "other.test"  # a cookie for another site is kept
