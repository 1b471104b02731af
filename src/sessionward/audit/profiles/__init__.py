"""Isolated client profiles: one cookie jar, localStorage, identity and browser per profile.

A profile keeps, on disk and apart from every other profile, its cookie jar, each origin's
localStorage, a user agent, locale, time zone, viewport and optional proxy. Use it from an
httpx client or from chromium (a Playwright persistent context); either locks the profile
while in use and writes the cookies back when done. See docs/profiles.md.

    from sessionward.audit.profiles import Profiles, Settings, browser_context, http_client

    profiles = Profiles()              # $SESSIONWARD_PROFILES, or ~/.local/share/...
    alice = profiles.create("alice", Settings(user_agent="QA-alice/1.0"))
    with http_client(alice, base_url="https://shop.example") as client:
        client.post("/login", data={...})           # the session cookie lands in alice's jar
    with sync_playwright() as p, browser_context(alice, p) as context:
        context.new_page().goto("https://shop.example/account")   # still signed in

Export and import: ``Profile.export`` and ``Profile.import_text`` (cookies.txt, Playwright
storage state, JSON).
"""

from __future__ import annotations

from sessionward.audit.profiles._errors import (
    ProfileError,
    ProfileExists,
    ProfileLocked,
    ProfileNotFound,
)
from sessionward.audit.profiles.browser import browser_context, open_browser
from sessionward.audit.profiles.formats import FORMATS, Format, Imported
from sessionward.audit.profiles.home import ENV_HOME, Profile, Profiles, default_home
from sessionward.audit.profiles.http import async_http_client, http_client
from sessionward.audit.profiles.model import Cookie, ProfileData, Settings
from sessionward.audit.profiles.server import ServerSession, server_view

__all__ = [
    "ENV_HOME",
    "FORMATS",
    "Cookie",
    "Format",
    "Imported",
    "Profile",
    "ProfileData",
    "ProfileError",
    "ProfileExists",
    "ProfileLocked",
    "ProfileNotFound",
    "Profiles",
    "ServerSession",
    "Settings",
    "async_http_client",
    "browser_context",
    "default_home",
    "http_client",
    "open_browser",
    "server_view",
]
