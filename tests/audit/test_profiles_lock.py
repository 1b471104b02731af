"""The in-use lock across processes: a second run gets a clear error, a killed holder's lock
is released by the kernel, and concurrent read-change-write runs lose no update."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sessionward.audit.profiles import Cookie, ProfileLocked, Profiles

COMMAND = Path(sys.executable).parent / "sessionward"

HOLDER = """
import sys
from sessionward.audit.profiles import Profiles, http_client
with http_client(Profiles(sys.argv[1])["alice"]) as client:
    print("held", flush=True)
    sys.stdin.read()
"""

EDITOR = """
import sys, time
from sessionward.audit.profiles import Cookie, ProfileLocked, Profiles
profile = Profiles(sys.argv[1])["alice"]
tag, count, waits = sys.argv[2], int(sys.argv[3]), 0
print("ready", flush=True)
sys.stdin.readline()  # start together
for n in range(count):
    while True:
        try:
            with profile.edit() as data:
                data.set_cookie(Cookie(f"{tag}{n}", "v", "shop.test"))
            break
        except ProfileLocked:
            waits += 1
            time.sleep(0.001)
print(waits)
"""


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    return env


def sessionward(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), *args],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=60,
        check=False,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    with Profiles(home).create("alice").edit() as data:
        data.set_cookie(Cookie("sid", "alice-1", "shop.test"))
    return home


def test_a_second_process_is_told_who_holds_the_profile(home: Path, tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        alice = Profiles(home)["alice"]
        with pytest.raises(ProfileLocked) as caught:
            alice.lock().acquire()
        assert caught.value.pid == holder.pid
        assert alice.in_use()

        jar = tmp_path / "cookies.txt"
        jar.write_text("shop.test\tFALSE\t/\tFALSE\t0\tsid\tmallory\n")
        for args in (("import", "alice", str(jar)), ("delete", "alice", "--yes")):
            done = sessionward("profiles", "--home", str(home), *args)
            assert done.returncode == 2
            assert done.stderr == (
                f"sessionward: error: profile 'alice' is in use by process {holder.pid};"
                " wait for that run to end (close its browser)\n"
            )
        shown = sessionward("profiles", "--home", str(home), "show", "alice")
        assert f"in use: yes (process {holder.pid})" in shown.stdout
        listed = json.loads(sessionward("profiles", "--home", str(home), "list", "--json").stdout)
        assert listed[0]["in_use"] is True

        # The holder dies without cleaning up: the kernel releases its lock.
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        assert not alice.in_use()
        with alice.edit() as data:
            assert [(c.name, c.value) for c in data.cookies] == [("sid", "alice-1")]
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
        if holder.stdin is not None:
            holder.stdin.close()


def test_concurrent_editors_lose_no_update(home: Path) -> None:
    count = 100
    editors = [
        subprocess.Popen(
            [sys.executable, "-c", EDITOR, str(home), tag, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment(),
        )
        for tag in ("a", "b")
    ]
    for editor in editors:
        assert editor.stdout is not None
        assert editor.stdout.readline() == "ready\n"
    for editor in editors:
        assert editor.stdin is not None
        editor.stdin.write("go\n")
        editor.stdin.flush()
    waits = []
    for editor in editors:
        out, _ = editor.communicate(timeout=120)
        assert editor.returncode == 0
        waits.append(int(out))
    print("times an editor found the profile locked:", waits)
    names = {c.name for c in Profiles(home)["alice"].read().cookies}
    assert names == {"sid"} | {f"{tag}{n}" for tag in "ab" for n in range(count)}
