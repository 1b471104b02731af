"""The adapters' gate in isolation: which requests of a bound session are served, with the
fallback rule on and off, and the adapter configuration it refuses."""

from __future__ import annotations

import pytest
from proofs import Device

from sessionward.core import binding as states
from sessionward.core import dbsc
from sessionward.core.binding import BindingPolicy
from sessionward.core.dpop import DpopPolicy
from sessionward.core.record import Session
from sessionward.errors import ConfigError
from sessionward.testing import memory_manager
from sessionward.web._core import AdapterConfig
from sessionward.web._sync.binding import DeviceGate
from sessionward.web.binding import DeviceBinding
from sessionward.web.cookies import CookiePolicy


def _bound_gate(allow_fallback: bool) -> tuple[DeviceGate, Session, str, str]:
    manager, _, _ = memory_manager()
    binding = DeviceBinding(BindingPolicy(allow_fallback=allow_fallback))
    gate = DeviceGate(manager, AdapterConfig(csrf=False, binding=binding))
    state, challenge, authorization = states.offer(manager.clock.now())
    session = manager.issue("alice", data={states.BINDING_KEY: states.encode(state)})
    registered = gate.binder.register(session, Device().registration(challenge, authorization))
    return gate, registered.session, registered.sid, registered.cookie


@pytest.mark.parametrize("allow", [False, True])
def test_skipped_refresh_is_served_unproven_only_when_allowed(allow: bool) -> None:
    gate, session, sid, cookie = _bound_gate(allow)
    with_cookie = {"cookie": f"__Host-id-bound={cookie}"}
    assert gate.admit(session, with_cookie) == (session, True)
    skipped = {dbsc.SKIPPED: f'server_error;session_identifier="{sid}"'}
    served, proven = gate.admit(session, skipped)
    assert served is (session if allow else None)
    assert proven is False
    other = {dbsc.SKIPPED: 'server_error;session_identifier="another"'}
    assert gate.admit(session, other) == (None, False)
    assert gate.admit(session, {}) == (None, False)


def test_configuration_mistakes_are_refused() -> None:
    with pytest.raises(ConfigError):
        AdapterConfig(transport="bearer", binding=DeviceBinding())
    with pytest.raises(ConfigError):
        AdapterConfig(csrf=False, dpop=DpopPolicy())
    with pytest.raises(ConfigError):
        AdapterConfig(csrf=False, binding=DeviceBinding(), cookie=CookiePolicy(partitioned=True))
    with pytest.raises(ConfigError):
        AdapterConfig(transport="bearer", origin="https://api.example/path")
    with pytest.raises(ConfigError):
        DeviceBinding(path="relative")
    assert DeviceBinding().route("/sessionward/dbsc/fallback.js") == "script"
    assert DeviceBinding(fallback=False).route("/sessionward/dbsc/fallback.js") is None
    assert DeviceBinding().route("/sessionward/dbsc/other") is None
