"""Device Bound Session Credentials for the Django session engine.

Set ``SESSIONWARD_DEVICE_BINDING = DeviceBinding()`` (see :mod:`sessionward.web.binding`) with
``SessionwardMiddleware`` installed. Then the middleware answers the registration, refresh and
fallback-script endpoints, a login's response offers a binding, and once a browser has bound
its session, ``request.session`` (and so ``request.user``) of a request without a live bound
cookie is empty. :func:`proven` says whether the current request proved the key.

Django builds session stores without the request, so the request's binding inputs travel to
the engine in a context variable set by the middleware for the span of one request.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from sessionward.core import binding as states
from sessionward.core import dbsc
from sessionward.core.record import Session
from sessionward.manager._sync.manager import SessionManager
from sessionward.manager._sync.proof import ProofCheck
from sessionward.web._core import AdapterConfig
from sessionward.web._sync.binding import DeviceGate
from sessionward.web.binding import DeviceBinding
from sessionward.web.cookies import CookiePolicy

__all__ = ["DeviceBinding", "proven"]


@dataclass(slots=True)
class RequestBinding:
    """One request's binding inputs (headers) and results (proven, the offer to send)."""

    gate: DeviceGate
    headers: dict[str, str]
    proven: bool = False
    offer: str | None = None


CURRENT: ContextVar[RequestBinding | None] = ContextVar("sessionward_binding", default=None)


def configured() -> DeviceBinding | None:
    binding = getattr(settings, "SESSIONWARD_DEVICE_BINDING", None)
    if binding is not None and not isinstance(binding, DeviceBinding):
        raise TypeError("SESSIONWARD_DEVICE_BINDING must be a sessionward DeviceBinding")
    return binding


def _cookie_name() -> str:
    name = str(settings.SESSION_COOKIE_NAME)
    for prefix in ("__Host-", "__Secure-"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


@functools.cache
def gate(binding: DeviceBinding, manager: SessionManager, name: str, same_site: str) -> DeviceGate:
    """The gate for these settings (the bound cookie follows the session cookie's name)."""
    cookie = CookiePolicy(name=name, same_site="Strict" if same_site == "Strict" else "Lax")
    return DeviceGate(manager, AdapterConfig(cookie=cookie, csrf=False, binding=binding))


def current_gate(manager: SessionManager) -> DeviceGate | None:
    binding = configured()
    if binding is None:
        return None
    same_site = str(getattr(settings, "SESSION_COOKIE_SAMESITE", "Lax"))
    return gate(binding, manager, _cookie_name(), same_site)


def precondition(
    manager: SessionManager, headers: dict[str, str] | None = None
) -> ProofCheck | None:
    """The bound-cookie check ``validate`` runs before it writes anything: a bound session
    without a live bound cookie is read, never renewed, touched or learned from (``headers``:
    the request's, when the binding middleware has not started yet)."""
    request = CURRENT.get()
    if request is not None:
        return request.gate.precondition(request.headers, "", "")
    gate = None if headers is None else current_gate(manager)
    return None if gate is None or headers is None else gate.precondition(headers, "", "")


def admit(session: Session) -> Session | None:
    """The session the engine may serve: ``None`` for a bound session whose request carries
    no live bound cookie."""
    request = CURRENT.get()
    if request is None:
        return session
    served, request.proven = request.gate.admit(session, request.headers)
    return served


def offer(data: dict[str, Any], now: float) -> dict[str, Any]:
    """``data`` of a new logged-in session, with a binding offered when binding is on (the
    middleware sends the offer with the response)."""
    request = CURRENT.get()
    binding = None if request is None else request.gate.config.binding
    if request is None or binding is None:
        return data
    state, challenge, authorization = states.offer(now)
    request.offer = dbsc.registration_header(
        binding.register_path,
        challenge,
        authorization=authorization,
        algorithms=binding.policy.algorithms,
    )
    return {**data, states.BINDING_KEY: states.encode(state)}


def keep_binding(stored: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` (what Django saves) with the binding as it is stored now: Django's copy of
    the data is from the start of the request, and the binding may have moved on since."""
    out = {k: v for k, v in payload.items() if k != states.BINDING_KEY}
    if states.BINDING_KEY in stored:
        out[states.BINDING_KEY] = stored[states.BINDING_KEY]
    return out


def proven() -> bool:
    """Whether the current request proved possession of its session's bound key."""
    request = CURRENT.get()
    return request is not None and request.proven
