"""The risk engine's values: what a request looks like to it, and what it answers.

Immutable and typed; :mod:`sessionward.core.risk` re-exports them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "Browser",
    "Decision",
    "Network",
    "Observation",
    "Reason",
    "Signal",
    "Signals",
    "Verdict",
]


class Decision(enum.StrEnum):
    """What to do with the request, in increasing severity."""

    ALLOW = "allow"
    LOG = "log"  # allow, and record the reasons
    STEP_UP = "step_up"  # re-authenticate; the session survives
    REVOKE = "revoke"  # end the session


class Signal(enum.StrEnum):
    """Stable reason codes. The part before the dot is the group of evidence."""

    LOGIN = "login.authenticated"
    NETWORK_SAME = "network.same"
    NETWORK_PREFIX = "network.new_prefix"
    NETWORK_ASN = "network.new_network"
    NETWORK_COUNTRY = "network.new_country"
    NETWORK_KIND = "network.kind"
    BROWSER_SAME = "browser.same"
    BROWSER_UPDATE = "browser.update"
    BROWSER_DOWNGRADE = "browser.downgrade"
    BROWSER_JUMP = "browser.version_jump"
    BROWSER_FAMILY = "browser.other_browser"
    BROWSER_OS = "browser.other_system"
    BROWSER_DEVICE = "browser.other_device"
    LANGUAGE_CHANGED = "language.changed"
    LANGUAGE_REGION = "language.region"
    LANGUAGE_MISSING = "language.missing"
    LANGUAGE_ADDED = "language.added"
    PLATFORM_CHANGED = "platform.changed"
    PLATFORM_MISSING = "platform.missing"
    PLATFORM_ADDED = "platform.added"
    PLATFORM_MISMATCH = "platform.mismatch"
    DEVICE_SAME = "device.same"
    DEVICE_CHANGED = "device.changed"
    DEVICE_MISSING = "device.missing"
    DEVICE_ADDED = "device.added"
    CONCURRENT = "behaviour.concurrent"
    TRAVEL = "behaviour.impossible_travel"
    VELOCITY = "behaviour.velocity"
    PREVIOUS_SECRET = "behaviour.previous_secret"  # noqa: S105 (a reason code)

    @property
    def group(self) -> str:
        return GROUPS[self]


#: Each reason code's group of evidence (what :attr:`Signal.group` answers).
GROUPS = {signal: signal.value.partition(".")[0] for signal in Signal}


@dataclass(frozen=True, slots=True)
class Network:
    """Where a request came from, enriched: ``prefix`` is the /24 (IPv4) or /48 (IPv6),
    ``asn`` the autonomous system's name, ``country`` an ISO code, ``kind`` one of ``""``
    (an ordinary access network), ``"hosting"``, ``"vpn"``, ``"tor"``. Empty means unknown."""

    prefix: str = ""
    asn: str = ""
    country: str = ""
    kind: str = ""


@dataclass(frozen=True, slots=True)
class Browser:
    """The parsed user agent: browser family and major version, system family and major
    version, device class (``desktop``, ``mobile``, ``tablet``, ``bot``, ``tool`` or ``""``)."""

    family: str = ""
    major: int | None = None
    os: str = ""
    os_major: int | None = None
    device: str = ""


@dataclass(frozen=True, slots=True)
class Signals:
    """A request's context without its time: what the engine compares."""

    network: Network = Network()
    browser: Browser = Browser()
    language: str = ""  # the first Accept-Language range, lower case ("en-gb")
    platform: str = ""  # Sec-CH-UA-Platform without quotes ("Windows")
    device_signal: str = ""  # the optional device signal, opaque
    platform_mismatch: bool = False  # the client hint contradicts the user agent


@dataclass(frozen=True, slots=True)
class Observation:
    """One request: its signals, its time (from the injected clock) and whether it presented
    the secret a rotation replaced (inside the grace window)."""

    t: float
    signals: Signals
    previous_secret: bool = False


@dataclass(frozen=True, slots=True)
class Reason:
    """One piece of evidence: a code, its weight (log likelihood ratio) and a sentence."""

    signal: Signal
    weight: float
    detail: str

    @property
    def group(self) -> str:
        return self.signal.group


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision, the score (the sum of the weights) and the reasons, heaviest first."""

    decision: Decision
    score: float
    reasons: tuple[Reason, ...]
