"""A real uvicorn serving an app from a thread of the test process, on a free loopback port.

In-process, so a ``FakeClock`` injected into the app drives expiry. Shutdown is bounded: open
server-sent-event streams are cut after ``graceful`` seconds. uvicorn's own choices, as
``sessionward serve`` makes them (httptools and uvloop when installed).
"""

from __future__ import annotations

import signal
import subprocess
from contextlib import AbstractContextManager
from typing import Any

from servers import WAIT, uvicorn_thread, wait_until


def serve(app: Any, host: str = "127.0.0.1", graceful: int = 1) -> AbstractContextManager[str]:
    return uvicorn_thread(lambda base: app, host=host, graceful=graceful)


# -- ``sessionward serve`` in a subprocess -----------------------------------------------------


def wait_until_ok(url: str, timeout: float = WAIT) -> None:
    """Poll ``url`` until it answers 200; fail the test after ``timeout`` seconds."""
    import httpx

    def ok() -> bool:
        try:
            return httpx.get(url, timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ok, f"{url} to answer 200", timeout, interval=0.1)


def interrupt(process: subprocess.Popen[str]) -> None:
    """Stop a ``sessionward serve`` process as Ctrl-C does; a hang is a failure."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:  # pragma: no cover - a hang is a failure
        process.kill()
        process.wait(5)
        raise
    finally:
        if process.stdout is not None:
            process.stdout.close()
