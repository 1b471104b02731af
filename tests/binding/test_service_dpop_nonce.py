"""Server nonces (RFC 9449 §8) in the service's REST API, over real HTTP: with
``dpop_nonces`` on, a proof the backend passes on must carry a current nonce. Without one (or
with a stale or forged one) the service asks for it: ``400`` ``use_dpop_nonce`` from the calls
that issue, refresh or end a token, ``401`` with ``WWW-Authenticate: DPoP`` from validate, each
with the current nonce in ``DPoP-Nonce``; every answer to a call that passed a proof carries
the current nonce. Nonces are HMACs of a time window, so two nodes with the same key accept
each other's without asking the store."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _shared import running_service, service_config
from joserfc import jwk as jose_jwk
from joserfc import jws as jose_jws
from joserfc.jws import JWSRegistry
from proofs import Device
from service._forms import TOTP, site_at
from service.conftest import Service, make_keys
from service.test_jwt_api import key_file

from sessionward.core.dpop import DpopPolicy
from sessionward.errors import ConfigError
from sessionward.service import ServiceConfig
from sessionward.service.config import load_config
from sessionward.testing import FakeClock

APP = "https://app.example"
WINDOW = 300.0  # the service's nonce window: a nonce lives one to two of them
DENY = {"decision": "deny", "reason": "invalid"}
ADMIN_PASSWORD = "staple battery horse"  # noqa: S105 - a test account's


def _config(tmp_path: Path, name: str = "service", **extra: Any) -> ServiceConfig:
    keys = str(key_file(tmp_path))
    return service_config(tmp_path, state=f"{name}-state.db", jwt_keys=keys, **extra)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Service]:
    with running_service(_config(tmp_path, dpop_nonces=True), FakeClock(time.time())) as service:
        yield service


class Client:
    """A DPoP client behind its backend: keeps the last nonce the service handed out."""

    def __init__(self, api: Service, device: Device | None = None) -> None:
        self.api, self.device = api, device or Device()
        self.nonce: str | None = None

    def dpop(self, path: str, *, method: str = "POST", **extra: Any) -> dict[str, str]:
        url = APP + path
        extra.setdefault("nonce", self.nonce)
        proof = self.device.dpop(method, url, iat=self.api.clock.now(), **extra)
        return {"proof": proof, "method": method, "url": url}

    def post(self, path: str, body: dict[str, Any], scope: str = "issue") -> httpx.Response:
        response = self.api.client.post(path, json=body, headers=self.api.auth(scope))
        self.nonce = response.headers.get("dpop-nonce", self.nonce)
        return response


def _asked(response: httpx.Response, status: int = 400) -> str:
    """The service asked for the current nonce; returns it."""
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == "use_dpop_nonce"
    if status == 401:
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('DPoP error="use_dpop_nonce"'), challenge
    nonce: str = response.headers["dpop-nonce"]
    return nonce


def _sessions(api: Service, user: str) -> list[Any]:
    answer = api.client.get(f"/v1/users/{user}/sessions", headers=api.auth("issue"))
    sessions: list[Any] = answer.json()["sessions"]
    return sessions


def test_an_opaque_session_needs_the_current_nonce_at_issue_validate_and_revoke(
    api: Service,
) -> None:
    owner, thief = Client(api), Client(api)
    another_key = DpopPolicy(nonce_key=secrets.token_bytes(32)).nonce(api.clock.now())
    refused_nonces = [None, "A" * 32, "not a nonce", another_key]
    for nonce in refused_nonces:  # missing, forged, malformed, made with another key
        response = owner.post(
            "/v1/sessions", {"user_id": "ann", "dpop": owner.dpop("/login", nonce=nonce)}
        )
        _asked(response)
    assert _sessions(api, "ann") == []  # nothing issued
    issued = owner.post("/v1/sessions", {"user_id": "ann", "dpop": owner.dpop("/login")})
    assert issued.status_code == 201, issued.text
    assert issued.headers["dpop-nonce"] == owner.nonce
    token, session_id = issued.json()["token"], issued.json()["session"]["id"]
    assert issued.json()["session"]["binding"]["jkt"] == owner.device.thumbprint

    def validate(client: Client, dpop: dict[str, str] | None) -> httpx.Response:
        body: dict[str, Any] = {"token": token}
        if dpop is not None:
            body["dpop"] = dpop
        return client.post("/v1/sessions/validate", body, "validate")

    without = validate(owner, owner.dpop("/orders", token=token, nonce=None))
    assert _asked(without, 401) == owner.nonce
    forged = validate(owner, owner.dpop("/orders", token=token, nonce="B" * 32))
    _asked(forged, 401)
    allowed = validate(owner, owner.dpop("/orders", token=token))
    assert allowed.json()["decision"] == "allow"
    assert allowed.headers["dpop-nonce"] == owner.nonce
    once = owner.dpop("/orders", token=token)
    assert validate(owner, once).json()["decision"] == "allow"
    assert validate(owner, once).json() == DENY  # a replayed jti, current nonce and all
    thief.nonce = owner.nonce  # a nonce is no secret: the thief has the current one too
    assert validate(thief, None).json() == DENY  # no proof
    assert validate(thief, thief.dpop("/orders", token=token)).json() == DENY  # another key
    other_url = owner.dpop("/orders", token=token) | {"url": APP + "/admin"}
    assert validate(owner, other_url).json() == DENY
    other_method = owner.dpop("/orders", token=token) | {"method": "DELETE"}
    assert validate(owner, other_method).json() == DENY

    stale_nonce = owner.nonce
    api.clock.advance(2 * WINDOW + 1)  # the nonce's window and the next one are over
    stale = validate(owner, owner.dpop("/orders", token=token))  # a fresh proof, stale nonce
    fresh_nonce = _asked(stale, 401)
    assert fresh_nonce != stale_nonce
    assert validate(owner, owner.dpop("/orders", token=token)).json()["decision"] == "allow"

    # Ending the session needs the proof too: a stolen token cannot end its owner's session.
    assert thief.post("/v1/sessions/revoke", {"token": token}).json() == {"revoked": False}
    thief.nonce = owner.nonce
    by_thief = {"token": token, "dpop": thief.dpop("/logout", token=token)}
    assert thief.post("/v1/sessions/revoke", by_thief).json() == {"revoked": False}
    assert validate(owner, owner.dpop("/orders", token=token)).json()["decision"] == "allow"
    no_nonce = {"token": token, "dpop": owner.dpop("/logout", token=token, nonce=None)}
    _asked(owner.post("/v1/sessions/revoke", no_nonce))
    proven = {"token": token, "dpop": owner.dpop("/logout", token=token)}
    ended = owner.post("/v1/sessions/revoke", proven)
    assert ended.json() == {"revoked": True}
    assert ended.headers["dpop-nonce"] == owner.nonce
    assert _sessions(api, "ann") == []
    seen = [
        e.get("detail") or e.get("reason")
        for e in api.runtime.activity.for_session(session_id)
        if e["kind"] == "theft-suspected"
    ]
    assert seen.count("binding-proof-jkt") == 2  # the thief's proofs; nonce requests are not


def test_an_unbound_session_and_a_call_without_a_proof_need_no_nonce(api: Service) -> None:
    client = Client(api)
    issued = client.post("/v1/sessions", {"user_id": "bo"})
    assert issued.status_code == 201
    assert "dpop-nonce" not in issued.headers  # no proof passed, no nonce handed out
    token = issued.json()["token"]
    answer = client.post("/v1/sessions/validate", {"token": token}, "validate")
    assert answer.json()["decision"] == "allow"
    assert "dpop-nonce" not in answer.headers
    assert client.post("/v1/sessions/revoke", {"token": token}).json() == {"revoked": True}


def test_jwt_mode_login_and_refresh_need_the_current_nonce(api: Service) -> None:
    owner, thief = Client(api), Client(api)
    nonce = _asked(owner.post("/v1/tokens", {"user_id": "cy", "dpop": owner.dpop("/login")}))
    assert nonce == owner.nonce
    login = owner.post("/v1/tokens", {"user_id": "cy", "dpop": owner.dpop("/login")})
    assert login.status_code == 201, login.text
    assert login.json()["token_type"] == "DPoP"  # noqa: S105 - a scheme name
    assert login.headers["dpop-nonce"] == owner.nonce
    refresh_token = login.json()["refresh_token"]

    def refresh(client: Client, dpop: dict[str, str] | None) -> httpx.Response:
        body: dict[str, Any] = {"refresh_token": refresh_token}
        if dpop is not None:
            body["dpop"] = dpop
        return client.post("/v1/tokens/refresh", body)

    _asked(refresh(owner, owner.dpop("/refresh", nonce=None)))
    _asked(refresh(owner, owner.dpop("/refresh", nonce="C" * 32)))
    thief.nonce = owner.nonce
    invalid = {"error": {"code": "invalid_token", "message": "invalid"}}
    assert refresh(thief, None).json() == invalid  # no proof
    assert refresh(thief, thief.dpop("/refresh")).json() == invalid  # another key's
    api.clock.advance(2 * WINDOW + 1)
    _asked(refresh(owner, owner.dpop("/refresh")))  # a stale nonce
    once = owner.dpop("/refresh")
    fresh = refresh(owner, once)
    assert fresh.status_code == 200, fresh.text
    assert fresh.headers["dpop-nonce"] == owner.nonce
    refresh_token = fresh.json()["refresh_token"]
    assert refresh(owner, once).json() == invalid  # its jti is spent


def test_nodes_sharing_the_nonce_key_accept_each_others_nonces(tmp_path: Path) -> None:
    """Two services on one store, each with a state file of its own: with one
    ``dpop_nonce_key`` a nonce from either works at both; without it each asks again."""
    clock = FakeClock(time.time())
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    with (
        running_service(
            _config(tmp_path, "a", dpop_nonces=True, dpop_nonce_key=key), clock
        ) as node_a,
        running_service(
            _config(tmp_path, "b", dpop_nonces=True, dpop_nonce_key=key), clock
        ) as node_b,
        running_service(_config(tmp_path, "c", dpop_nonces=True), clock) as node_c,
    ):
        client = Client(node_a)
        _asked(client.post("/v1/sessions", {"user_id": "di", "dpop": client.dpop("/login")}))
        client.api = node_b  # the load balancer sends the retry elsewhere
        issued = client.post("/v1/sessions", {"user_id": "di", "dpop": client.dpop("/login")})
        assert issued.status_code == 201, issued.text
        client.api = node_c  # a node with a key of its own (its state file's)
        _asked(client.post("/v1/sessions", {"user_id": "di", "dpop": client.dpop("/login")}))


def test_nonces_are_off_by_default_and_configured_by_name(tmp_path: Path) -> None:
    clock = FakeClock(time.time())
    with running_service(_config(tmp_path), clock) as api:
        client = Client(api)
        issued = client.post("/v1/sessions", {"user_id": "ed", "dpop": client.dpop("/login")})
        assert issued.status_code == 201  # a proof without a nonce is fine
        assert "dpop-nonce" not in issued.headers
    assert load_config(environ={"SESSIONWARD_DPOP_NONCES": "on"}).dpop_nonces is True
    assert load_config(environ={}).dpop_nonces is False
    with pytest.raises(ConfigError, match="dpop_nonce_key"):
        ServiceConfig(dpop_nonces=True, dpop_nonce_key="c2hvcnQ=")  # 5 bytes
    with pytest.raises(ConfigError, match="dpop_nonces is off"):
        ServiceConfig(dpop_nonce_key=base64.b64encode(secrets.token_bytes(32)).decode())
    urlsafe = base64.urlsafe_b64encode(b"\xfb" * 32).decode().rstrip("=")
    standard = base64.b64encode(b"\xfb" * 32).decode()
    for text in (urlsafe, standard):
        config = ServiceConfig(dpop_nonces=True, dpop_nonce_key=text)
        assert config.nonce_key_bytes() == b"\xfb" * 32
        assert text not in repr(config)


def test_a_dpop_bound_session_shows_its_binding_to_the_admin_and_in_the_listing(
    tmp_path: Path,
) -> None:
    """The admin console's session page and the REST listing say which key a session issued
    with a proof is bound to, and when it was last proven (its last proven validate)."""
    with site_at(tmp_path, dpop_nonces=True) as site:
        site.add_user("admin", "root", ADMIN_PASSWORD, TOTP)
        auth = {"authorization": f"Bearer {make_keys(site.runtime)['issue']}"}
        http = site.browser().http
        device, nonce = Device(), None

        def call(path: str, body: dict[str, Any], at: str) -> httpx.Response:
            nonlocal nonce
            url = APP + at
            proof = device.dpop("POST", url, iat=site.clock.now(), nonce=nonce, **extra(body))
            body = body | {"dpop": {"proof": proof, "method": "POST", "url": url}}
            response = http.post(path, json=body, headers=auth)
            nonce = response.headers.get("dpop-nonce", nonce)
            return response

        def extra(body: dict[str, Any]) -> dict[str, Any]:
            return {"token": body["token"]} if "token" in body else {}

        _asked(call("/v1/sessions", {"user_id": "jo"}, "/login"))
        issued = call("/v1/sessions", {"user_id": "jo"}, "/login")
        assert issued.status_code == 201, issued.text
        token, session_id, bound_at = (
            issued.json()["token"],
            issued.json()["session"]["id"],
            (site.clock.now()),
        )
        site.clock.advance(90)
        validated = call("/v1/sessions/validate", {"token": token}, "/orders")
        assert validated.json()["decision"] == "allow"
        listed = http.get("/v1/users/jo/sessions", headers=auth).json()["sessions"]
        assert [s["binding"] for s in listed] == [
            {
                "state": "bound",
                "method": "dpop",
                "jkt": device.thumbprint,
                "bound_at": bound_at,
                "last_proof_at": listed[0]["last_seen"],
            }
        ]
        assert listed[0]["last_seen"] > bound_at  # the proven validate
        admin = site.browser()
        admin.admin_login(site, "root", ADMIN_PASSWORD)
        page = admin.get(f"/admin/sessions/{session_id}").text
        shown = page.split("<dt>Key binding</dt>")[1].split("</dd>")[0]
        assert 'data-binding="bound"' in shown
        assert "bound by dpop" in shown
        assert f'<code title="JWK thumbprint">{device.thumbprint[:12]}…</code>' in shown
        assert device.thumbprint not in shown  # shortened


def test_proofs_made_by_joserfc_with_the_nonce_are_accepted(api: Service) -> None:
    key = jose_jwk.ECKey.generate_key("P-256")
    registry = JWSRegistry(algorithms=["ES256"])

    def dpop(path: str, nonce: str | None) -> dict[str, str]:
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": "POST",
            "htu": APP + path,
            "iat": int(api.clock.now()),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        proof = jose_jws.serialize_compact(header, json.dumps(claims), key, registry=registry)
        return {"proof": proof, "method": "POST", "url": APP + path}

    client = Client(api)
    nonce = _asked(client.post("/v1/tokens", {"user_id": "fa", "dpop": dpop("/login", None)}))
    login = client.post("/v1/tokens", {"user_id": "fa", "dpop": dpop("/login", nonce)})
    assert login.status_code == 201, login.text
    assert login.json()["token_type"] == "DPoP"  # noqa: S105 - a scheme name
    body = {"refresh_token": login.json()["refresh_token"], "dpop": dpop("/refresh", nonce)}
    assert client.post("/v1/tokens/refresh", body).status_code == 200


def test_a_sign_in_asked_for_the_nonce_leaves_the_pre_login_session_alone(api: Service) -> None:
    client = Client(api)
    anonymous = client.post("/v1/sessions", {"data": {"cart": 2}})
    previous = anonymous.json()["token"]
    body = {"user_id": "gu", "previous_token": previous}
    _asked(client.post("/v1/sessions", body | {"dpop": client.dpop("/login", nonce=None)}))
    still = client.post("/v1/sessions/validate", {"token": previous}, "validate")
    assert still.json()["decision"] == "allow"  # not carried over, not killed
    issued = client.post("/v1/sessions", body | {"dpop": client.dpop("/login")})
    assert issued.status_code == 201, issued.text
    assert issued.json()["session"]["data"] == {"cart": 2}
    gone = client.post("/v1/sessions/validate", {"token": previous}, "validate")
    assert gone.json() == DENY


def test_serve_takes_the_nonce_flag_and_toml_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sessionward.cli import build_parser
    from sessionward.cli.serve import _load

    monkeypatch.delenv("SESSIONWARD_DPOP_NONCES", raising=False)
    monkeypatch.delenv("SESSIONWARD_CONFIG", raising=False)
    assert _load(build_parser().parse_args(["serve", "--dpop-nonces"])).dpop_nonces is True
    assert _load(build_parser().parse_args(["serve"])).dpop_nonces is False
    toml = tmp_path / "sessionward.toml"
    toml.write_text('dpop_nonces = true\ndpop_nonce_key = "' + "A" * 43 + '"\n')
    config = load_config(environ={}, config_file=str(toml))
    assert (config.dpop_nonces, config.nonce_key_bytes()) == (True, bytes(32))
