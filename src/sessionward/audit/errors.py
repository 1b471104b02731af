"""The auditor's errors, under sessionward's one root.

    SessionwardError
    └── AuditError            the audit cannot go on
        ├── ScenarioError     the scenario file is wrong (also a ValueError)
        ├── OutOfScope        a request would leave the target origin
        └── TargetError       the target cannot be reached or does not behave as described

Messages never contain a token: evidence is redacted before it reaches an exception.
"""

from __future__ import annotations

from sessionward.errors import SessionwardError

__all__ = ["AuditError", "OutOfScope", "ScenarioError", "TargetError"]


class AuditError(SessionwardError):
    """The audit cannot go on."""


class ScenarioError(AuditError, ValueError):
    """The scenario file is invalid; the message names the key."""


class OutOfScope(AuditError):
    """A request would go somewhere other than the target origin."""


class TargetError(AuditError):
    """The target is unreachable, or a step the scenario describes did not work."""
