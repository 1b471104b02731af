"""The JSON HTTP API: sessions for backends in any language.

Every ``/v1`` request carries an API key (``Authorization: Bearer swk_...``) whose scope
allows the operation (see ``sessionward.service.keys``). Tokens travel in JSON bodies only,
never in a URL. Errors are ``{"error": {"code": ..., "message": ...}}`` with stable codes:

=====================  ======  ==========================================================
code                   status  meaning
=====================  ======  ==========================================================
invalid_request        400     body or parameter not acceptable (message says which)
unauthenticated        401     missing, malformed, unknown or revoked API key
invalid_token          401     the session token does not authenticate (never why)
use_dpop_nonce         400     sign the DPoP proof again with the nonce in ``DPoP-Nonce``
                               (401 with ``WWW-Authenticate: DPoP`` from validate)
forbidden              403     the key's scope does not allow this operation
step_up_required       403     the session must re-authenticate first
not_found              404     no such route or session
method_not_allowed     405
session_limit          409     the user's session cap is full and the policy rejects
conflict               409     concurrent updates kept winning; retry
request_too_large      413     body over 64 KiB
data_too_large         413     session data over the policy's limit
unsupported_media      415     body is not application/json
uri_too_long           414     path and query over 8 KiB (``sessionward.service.bounds``)
headers_too_large      431     header block over 16 KiB or 100 lines
too_many_attempts      429     too many failed API keys from this address or for this key
                               id; ``Retry-After`` says when to try again
store_unavailable      503     the session store cannot answer; nothing was decided
internal               500     a bug; the details are in the service log
=====================  ======  ==========================================================

With ``jwt_keys`` configured (the JWT mode), ``GET /.well-known/jwks.json`` serves the public
verification keys to anyone, ``POST /v1/tokens`` starts a refresh family (an access JWT and an
opaque refresh token) and ``POST /v1/tokens/refresh`` trades a refresh token for a new pair;
every use rotates it, and a rotated refresh token presented after the grace window ends its
family as stolen. A refused refresh token gets ``invalid_token`` / ``"invalid"``, nothing more.
Without ``jwt_keys`` those three answer ``not_found``.

The validate endpoint answers 200 with a ``decision`` (``allow``, ``rotate``, ``step-up`` or
``deny``); a denied token gets ``"reason": "invalid"`` and nothing more, while the real reason
(unknown, mismatch, expired, reused...) goes to the event log. With hijack scoring on (the
service's ``risk``), a validate that carries a ``context`` also answers the risk engine's
decision and reasons, a risk step-up says ``"reason": "risk"`` and a session the engine
ended is denied with ``"reason": "risk"`` (see ``sessionward.service.api_risk``). A session
bound by DBSC validates only with its live bound cookie (``bound_cookie``); the backend relays
its browser's DBSC registration and refreshes (``sessionward.service.api_dbsc``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from sessionward.core import binding as states
from sessionward.core import token as tokens
from sessionward.core.binding import BINDING_KEY, binding_of, last_proof
from sessionward.core.context import RequestContext
from sessionward.core.dpop import USE_NONCE
from sessionward.core.events import RevokeReason
from sessionward.core.record import Session, SessionRecord
from sessionward.errors import (
    InvalidProof,
    InvalidToken,
    RiskChallenge,
    RiskRevoked,
    StepUpRequired,
)
from sessionward.manager._async.manager import AsyncSessionManager
from sessionward.service import api_dbsc, api_dpop, history
from sessionward.service.api_dbsc import DbscApi
from sessionward.service.api_errors import ApiError, mapped
from sessionward.service.api_fields import (
    Fields,
    client_data,
    json_body,
    or_default,
    path_user,
    request_context,
    user_id_of,
)
from sessionward.service.api_risk import challenge_answer, revoked_answer, risk_suffix
from sessionward.service.keys import ApiKey
from sessionward.service.metrics import CONTENT_TYPE
from sessionward.service.runtime import RESERVED_PREFIX, Runtime
from sessionward.service.session_views import view_json
from sessionward.service.tenancy import (
    APP_KEY,
    MAX_USER_ID,
    RESERVED_DATA_PREFIX,
    admits,
    application_of_user,
    public_data,
    public_user,
)
from sessionward.signals._async.links import AsyncIdpLinks
from sessionward.signals.links import IdpLink
from sessionward.web.device import DeviceSignal

if TYPE_CHECKING:
    from sessionward.jwt import AsyncTokenService, TokenPair

__all__ = ["Api", "mapped", "session_json"]

_log = logging.getLogger("sessionward.service")
_NO_STORE = {"cache-control": "no-store"}
_REVOKE_REASONS = {r.value for r in RevokeReason}
_RESERVED_DATA = f"data keys starting {RESERVED_DATA_PREFIX!r} are reserved"
_NO_JWT = "the JWT mode is not configured (jwt_keys)"
#: Error codes of a failed authentication or authorization: logged as security events.


class _JsonAnswer(Response):
    """An encoded JSON answer with ``Cache-Control: no-store``: the headers are built here
    directly rather than from a mapping, which is most of a small answer's building cost."""

    media_type = "application/json"

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        length = (b"content-length", b"%d" % len(self.body))
        self.raw_headers = [_NO_STORE_RAW, _JSON_RAW, length]


_NO_STORE_RAW = (b"cache-control", b"no-store")
_JSON_RAW = (b"content-type", b"application/json")


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return _JsonAnswer(_dumps(body).encode("utf-8"), status)


def session_json(session: Session, *, detail: bool = False) -> dict[str, Any]:
    """The public view of an API session: no token, no hashes, no application (the stored
    user id's prefix and the data key that say it)."""
    out: dict[str, Any] = {
        "id": session.id,
        "user_id": public_user(session.user_id),
        "anonymous": session.is_anonymous,
        "auth_level": session.auth_level,
        "auth_time": session.auth_time,
        "scopes": sorted(session.scopes),
        "data": {k: v for k, v in public_data(session.data).items() if k != BINDING_KEY},
        "created_at": session.created_at,
        "last_seen": session.last_seen,
        "expires_at": session.expires_at,
        "absolute_expires_at": session.absolute_expires_at,
        "generation": session.generation,
        "binding": _binding_json(session),
    }
    if detail:
        out["context_history"] = session.context_history
    return out


def _binding_json(session: Session) -> dict[str, Any]:
    """Whether the session is bound to a key its client keeps (see docs/binding.md)."""
    binding = binding_of(session.data)
    return {
        "state": binding.state,
        "method": binding.method,
        "jkt": binding.jkt,
        "bound_at": binding.bound_at,
        "last_proof_at": last_proof(binding, session.last_seen) if binding.bound else None,
    }


def _dumps(value: Any) -> str:
    """JSON exactly as ``JSONResponse`` renders it."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class SessionJsonMemo:
    """``session_json`` of a record, encoded, remembered per session id while the record is
    unchanged (compared field by field; the SQLite store even hands back the same object
    while its cache holds). The validate answer of an unchanged session then costs no JSON
    work. Bounded: cleared when full. Holds what the store's own cache holds (no token)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._memo: dict[str, tuple[SessionRecord, bytes]] = {}

    def encoded(self, record: SessionRecord) -> bytes:
        hit = self._memo.get(record.id)
        if hit is not None and hit[0] == record:
            return hit[1]
        encoded = _dumps(session_json(Session(record))).encode("utf-8")
        if len(self._memo) >= self.size:
            self._memo.clear()
        self._memo[record.id] = (record, encoded)
        return encoded


_BOUND = "bound_cookie"
_VALIDATE_FIELDS = frozenset({"token", "context", "max_auth_age", "min_level", "dpop", _BOUND})
_DENY = b'{"decision":"deny","reason":"invalid"}'
_DECISION = {
    d: b'{"decision":"' + d.encode("ascii") + b'","session":'
    for d in ("allow", "rotate", "step-up")
}


# -- endpoints ------------------------------------------------------------------------------

Handler = Callable[[Request, ApiKey], Awaitable[Response]]


class Api:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.manager = runtime.manager
        self.sessions = SessionJsonMemo()
        self._devices: dict[str, DeviceSignal] = {}
        self.dbsc = DbscApi(runtime)

    def _device(self, key: ApiKey) -> Callable[[str], str]:
        """Keys a context's ``device_signal`` with a secret of the key's application, so the
        stored values cannot be joined across applications (docs/risk.md, "Device signal")."""
        signal = self._devices.get(key.application)
        if signal is None:
            secret = self.rt.state.secret(f"device-signal:{key.application}")
            signal = self._devices[key.application] = DeviceSignal(secret=secret)
        return signal.keyed

    def _manager(self, key: ApiKey) -> AsyncSessionManager:
        """The manager of the key's application: it authenticates no other's tokens."""
        return self.rt.manager_for(key.application)

    async def _token_session(
        self, fields: Fields, context: RequestContext | None, key: ApiKey
    ) -> Session:
        token = fields.string("token", required=True, limit=256)
        bound = fields.string("bound_cookie", limit=256)
        manager, passed = self._manager(key), api_dpop.passed_proof(fields)
        return await api_dbsc.proven_session(manager, self.rt.dpop, passed, token, bound, context)

    async def _owned(self, session_id: str, key: ApiKey) -> Session | None:
        """A live session of the key's application by id; another's is as unknown."""
        session = await self.manager.get(session_id)
        if session is None or not admits(key.application)(session.record):
            return None
        return session

    async def issue(self, request: Request, key: ApiKey) -> Response:
        fields = Fields(
            await json_body(request, optional=True),
            {"user_id", "auth_level", "scopes", "data", "context", "previous_token", "idp"}
            | {"dpop", "dbsc"},
        )
        user_id = fields.string("user_id", limit=MAX_USER_ID)
        if user_id is not None and user_id.startswith(RESERVED_PREFIX):
            raise ApiError(403, "forbidden", f"user ids starting {RESERVED_PREFIX!r} are reserved")
        user_id = user_id_of(user_id, key)
        context = request_context(fields, self._device(key))
        manager = self._manager(key)
        passed = api_dpop.passed_proof(fields)  # checked first: a retry with the nonce repeats
        with api_dpop.nonce_asked(self.rt.dpop, manager.clock.now()):  # nothing else
            jkt = await api_dpop.check(manager, self.rt.dpop, passed)
        previous = None
        previous_token = fields.string("previous_token", limit=256)
        challenged = None
        if previous_token is not None:
            try:
                previous = await manager.validate(
                    previous_token, context=context, proof=api_dpop.unproven
                )
            except InvalidToken:
                previous = None  # an invalid pre-login token is simply not carried over
            except RiskChallenge as challenge:
                challenged = challenge  # signing in again after a risk step-up
        # The application's stamp goes first (its manager's check reads a prefix); a
        # carried-over session's data begins with the same stamp.
        data = {APP_KEY: key.application, **(client_data(fields, "data") or {})}
        link = _idp_link(fields)
        if link is not None:
            if user_id is None:
                raise ApiError(400, "invalid_request", "idp needs a user_id")
            data.update(link.data())
        if jkt is not None:  # the client proved a key: the session is bound to it
            data[BINDING_KEY] = states.encode(states.dpop_state(jkt, manager.clock.now()))
        session = await manager.issue(
            user_id,
            auth_level=or_default(fields.integer("auth_level", maximum=100), 1),
            scopes=fields.strings("scopes", ascii_only=True) or (),
            data=data,
            context=context,
            previous=previous,
        )
        if link is not None:  # indexed after the issue: a failed issue leaves no index entry
            await AsyncIdpLinks(manager).remember(session)
        if challenged is not None and challenged.user_id == user_id:
            # The owner signed in again: their challenged session ends (after the new one
            # took the user's history from it); another user's sign-in leaves it alone.
            await manager.revoke(challenged.session_id, reason=RevokeReason.NEW_LOGIN)
        body = {"session": session_json(session), "token": session.token}
        offer = fields.mapping("dbsc")
        if offer is not None and session.user_id is not None:  # the binding offer: one write
            registration = await self.dbsc.offer(key, offer, session)
            offered = await manager.get(session.id)
            body["session"] = session_json(offered or session)
            body["dbsc"] = {"registration": registration}
        return self._nonce(_answer(body, 201), fields.body)

    def _nonce(self, answer: Response, body: Mapping[str, Any]) -> Response:
        """The answer to a call that passed a DPoP proof carries the current nonce."""
        if "dpop" not in body:
            return answer
        return api_dpop.offer_nonce(answer, self.rt.dpop, self.manager.clock.now())

    async def validate(self, request: Request, key: ApiKey) -> Response:
        body = await json_body(request)
        return self._nonce(_JsonAnswer(await self.validate_answer(body, key)), body)

    async def validate_answer(self, body: dict[str, Any], key: ApiKey) -> bytes:
        """The validate endpoint past authentication and body parsing: the encoded 200 answer
        (``ApiError`` and the manager's errors propagate)."""
        token = body.get("token")
        passed, bound_cookie = None, None
        if len(body) == 1 and type(token) is str and len(token) <= 256:
            context, max_age, min_level = None, None, None  # the common body: only the token
        else:
            fields = Fields(body, _VALIDATE_FIELDS)
            context = request_context(fields, self._device(key))
            max_age = fields.number("max_auth_age")
            min_level = fields.integer("min_level", maximum=100)
            token = fields.string("token", required=True, limit=256)
            passed = api_dpop.passed_proof(fields)
            bound_cookie = fields.string("bound_cookie", limit=256)
        application = key.application
        manager = self.rt.manager_for(application)
        dpop = self.rt.dpop
        proof = api_dbsc.precondition(manager, dpop, passed, token, bound_cookie)
        try:
            # A bound session's proof is checked before validate writes anything.
            session = await manager.validate(token, context=context, proof=proof)
            if proof.pending:  # bound by DBSC, without a live bound cookie: a copied token
                api_dbsc.refuse_unproven(manager, session)
                raise InvalidToken("binding-cookie")
            if passed is not None and proof.checked is None:  # a proof for an unbound session
                await api_dpop.check(manager, dpop, passed, token=token, session=session)
        except RiskChallenge as challenge:  # sign in again; the session survives
            self.rt.activity.decision("step-up", application)
            return challenge_answer(challenge)
        except RiskRevoked as revoked:
            self.rt.activity.decision("deny", application)
            return revoked_answer(revoked)
        except InvalidToken as exc:
            if isinstance(exc, InvalidProof) and exc.reason == USE_NONCE:
                raise api_dpop.nonce_refusal(dpop, manager.clock.now(), resource=True) from None
            self.rt.activity.decision("deny", application)
            return _DENY
        decision = "rotate" if session.token is not None else "allow"
        if max_age is not None or min_level is not None:
            try:
                self.manager.require_recent_auth(
                    session, max_age=max_age, min_level=1 if min_level is None else min_level
                )
            except StepUpRequired:
                decision = "step-up"
        self.rt.activity.decision(decision, application)
        # Key order as session_json's dict would give: decision, session, token.
        out = _DECISION[decision] + self.sessions.encoded(session.record)
        if session.token is not None:
            out += b',"token":' + _dumps(session.token).encode("ascii")
        if session.risk is not None:
            out += risk_suffix(session.risk)
        return out + b"}"

    async def rotate(self, request: Request, key: ApiKey) -> Response:
        fields = Fields(await json_body(request), {"token", "context", "dpop", _BOUND})
        context = request_context(fields, self._device(key))
        session = await self._token_session(fields, context, key)
        if session.token is None:
            session = await self._manager(key).rotate(session, context=context)
        answer = _answer({"session": session_json(session), "token": session.token})
        return self._nonce(answer, fields.body)

    async def elevate(self, request: Request, key: ApiKey) -> Response:
        fields = Fields(await json_body(request), {"token", "auth_level", "scopes", "dpop", _BOUND})
        session = await self._token_session(fields, None, key)
        elevated = await self._manager(key).elevate(
            session,
            auth_level=fields.integer("auth_level", maximum=100),
            scopes=fields.strings("scopes", ascii_only=True),
        )
        answer = _answer({"session": session_json(elevated), "token": elevated.token})
        return self._nonce(answer, fields.body)

    async def update_data(self, request: Request, key: ApiKey) -> Response:
        fields = Fields(await json_body(request), {"token", "set", "unset", "dpop", _BOUND})
        changes = client_data(fields, "set") or {}
        removals = fields.strings("unset") or []
        if any(name.startswith(RESERVED_DATA_PREFIX) for name in removals):
            raise ApiError(400, "invalid_request", _RESERVED_DATA)
        session = await self._token_session(fields, None, key)

        def change(data: dict[str, Any]) -> None:
            data.update(changes)
            for name in removals:
                data.pop(name, None)

        updated = await self._manager(key).update_data(session, change)
        body: dict[str, Any] = {"session": session_json(updated)}
        if session.token is not None:  # validate renewed it on the way: deliver the new token
            body["token"] = session.token
        return self._nonce(_answer(body), fields.body)

    async def revoke(self, request: Request, key: ApiKey) -> Response:
        """A session bound to a DPoP key ends only with a proof of that key (as it validates):
        a stolen token cannot even end its owner's session."""
        fields = Fields(await json_body(request), {"token", "dpop", _BOUND})
        token = fields.string("token", required=True, limit=256)
        bound = fields.string(_BOUND, limit=256)
        manager, passed = self._manager(key), api_dpop.passed_proof(fields)
        proof = api_dbsc.precondition(manager, self.rt.dpop, passed, token, bound)
        try:
            with api_dpop.nonce_asked(self.rt.dpop, manager.clock.now()):
                session = await manager.validate(token, proof=proof)
            if proof.pending:  # bound by DBSC, without a live bound cookie
                api_dbsc.refuse_unproven(manager, session)
                raise InvalidToken("binding-cookie")
        except InvalidToken:
            return self._nonce(_answer({"revoked": False}), fields.body)
        return self._nonce(_answer({"revoked": await manager.revoke(session)}), fields.body)

    async def confirm(self, request: Request, key: ApiKey) -> Response:
        """ "This was me": the application has signed its user in again after a risk
        step-up; the request's context becomes the owner's and the token is rotated."""
        fields = Fields(await json_body(request), {"token", "context", "dpop", _BOUND})
        token = fields.string("token", required=True, limit=256) or ""
        context = request_context(fields, self._device(key))
        if context is None:
            raise ApiError(400, "invalid_request", "context is required")
        manager = self._manager(key)
        if self.rt.risk is None:
            raise ApiError(404, "not_found", "hijack scoring is not configured (risk)")
        passed, dpop = api_dpop.passed_proof(fields), self.rt.dpop
        cookie = fields.string(_BOUND, limit=256)
        bound = api_dbsc.precondition(manager, dpop, passed, token, cookie)
        proof = api_dpop.ConfirmProof(manager, dpop, passed, token, bound)
        with api_dpop.nonce_asked(self.rt.dpop, manager.clock.now()):
            session = await manager.confirm(token, context=context, proof=proof)
        answer = _answer({"session": session_json(session), "token": session.token})
        return self._nonce(answer, fields.body)

    async def list_user(self, request: Request, key: ApiKey) -> Response:
        user_id = path_user(request, key)
        sessions = await self._manager(key).list_user(user_id)
        activity = self.rt.activity
        listed = [{**session_json(s), **view_json(s, activity.for_session(s.id))} for s in sessions]
        return _answer({"sessions": listed})

    async def revoke_user(self, request: Request, key: ApiKey) -> Response:
        user_id = path_user(request, key)
        fields = Fields(await json_body(request, optional=True), {"keep_session_id", "reason"})
        keep = fields.string("keep_session_id", limit=64)
        if keep is not None and not tokens.is_session_id(keep):
            raise ApiError(400, "invalid_request", "keep_session_id is not a session id")
        given = fields.string("reason", limit=64)
        reason = RevokeReason.LOGOUT_EVERYWHERE.value if given is None else given
        if reason not in _REVOKE_REASONS:
            raise ApiError(400, "invalid_request", "reason is not a known revoke reason")
        count = await self._manager(key).revoke_user(user_id, keep=keep, reason=reason)
        return _answer({"revoked": count})

    async def revoke_all(self, request: Request, key: ApiKey) -> Response:
        """Every session of every user; the body must say so: ``{"confirm": "revoke-all"}``.

        Refused to every key: the store ends every session of every application at once, and
        an application's key acts within its own. Ending every session is the admin
        console's and the command line's."""
        fields = Fields(await json_body(request), {"confirm", "keep_session_id"})
        if fields.string("confirm", limit=64) != "revoke-all":
            raise ApiError(400, "invalid_request", 'confirm with {"confirm": "revoke-all"}')
        keep = fields.string("keep_session_id", limit=64)
        if keep is not None and not tokens.is_session_id(keep):
            raise ApiError(400, "invalid_request", "keep_session_id is not a session id")
        raise ApiError(
            403,
            "forbidden",
            "ending every session reaches every application: use the admin console or"
            " `sessionward sessions revoke-all`",
        )

    def _session_id(self, request: Request) -> str:
        session_id = request.path_params["session_id"]
        if not tokens.is_session_id(session_id):
            raise ApiError(404, "not_found", "no such session")
        return str(session_id)

    async def get_session(self, request: Request, key: ApiKey) -> Response:
        session = await self._owned(self._session_id(request), key)
        if session is None:
            raise ApiError(404, "not_found", "no such session")
        events = await history.for_session(self.rt, session.id)
        shown = {**session_json(session, detail=True), **view_json(session, events)}
        return _answer({"session": shown, "events": events})

    async def delete_session(self, request: Request, key: ApiKey) -> Response:
        session_id = self._session_id(request)
        session = await self._owned(session_id, key)  # also for the user id in the event
        if session is None:
            return _answer({"revoked": False})
        found = await self._manager(key).revoke(session, reason=RevokeReason.ADMIN)
        return _answer({"revoked": found})

    # -- the JWT mode ------------------------------------------------------------------------

    def _tokens(self) -> AsyncTokenService:
        if self.rt.tokens is None:
            raise ApiError(404, "not_found", _NO_JWT)
        return self.rt.tokens

    def _pair(
        self, service: AsyncTokenService, pair: TokenPair, status: int, fields: Fields
    ) -> Response:
        body = pair.response(service.clock.now())
        body["session_id"] = pair.session_id
        body["refresh_expires_at"] = pair.refresh_expires_at
        return self._nonce(_answer(body, status), fields.body)

    async def token_login(self, request: Request, key: ApiKey) -> Response:
        service = self._tokens()
        allowed = {"user_id", "auth_level", "scopes", "context", "end_other_sessions", "dpop"}
        fields = Fields(await json_body(request), allowed)
        user_id = fields.string("user_id", required=True, limit=MAX_USER_ID) or ""
        if user_id.startswith(RESERVED_PREFIX):
            raise ApiError(403, "forbidden", f"user ids starting {RESERVED_PREFIX!r} are reserved")
        end_others = fields.body.get("end_other_sessions", False)
        if not isinstance(end_others, bool):
            raise ApiError(400, "invalid_request", "end_other_sessions must be true or false")
        with api_dpop.nonce_asked(self.rt.dpop, service.clock.now()):
            jkt = await api_dpop.proven_key(service, fields)
        pair = await service.login(
            str(user_id_of(user_id, key)),
            scopes=fields.strings("scopes", ascii_only=True) or (),
            auth_level=or_default(fields.integer("auth_level", maximum=100), 1),
            context=request_context(fields, self._device(key)),
            end_other_sessions=end_others,
            dpop_jkt=jkt,
        )
        return self._pair(service, pair, 201, fields)

    async def token_refresh(self, request: Request, key: ApiKey) -> Response:
        service = self._tokens()
        fields = Fields(await json_body(request), {"refresh_token", "context", "dpop"})
        refresh_token = fields.string("refresh_token", required=True, limit=256)
        context = request_context(fields, self._device(key))
        family = await self.manager.store.get(tokens.parse(refresh_token).session_id)
        if family is None or application_of_user(family.user_id) != key.application:
            raise InvalidToken("unknown")  # another application's family is as unknown
        with api_dpop.nonce_asked(self.rt.dpop, service.clock.now()):
            jkt = await api_dpop.proven_key(service, fields)  # a bound family needs its proof
        pair = await service.refresh(refresh_token, context=context, dpop_jkt=jkt)  # else 401
        return self._pair(service, pair, 200, fields)

    async def metrics(self, request: Request, key: ApiKey) -> Response:
        up = await self.rt.store_ready()
        count = await self.rt.session_count() if up else None
        recorder = self.rt.recorder
        text = self.rt.metrics.render(
            self.rt.activity,
            sessions=count,
            store_up=up,
            application=key.application,
            event_log=None if recorder is None else recorder.stats(),
        )
        return Response(text, media_type=CONTENT_TYPE, headers=_NO_STORE)


def _idp_link(fields: Fields) -> IdpLink | None:
    """The identity provider's ``iss`` with ``sid`` and/or ``sub`` of this login, if given."""
    raw = fields.mapping("idp")
    if raw is None:
        return None
    idp = Fields(raw, {"iss", "sid", "sub"}, "idp")
    iss = idp.string("iss", required=True, limit=512) or ""
    return IdpLink(iss, idp.string("sid", limit=512), idp.string("sub", limit=512))
