"""``sessionward profiles open`` and ``open_browser``: chromium on a profile until Ctrl-C, a
signal or the end of the browser, then the profile saved; dialogs left to the person.

Kept apart from test_profiles_browser.py: ``open_browser`` starts Playwright itself, which
cannot run while another sync Playwright owns the thread's event loop.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from sessionward.audit.profiles import Profiles, open_browser

from ._profiles_sites import ARGS, CHROMIUM, need_chromium, notes_app, serve

COMMAND = Path(sys.executable).parent / "sessionward"
RAW_TOKEN = re.compile(r"sw1_[A-Za-z0-9_-]{20,}")


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    env["SESSIONWARD_CHROMIUM"] = CHROMIUM
    return env


def start_open(home: Path, name: str, url: str) -> subprocess.Popen[str]:
    """``sessionward profiles open`` in a process group of its own (as a terminal runs it);
    returns once it says the page is open."""
    process = subprocess.Popen(
        [str(COMMAND), "profiles", "--home", str(home), "open", name, url, "--headless"]
        + [f"--browser-arg={arg}" for arg in ARGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
        start_new_session=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith(f"profile {name} open in {CHROMIUM}"):
        pytest.fail(f"open did not start: {line!r} {reap(process)}")
    return process


def reap(process: subprocess.Popen[str]) -> str:
    """After a failure: stop the run, close its pipes, return what it said on stderr."""
    if process.poll() is None:
        process.kill()
    if process.stdout is not None and not process.stdout.closed:
        return process.communicate(timeout=30)[1]
    return ""


def finish(process: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert not RAW_TOKEN.search(out + err)
    return out, err


def test_open_runs_chromium_on_the_profile_until_ctrl_c(tmp_path: Path) -> None:
    need_chromium()
    home = tmp_path / "home"
    profile = Profiles(home).create("gina")
    with serve(notes_app()) as base:
        process = start_open(home, "gina", f"{base}/login?user=gina")
        try:
            busy = subprocess.run(
                [str(COMMAND), "profiles", "--home", str(home), "delete", "gina", "--yes"],
                capture_output=True, text=True, env=environment(), timeout=60, check=False,
            )  # fmt: skip
            assert busy.returncode == 2
            assert f"in use by process {process.pid}" in busy.stderr
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole group
            out, _ = finish(process)
        finally:
            reap(process)
        assert out.endswith("saved profile gina: 2 cookies, localStorage of 1 origin\n")
        data = profile.read()
        assert {c.name: c.value for c in data.cookies}["user"] == "gina"
        assert data.local_storage == {base: {"who": "gina"}}
        # The next run sends the saved cookies; ``kill PID`` ends it as Ctrl-C does.
        process = start_open(home, "gina", f"{base}/echo")
        try:
            process.send_signal(signal.SIGTERM)
            finish(process)
        finally:
            reap(process)
    sid = {c.name: c.value for c in profile.read().cookies}["sid"]
    assert sid == {c.name: c.value for c in data.cookies}["sid"]


def test_open_keeps_what_it_saw_when_the_browser_goes_away(tmp_path: Path) -> None:
    need_chromium()
    home = tmp_path / "home"
    profile = Profiles(home).create("hana")
    with serve(notes_app()) as base:
        process = start_open(home, "hana", f"{base}/login?user=hana")
        try:
            browsers = subprocess.run(
                ["pgrep", "-f", "--", f"--user-data-dir={profile.browser_dir}"],
                capture_output=True, text=True, check=False,
            ).stdout.split()  # fmt: skip
            assert browsers, "chromium not found"
            # As when its window is closed: chromium ends by itself (its first process is the
            # browser; the others end with it).
            os.kill(int(browsers[0]), signal.SIGTERM)
            finish(process)
        finally:
            reap(process)
    data = profile.read()
    assert {c.name: c.value for c in data.cookies}["user"] == "hana"
    assert data.local_storage == {base: {"who": "hana"}}


def test_open_leaves_dialogs_to_the_person_and_dismisses_them_at_the_end(tmp_path: Path) -> None:
    need_chromium()
    profile = Profiles(tmp_path).create("ivy")

    def started(context: Any) -> None:
        page = context.pages[0]
        page.evaluate(
            """() => setTimeout(() => {
                const asked = Date.now();
                const answer = confirm('Sure?');
                localStorage.setItem('answer', String(answer));
                localStorage.setItem('waited', String(Date.now() - asked));
            }, 0)"""
        )
        page.wait_for_event("dialog")
        # Ctrl-C in 2.5 s; meanwhile the run looks at the browser every 0.2 s and must not
        # wait on the page whose script waits on the dialog.
        threading.Timer(2.5, os.kill, (os.getpid(), signal.SIGINT)).start()

    with serve(notes_app()) as base:
        open_browser(
            profile,
            f"{base}/login?user=ivy",
            headless=True,
            args=ARGS,
            executable_path=CHROMIUM,
            poll_seconds=0.2,
            started=started,
        )
        storage = profile.read().local_storage[base]
    assert storage["who"] == "ivy"
    assert storage["answer"] == "false"  # dismissed when the run stopped ...
    assert int(storage["waited"]) >= 2000  # ... not at once, as Playwright would
