"""The sync request handle is generated from the async one, never edited by hand.

Regenerate after editing ``src/sessionward/web/_async_handle.py``::

    .venv/bin/python tests/web/test_handle_twin.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "sessionward" / "web" / "_async_handle.py"
TARGET = ROOT / "src" / "sessionward" / "web" / "_sync_handle.py"
HEADER = "# GENERATED from sessionward/web/_async_handle.py by tests/web/test_handle_twin.py.\n"


def generated() -> str:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from unasync import transform  # type: ignore[import-not-found,unused-ignore]
    finally:
        sys.path.pop(0)
    text: str = transform(SOURCE.read_text("utf-8"))
    return HEADER + text


def test_sync_handle_is_up_to_date() -> None:
    assert TARGET.read_text("utf-8") == generated(), "run: python tests/web/test_handle_twin.py"


def test_both_handles_offer_the_same_methods() -> None:
    from sessionward.web._async_handle import AsyncSessionHandle
    from sessionward.web._sync_handle import SessionHandle

    public = {n for n in dir(AsyncSessionHandle) if not n.startswith("__")}
    assert public == {n for n in dir(SessionHandle) if not n.startswith("__")}


if __name__ == "__main__":
    TARGET.write_text(generated(), "utf-8")
