"""The risk engine's values: what a request looks like to it, and what it answers.

Immutable and typed; :mod:`sessionward.core.risk` re-exports them.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any, TypeVar

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

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """Give a frozen, slotted dataclass an ``__init__`` that stores each field through its
    slot rather than through ``object.__setattr__``: the same parameters, defaults and
    ``__post_init__``, in about 60% of the time. The engine builds several of these values
    on every request whose context changed."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if any(not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING for f in fields):
        return cls  # not needed by the engine's values: keep the generated one
    names = [f.name for f in fields]
    scope: dict[str, Any] = {f"_set_{n}": getattr(cls, n).__set__ for n in names}
    scope.update({f"_default_{f.name}": f.default for f in fields})
    params = [
        n if f.default is dataclasses.MISSING else f"{n}=_default_{n}"
        for n, f in zip(names, fields, strict=True)
    ]
    body = [f"    _set_{n}(self, {n})" for n in names]
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body)
    exec(source, scope)  # noqa: S102 (built from the class's own field names)
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    type.__setattr__(cls, "__init__", init)
    return cls


@quick_init
@dataclass(frozen=True, slots=True)
class Network:
    """Where a request came from, enriched: ``prefix`` is the /24 (IPv4) or /48 (IPv6),
    ``asn`` the autonomous system's name, ``country`` an ISO code, ``kind`` one of ``""``
    (an ordinary access network), ``"hosting"``, ``"vpn"``, ``"tor"``. Empty means unknown."""

    prefix: str = ""
    asn: str = ""
    country: str = ""
    kind: str = ""


@quick_init
@dataclass(frozen=True, slots=True)
class Browser:
    """The parsed user agent: browser family and major version, system family and major
    version, device class (``desktop``, ``mobile``, ``tablet``, ``bot``, ``tool`` or ``""``)."""

    family: str = ""
    major: int | None = None
    os: str = ""
    os_major: int | None = None
    device: str = ""


@quick_init
@dataclass(frozen=True, slots=True)
class Signals:
    """A request's context without its time: what the engine compares."""

    network: Network = Network()
    browser: Browser = Browser()
    language: str = ""  # the first Accept-Language range, lower case ("en-gb")
    platform: str = ""  # Sec-CH-UA-Platform without quotes ("Windows")
    device_signal: str = ""  # the optional device signal, opaque
    platform_mismatch: bool = False  # the client hint contradicts the user agent


@quick_init
@dataclass(frozen=True, slots=True)
class Observation:
    """One request: its signals, its time (from the injected clock) and whether it presented
    the secret a rotation replaced (inside the grace window)."""

    t: float
    signals: Signals
    previous_secret: bool = False


@quick_init
@dataclass(frozen=True, slots=True)
class Reason:
    """One piece of evidence: a code, its weight (log likelihood ratio) and a sentence."""

    signal: Signal
    weight: float
    detail: str

    @property
    def group(self) -> str:
        return self.signal.group


@quick_init
@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision, the score (the sum of the weights) and the reasons, heaviest first."""

    decision: Decision
    score: float
    reasons: tuple[Reason, ...]
