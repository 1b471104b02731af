"""The risk engine's comparisons of a request's browser, language, client hint and device
signal with the session's own: a cookie does not move between browsers, so any difference
is evidence, weighted by the policy. A browser update is the mildest; another device class
the strongest. A matching browser is no evidence of the owner: thieves copy user agents.
"""

from __future__ import annotations

from sessionward.core.risk_policy import RiskPolicy
from sessionward.core.risk_types import Browser, Decision, Reason, Signal, Signals

__all__ = [
    "browser_change",
    "challenge",
    "device_change",
    "language_change",
    "platform_change",
    "same_browser",
]


def _describe(b: Browser) -> str:
    version = f" {b.major}" if b.major is not None else ""
    return f"{b.family or 'unknown browser'}{version} on {b.os or 'unknown system'}"


def browser_change(old: Browser, new: Browser, policy: RiskPolicy) -> Reason | None:
    if old == new or not (old.family or old.os):
        return None
    change = f"{_describe(old)} -> {_describe(new)}"
    if old.device != new.device:
        return Reason(Signal.BROWSER_DEVICE, policy.browser_device, change)
    if old.os != new.os:
        return Reason(Signal.BROWSER_OS, policy.browser_os, change)
    if old.family != new.family:
        return Reason(Signal.BROWSER_FAMILY, policy.browser_family, change)
    step = (new.major or 0) - (old.major or 0)
    os_step = (new.os_major or 0) - (old.os_major or 0)
    if step < 0 or os_step < 0:
        return Reason(Signal.BROWSER_DOWNGRADE, policy.browser_downgrade, change)
    if step > policy.browser_max_update:
        return Reason(Signal.BROWSER_JUMP, policy.browser_jump, change)
    return Reason(Signal.BROWSER_UPDATE, policy.browser_update, change)


def language_change(old: str, new: str, policy: RiskPolicy) -> tuple[Reason, ...]:
    if old == new:
        return ()
    if not new:
        return (
            Reason(Signal.LANGUAGE_MISSING, policy.language_missing, f"no language (was {old})"),
        )
    if not old:
        return (Reason(Signal.LANGUAGE_ADDED, policy.language_added, f"language {new} appeared"),)
    change = f"{old} -> {new}"
    if old.partition("-")[0] == new.partition("-")[0]:
        return (Reason(Signal.LANGUAGE_REGION, policy.language_region, change),)
    return (Reason(Signal.LANGUAGE_CHANGED, policy.language_changed, change),)


def platform_change(old: Signals, new: Signals, policy: RiskPolicy) -> tuple[Reason, ...]:
    reasons = []
    if new.platform_mismatch and not old.platform_mismatch:
        text = f"client hint {new.platform!r} contradicts the user agent"
        reasons.append(Reason(Signal.PLATFORM_MISMATCH, policy.platform_mismatch, text))
    if old.platform != new.platform:
        if not new.platform:
            signal, weight = Signal.PLATFORM_MISSING, policy.platform_missing
        elif not old.platform:
            signal, weight = Signal.PLATFORM_ADDED, policy.platform_added
        else:
            signal, weight = Signal.PLATFORM_CHANGED, policy.platform_changed
        text = f"platform hint {old.platform or 'none'} -> {new.platform or 'none'}"
        reasons.append(Reason(signal, weight, text))
    return tuple(reasons)


def device_change(old: str, new: str, policy: RiskPolicy) -> tuple[Reason, ...]:
    if not old and not new:
        return ()
    if old == new:
        return (Reason(Signal.DEVICE_SAME, policy.device_same, "the session's device signal"),)
    if not new:
        return (Reason(Signal.DEVICE_MISSING, policy.device_missing, "no device signal"),)
    if not old:
        return (Reason(Signal.DEVICE_ADDED, policy.device_added, "device signal appeared"),)
    return (Reason(Signal.DEVICE_CHANGED, policy.device_changed, "another device signal"),)


def same_browser(old: Signals, new: Signals, policy: RiskPolicy) -> tuple[Reason, ...]:
    """``policy.browser_same`` (off at 0) when every browser attribute is the session's: the
    parsed user agent, the language, the platform hint (both absent counts for Safari and
    Firefox, which send none) and, if the session has one, the device signal. Thieves often
    copy the user agent and less often all of it, so a whole match is weak evidence of the
    owner; how weak depends on how much thieves copy (see docs/risk.md)."""
    if not policy.browser_same or old.browser != new.browser or not new.language:
        return ()
    if not (new.browser.family or new.browser.os) or new.language != old.language:
        return ()
    if new.platform != old.platform or new.platform_mismatch:
        return ()
    if old.device_signal and new.device_signal != old.device_signal:
        return ()
    text = "every browser attribute as the session's"
    return (Reason(Signal.BROWSER_SAME, policy.browser_same, text),)


def challenge(groups: dict[str, float], score: float, policy: RiskPolicy) -> Decision:
    """A score past ``step_up_at`` that does not revoke: a step-up, or a log when
    ``policy.step_up_alone_at`` is set, the score is below it and the network is the only group
    of evidence against the request (a move with nothing else different)."""
    if score < policy.step_up_alone_at and all(w <= 0 for g, w in groups.items() if g != "network"):
        return Decision.LOG
    return Decision.STEP_UP
