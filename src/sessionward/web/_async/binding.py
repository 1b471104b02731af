"""What every adapter does for key-bound sessions, in one place (the adapters only move bytes).

Cookie transport (DBSC): the registration, refresh and fallback-script endpoints; the check
that a bound session's request carries a live bound cookie; the registration offer added to
a login's response and the bound cookie expired with a logout. Bearer transport (DPoP): the
proof check of every request and the ``401`` that refuses one.

The async gate is the source; the sync one is generated from it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sessionward.core import binding as states
from sessionward.core import dbsc
from sessionward.core.dpop import NONCE_HEADER
from sessionward.core.events import TokenRejected
from sessionward.core.record import Session
from sessionward.errors import InvalidProof, UpdateConflict
from sessionward.manager._async.binding import AsyncBinder
from sessionward.manager._async.manager import AsyncSessionManager
from sessionward.web._core import AdapterConfig, Outcome
from sessionward.web._http import Reply
from sessionward.web.binding import DeviceBinding, fallback_script

__all__ = ["FALLBACK_HEADER", "AsyncDeviceGate"]

#: Where the fallback script finds its registration offer; native DBSC never reads it.
FALLBACK_OFFER = "sessionward-registration"
#: Sent by the fallback script with its registration, so the binding is reported as such.
FALLBACK_HEADER = "sessionward-binding"
LIFETIME_HEADER = "sessionward-bound-lifetime"
#: The fallback script's ``Sec-Secure-Session-Id``: fetch() may not set ``Sec-`` headers.
FALLBACK_SESSION_ID = "sessionward-session-id"
_JSON = "application/json"
_COMMON = [("cache-control", "no-store"), ("cross-origin-resource-policy", "same-origin")]


def _reply(status: int, body: Mapping[str, Any] | None = None, *extra: tuple[str, str]) -> Reply:
    headers = [*_COMMON, *extra]
    if body is None:
        return Reply(status, headers)
    text = json.dumps(body, separators=(",", ":")).encode("utf-8")
    return Reply(status, [("content-type", _JSON), *headers], text)


class AsyncDeviceGate:
    """The binding side of one adapter (``config.binding`` or ``config.dpop`` is set)."""

    __slots__ = ("binder", "config", "cookie")

    def __init__(self, manager: AsyncSessionManager, config: AdapterConfig) -> None:
        binding = config.binding
        self.config = config
        self.binder = AsyncBinder(manager, binding.policy if binding is not None else None)
        self.cookie = binding.bound_cookie(config.cookie) if binding is not None else None

    @property
    def _binding(self) -> DeviceBinding:
        binding = self.config.binding
        if binding is None:  # pragma: no cover - routes exist only with a binding
            raise RuntimeError("no DeviceBinding configured")
        return binding

    def route(self, path: str) -> str | None:
        """``register``, ``refresh`` or ``script`` when ``path`` is a binding endpoint."""
        binding = self.config.binding
        return None if binding is None else binding.route(path)

    # -- every request ----------------------------------------------------------------------

    def admit(
        self, session: Session | None, headers: Mapping[str, str]
    ) -> tuple[Session | None, bool]:
        """The session to serve and whether the request proved the key (a live bound
        cookie). A bound session without one is served as no session, unless the policy
        allows a fallback and the browser said it skipped the refresh."""
        if session is None or self.cookie is None:
            return session, False
        ok = self.binder.cookie_ok(session, self.cookie.read(headers.get("cookie")))
        if ok is None or ok:
            return session, bool(ok)
        sid = states.state_of(session.data) or {}
        skipped = any(s == sid.get("sid") for _, s in dbsc.parse_skipped(headers.get(dbsc.SKIPPED)))
        reason = "binding-skipped" if skipped else "binding-cookie"
        self.binder.manager.events.emit(
            TokenRejected(
                session.id, session.user_id, self.binder.manager.clock.now(), reason=reason
            )
        )
        if skipped and self._binding.policy.allow_fallback:
            return session, False
        return None, False

    async def after(self, session: Session | None, outcome: Outcome) -> list[tuple[str, str]]:
        """Headers for the response: the registration offer when a login minted a token for a
        session not bound yet (one write), the bound cookie's expiry when the session ended."""
        if self.cookie is None:
            return self.nonce_header()
        if outcome.ended:
            return [("set-cookie", self.cookie.expire())]
        if outcome.token is None or session is None or session.user_id is None:
            return []
        if states.binding_of(session.data).bound:
            return []
        offered = await self.binder.reoffer(session)
        if offered is None:
            return []
        return [(dbsc.REGISTRATION, self._offer(*offered, self._binding.policy.algorithms))]

    def _offer(self, challenge: str, authorization: str, algorithms: tuple[str, ...]) -> str:
        return dbsc.registration_header(
            self._binding.register_path,
            challenge,
            authorization=authorization,
            algorithms=algorithms,
        )

    # -- the endpoints ----------------------------------------------------------------------

    async def endpoint(
        self, route: str, method: str, headers: Mapping[str, str], session: Session | None, url: str
    ) -> Reply:
        """Answer the binding endpoint ``route``."""
        if route == "script":
            script = [("content-type", "text/javascript; charset=utf-8")]
            return Reply(200, [*script, ("x-content-type-options", "nosniff")], fallback_script())
        if method.upper() != "POST":
            return _reply(405, None, ("allow", "POST"))
        policy = self.config.csrf_policy
        if policy is not None and policy.refusal(method, headers) is not None:
            return _reply(403)
        try:
            if route == "register":
                return await self._register(headers, session, url)
            return await self._refresh(headers, session)
        except UpdateConflict:
            return _reply(503)

    def _config(self, sid: str) -> dict[str, Any]:
        binding, cookie = self._binding, self.cookie
        assert cookie is not None  # noqa: S101 - endpoints exist only with a binding
        return dbsc.session_config(
            sid,
            refresh_url=binding.refresh_path,
            cookie_name=cookie.cookie_name,
            cookie_attributes=cookie.attributes,
            excludes=binding.excludes,
        )

    def _set_cookie(self, value: str) -> list[tuple[str, str]]:
        """The bound cookie, and its lifetime for the fallback script (which cannot read
        ``Set-Cookie``) to plan its next refresh."""
        assert self.cookie is not None  # noqa: S101 - endpoints exist only with a binding
        lifetime = self._binding.policy.cookie_lifetime
        header = self.cookie.header(value, max_age=lifetime)
        return [("set-cookie", header), (LIFETIME_HEADER, str(lifetime))]

    async def _register(
        self, headers: Mapping[str, str], session: Session | None, url: str
    ) -> Reply:
        if session is None or session.user_id is None:
            return _reply(401, dbsc.end_config())
        response = headers.get(dbsc.RESPONSE)
        fallback = headers.get(FALLBACK_HEADER) == "webcrypto" and self._binding.fallback
        if response is None:
            if not fallback:
                return _reply(400, dbsc.end_config())
            offered = await self.binder.reoffer(session)
            if offered is None:  # bound already (natively, most likely): nothing to do
                return _reply(200, {"bound": True})
            return _reply(403, None, (FALLBACK_OFFER, self._offer(*offered, ("ES256",))))
        method: states.Method = "webcrypto" if fallback else "dbsc"
        try:
            registered = await self.binder.register(session, response, method=method, audience=url)
        except InvalidProof:
            return _reply(400, dbsc.end_config())
        body = self._config(registered.sid)
        return _reply(200, body, *self._set_cookie(registered.cookie))

    async def _refresh(self, headers: Mapping[str, str], session: Session | None) -> Reply:
        assert self.cookie is not None  # noqa: S101 - endpoints exist only with a binding
        sid = dbsc.item_text(headers.get(dbsc.SESSION_ID) or headers.get(FALLBACK_SESSION_ID))
        if sid is None:
            return _reply(400)
        end = _reply(200, dbsc.end_config(), ("set-cookie", self.cookie.expire()))
        if session is None:
            return end
        result = await self.binder.refresh(session, sid, headers.get(dbsc.RESPONSE))
        if result.outcome == "end" or result.challenge is None:
            return end
        challenge = (dbsc.CHALLENGE, dbsc.challenge_header(result.challenge, sid))
        if result.outcome == "challenge" or result.cookie is None:
            return _reply(403, None, challenge)
        return _reply(200, self._config(sid), *self._set_cookie(result.cookie), challenge)

    # -- DPoP -------------------------------------------------------------------------------

    async def dpop(
        self,
        session: Session | None,
        credentials: tuple[str, str] | None,
        method: str,
        headers: Mapping[str, str],
        url: str,
    ) -> str | None:
        """Check the request's DPoP proof; returns the proven key's thumbprint (``None``
        without a proof, which only an unbound token may do). Raises ``InvalidProof``."""
        policy = self.config.dpop
        if policy is None:
            return None
        scheme, token = credentials if credentials is not None else ("", None)
        state = states.state_of(session.data) if session is not None else None
        jkt = state.get("jkt") if state is not None and state.get("method") == "dpop" else None
        proof = headers.get("dpop")
        if jkt is not None and scheme != "dpop":
            raise InvalidProof("dpop-scheme")  # a bound token presented as a bearer token
        if proof is None and jkt is None and scheme != "dpop":
            return None
        checked = await self.binder.check_dpop(
            policy, proof, method=method, url=url, access_token=token, jkt=jkt, session=session
        )
        return checked.jkt

    def dpop_refusal(self, exc: InvalidProof) -> list[tuple[str, str]]:
        """The ``401`` headers that refuse a DPoP request (RFC 9449 §7.1, §8)."""
        policy = self.config.dpop
        assert policy is not None  # noqa: S101 - only called with DPoP on
        if exc.reason == "use_dpop_nonce":
            error, extra = (
                "use_dpop_nonce",
                [(NONCE_HEADER, policy.nonce(self.binder.manager.clock.now()) or "")],
            )
        elif exc.reason == "dpop-scheme":
            error, extra = "invalid_token", []
        else:
            error, extra = "invalid_dpop_proof", []
        value = f'DPoP error="{error}", algs="{policy.algs_param}"'
        return [("www-authenticate", value), ("cache-control", "no-store"), *extra]

    def nonce_header(self) -> list[tuple[str, str]]:
        """The current ``DPoP-Nonce`` for a response, when nonces are on."""
        policy = self.config.dpop
        nonce = None if policy is None else policy.nonce(self.binder.manager.clock.now())
        return [] if nonce is None else [(NONCE_HEADER, nonce)]
