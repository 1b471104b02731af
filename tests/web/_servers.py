"""Real HTTP servers on free loopback ports, run in a thread of the test process (so a
FakeClock injected into the app's manager drives expiry), plus a tiny cookie-aware client."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
from servers import uvicorn_thread


def _free_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def uvicorn_server(
    make_app: Callable[[str], Any], host: str = "127.0.0.1"
) -> AbstractContextManager[str]:
    """Serve ``make_app(base_url)`` with a real uvicorn; yields the base URL."""
    return uvicorn_thread(make_app, host=host, access_log=True, log_level="debug")


def _unset(environ: Any, start_response: Any) -> Any:  # pragma: no cover - replaced at once
    raise RuntimeError("app not set")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        import logging

        logging.getLogger("tests.wsgiref").info(format, *args)


@contextmanager
def wsgi_server(make_app: Callable[[str], Any], host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``make_app(base_url)`` with the standard library's wsgiref (a real server)."""
    from socketserver import ThreadingMixIn

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    server = make_server(host, 0, _unset, server_class=Server, handler_class=_QuietHandler)
    base = f"http://{host}:{server.server_port}"
    server.set_app(make_app(base))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class Browserish:
    """An httpx client that keeps its cookies by hand: the session cookie as ``token``, any
    other (the anonymous CSRF nonce) in ``others``.

    httpx (rightly) never sends a ``Secure`` cookie over plain http, and the tests want to
    replay old tokens on purpose, so the cookies are handled explicitly here.
    """

    def __init__(self, base: str, cookie_name: str = "__Host-id") -> None:
        self.base = base
        self.origin = base
        self.cookie_name = cookie_name
        self.token: str | None = None
        self.others: dict[str, str] = {}
        self.client = httpx.Client(base_url=base, timeout=10)
        self.responses: list[httpx.Response] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        same_origin: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        use = token if token is not None else self.token
        jar = dict(self.others)
        if use is not None:
            jar[self.cookie_name] = use
        if jar:
            headers["cookie"] = "; ".join(f"{name}={value}" for name, value in jar.items())
        if same_origin and method not in ("GET", "HEAD"):
            headers.setdefault("origin", self.origin)
        response = self.client.request(method, path, headers=headers, **kwargs)
        self.responses.append(response)
        for value in response.headers.get_list("set-cookie"):
            name, _, rest = value.partition("=")
            cookie_value = rest.split(";")[0]
            if name == self.cookie_name:
                self.token = cookie_value or None
            elif cookie_value:
                self.others[name] = cookie_value
            else:
                self.others.pop(name, None)
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def close(self) -> None:
        self.client.close()
