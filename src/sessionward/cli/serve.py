"""``sessionward serve`` and ``sessionward demo``.

    sessionward serve [--host H] [--port P] [--store PATH|URL] [--workers N] [--config FILE] ...
    sessionward demo  [same options]          # serve, pointing at the demo shop

Settings come from flags, ``SESSIONWARD_*`` variables and a TOML file (see
``sessionward.service.config``). The banner prints the exact ``sessionward api-keys`` command
for this service's state file (``sessionward.cli.api_keys``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import time
from typing import Any

from sessionward.cli._common import CommandError, Subparsers
from sessionward.cli.api_keys import config_options, hint_options, load
from sessionward.errors import SessionwardError
from sessionward.service.config import ServiceConfig

__all__ = ["register"]


def register(subparsers: Subparsers) -> None:
    """Adds ``serve`` and ``demo`` (one registry entry in ``sessionward.cli``)."""
    for name, text in (
        ("serve", "run the HTTP API, the admin page and the demo shop"),
        ("demo", "run the service and open the demo shop"),
    ):
        parser = subparsers.add_parser(name, help=text, description=text)
        _serve_options(parser)
        parser.set_defaults(handler=_serve, demo_first=name == "demo")


def _serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8000; 0 picks a free one)")
    config_options(parser)
    parser.add_argument("--public-url", help="origin browsers use, e.g. https://sessions.example")
    parser.add_argument(
        "--trusted-proxy",
        action="append",
        dest="trusted_proxies",
        metavar="NET",
        help="reverse proxy address or network whose X-Forwarded-For is believed (repeatable)",
    )
    parser.add_argument(
        "--jwt-keys", metavar="FILE", help="signing-key file: serve JWKS and token refresh"
    )
    parser.add_argument("--jwt-audience", help="aud of the access tokens (default: the origin)")
    parser.add_argument("--no-admin", action="store_true", help="do not serve /admin")
    parser.add_argument(
        "--admin-url", help="the admin page's own origin, e.g. https://admin.sessions.example"
    )
    parser.add_argument("--csp-report-uri", help="where browsers report CSP violations")
    parser.add_argument("--no-demo", action="store_true", help="do not serve /demo")
    risk = parser.add_mutually_exclusive_group()
    risk.add_argument(
        "--risk",
        action="store_true",
        default=None,
        help="hijack scoring on validate (the default; see docs/risk.md)",
    )
    risk.add_argument(
        "--no-risk", dest="risk", action="store_false", help="turn hijack scoring off"
    )
    parser.add_argument(
        "--demo-device-signal",
        action="store_true",
        help="the demo shop sends the optional device signal (see docs/risk.md)",
    )
    parser.add_argument(
        "--no-demo-guest-limit",
        action="store_true",
        help="no limit on the demo shop's new guest sessions per address (to audit the shop)",
    )
    parser.add_argument(
        "--dpop-nonces",
        action="store_true",
        help="DPoP proofs must carry a server nonce (see docs/binding.md)",
    )
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    parser.add_argument(
        "--access-log", action="store_true", help="log every request (off by default: its cost)"
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="worker processes sharing the socket and the store (default 1)",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 256")
    return value


def _load(args: argparse.Namespace) -> ServiceConfig:
    flags: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "public_url": args.public_url,
        "trusted_proxies": args.trusted_proxies,
        "jwt_keys": args.jwt_keys,
        "jwt_audience": args.jwt_audience,
        "admin_url": args.admin_url,
        "csp_report_uri": args.csp_report_uri,
    }
    if args.no_admin:
        flags["admin"] = False
    if args.no_demo:
        flags["demo"] = False
    if args.risk is not None:
        flags["risk"] = args.risk
    if args.demo_device_signal:
        flags["demo_device_signal"] = True
    if args.no_demo_guest_limit:
        flags["demo_guest_limit"] = False
    if args.dpop_nonces:
        flags["dpop_nonces"] = True
    return load(args, **flags)


# -- serve -------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from sessionward.service.app import create_app
        from sessionward.service.runtime import Runtime, open_runtime
        from sessionward.service.workers import run_workers
    except ModuleNotFoundError as exc:
        raise CommandError(
            f"'serve' needs {exc.name}: pip install 'sessionward[service]'"
        ) from None
    config = _load(args)
    sock = _bind(config.host, config.port)
    if config.port == 0:
        config = _with_port(config, sock.getsockname()[1])
    workers: int = args.workers
    try:
        # One process: the app is built here. Several: each worker builds its own, and this
        # process opens the runtime once for what it prints (and to fail early).
        app = create_app(config) if workers == 1 else None
        runtime: Runtime = app.state.runtime if app is not None else open_runtime(config)
    except SessionwardError as exc:
        sock.close()
        raise CommandError(f"cannot start: {exc}") from None
    try:
        _banner(args, config, runtime)
    finally:
        if app is None:
            asyncio.run(runtime.close())
    options: dict[str, Any] = {
        "log_level": args.log_level,
        "access_log": args.access_log,
        "timeout_graceful_shutdown": _GRACEFUL,
        "forwarded_allow_ips": ",".join(config.trusted_proxies) or None,
        "proxy_headers": bool(config.trusted_proxies),
    }
    if app is not None:
        # uvicorn stops gracefully on Ctrl-C, then raises it again: a clean stop, not an error.
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])
        return 0

    def started(pids: list[int]) -> None:
        print(f"  Workers  {len(pids)} processes: {', '.join(map(str, pids))}", flush=True)

    try:
        return run_workers(workers, sock, (config, options), graceful=_GRACEFUL, on_started=started)
    finally:
        sock.close()


_GRACEFUL = 3  # seconds open requests (and the admin page's live feeds) get at shutdown


def _banner(args: argparse.Namespace, config: ServiceConfig, runtime: Any) -> None:
    from sessionward.service.setup import new_setup_code

    origin = config.origin
    admin = (config.admin_url or origin).rstrip("/")
    print(f"sessionward service on {origin}  (sessions: {config.store})")
    print(f"  API      {origin}/v1/   (OpenAPI: {origin}/openapi.json)")
    if runtime.tokens is not None:
        print(f"  JWKS     {origin}/.well-known/jwks.json")
    if config.admin:
        print(f"  Admin    {admin}/admin/")
    if config.demo:
        print(f"  Demo     {origin}/demo/")
    if config.admin and runtime.state.count_users("admin") == 0:
        code = new_setup_code(runtime.state, time.time())
        print()
        print("  No admin account yet. Open this one-time link to create it:")
        print(f"    {admin}/admin/setup#code={code}")
    if not runtime.state.list_keys():
        options = hint_options(config)
        print()
        print(f"  No API keys yet: sessionward api-keys create --scope issue {options}".rstrip())
    if args.demo_first and config.demo:
        print()
        print(f"  Open the demo shop: {origin}/demo/")
    sys.stdout.flush()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _with_port(config: ServiceConfig, port: int) -> ServiceConfig:
    from dataclasses import replace

    return replace(config, port=port)
