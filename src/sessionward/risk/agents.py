"""A request's browser as the risk engine sees it: the user agent parsed into family, version,
system and device class, the first Accept-Language range, and the Sec-CH-UA-Platform hint.

The user agent is parsed with ``ua-parser`` (the uap-core rules; its native ``ua-parser-rs``
matcher when installed). Only the parsed fields reach the engine, never the raw string.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from sessionward.core.risk import Browser

__all__ = ["language_of", "parse_user_agent", "platform_mismatch", "platform_of"]

# Families that do not send user-agent client hints: a Sec-CH-UA-Platform next to one of
# these user agents means the user agent was written by someone, not by the browser.
_NO_CLIENT_HINTS = frozenset(
    {"Firefox", "Firefox Mobile", "Firefox iOS", "Safari", "Mobile Safari", "Chrome Mobile iOS"}
)
# The Sec-CH-UA-Platform value a Chromium browser sends on each system.
_PLATFORMS = {
    "Windows": "Windows",
    "Mac OS X": "macOS",
    "Android": "Android",
    "Chrome OS": "Chrome OS",
    "Linux": "Linux",
    "Ubuntu": "Linux",
    "Fedora": "Linux",
}
_DESKTOP = frozenset({*_PLATFORMS} - {"Android"} | {"FreeBSD", "OpenBSD", "Debian", "Arch Linux"})
_LANGUAGE = re.compile(r"[a-z]{1,8}(?:-[a-z0-9]{1,8})?")
_HINT_TEXT = re.compile(r"[A-Za-z0-9 ._-]{1,32}")


def _major(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) <= 6 else None


@functools.cache
def _parser() -> Any:
    """ua-parser without its own cache (the enricher caches the parsed result), on the native
    matcher when ``ua-parser-rs`` is installed. Built on first use: loading takes a moment."""
    import ua_parser

    try:
        from ua_parser.regex import Resolver
    except ImportError:  # pure-Python matching: slower, same answers
        return ua_parser.Parser(ua_parser.BasicResolver(ua_parser.load_builtins()))
    return ua_parser.Parser(Resolver(ua_parser.load_lazy_builtins()))


@functools.cache
def _domains() -> Any:
    """The browser and system domains only: the device domain is the slowest of the three,
    and the device class follows from the system and a few words of the string."""
    from ua_parser import Domain

    return Domain.USER_AGENT | Domain.OS


def parse_user_agent(user_agent: str) -> Browser:
    """Browser family and major version, system family and major version, device class."""
    if not user_agent:
        return Browser()
    result = _parser()(user_agent, _domains())
    agent, system = result.user_agent, result.os
    family = agent.family if agent else "Other"
    os_family = system.family if system and system.family != "Other" else ""
    return Browser(
        family,
        _major(agent.major) if agent else None,
        os_family,
        _major(system.major) if system and os_family else None,
        _device_class(family, os_family, user_agent),
    )


_BOT = re.compile(r"bot\b|crawl|spider|slurp|bingpreview", re.IGNORECASE)
_BOT_WORDS = ("crawl", "spider", "slurp", "bingpreview")


def _is_bot(user_agent: str) -> bool:
    """``_BOT.search``: on an ASCII string (nearly all of them) with plain substring searches
    on the lower-case string, several times faster than the case-insensitive pattern."""
    if not user_agent.isascii():  # Unicode case folding: leave it to the pattern
        return _BOT.search(user_agent) is not None
    lower = user_agent.lower()
    if any(word in lower for word in _BOT_WORDS):
        return True
    at = lower.find("bot")
    while at >= 0:  # "bot" at the end of a word
        after = at + 3
        if after == len(lower) or not (lower[after].isalnum() or lower[after] == "_"):
            return True
        at = lower.find("bot", after)
    return False


def _device_class(family: str, os_family: str, user_agent: str) -> str:
    if _is_bot(user_agent):
        return "bot"
    if os_family in ("iOS", "iPadOS"):
        return "tablet" if "iPad" in user_agent else "mobile"
    if os_family == "Android":
        return "mobile" if "Mobile" in user_agent else "tablet"
    if os_family in _DESKTOP:
        return "desktop"
    if not os_family:
        return "tool" if family != "Other" or "Mozilla/" not in user_agent else "other"
    return "other"


def language_of(accept_language: str | None) -> str:
    """The first language range, lower case, language and region only (``"en-gb"``)."""
    if not accept_language:
        return ""
    first = accept_language.split(",", 1)[0].split(";", 1)[0].strip().lower()
    parts = first.split("-")
    tag = "-".join(parts[:2])
    return tag if _LANGUAGE.fullmatch(tag) else ""


def platform_of(hints: dict[str, str]) -> str:
    """The Sec-CH-UA-Platform hint without its quotes (``"Windows"``), or ``""``."""
    value = hints.get("sec-ch-ua-platform", "").strip().strip('"')
    return value if _HINT_TEXT.fullmatch(value) else ""


def platform_mismatch(browser: Browser, platform: str) -> bool:
    """True when the client hint contradicts the user agent."""
    if not platform:
        return False
    if browser.family in _NO_CLIENT_HINTS:
        return True
    expected = _PLATFORMS.get(browser.os)
    return expected is not None and expected != platform
