"""``sessionward profiles``: isolated client profiles (see docs/profiles.md).

    sessionward profiles create NAME [--user-agent UA] [--locale L] [--timezone TZ]
                                     [--viewport WxH] [--proxy URL]
    sessionward profiles list [--json]
    sessionward profiles show NAME [--json] [--server URL [--api-key KEY]]
    sessionward profiles clone SOURCE NAME
    sessionward profiles delete NAME --yes
    sessionward profiles export NAME --format F --output FILE [--force]
    sessionward profiles import NAME FILE [--format F] [--replace]
    sessionward profiles open NAME [URL] [--headless] [--browser PATH] [--browser-arg ARG]

Every command takes ``--home DIR`` (default ``$SESSIONWARD_PROFILES`` or the per-user data
directory). Cookie and localStorage values are shown masked, session tokens included; only
``export`` writes them out, into a file only its owner can read.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sessionward.audit.profiles import (
    FORMATS,
    Cookie,
    ProfileData,
    ProfileError,
    ProfileLocked,
    ProfileNotFound,
    Profiles,
    ServerSession,
    Settings,
    server_view,
)
from sessionward.audit.profiles._disk import write_atomic
from sessionward.audit.profiles.home import ENV_HOME, MAX_IMPORT_BYTES
from sessionward.audit.profiles.model import normal_origin
from sessionward.cli._common import CommandError, Parser, Subparsers, fmt_time, mask_token
from sessionward.core import token as tokens
from sessionward.errors import InvalidToken

__all__ = ["ENV_API_KEY", "register"]

ENV_API_KEY = "SESSIONWARD_API_KEY"


def _home_option(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    parser.add_argument(
        "--home",
        metavar="DIR",
        default=None if top else argparse.SUPPRESS,
        help=f"where profiles live (default: ${ENV_HOME}, or ~/.local/share/sessionward/profiles)",
    )


def register(subparsers: Subparsers) -> None:
    profiles = subparsers.add_parser(
        "profiles",
        help="isolated client profiles (cookies, storage, identity)",
        description="Profiles: each keeps its own cookies, localStorage and browser identity.",
    )
    _home_option(profiles, top=True)
    common = Parser(add_help=False)
    _home_option(common)
    actions = profiles.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    actions.required = True

    def action(name: str, help: str) -> Parser:
        return actions.add_parser(name, parents=[common], help=help, description=help)

    create = action("create", "create an empty profile")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--user-agent", metavar="UA", help="default: each client's own")
    create.add_argument("--locale", default="en-US", help="language tag (default: en-US)")
    create.add_argument("--timezone", default="UTC", help="IANA time zone (default: UTC)")
    create.add_argument("--viewport", default="1280x720", help="WIDTHxHEIGHT (default 1280x720)")
    create.add_argument("--proxy", metavar="URL", help="http://, https:// or socks5://HOST:PORT")
    create.set_defaults(handler=_create)

    listing = action("list", "list the profiles")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_list)

    show = action("show", "a profile's settings, cookies and storage (values masked)")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument("--server", metavar="URL", help="a sessionward service: show its view too")
    show.add_argument("--api-key", metavar="KEY", help=f"admin API key (default: ${ENV_API_KEY})")
    show.set_defaults(handler=_show)

    clone = action("clone", "copy a profile's settings, cookies and storage")
    clone.add_argument("source", metavar="SOURCE")
    clone.add_argument("name", metavar="NAME")
    clone.set_defaults(handler=_clone)

    delete = action("delete", "delete a profile and its browser data")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("--yes", action="store_true", help="confirm")
    delete.set_defaults(handler=_delete)

    export = action("export", "write a profile's cookies (and storage) to a file")
    export.add_argument("name", metavar="NAME")
    export.add_argument("--format", required=True, choices=FORMATS)
    export.add_argument("--output", "-o", required=True, metavar="FILE")
    export.add_argument("--force", action="store_true", help="replace an existing file")
    export.set_defaults(handler=_export)

    load = action("import", "add cookies (and storage) from a file to a profile")
    load.add_argument("name", metavar="NAME")
    load.add_argument("file", metavar="FILE")
    load.add_argument("--format", choices=FORMATS, help="default: recognised from the content")
    load.add_argument("--replace", action="store_true", help="empty the jar and storage first")
    load.set_defaults(handler=_import)

    browse = action("open", "run chromium with the profile until its window closes")
    browse.add_argument("name", metavar="NAME")
    browse.add_argument("url", metavar="URL", nargs="?")
    browse.add_argument("--headless", action="store_true", help="no window (stop with Ctrl-C)")
    browse.add_argument("--browser", metavar="PATH", help="chromium (default /usr/bin/chromium)")
    browse.add_argument(
        "--browser-arg", metavar="ARG", action="append", default=[], help="extra chromium flag"
    )
    browse.set_defaults(handler=_open)


def _profiles(args: argparse.Namespace) -> Profiles:
    return Profiles(args.home)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _viewport(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise CommandError(f"--viewport is WIDTHxHEIGHT, such as 1280x720 (not {text!r})")
    return int(width), int(height)


# -- create, list, clone, delete ---------------------------------------------------------------


def _create(args: argparse.Namespace) -> int:
    settings = Settings(
        user_agent=args.user_agent,
        locale=args.locale,
        timezone=args.timezone,
        viewport=_viewport(args.viewport),
        proxy=args.proxy,
    )
    profile = _profiles(args).create(args.name, settings)
    print(f"created profile {profile.name} in {profile.path}")
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _profiles(args)
    rows: list[dict[str, Any]] = []
    for name in store.names():
        profile = store[name]
        try:
            data = profile.read()
        except ProfileError as exc:  # one damaged profile does not hide the others
            rows.append({"name": name, "error": str(exc)})
            continue
        data.drop_expired()
        rows.append(
            {
                "name": name,
                "cookies": len(data.cookies),
                "origins": len(data.local_storage),
                "in_use": profile.in_use(),
                "user_agent": data.settings.user_agent,
                "created_at": fmt_time(data.created_at),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no profiles in {store.home}")
    else:
        print(f"{'NAME':<20} {'COOKIES':>7} {'ORIGINS':>7}  {'IN USE':<6}  USER AGENT")
        for row in rows:
            if "error" in row:
                print(f"{row['name']:<20} {'-':>7} {'-':>7}  {'-':<6}  ({row['error']})")
                continue
            agent = row["user_agent"] or "(the client's own)"
            in_use = "yes" if row["in_use"] else "no"
            counts = f"{row['cookies']:>7} {row['origins']:>7}"
            print(f"{row['name']:<20} {counts}  {in_use:<6}  {agent}")
    return 0


def _clone(args: argparse.Namespace) -> int:
    profile = _profiles(args).clone(args.source, args.name)
    print(f"cloned profile {args.source} to {profile.name} (browser cache and history not copied)")
    return 0


def _delete(args: argparse.Namespace) -> int:
    if not args.yes:
        raise CommandError("deleting a profile loses its sessions: confirm with --yes")
    _profiles(args).delete(args.name)
    print(f"deleted profile {args.name}")
    return 0


# -- export, import ----------------------------------------------------------------------------


def _export(args: argparse.Namespace) -> int:
    profile = _profiles(args)[args.name]
    target = Path(args.output)
    if target.exists() and not args.force:
        raise CommandError(f"{target} exists: pass --force to replace it")
    if not target.parent.is_dir():
        raise CommandError(f"no directory {target.parent}")
    text = profile.export(args.format)
    write_atomic(target, text.encode("utf-8"))
    data = profile.read()
    print(
        f"wrote {_count(len(data.cookies), 'cookie')}"
        + ("" if args.format == "cookies.txt" else f", {_count(len(data.local_storage), 'origin')}")
        + f" of profile {profile.name} to {target} ({args.format}, mode 0600): it holds live"
        " credentials, keep it private"
    )
    return 0


def _import(args: argparse.Namespace) -> int:
    profile = _profiles(args)[args.name]
    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"no file {path}")
    if path.stat().st_size > MAX_IMPORT_BYTES:
        raise CommandError(f"{path} is over {MAX_IMPORT_BYTES // 2**20} MiB")
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError:
        raise CommandError(f"{path} is not UTF-8 text") from None
    try:
        imported = profile.import_text(text, args.format, replace_all=args.replace)
    except (ProfileLocked, ProfileNotFound):
        raise
    except ProfileError as exc:  # the file's content: say which file
        raise CommandError(f"{path}: {exc}") from None
    settings = ", with its settings" if imported.settings is not None else ""
    print(
        f"imported {_count(len(imported.cookies), 'cookie')} and localStorage of"
        f" {_count(len(imported.local_storage), 'origin')} ({imported.format}{settings})"
        f" into profile {profile.name}"
    )
    if imported.ignored:
        print("not kept (a profile holds cookies and localStorage): " + ", ".join(imported.ignored))
    return 0


# -- open --------------------------------------------------------------------------------------


def _open(args: argparse.Namespace) -> int:
    try:
        import playwright.sync_api  # noqa: F401 - only to say what is missing, early
    except ImportError:
        raise CommandError("'profiles open' needs Playwright: pip install playwright") from None
    from sessionward.audit.profiles.browser import chromium_path, open_browser

    profile = _profiles(args)[args.name]
    executable = chromium_path(args.browser)

    def started(context: object) -> None:
        how = "press Ctrl-C" if args.headless else "close the window or press Ctrl-C"
        print(f"profile {profile.name} open in {executable}; {how} to save and stop", flush=True)

    open_browser(
        profile,
        args.url,
        headless=args.headless,
        args=args.browser_arg,
        executable_path=executable,
        started=started,
    )
    data = profile.read()
    print(
        f"saved profile {profile.name}: {_count(len(data.cookies), 'cookie')},"
        f" localStorage of {_count(len(data.local_storage), 'origin')}"
    )
    return 0


# -- show --------------------------------------------------------------------------------------


def _mask(value: str) -> str:
    if value.startswith(tokens.PREFIX):
        return mask_token(value)
    return f"…({len(value)} chars)" if value else "(empty)"


def _session_id(value: str) -> str | None:
    try:
        return tokens.parse(value).session_id
    except InvalidToken:
        return None


def _cookie_view(cookie: Cookie) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": cookie.name,
        "domain": cookie.domain,
        "path": cookie.path,
        "value": _mask(cookie.value),
        "expires": fmt_time(cookie.expires) if cookie.expires is not None else None,
        "secure": cookie.secure,
        "http_only": cookie.http_only,
        "same_site": cookie.same_site,
    }
    if (session_id := _session_id(cookie.value)) is not None:
        view["session_id"] = session_id
    return view


def _server_ids(data: ProfileData, server: str) -> dict[str, str]:
    """Session id -> where the profile holds its token, for the server's host and origin."""
    host = urlsplit(server).hostname or ""
    found: dict[str, str] = {}
    for cookie in data.cookies:
        if cookie.sent_to(host) and (sid := _session_id(cookie.value)) is not None:
            found.setdefault(sid, f"cookie {cookie.name}")
    try:
        origin = normal_origin(server.rstrip("/"))
    except ProfileError:
        origin = None
    for key, value in data.local_storage.get(origin or "", {}).items():
        if (sid := _session_id(value)) is not None:
            found.setdefault(sid, f"localStorage {key}")
    return found


def _server(args: argparse.Namespace, data: ProfileData) -> list[dict[str, Any]] | None:
    if args.server is None:
        if args.api_key is not None:
            raise CommandError("--api-key goes with --server URL")
        return None
    try:
        import httpx  # noqa: F401 - only to say what is missing, early
    except ImportError:
        raise CommandError("--server needs httpx: pip install 'sessionward[audit]'") from None
    key = args.api_key or os.environ.get(ENV_API_KEY)
    if not key:
        raise CommandError(f"--server needs an admin API key: --api-key KEY or ${ENV_API_KEY}")
    where = _server_ids(data, args.server)
    sessions = server_view(args.server, key, list(where))
    return [_server_session(s, where[s.session_id]) for s in sessions]


def _server_session(session: ServerSession, where: str) -> dict[str, Any]:
    view: dict[str, Any] = {"session_id": session.session_id, "held_in": where}
    view["found"] = session.found
    if session.found:
        view |= {
            "user_id": session.user_id,
            "device": session.device,
            "address": session.address,
            "created_at": fmt_time(session.created_at),
            "last_seen": fmt_time(session.last_seen),
            "expires_at": fmt_time(session.expires_at),
            "absolute_expires_at": fmt_time(session.absolute_expires_at),
            "auth_level": session.auth_level,
            "decisions": [
                {**d, "at": fmt_time(d["at"]) if isinstance(d.get("at"), int | float) else None}
                for d in session.decisions
            ],
        }
    return view


def _show(args: argparse.Namespace) -> int:
    profile = _profiles(args)[args.name]
    data = profile.read()
    data.drop_expired()
    in_use = profile.in_use()
    view = {
        "name": profile.name,
        "path": str(profile.path),
        "created_at": fmt_time(data.created_at),
        "in_use": in_use,
        "holder_pid": profile.holder() if in_use else None,
        "settings": data.settings.to_json() | {"proxy": data.settings.masked_proxy()},
        "cookies": [_cookie_view(c) for c in data.cookies],
        "local_storage": {
            origin: {k: _mask(v) for k, v in items.items()}
            for origin, items in data.local_storage.items()
        },
        "server": _server(args, data),
    }
    if args.json:
        print(json.dumps(view, indent=2))
    else:
        _print_profile(view)
    return 0


def _print_profile(view: dict[str, Any]) -> None:
    settings = view["settings"]
    width, height = settings["viewport"]["width"], settings["viewport"]["height"]
    in_use = f"yes (process {view['holder_pid']})" if view["in_use"] else "no"
    print(f"profile {view['name']}  ({view['path']})")
    print(f"  created     {view['created_at']}    in use: {in_use}")
    agent = settings["user_agent"] or "(the client's own)"
    print(f"  user agent  {agent}")
    print(
        f"  locale      {settings['locale']}    time zone {settings['timezone']}"
        f"    viewport {width}x{height}    proxy {settings['proxy'] or '(none)'}"
    )
    print(f"cookies ({len(view['cookies'])})")
    for c in view["cookies"]:
        flags = " ".join(
            [f for f, on in (("Secure", c["secure"]), ("HttpOnly", c["http_only"])) if on]
            + [f"SameSite={c['same_site']}", f"expires {c['expires'] or 'with the session'}"]
        )
        session = f"  session {c['session_id']}" if "session_id" in c else ""
        print(f"  {c['domain']}{c['path']}  {c['name']}={c['value']}{session}  {flags}")
    print(f"localStorage ({len(view['local_storage'])} origins)")
    for origin, items in view["local_storage"].items():
        for key, value in items.items():
            print(f"  {origin}  {key}={value}")
    if view["server"] is not None:
        _print_server(view["server"])


def _print_server(sessions: list[dict[str, Any]]) -> None:
    print(f"server view ({_count(len(sessions), 'sessionward session')} held)")
    for s in sessions:
        print(f"  session {s['session_id']}  ({s['held_in']})")
        if not s["found"]:
            print("    not known to the server: revoked, expired or never issued there")
            continue
        print(f"    user        {s['user_id'] or '(anonymous)'}    auth level {s['auth_level']}")
        print(f"    device      {s['device'] or '(not recorded)'}")
        print(f"    address     {s['address'] or '(not recorded)'}")
        print(f"    created     {s['created_at']}    last seen {s['last_seen']}")
        print(f"    expires     {s['expires_at']} (idle)    {s['absolute_expires_at']} (absolute)")
        if not s["decisions"]:
            print("    decisions   (none recorded by the process that answered)")
        for d in s["decisions"]:
            reason = f" ({d['reason']})" if d.get("reason") else ""
            print(f"    decision    {d['at']}  {d.get('kind')}{reason}")
