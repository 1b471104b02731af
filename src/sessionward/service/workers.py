"""``sessionward serve --workers N``: N processes answering on one listening socket.

The parent process binds the socket and starts N workers (``multiprocessing``'s ``spawn``:
nothing of the parent is inherited but the socket and a pipe). Each worker builds the app
with its own store connections and runs ``uvicorn.Server`` on the shared socket; the kernel
hands each new connection to one of them. The parent answers no request. It

* replaces a worker that dies, and says so on stderr with the pid and how it ended;
* stops the service (exit status 1) when a worker exits by itself before it started serving:
  a start that fails once (store unreachable, bad settings) would fail the same way again;
* on SIGINT or SIGTERM asks every worker to stop (SIGTERM: each finishes its open requests
  within uvicorn's graceful-shutdown timeout), waits for them, and kills any that hang.

A worker stops by itself when its parent is gone (its end of the pipe closes), so a killed
parent leaves no worker serving on its own.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from socket import socket
from types import FrameType
from typing import Any

from sessionward.service.config import ServiceConfig

__all__ = ["Worker", "run_workers", "serve_worker"]

#: What a worker runs: ``target(payload, sock, pipe)``. It sends ``b"ready"`` on the pipe
#: once it serves, and stops when the pipe closes (the parent is gone).
Target = Callable[[Any, socket, Connection], None]

_READY = b"ready"
_SPAWN = multiprocessing.get_context("spawn")


def serve_worker(
    payload: tuple[ServiceConfig, dict[str, Any]], sock: socket, pipe: Connection
) -> None:
    """A worker of ``sessionward serve``: the service app on uvicorn, on the shared socket."""
    import uvicorn

    from sessionward.service.app import create_app

    config, options = payload
    server = uvicorn.Server(uvicorn.Config(create_app(config), **options))

    def report() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            pipe.send_bytes(_READY)
        try:
            pipe.recv_bytes()  # nothing is sent: this returns only when the parent is gone
        except (EOFError, OSError):
            server.should_exit = True

    threading.Thread(target=report, name="sessionward-parent-watch", daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
        server.run(sockets=[sock])


@dataclass
class Worker:
    process: BaseProcess
    pipe: Connection
    pid: int
    ready: bool = False

    def close(self) -> None:
        """Release the pipe and the process handle (once it has ended)."""
        self.pipe.close()
        if not self.process.is_alive():
            self.process.close()


def _how_it_ended(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _say(message: str) -> None:
    print(f"sessionward: {message}", file=sys.stderr, flush=True)


def run_workers(
    count: int,
    sock: socket,
    payload: Any,
    *,
    target: Target = serve_worker,
    graceful: float = 3.0,
    on_started: Callable[[list[int]], None] | None = None,
) -> int:
    """Run ``count`` workers on ``sock`` until SIGINT or SIGTERM (exit status 0) or until a
    worker fails to start (1). ``on_started`` gets the first workers' pids."""
    stop = threading.Event()

    def stop_on(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, stop_on) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start() -> Worker:
        ours, theirs = _SPAWN.Pipe()
        process = _SPAWN.Process(
            target=target, args=(payload, sock, theirs), name="sessionward-worker"
        )
        process.start()
        theirs.close()  # the worker holds its own end now
        return Worker(process, ours, process.pid or 0)

    workers: list[Worker] = []
    failed = False
    try:
        workers = [start() for _ in range(count)]
        if on_started is not None:
            on_started([w.pid for w in workers])
        while not stop.is_set():
            waiting: list[Any] = [w.process.sentinel for w in workers]
            waiting += [w.pipe for w in workers if not w.ready]
            woke = wait(waiting, timeout=0.5)
            for index, worker in enumerate(workers):
                if worker.pipe in woke and not worker.ready:
                    with contextlib.suppress(EOFError, OSError):  # died: see its sentinel
                        worker.ready = worker.pipe.recv_bytes() == _READY
                if stop.is_set() or worker.process.sentinel not in woke:
                    continue
                worker.process.join()
                code = worker.process.exitcode
                ended = _how_it_ended(code)
                if not worker.ready and code is not None and code >= 0:
                    _say(f"worker {worker.pid} ended before it served ({ended}); stopping")
                    failed = True
                    stop.set()
                    break
                worker.close()
                workers[index] = start()
                _say(f"worker {worker.pid} ended ({ended}); started {workers[index].pid}")
    finally:
        _stop_all(workers, graceful)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if failed else 0


def _stop_all(workers: list[Worker], graceful: float) -> None:
    for worker in workers:
        if worker.process.is_alive() and worker.process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + graceful + 10
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            _say(f"worker {worker.pid} did not stop in time; killing it")
            worker.process.kill()
            worker.process.join(5)
        worker.close()
