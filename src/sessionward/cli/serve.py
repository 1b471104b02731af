"""``sessionward serve``, ``sessionward demo`` and the API-key commands under ``keys``.

    sessionward serve [--host H] [--port P] [--store PATH|URL] [--workers N] [--config FILE] ...
    sessionward demo  [same options]          # serve, pointing at the demo shop
    sessionward keys create --scope validate|issue|admin [--name NAME] [--store ...]
    sessionward keys api list [--json]        # API keys (never their secrets)
    sessionward keys api revoke KEY_ID

Settings come from flags, ``SESSIONWARD_*`` variables and a TOML file (see
``sessionward.service.config``). Keys live in the service state (the session SQLite file by
default); ``keys create`` prints the key once and stores only its sha256.

The ``keys`` group itself belongs to the JWT signing-key commands (``sessionward.cli.jwt``,
whose ``list``/``revoke`` take a key file); its ``register`` calls
:func:`register_key_commands` to add ``create`` and the ``api`` subgroup here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import time
from datetime import UTC, datetime
from typing import Any

from sessionward.cli._common import CommandError, Parser, Subparsers
from sessionward.errors import ConfigError, InvalidArgument, SessionwardError
from sessionward.service.config import ServiceConfig, load_config
from sessionward.service.keys import SCOPES, create_key
from sessionward.service.state import ServiceState
from sessionward.stores._sync.sqlite import SQLiteStore

__all__ = ["register", "register_key_commands"]


def register(subparsers: Subparsers) -> None:
    """Adds ``serve`` and ``demo`` (one registry entry in ``sessionward.cli``)."""
    for name, text in (
        ("serve", "run the HTTP API, the admin page and the demo shop"),
        ("demo", "run the service and open the demo shop"),
    ):
        parser = subparsers.add_parser(name, help=text, description=text)
        _serve_options(parser)
        parser.set_defaults(handler=_serve, demo_first=name == "demo")


def _config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", help="SQLite path or redis:// / postgresql:// URL")
    parser.add_argument("--state", help="SQLite file for API keys and accounts")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file")


def _serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8000; 0 picks a free one)")
    _config_options(parser)
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
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "store": args.store or getattr(args, "db", None),
        "state": args.state,
        "public_url": getattr(args, "public_url", None),
        "trusted_proxies": getattr(args, "trusted_proxies", None),
        "jwt_keys": getattr(args, "jwt_keys", None),
        "jwt_audience": getattr(args, "jwt_audience", None),
        "admin_url": getattr(args, "admin_url", None),
        "csp_report_uri": getattr(args, "csp_report_uri", None),
    }
    if getattr(args, "no_admin", False):
        flags["admin"] = False
    if getattr(args, "no_demo", False):
        flags["demo"] = False
    try:
        return load_config(flags, config_file=args.config)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


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
        print()
        print("  No API keys yet: sessionward keys create --scope issue")
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


# -- keys --------------------------------------------------------------------------------------


def register_key_commands(actions: Subparsers) -> None:
    """Add ``create`` and ``api {create,list,revoke}`` to the ``keys`` group's subparsers."""
    _add_create(actions, "create", "create a service API key (printed once)")
    api = actions.add_parser("api", help="the service's API keys: create, list, revoke")
    api_actions = api.add_subparsers(dest="api_action", metavar="ACTION", parser_class=Parser)
    api_actions.required = True
    _add_create(api_actions, "create", "create an API key (printed once)")
    listing = api_actions.add_parser("list", help="list API keys (never their secrets)")
    listing.add_argument("--json", action="store_true")
    _config_options(listing)
    listing.set_defaults(handler=_keys_list)
    revoke = api_actions.add_parser("revoke", help="revoke an API key by its id")
    revoke.add_argument("key_id", metavar="KEY_ID")
    _config_options(revoke)
    revoke.set_defaults(handler=_keys_revoke)


def _add_create(actions: Subparsers, name: str, text: str) -> None:
    create = actions.add_parser(name, help=text, description=text)
    create.add_argument("--scope", required=True, choices=SCOPES)
    create.add_argument("--name", default="", help="a label for the key")
    create.add_argument(
        "--application",
        default="default",
        help="the application whose sessions the key reaches (default: default)",
    )
    _config_options(create)
    create.set_defaults(handler=_keys_create)


def _open_state(args: argparse.Namespace) -> ServiceState:
    config = _load(args)
    try:
        if config.store_is_sqlite and config.state_path == config.store:
            SQLiteStore(config.store).close()  # the session tables first: see ServiceState
        return ServiceState(config.state_path)
    except SessionwardError as exc:
        raise CommandError(f"{config.state_path}: {exc}") from None


def _keys_create(args: argparse.Namespace) -> int:
    state = _open_state(args)
    try:
        raw, row = create_key(state, args.scope, args.name, time.time(), args.application)
    except InvalidArgument as exc:
        raise CommandError(str(exc)) from None
    finally:
        state.close()
    print(
        f"created API key {row.id} (scope {row.scope}, application {row.application});"
        " it is shown only this once:"
    )
    print(raw)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    state = _open_state(args)
    try:
        rows = state.list_keys()
    finally:
        state.close()
    items = [
        {
            "id": r.id,
            "scope": r.scope,
            "application": r.application,
            "name": r.name,
            "created_at": _iso(r.created_at),
            "revoked_at": _iso(r.revoked_at),
        }
        for r in rows
    ]
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    if not items:
        print("no API keys")
        return 0
    for item in items:
        status = "revoked" if item["revoked_at"] else "active"
        print(
            f"{item['id']}  {item['scope']:<8}  {item['application']:<12}  {status:<7}"
            f"  {item['created_at']}  {item['name']}"
        )
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    state = _open_state(args)
    try:
        done = state.revoke_key(args.key_id, time.time())
    finally:
        state.close()
    if not done:
        print(f"sessionward: no active API key {args.key_id}", file=sys.stderr)
        return 1
    print(f"revoked API key {args.key_id}")
    return 0


def _iso(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, tz=UTC).isoformat(timespec="seconds")
