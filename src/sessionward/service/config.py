"""Service configuration: one frozen object, filled from flags, ``SESSIONWARD_*`` and TOML.

Precedence, highest first: command-line flags, environment variables, the TOML file
(``--config`` or ``SESSIONWARD_CONFIG``), defaults. The TOML file holds the same names as the
flags, at top level or under a ``[service]`` table, plus an optional ``[policy]`` table::

    host = "127.0.0.1"
    port = 8000
    store = "sessionward.db"          # or "redis://..." or "postgresql://..."
    public_url = "https://sessions.example"
    trusted_proxies = ["10.0.0.0/8"]
    jwt_keys = "jwt-keys.json"        # opt-in JWT mode: JWKS and refresh endpoints
    oidc_issuer = "https://login.example"   # back-channel logout from this provider
    oidc_client_id = "shop"
    ssf_issuer = "https://signals.example"  # Shared Signals pushed by this transmitter
    risk = false                      # hijack scoring is on unless this says so (docs/risk.md)
    demo_device_signal = true         # the demo shop sends the device signal (off by default)
    demo_guest_limit = false          # no limit on new guest sessions (to audit the demo shop)
    dpop_nonces = true                # DPoP proofs must carry a server nonce (off by default)

    [policy]
    idle_timeout = 1800
    absolute_timeout = 28800
    rotate_after = 900
"""

from __future__ import annotations

import base64
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sessionward.core.policy import Policy
from sessionward.errors import ConfigError

__all__ = ["ENV_PREFIX", "ServiceConfig", "load_config"]

ENV_PREFIX = "SESSIONWARD_"
_POLICY_FIELDS = {f.name for f in fields(Policy)}


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Everything ``create_app`` needs.

    * ``store``: a SQLite path, or a Redis URL (``redis://``, ``rediss://``, ``unix://``,
      ``redis+sentinel://``, ``redis+cluster://``) or a ``postgresql://`` URL.
    * ``state``: SQLite file for API keys, accounts and secrets (default: the session file
      when ``store`` is SQLite, else ``sessionward-service.db``).
    * ``public_url``: the origin browsers use (CSRF checks and printed links); default
      ``http://<host>:<port>``. Loopback hosts also accept ``localhost``/``127.0.0.1``.
    * ``admin`` / ``demo``: serve the admin page at ``/admin`` and the demo shop at ``/demo``.
    * ``trusted_proxies``: reverse proxies whose ``X-Forwarded-For`` is believed.
    * ``key_cache_seconds``: how long a process trusts an API-key lookup (revocation delay).
    * ``jwt_keys``: turns on the JWT mode (``/.well-known/jwks.json``, ``/v1/tokens``): the
      path of a signing-key file (``sessionward jwt-keys generate``, a JWK set or a PEM key), or
      that text itself (as ``SESSIONWARD_JWT_KEYS`` holds it for ``sessionward.jwt``).
    * ``jwt_audience``: the ``aud`` of the access tokens (default: the origin, also the
      ``iss``).
    * ``admin_url``: the origin of the admin page when it has a host name of its own
      (``https://admin.sessions.example``): it then answers only requests for that host, and
      that host serves nothing else. Default: ``/admin`` beside everything else.
    * ``csp_report_uri``: where browsers report Content-Security-Policy violations.
    * ``event_log``: keep a durable audit log of session events in the store (default on;
      docs/events.md). ``event_retention_days``: how long its entries are kept (default 90;
      0 keeps them all, though Redis still bounds its stream by length).
    * ``webhook_private_targets``: let ``POST /v1/webhooks`` add endpoints (and Shared Signals
      push streams their targets) on loopback, private or reserved addresses (default off: an
      application's key cannot aim the service at the network it runs in; ``sessionward
      webhooks add`` is the operator's and is not checked).
    * ``oidc_issuer`` / ``oidc_client_id``: turn on ``POST /v1/oidc/backchannel-logout`` for
      logout tokens of that OpenID provider addressed to that client; ``oidc_jwks_url`` is its
      JWK set (default: the ``jwks_uri`` of its ``/.well-known/openid-configuration``).
    * ``ssf_issuer``: turns on ``POST /v1/ssf/events`` for SETs pushed by that Shared Signals
      transmitter; ``ssf_jwks_url`` (default: the ``jwks_uri`` of its
      ``/.well-known/ssf-configuration``), ``ssf_audience`` (default: the origin),
      ``ssf_authorization`` (the exact ``Authorization`` header it must send, optional) and
      ``ssf_credential_compromise`` (``revoke``, the default, or ``step-up``).
    * ``ssf_default_subjects``: the subjects a new stream of this service's Shared Signals
      transmitter carries: ``ALL`` (the default; a receiver removes the ones it does not
      want) or ``NONE`` (only the subjects a receiver adds).
    * ``risk`` (on by default): score every validate that carries a ``context`` with the
      risk engine and answer its decision and reasons (see docs/risk.md). A validate without
      a ``context`` is not scored, so an application that sends none sees no change.
    * ``demo_device_signal`` (off by default): the demo shop serves ``device.js`` and scores
      the device signal (see docs/risk.md, "Device signal").
    * ``demo_guest_limit`` (on by default): the demo shop starts at most so many guest
      sessions per client address (docs/throttling.md); off, any number, as a token harvest
      of ``sessionward audit`` against the shop needs.
    * ``dpop_nonces`` (off by default): every DPoP proof passed on in a ``dpop`` field must
      carry a current server nonce (RFC 9449 §8); ``dpop_nonce_key`` is the key the nonces are
      made with, base64 of at least 32 random bytes and the same on every host (default: a
      secret of the state file, shared by the processes of one host).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    store: str = "sessionward.db"
    state: str | None = None
    public_url: str | None = None
    admin: bool = True
    demo: bool = True
    trusted_proxies: tuple[str, ...] = ()
    key_cache_seconds: float = 5.0
    jwt_keys: str | None = None
    jwt_audience: str | None = None
    admin_url: str | None = None
    csp_report_uri: str | None = None
    event_log: bool = True
    event_retention_days: float = 90.0
    webhook_private_targets: bool = False
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_jwks_url: str | None = None
    ssf_issuer: str | None = None
    ssf_jwks_url: str | None = None
    ssf_audience: str | None = None
    ssf_authorization: str | None = field(default=None, repr=False)
    ssf_credential_compromise: str = "revoke"
    ssf_default_subjects: str = "ALL"
    risk: bool = True
    demo_device_signal: bool = False
    demo_guest_limit: bool = True
    dpop_nonces: bool = False
    dpop_nonce_key: str | None = field(default=None, repr=False)
    policy: Policy = field(default_factory=Policy)

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError("port must be an integer between 0 and 65535")
        if not self.store:
            raise ConfigError("store must be a SQLite path or a redis:// / postgresql:// URL")
        if self.key_cache_seconds < 0:
            raise ConfigError("key_cache_seconds must not be negative")
        if self.public_url and _host_of(self.public_url) is None:
            raise ConfigError("public_url must be an origin such as https://sessions.example")
        if self.admin_url is not None and _host_of(self.admin_url) is None:
            raise ConfigError("admin_url must be an origin such as https://admin.example")
        if self.admin_url is not None and _host_of(self.admin_url) == _host_of(self.origin):
            raise ConfigError("admin_url must name a host other than the public URL's")
        if not self.event_retention_days >= 0:
            raise ConfigError("event_retention_days must be 0 (keep all) or a positive number")
        if self.csp_report_uri is not None and not _is_report_uri(self.csp_report_uri):
            raise ConfigError("csp_report_uri must be an http(s) URL or a path, without ';' ','")
        if (self.oidc_issuer is None) != (self.oidc_client_id is None):
            raise ConfigError("oidc_issuer and oidc_client_id go together")
        if self.ssf_credential_compromise not in ("revoke", "step-up"):
            raise ConfigError("ssf_credential_compromise must be 'revoke' or 'step-up'")
        if self.ssf_default_subjects not in ("ALL", "NONE"):
            raise ConfigError("ssf_default_subjects must be 'ALL' or 'NONE'")
        if self.dpop_nonce_key is not None:
            if not self.dpop_nonces:
                raise ConfigError("dpop_nonce_key is set but dpop_nonces is off")
            self.nonce_key_bytes()  # raises when it is not a key

    def nonce_key_bytes(self) -> bytes | None:
        """``dpop_nonce_key`` decoded (standard or URL-safe base64), or ``None`` when unset."""
        if self.dpop_nonce_key is None:
            return None
        text = self.dpop_nonce_key.strip().replace("+", "-").replace("/", "_").rstrip("=")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except ValueError:
            raw = b""
        if len(raw) < 32:
            raise ConfigError("dpop_nonce_key must be base64 of at least 32 random bytes")
        return raw

    @property
    def store_is_sqlite(self) -> bool:
        return "://" not in self.store

    @property
    def state_path(self) -> str:
        if self.state:
            return self.state
        return self.store if self.store_is_sqlite else "sessionward-service.db"

    @property
    def event_retention(self) -> float | None:
        """Seconds the audit log keeps an entry (``None``: no time limit)."""
        days = self.event_retention_days
        return days * 86_400.0 if days > 0 else None

    @property
    def origin(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def admin_host(self) -> str | None:
        """The admin page's own host name, when it has one."""
        return None if self.admin_url is None else _host_of(self.admin_url)

    @property
    def admin_origins(self) -> list[str]:
        """Origins accepted for the admin page's forms."""
        return [self.admin_url.rstrip("/")] if self.admin_url else self.origins

    @property
    def origins(self) -> list[str]:
        """Origins accepted for browser forms (CSRF)."""
        out = [self.origin]
        if not self.public_url and self.host in ("127.0.0.1", "localhost", "::1"):
            out += [f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}"]
        return list(dict.fromkeys(out))


_MAX_ORIGIN = 2048


def _host_of(url: str) -> str | None:
    """The host of ``url`` when it is an origin (http or https, a host, at most a port, at
    most ``_MAX_ORIGIN`` characters), else ``None``."""
    if len(url) > _MAX_ORIGIN:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number or out of range)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username is not None or "?" in url or "#" in url:
        return None
    return parts.hostname.lower()


def _is_report_uri(uri: str) -> bool:
    plain = not any(c in uri for c in ' ;,"\r\n')
    return plain and uri.startswith(("https://", "http://", "/"))


def _coerce(name: str, value: Any) -> Any:
    kinds = {
        "port": int,
        "key_cache_seconds": float,
        "admin": bool,
        "demo": bool,
        "event_log": bool,
        "event_retention_days": float,
        "webhook_private_targets": bool,
        "risk": bool,
        "demo_device_signal": bool,
        "demo_guest_limit": bool,
        "dpop_nonces": bool,
    }
    if name == "trusted_proxies":
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return tuple(str(v) for v in value)
    kind = kinds.get(name)
    if kind is bool and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ConfigError(f"{name}: expected a boolean, got {value!r}")
        return lowered in ("1", "true", "yes", "on")
    if kind is not None:
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected {kind.__name__}, got {value!r}") from None
    return None if value is None else str(value)


def _policy_value(name: str, value: Any) -> Any:
    if name == "on_session_limit":
        return str(value)
    if value is None or (isinstance(value, str) and value.lower() in ("", "none")):
        return None
    try:
        return (
            int(value)
            if name in ("max_data_bytes", "max_sessions_per_user", "context_history")
            else float(value)
        )
    except (TypeError, ValueError):
        raise ConfigError(f"policy.{name}: expected a number, got {value!r}") from None


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    return data


def load_config(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> ServiceConfig:
    """Merge defaults, the TOML file, ``SESSIONWARD_*`` variables and ``flags`` (``None``
    values in ``flags`` mean "not given")."""
    environ = os.environ if environ is None else environ
    names = [f.name for f in fields(ServiceConfig) if f.name != "policy"]
    values: dict[str, Any] = {}
    policy_values: dict[str, Any] = {}
    path = config_file or environ.get(ENV_PREFIX + "CONFIG")
    if path:
        data = _read_toml(path)
        service = data.get("service", data)
        for key, value in service.items():
            if key in ("policy", "service"):
                continue
            if key.replace("-", "_") not in names:
                raise ConfigError(f"config file {path}: unknown setting {key!r}")
            values[key.replace("-", "_")] = value
        for key, value in (data.get("policy") or {}).items():
            if key not in _POLICY_FIELDS:
                raise ConfigError(f"config file {path}: unknown policy setting {key!r}")
            policy_values[key] = value
    if ENV_PREFIX + "DB" in environ:  # the CLI's variable for the SQLite file
        values["store"] = environ[ENV_PREFIX + "DB"]
    for name in names:
        env = environ.get(ENV_PREFIX + name.upper())
        if env is not None:
            values[name] = env
    for name in _POLICY_FIELDS:
        env = environ.get(ENV_PREFIX + "POLICY_" + name.upper())
        if env is not None:
            policy_values[name] = env
    for name, value in (flags or {}).items():
        if value is not None and name in names:
            values[name] = value
    coerced = {name: _coerce(name, value) for name, value in values.items()}
    policy = Policy(**{k: _policy_value(k, v) for k, v in policy_values.items()})
    return replace(ServiceConfig(), **coerced, policy=policy)
