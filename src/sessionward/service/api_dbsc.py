"""Device Bound Session Credentials (DBSC) through the REST API: a backend relays its browser.

The service speaks the protocol (the adapters' ``AsyncDeviceGate`` and the manager's binder
do all of it); the backend only moves headers:

* ``POST /v1/sessions`` with ``dbsc`` answers ``dbsc.registration``: the backend sends it to
  the browser as ``Secure-Session-Registration``.
* The browser then posts to ``<path>/register`` with ``Secure-Session-Response``; the backend
  passes that value and the session token to ``/v1/sessions/dbsc/register``, and to
  ``/v1/sessions/dbsc/refresh`` what the browser sends to ``<path>/refresh``
  (``Sec-Secure-Session-Id`` and, when it answers a challenge, ``Secure-Session-Response``).
  Both answer a relay (:func:`_relay`): the status, headers, JSON body and bound cookie the
  backend sends back to the browser.
* ``/v1/sessions/validate`` takes the bound cookie's value (``bound_cookie``): a session
  bound so is denied without a live one, so its long-lived token copied alone is worthless;
  so do ``rotate``, ``elevate``, ``data`` and ``revoke`` (:func:`proven_session`).

``dbsc`` options: ``path`` (where the backend serves ``register`` and ``refresh``, default
``/sessionward/dbsc``) and ``cookie_name`` (the session cookie's base name; the bound cookie
is ``__Host-<name>-bound``), the same in every call.
"""

from __future__ import annotations

import json
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from sessionward.core import binding as states
from sessionward.core import dbsc
from sessionward.core.context import RequestContext
from sessionward.core.decision import Proof
from sessionward.core.dpop import DpopPolicy
from sessionward.core.events import TokenRejected
from sessionward.core.record import Session, SessionRecord
from sessionward.errors import ConfigError, InvalidToken
from sessionward.manager._async.binding import AsyncBinder, AsyncCookieCheck, AsyncDpopCheck
from sessionward.manager._async.manager import AsyncSessionManager
from sessionward.service import api_dpop
from sessionward.service.api_dpop import PassedProof
from sessionward.service.api_errors import ApiError
from sessionward.service.api_fields import Fields, json_body
from sessionward.service.keys import ApiKey
from sessionward.service.runtime import Runtime
from sessionward.web._async.binding import LIFETIME_HEADER, AsyncDeviceGate
from sessionward.web._core import AdapterConfig
from sessionward.web._http import Reply
from sessionward.web.binding import DeviceBinding
from sessionward.web.cookies import CookiePolicy

__all__ = ["BoundCheck", "DbscApi", "precondition", "proven_session", "refuse_unproven"]

_UNBOUND: Final = Proof.UNBOUND
_PENDING: Final = Proof.PENDING
_MARK: Final = states.MARK
_GATES: Final = 64
_PATH: Final = "/sessionward/dbsc"
#: Longest JWT (an RS256 registration with a 4096-bit key is under 2 KiB) and URL: every
#: field at its longest, in JSON's longest escapes, still fits a request body (64 KiB).
_JWT: Final = 3072
_URL: Final = 1024
_HIDDEN: Final = frozenset({"set-cookie", LIFETIME_HEADER})  # the cookie goes apart
_CALL: Final = {"token", "response", "url", "dbsc"}
_REFRESH: Final = {"token", "session_identifier", "response", "dbsc"}


class BoundCheck(AsyncDpopCheck):
    """The proof check of a call on a session by its token: a session bound to a DPoP key
    needs the passed proof (as :func:`sessionward.service.api_dpop.precondition`); one bound
    by DBSC is ``pending`` (served unwritten) unless ``bound_cookie`` is one of its live
    bound cookies."""

    __slots__ = ("bound_cookie", "pending")

    def __init__(
        self,
        binder: AsyncBinder,
        policy: DpopPolicy,
        passed: PassedProof | None,
        token: str | None,
        bound_cookie: str | None,
    ) -> None:
        super().__init__(
            binder,
            policy,
            None if passed is None else passed.proof,
            method="" if passed is None else passed.method,
            url="" if passed is None else passed.url,
            access_token=token,
        )
        self.bound_cookie = bound_cookie
        self.pending = False

    async def __call__(self, record: SessionRecord) -> Proof:
        if _MARK not in record.data:  # the common case: not bound, no JSON parse
            return _UNBOUND
        verdict = await super().__call__(record)
        if verdict is _UNBOUND:
            verdict = await AsyncCookieCheck(self.binder, self.bound_cookie)(record)
            self.pending = verdict is _PENDING
        return verdict


def precondition(
    manager: AsyncSessionManager,
    policy: DpopPolicy,
    passed: PassedProof | None,
    token: str | None,
    bound_cookie: str | None,
) -> BoundCheck:
    """The :class:`BoundCheck` of ``token`` with what the backend passed on."""
    return BoundCheck(AsyncBinder(manager), policy, passed, token, bound_cookie)


def refuse_unproven(manager: AsyncSessionManager, session: Session) -> None:
    """Report a DBSC-bound session presented without a live bound cookie."""
    now = manager.clock.now()
    manager.events.emit(TokenRejected(session.id, session.user_id, now, reason="binding-cookie"))


async def proven_session(
    manager: AsyncSessionManager,
    policy: DpopPolicy,
    passed: PassedProof | None,
    token: str | None,
    bound_cookie: str | None,
    context: RequestContext | None = None,
) -> Session:
    """:func:`sessionward.service.api_dpop.proven_session`, and a session bound by DBSC only
    with a live ``bound_cookie``: without one it raises ``InvalidToken`` (401), unwritten."""
    check = precondition(manager, policy, passed, token, bound_cookie)
    with api_dpop.nonce_asked(policy, manager.clock.now()):
        session = await manager.validate(token, context=context, proof=check)
        if check.pending:
            refuse_unproven(manager, session)
            raise InvalidToken("binding-cookie", session.id)
        if passed is not None and check.checked is None:  # a proof for an unbound session
            await api_dpop.check(manager, policy, passed, token=token, session=session)
    return session


def _cookie_json(policy: CookiePolicy, header: str) -> dict[str, Any]:
    """The ``Set-Cookie`` ``header`` (built by ``policy``) as fields a framework sets."""
    value = header.partition("=")[2].partition(";")[0]
    max_age = 0
    for attribute in header.split(";"):
        name, _, number = attribute.strip().partition("=")
        if name == "Max-Age":
            max_age = int(number)
    return {
        "name": policy.cookie_name,
        "value": value,
        "max_age": max_age,
        "path": "/",
        "secure": not policy.insecure_http_localhost,
        "http_only": True,
        "same_site": policy.same_site,
    }


class DbscApi:
    """The DBSC calls of the API and the registration offer of an issue."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._gates: dict[tuple[str, str, str], AsyncDeviceGate] = {}

    def gate(self, key: ApiKey, options: dict[str, Any]) -> AsyncDeviceGate:
        """The adapters' DBSC glue for the key's application and these ``dbsc`` options."""
        where = Fields(options, {"path", "cookie_name"}, "dbsc")
        path = where.string("path", limit=256)
        name = where.string("cookie_name", limit=64)
        path = _PATH if path is None else path  # an empty one is refused, not defaulted
        name = "id" if name is None else name
        cache = (key.application, path, name)
        gate = self._gates.get(cache)
        if gate is None:
            try:
                config = AdapterConfig(
                    cookie=CookiePolicy(name=name),
                    csrf=False,  # the backend's own request checks; the service sees no browser
                    binding=DeviceBinding(path=path, fallback=False),
                )
            except ConfigError as exc:
                raise ApiError(400, "invalid_request", f"dbsc: {exc}") from None
            if len(self._gates) >= _GATES:
                self._gates.clear()
            manager = self.rt.manager_for(key.application)
            gate = self._gates[cache] = AsyncDeviceGate(manager, config)
        return gate

    async def offer(self, key: ApiKey, options: dict[str, Any], session: Session) -> str | None:
        """The ``Secure-Session-Registration`` value offering ``session`` a binding (one
        write), or ``None`` for an anonymous or bound session."""
        gate = self.gate(key, options)
        offered = await gate.binder.reoffer(session)
        if offered is None:
            return None
        challenge, authorization = offered
        binding = gate.config.binding
        assert binding is not None  # noqa: S101 - every gate here has one
        return dbsc.registration_header(
            binding.register_path,
            challenge,
            authorization=authorization,
            algorithms=binding.policy.algorithms,
        )

    async def _session(self, gate: AsyncDeviceGate, token: str | None) -> Session | None:
        """The session ``token`` authenticates, unwritten when it is bound (its bound cookie
        is what the relayed request renews); ``None`` for an invalid one or a DPoP-bound one."""
        if token is None:
            return None
        manager = gate.binder.manager
        check = precondition(manager, self.rt.dpop, None, token, None)
        try:
            return await manager.validate(token, proof=check)
        except InvalidToken:  # InvalidProof too: a DPoP-bound session has no DBSC to relay
            return None

    async def register(self, request: Request, key: ApiKey) -> Response:
        fields = Fields(await json_body(request), _CALL)
        token = fields.string("token", required=True, limit=256)
        response = fields.string("response", required=True, limit=_JWT)
        url = fields.string("url", limit=_URL)
        gate = self.gate(key, fields.mapping("dbsc") or {})
        session = await self._session(gate, token)
        headers = {dbsc.RESPONSE: response or ""}
        reply = await gate.endpoint("register", "POST", headers, session, url or "")
        return _relay(gate, reply, session)

    async def refresh(self, request: Request, key: ApiKey) -> Response:
        fields = Fields(await json_body(request), _REFRESH)
        token = fields.string("token", limit=256)
        sid = fields.string("session_identifier", required=True, limit=512) or ""
        response = fields.string("response", limit=_JWT)
        gate = self.gate(key, fields.mapping("dbsc") or {})
        session = await self._session(gate, token)
        headers = {dbsc.SESSION_ID: sid}
        if response is not None:
            headers[dbsc.RESPONSE] = response
        reply = await gate.endpoint("refresh", "POST", headers, session, "")
        return _relay(gate, reply, session)


def _relay(gate: AsyncDeviceGate, reply: Reply, session: Session | None) -> Response:
    """The adapters' ``reply`` as the JSON a backend turns into its answer to the browser:
    ``status``, ``headers`` to send, ``body`` (JSON, or ``null`` for none), and the bound
    cookie both as fields (``cookie``) and as a ready ``set_cookie`` value (``null`` when
    none is set; ``max_age`` 0 deletes it)."""
    assert gate.cookie is not None  # noqa: S101 - every gate here has a binding
    set_cookie = reply.header("set-cookie")
    out: dict[str, Any] = {
        "status": reply.status,
        "headers": {k: v for k, v in reply.headers if k.lower() not in _HIDDEN},
        "body": json.loads(reply.body) if reply.body else None,
        "cookie": None if set_cookie is None else _cookie_json(gate.cookie, set_cookie),
        "set_cookie": set_cookie,
    }
    if session is not None and session.token is not None:  # renewed by its validation
        out["token"] = session.token
    text = json.dumps(out, separators=(",", ":")).encode("utf-8")
    return Response(text, 200, {"cache-control": "no-store"}, media_type="application/json")
