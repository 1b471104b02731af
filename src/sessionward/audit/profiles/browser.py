"""Chromium bound to a profile: a Playwright persistent context, and ``open``.

The context runs Debian's chromium (``/usr/bin/chromium``, or ``$SESSIONWARD_CHROMIUM``;
Playwright's own browser downloads are never used) on the profile's ``browser/`` directory,
with the profile's user agent, locale, time zone, viewport and proxy.

The profile file is the truth for cookies and localStorage: on launch the context's cookies
are replaced by the profile's and each stored origin's localStorage is written (through an
intercepted navigation: no request reaches the site); when the context ends, its cookies and
localStorage are written back to the profile. The rest of the browser's state (cache,
history, IndexedDB, service workers) stays in ``browser/``: isolated per profile, but
neither exported nor cloned.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Container, Iterator, Sequence
from contextlib import contextmanager, suppress
from types import FrameType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit

from sessionward.audit.profiles._disk import make_private_dirs
from sessionward.audit.profiles._errors import ProfileError
from sessionward.audit.profiles.formats import cookie_from_state, cookie_to_state
from sessionward.audit.profiles.home import Profile
from sessionward.audit.profiles.model import Cookie, ProfileData, Settings, normal_origin

if TYPE_CHECKING:
    from playwright.sync_api import (
        BrowserContext,
        Dialog,
        Frame,
        Page,
        Playwright,
        ProxySettings,
    )

__all__ = ["CHROMIUM", "ENV_CHROMIUM", "browser_context", "chromium_path", "open_browser"]

CHROMIUM: Final = "/usr/bin/chromium"
ENV_CHROMIUM: Final = "SESSIONWARD_CHROMIUM"
_log = logging.getLogger("sessionward.audit.profiles")
_BLANK: Final = "<!doctype html><title></title>"
_SET_STORAGE: Final = """entries => {
    localStorage.clear();
    for (const [name, value] of entries) localStorage.setItem(name, value);
}"""
_GET_STORAGE: Final = "() => Object.entries(localStorage)"


def chromium_path(explicit: str | os.PathLike[str] | None = None) -> str:
    """``explicit``, else ``$SESSIONWARD_CHROMIUM``, else Debian's chromium; it must exist."""
    path = str(explicit or os.environ.get(ENV_CHROMIUM) or CHROMIUM)
    if not os.access(path, os.X_OK):
        raise ProfileError(
            f"no chromium at {path}: apt-get install chromium, or name the browser's path"
        )
    return path


def _proxy(settings: Settings) -> ProxySettings | None:
    parts = settings.proxy_parts
    if parts is None:
        return None
    proxy: ProxySettings = {"server": f"{parts.scheme}://{parts.hostname}:{parts.port}"}
    if parts.username is not None:
        proxy["username"] = unquote(parts.username)
        proxy["password"] = unquote(parts.password or "")
    return proxy


def _launch_options(settings: Settings) -> dict[str, Any]:
    width, height = settings.viewport
    options: dict[str, Any] = {
        "locale": settings.locale,
        "timezone_id": settings.timezone,
        "viewport": {"width": width, "height": height},
    }
    if settings.user_agent is not None:
        options["user_agent"] = settings.user_agent
    if (proxy := _proxy(settings)) is not None:
        options["proxy"] = proxy
    return options


def _to_playwright(cookie: Cookie) -> dict[str, Any]:
    state = cookie_to_state(cookie)
    if cookie.same_site == "None" and not cookie.secure:
        state["sameSite"] = "Lax"  # chromium refuses SameSite=None without Secure
    return state


def _cookies(entries: Sequence[Any]) -> list[Cookie]:
    out = []
    for entry in entries:
        try:
            out.append(cookie_from_state(dict(entry)))
        except ProfileError as exc:
            _log.warning("cookie left out of the profile: %s", exc)
    return out


def _origin(url: str) -> str | None:
    if urlsplit(url).scheme not in ("http", "https"):
        return None
    try:
        return normal_origin(f"{urlsplit(url).scheme}://{urlsplit(url).netloc}")
    except ProfileError:
        return None


class _Session:
    """A launched context and the profile data it mirrors."""

    def __init__(self, context: BrowserContext, data: ProfileData) -> None:
        self.context = context
        self.data = data
        self.snapshots = 0

    def apply(self) -> None:
        self.context.clear_cookies()
        if self.data.cookies:
            cookies: Any = [_to_playwright(c) for c in self.data.cookies]  # SetCookieParam's
            self.context.add_cookies(cookies)
        if not self.data.local_storage:
            return
        page = self.context.new_page()
        try:
            page.route("**/*", lambda route: route.fulfill(content_type="text/html", body=_BLANK))
            for origin, items in self.data.local_storage.items():
                page.goto(origin + "/")
                page.evaluate(_SET_STORAGE, [[k, v] for k, v in items.items()])
        finally:
            page.close()

    def capture(self) -> None:
        """Everything, from a live context: the cookies, and the localStorage of every origin
        visited since launch (the stored ones were, by :meth:`apply`)."""
        state = self.context.storage_state()
        storage = {}
        for entry in state["origins"]:
            items = {pair["name"]: pair["value"] for pair in entry["localStorage"]}
            if items:
                storage[normal_origin(entry["origin"])] = items
        self.data.cookies = _cookies(state["cookies"])
        self.data.local_storage = storage

    def snapshot(self, skip: Container[Page] = ()) -> None:
        """A cheap partial capture while the browser runs: the cookies, and the localStorage
        of the origins open in a tab (but the pages in ``skip``). The last one is kept if the
        window is closed before a full :meth:`capture` can run."""
        cookies = _cookies(self.context.cookies())
        storage = dict(self.data.local_storage)
        for page in self.context.pages:
            origin = _origin(page.url)
            if origin is None or page in skip:
                continue
            try:
                entries = page.evaluate(_GET_STORAGE)
            except Exception:  # noqa: S112 - a page mid-navigation: next time
                continue
            if entries:
                storage[origin] = {str(k): str(v) for k, v in entries}
            else:
                storage.pop(origin, None)
        self.data.cookies, self.data.local_storage = cookies, storage
        self.snapshots += 1


@contextmanager
def _session(
    profile: Profile,
    playwright: Playwright,
    *,
    headless: bool,
    args: Sequence[str],
    executable_path: str | os.PathLike[str] | None,
    keep_snapshot: bool,
    options: dict[str, Any],
) -> Iterator[_Session]:
    from playwright.sync_api import Error as PlaywrightError

    executable = chromium_path(executable_path)
    with profile.lock():
        data = profile.read()
        make_private_dirs(profile.browser_dir)
        context = playwright.chromium.launch_persistent_context(
            str(profile.browser_dir),
            executable_path=executable,
            headless=headless,
            args=list(args),
            **(_launch_options(data.settings) | options),
        )
        session = _Session(context, data)
        captured = False
        try:
            session.apply()
            yield session
        finally:
            try:
                session.capture()
                captured = True
            except PlaywrightError:
                captured = keep_snapshot and session.snapshots > 0
            finally:
                with suppress(PlaywrightError):
                    context.close()
                if captured:
                    profile.write(session.data)
        if not captured:
            raise ProfileError(
                f"the browser of profile {profile.name!r} closed before its cookies could be"
                " saved: leave the with block instead of closing the context"
            )


@contextmanager
def browser_context(
    profile: Profile,
    playwright: Playwright,
    *,
    headless: bool = True,
    args: Sequence[str] = (),
    executable_path: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Iterator[BrowserContext]:
    """A persistent chromium context bound to ``profile`` (locked meanwhile). ``options``
    go to ``launch_persistent_context``. Leave the block to save and close: the cookies and
    localStorage are read from the live context."""
    with _session(
        profile,
        playwright,
        headless=headless,
        args=args,
        executable_path=executable_path,
        keep_snapshot=False,
        options=options,
    ) as session:
        yield session.context


def open_browser(
    profile: Profile,
    url: str | None = None,
    *,
    headless: bool = False,
    args: Sequence[str] = (),
    executable_path: str | os.PathLike[str] | None = None,
    poll_seconds: float = 1.0,
    started: Callable[[BrowserContext], None] | None = None,
) -> None:
    """Run chromium on ``profile`` until its window is closed or the process gets SIGINT,
    SIGTERM or SIGHUP; then save the profile. Call from the main thread. ``started`` is
    called with the context once the first page is on its way.

    Unlike Playwright's default, a page's dialogs (``alert``, ``confirm``...) are left for
    the person at the window; those still open when the run stops are dismissed, so that
    the pages can be read."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    stop = threading.Event()
    with (
        _stop_on_signals(stop),
        sync_playwright() as playwright,
        _session(
            profile,
            playwright,
            headless=headless,
            args=args,
            executable_path=executable_path,
            keep_snapshot=True,
            options={"handle_sigint": False, "handle_sigterm": False, "handle_sighup": False},
        ) as session,
    ):
        context = session.context
        dialogs = _Dialogs(context)
        page = context.pages[0] if context.pages else context.new_page()
        if url is not None:
            page.goto(url, wait_until="commit")
        session.snapshot(skip=dialogs.open)
        if started is not None:
            started(context)
        closed = threading.Event()
        context.on("close", lambda _: closed.set())
        while not (stop.is_set() or closed.is_set()):
            try:
                context.wait_for_event("close", timeout=poll_seconds * 1000)
            except PlaywrightTimeout:
                session.snapshot(skip=dialogs.open)
            except PlaywrightError:  # the browser or Playwright's driver went away
                break
        dialogs.dismiss_all()


class _Dialogs:
    """The pages showing a dialog (their scripts wait, and so would our reading of them)."""

    def __init__(self, context: BrowserContext) -> None:
        self.open: dict[Page, Dialog] = {}
        for page in context.pages:
            self._watch(page)
        context.on("page", self._watch)

    def _watch(self, page: Page) -> None:
        page.on("dialog", lambda dialog: self.open.__setitem__(page, dialog))
        page.on("framenavigated", lambda frame: self._navigated(page, frame))
        page.on("close", lambda _: self._forget(page))

    def _forget(self, page: Page) -> None:
        self.open.pop(page, None)

    def _navigated(self, page: Page, frame: Frame) -> None:
        if frame == page.main_frame:  # a new document: the dialog, if any, is gone
            self._forget(page)

    def dismiss_all(self) -> None:
        from playwright.sync_api import Error as PlaywrightError

        for dialog in list(self.open.values()):
            with suppress(PlaywrightError):  # already answered at the window
                dialog.dismiss()
        self.open.clear()


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP set ``stop`` instead of ending the process. Playwright's
    driver ignores the SIGINT a Ctrl-C sends to the terminal's whole process group, and the
    browser runs in a process group of its own, so the run can still read the browser's
    state before it closes it."""
    names = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {number: signal.getsignal(number) for number in names}

    def handler(number: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        for number in names:
            signal.signal(number, handler)
        yield
    finally:
        for number, action in previous.items():
            signal.signal(number, action)
