"""``sessionward serve`` as a user runs it (a real process), configuration precedence, the
OpenAPI document against the routes, and the small pure helpers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import Mount, Route

from sessionward.errors import ConfigError
from sessionward.service import ServiceConfig, create_app, load_config
from sessionward.service.apidocs import DOCS_PATHS
from sessionward.service.openapi import openapi_document
from sessionward.service.passwords import totp_now, verify_totp
from sessionward.service.runtime import open_store

from ._server import interrupt, wait_until_ok
from .conftest import Service

CLI = [sys.executable, "-m", "sessionward"]


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, list[str], Path]]:
    """``sessionward serve --port 0`` in a subprocess; yields its base URL and first lines."""
    process = subprocess.Popen(
        [*CLI, "serve", "--port", "0", "--store", "s.db", "--log-level", "warning"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")},
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if "No API keys yet" in line:
            break
    match = re.search(r"http://127\.0\.0\.1:\d+", "\n".join(lines))
    assert match, lines
    base = match.group(0)
    try:
        wait_until_ok(base + "/healthz")
        yield base, lines, tmp_path
    finally:
        interrupt(process)


def test_serve_prints_where_and_a_one_time_setup_link(
    served: tuple[str, list[str], Path],
) -> None:
    base, lines, cwd = served
    text = "\n".join(lines)
    assert f"API      {base}/v1/" in text
    assert f"Admin    {base}/admin/" in text
    assert f"Demo     {base}/demo/" in text
    setup = re.search(re.escape(base) + r"/admin/setup#code=([A-Za-z0-9_-]+)", text)
    assert setup, text
    assert "?" not in setup.group(0)  # the code is in the fragment, never in a query
    assert httpx.get(base + "/readyz").json() == {"status": "ready"}
    assert httpx.get(base + "/demo/").status_code == 200
    assert httpx.get(base + "/openapi.json").json()["openapi"] == "3.1.0"
    # A key created by the CLI works against the running service (same SQLite file).
    created = run_cli("api-keys", "create", "--scope", "validate", "--store", "s.db", cwd=cwd)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("swk_")
    auth = {"authorization": f"Bearer {key}"}
    answer = httpx.post(base + "/v1/sessions/validate", json={"token": "x"}, headers=auth)
    assert answer.json() == {"decision": "deny", "reason": "invalid"}
    refused = httpx.post(base + "/v1/sessions", json={}, headers=auth)
    assert refused.status_code == 403
    listed = run_cli("api-keys", "list", "--json", "--store", "s.db", cwd=cwd)
    rows = json.loads(listed.stdout)
    assert [r["scope"] for r in rows] == ["validate"]
    assert key not in listed.stdout
    assert key[20:] not in (cwd / "s.db").read_bytes().decode("latin-1")
    revoked = run_cli("api-keys", "revoke", rows[0]["id"], "--store", "s.db", cwd=cwd)
    assert revoked.returncode == 0
    assert run_cli("api-keys", "revoke", rows[0]["id"], "--store", "s.db", cwd=cwd).returncode == 1


def test_keys_create_refuses_unknown_scope(tmp_path: Path) -> None:
    result = run_cli("api-keys", "create", "--scope", "root", "--store", "k.db", cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_serve_with_unavailable_store_url_fails_clearly(tmp_path: Path) -> None:
    result = run_cli("serve", "--port", "0", "--store", "mysql://x", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown store URL scheme" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_precedence_flags_env_toml(tmp_path: Path) -> None:
    toml = tmp_path / "sw.toml"
    toml.write_text(
        'host = "127.0.0.2"\nport = 9000\nstore = "from-toml.db"\n'
        'trusted_proxies = ["10.0.0.0/8"]\n[policy]\nidle_timeout = 120\nrotate_after = 60\n'
    )
    from_toml = load_config(environ={}, config_file=str(toml))
    assert (from_toml.host, from_toml.port, from_toml.store) == ("127.0.0.2", 9000, "from-toml.db")
    assert from_toml.trusted_proxies == ("10.0.0.0/8",)
    assert from_toml.policy.idle_timeout == 120
    assert from_toml.policy.rotate_after == 60
    env = {
        "SESSIONWARD_PORT": "9100",
        "SESSIONWARD_CONFIG": str(toml),
        "SESSIONWARD_POLICY_IDLE_TIMEOUT": "300",
        "SESSIONWARD_DEMO": "false",
    }
    from_env = load_config(environ=env)
    assert (from_env.port, from_env.store, from_env.demo) == (9100, "from-toml.db", False)
    assert from_env.policy.idle_timeout == 300
    flags = load_config({"port": 9200, "store": None}, environ=env)
    assert (flags.port, flags.store) == (9200, "from-toml.db")
    assert load_config(environ={}).store == "sessionward.db"
    assert load_config(environ={"SESSIONWARD_DB": "cli.db"}).store == "cli.db"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nonsense = 1\n", "unknown setting"),
        ("port = 'x'\n", "expected int"),
        ("[policy]\nidle_timeout = 0\n", "idle_timeout"),
        ("port = ", "config file"),
    ],
)
def test_bad_config_files_are_config_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config(environ={}, config_file=str(path))


def test_state_location_and_origins() -> None:
    assert ServiceConfig(store="a.db").state_path == "a.db"
    assert ServiceConfig(store="redis://r:6379/0").state_path == "sessionward-service.db"
    config = ServiceConfig(port=8123)
    assert config.origin == "http://127.0.0.1:8123"
    assert "http://localhost:8123" in config.origins
    public = ServiceConfig(public_url="https://sessions.example/")
    assert public.origins == ["https://sessions.example"]


@pytest.mark.parametrize("setting", ["public_url", "admin_url"])
@pytest.mark.parametrize(
    "url",
    [
        "sessions.example",
        "ftp://sessions.example",
        "https://sessions.example/app",
        "https://sessions.example/?next=/",
        "https://sessions.example/#top",
        "https://user:pass@sessions.example",
        "https://sessions.example:99999",
        "https://",
        "https://" + "a" * 2050 + ".example",
    ],
)
def test_the_public_and_admin_urls_must_be_origins(setting: str, url: str) -> None:
    # They are compared with the Origin header of every form post and printed as links.
    with pytest.raises(ConfigError, match=f"{setting} must be an origin"):
        ServiceConfig(**{setting: url})  # type: ignore[arg-type]


def test_origins_with_a_port_or_a_final_slash_are_taken() -> None:
    config = ServiceConfig(
        public_url="https://sessions.example:8443/", admin_url="https://admin.example/"
    )
    assert config.origin == "https://sessions.example:8443"
    assert config.admin_origins == ["https://admin.example"]


def test_store_urls_use_the_plug_in_stores() -> None:
    with pytest.raises(ConfigError, match="unknown store URL scheme"):
        open_store("memcached://x")
    from sessionward.stores.postgres import AsyncPostgresStore
    from sessionward.stores.redis import AsyncRedisStore

    for url, kind in (
        ("redis://127.0.0.1:1/0", AsyncRedisStore),
        ("redis+sentinel://127.0.0.1:1/mymaster", AsyncRedisStore),
        ("redis+cluster://127.0.0.1:1", AsyncRedisStore),
        ("postgresql://127.0.0.1:1/x", AsyncPostgresStore),
    ):
        store = open_store(url)  # connections open lazily: nothing is contacted here
        assert isinstance(store, kind)
        asyncio.run(store.close())


def test_openapi_documents_exactly_the_api_routes(service: Service) -> None:
    documented = {
        (path, method.upper())
        for path, item in openapi_document()["paths"].items()
        for method in item
    }
    served = set()
    for route in service.app.routes:
        if (
            isinstance(route, Mount)
            or not isinstance(route, Route)
            or route.path in ("/", "/admin", "/demo", *DOCS_PATHS)
        ):
            continue
        path = route.path.replace(":anytext}", "}")
        served |= {(path, m) for m in route.methods or () if m != "HEAD"}
    assert documented == served
    live = service.client.get("/openapi.json").json()
    assert live == json.loads(json.dumps(openapi_document()))


def test_totp_matches_rfc_6238_vectors() -> None:
    # RFC 6238 appendix B, SHA-1 seed "12345678901234567890", truncated to 6 digits.
    import base64

    secret = base64.b32encode(b"12345678901234567890").decode()
    for when, code in [
        (59, "287082"),
        (1111111109, "081804"),
        (1234567890, "005924"),
        (2000000000, "279037"),
    ]:
        assert totp_now(secret, when) == code
        assert verify_totp(secret, code, when)
        assert not verify_totp(secret, code, when + 36)  # past its step and the drift
        assert not verify_totp(secret, code, when + 95)
    assert not verify_totp(secret, "12345", 59)
    assert not verify_totp(secret, "abcdef", 59)


def test_app_factory_defaults_serve_everything(tmp_path: Path) -> None:
    app = create_app(ServiceConfig(store=str(tmp_path / "d.db")))
    paths = {getattr(r, "path", None) for r in app.routes}
    assert {"/admin", "/demo", "/v1/sessions", "/metrics"} <= paths
    asyncio.run(app.state.runtime.close())
