"""Keeping tokens out of reports: every value the target hands out is masked in evidence.

The redactor learns each cookie value, bearer token and JWT the auditor sees; ``text``
replaces every occurrence with a label that gives the length and a short hash (so two pieces
of evidence about the same token can be matched) and no character of the token itself.
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any

__all__ = ["Redactor", "mask"]

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_MIN_SECRET = 8  # shorter values (flags, counters) would garble the text and reveal little


def mask(token: str) -> str:
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"«token {len(token)} chars #{digest}»"


class Redactor:
    """Thread-safe: harvest workers add tokens while the main thread reports."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str | None) -> None:
        if value and len(value) >= _MIN_SECRET and value not in self._secrets:
            with self._lock:
                self._secrets.add(value)
                self._pattern = None

    def text(self, value: str) -> str:
        with self._lock:
            if self._pattern is None and self._secrets:
                ordered = sorted(self._secrets, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(s) for s in ordered))
            pattern = self._pattern
        if pattern is not None:
            value = pattern.sub(lambda m: mask(m.group(0)), value)
        return _JWT.sub(lambda m: mask(m.group(0)), value)

    def evidence(self, value: Any) -> Any:
        """``value`` (JSON-like) with every string redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {str(k): self.evidence(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.evidence(v) for v in value]
        return value
