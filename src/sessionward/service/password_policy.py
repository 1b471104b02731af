"""What a new password of the admin page or the demo shop must be (ASVS V6.2).

* At least ``min_length`` characters (8 for the shop, 12 for administrators) and at most
  :data:`MAX_LENGTH` (1,024: long pass phrases are welcome); any characters at all, with no
  composition rules; checked and later verified exactly as typed (no trimming, no case
  folding).
* Not one of the 8,351 most common passwords of 8 or more characters in public breach
  corpora (``common-passwords.txt.gz``, compared case-insensitively; see
  ``scripts/common_passwords.py`` for its source).
* Not built on a word of this context (:data:`CONTEXT_WORDS`, or the account's own name):
  a password that is such a word plus fewer than 8 other characters is refused
  (``sessionward2024``), a long phrase that merely contains one is not.
"""

from __future__ import annotations

import gzip
from functools import cache
from importlib import resources

__all__ = ["CONTEXT_WORDS", "MAX_LENGTH", "is_common", "password_problem"]

MAX_LENGTH = 1024
#: The names of this service and its demo, as users would spell them in a password.
CONTEXT_WORDS = (
    "sessionward",
    "session",
    "sessions",
    "teaandthings",
    "tea&things",
    "teathings",
    "admin",
    "administrator",
    "demo",
    "shop",
)
_REST = 8  # characters a password needs besides a context word


@cache
def _common() -> frozenset[str]:
    raw = resources.files("sessionward.service").joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(raw).decode("utf-8").split())


def is_common(password: str) -> bool:
    return password.lower() in _common()


def password_problem(password: str, *, min_length: int, name: str = "") -> str | None:
    """Why ``password`` may not be chosen (a sentence for the form), or ``None``."""
    if len(password) < min_length:
        return f"Choose a password of at least {min_length} characters."
    if len(password) > MAX_LENGTH:
        return f"Choose a password of at most {MAX_LENGTH} characters."
    if is_common(password):
        return "That password is one of the most common ones: choose another."
    lowered = password.lower()
    for word in (*CONTEXT_WORDS, name.lower()):
        if len(word) >= 3 and word in lowered and len(lowered.replace(word, "")) < _REST:
            return f"A password built on {word!r} is easy to guess: choose another."
    return None
