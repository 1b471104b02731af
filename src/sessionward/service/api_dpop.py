"""DPoP (RFC 9449) through the REST API: a backend passes on its client's proof.

The client signs a ``DPoP`` proof for each request it makes to the backend; the backend sends
that header's value, with the method and absolute URL of the client's request, in the ``dpop``
field of an API call. At issue (and at a JWT-mode login) a checked proof binds the new
session to the proof's key; a session bound so is then validated (or refreshed) only with a
fresh proof of that key, made for that token (``ath``); so is every other call that acts on it
(``rotate``, ``elevate``, ``data``, ``confirm``, ``revoke``): a token copied without the key
changes nothing. Each proof's ``jti`` is spent in the session store, shared by every node.

With ``dpop_nonces`` on (:func:`sessionward.service.runtime.dpop_policy`), a proof must also
carry a current server nonce (RFC 9449 §8): one without gets ``use_dpop_nonce`` and the current
nonce in ``DPoP-Nonce`` (``400`` from the calls that issue, refresh or end a token, as a token
endpoint answers; ``401`` with ``WWW-Authenticate: DPoP`` from validate, as a resource server
answers), and every answer to a call that passed a proof carries the current nonce too. The
backend hands both headers to its client.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final, NamedTuple

from starlette.responses import Response

from sessionward.core import binding as states
from sessionward.core.context import RequestContext
from sessionward.core.decision import Proof
from sessionward.core.dpop import NONCE_HEADER, USE_NONCE, DpopPolicy
from sessionward.core.record import Session, SessionRecord
from sessionward.errors import InvalidProof
from sessionward.manager._async.binding import AsyncBinder, AsyncDpopCheck, dpop_key
from sessionward.manager._async.manager import AsyncSessionManager
from sessionward.service.api_errors import ApiError
from sessionward.service.api_fields import Fields

if TYPE_CHECKING:
    from sessionward.jwt import AsyncTokenService

__all__ = [
    "ConfirmProof",
    "PassedProof",
    "bound_key",
    "check",
    "nonce_asked",
    "nonce_refusal",
    "offer_nonce",
    "passed_proof",
    "precondition",
    "proven_key",
    "proven_session",
    "unproven",
]

_ASK: Final = "sign the proof again with the nonce in DPoP-Nonce"


def nonce_refusal(policy: DpopPolicy, now: float, *, resource: bool = False) -> ApiError:
    """The answer asking for a proof with the current nonce: ``400`` (a token endpoint's
    answer) or, for a ``resource`` request (validate), ``401`` with ``WWW-Authenticate``."""
    headers = {NONCE_HEADER: policy.nonce(now) or ""}
    if resource:
        headers["www-authenticate"] = f'DPoP error="{USE_NONCE}", algs="{policy.algs_param}"'
    return ApiError(401 if resource else 400, USE_NONCE, _ASK, headers)


@contextmanager
def nonce_asked(policy: DpopPolicy, now: float, *, resource: bool = False) -> Iterator[None]:
    """Turns a proof refused for its nonce into :func:`nonce_refusal`'s answer; every other
    refusal passes through."""
    try:
        yield
    except InvalidProof as exc:
        if exc.reason == USE_NONCE:
            raise nonce_refusal(policy, now, resource=resource) from None
        raise


def offer_nonce(response: Response, policy: DpopPolicy, now: float) -> Response:
    """``response`` with the current nonce in ``DPoP-Nonce`` (when nonces are on)."""
    nonce = policy.nonce(now)
    if nonce is not None:
        response.raw_headers.append((NONCE_HEADER.encode("ascii"), nonce.encode("ascii")))
    return response


class PassedProof(NamedTuple):
    """A client's proof as its backend passed it on."""

    proof: str
    method: str
    url: str


def passed_proof(fields: Fields) -> PassedProof | None:
    """The ``dpop`` field of a request body (``proof``, ``method``, ``url``), or ``None``."""
    raw = fields.mapping("dpop")
    if raw is None:
        return None
    dpop = Fields(raw, {"proof", "method", "url"}, "dpop")
    return PassedProof(
        dpop.string("proof", required=True, limit=8192) or "",
        dpop.string("method", required=True, limit=16) or "",
        dpop.string("url", required=True, limit=2048) or "",
    )


async def proven_key(service: AsyncTokenService, fields: Fields) -> str | None:
    """The key thumbprint of the client's DPoP proof passed on in ``dpop`` (a JWT-mode login
    or refresh), checked and its ``jti`` spent; ``None`` without one. A refused proof is an
    ``InvalidProof`` (401)."""
    passed = passed_proof(fields)
    if passed is None:
        return None
    return (await service.check_proof(passed.proof, method=passed.method, url=passed.url)).jkt


def bound_key(session: Session) -> str | None:
    """The thumbprint of the DPoP key ``session`` is bound to, if any."""
    if states.MARK not in session.record.data:  # the common case: no JSON parse
        return None
    state = states.state_of(session.data)
    jkt = state.get("jkt") if state is not None and state.get("method") == "dpop" else None
    return jkt if isinstance(jkt, str) else None


async def check(
    manager: AsyncSessionManager,
    policy: DpopPolicy,
    passed: PassedProof | None,
    *,
    token: str | None = None,
    session: Session | None = None,
) -> str | None:
    """Check a passed-on proof (for ``token`` when given, by the key ``session`` is bound to
    when it is) and spend its ``jti``; returns its key's thumbprint, ``None`` when no proof was
    passed and none is needed. Raises :class:`~sessionward.errors.InvalidProof`; a refusal for
    a bound session is an event of that session."""
    jkt = None if session is None else bound_key(session)
    if passed is None and jkt is None:
        return None
    checked = await AsyncBinder(manager).check_dpop(
        policy,
        None if passed is None else passed.proof,
        method="" if passed is None else passed.method,
        url="" if passed is None else passed.url,
        access_token=token,
        jkt=jkt,
        session=session,
    )
    return checked.jkt


def precondition(
    manager: AsyncSessionManager,
    policy: DpopPolicy,
    passed: PassedProof | None,
    token: str | None,
) -> AsyncDpopCheck:
    """The proof check ``validate`` runs on ``token``'s session before it writes anything: a
    session bound to a DPoP key needs ``passed``, a proof of that key for ``token``; a refusal
    raises :class:`~sessionward.errors.InvalidProof` with the session untouched."""
    return AsyncDpopCheck(
        AsyncBinder(manager),
        policy,
        None if passed is None else passed.proof,
        method="" if passed is None else passed.method,
        url="" if passed is None else passed.url,
        access_token=token,
    )


async def proven_session(
    manager: AsyncSessionManager,
    policy: DpopPolicy,
    passed: PassedProof | None,
    token: str | None,
    context: RequestContext | None = None,
) -> Session:
    """The session ``token`` authenticates, for a call that acts on it (``rotate``,
    ``elevate``, ``data``): one bound to a DPoP key only with ``passed``, a proof of that key
    for ``token``, checked as validate checks it and before anything is written. A refusal
    raises :class:`~sessionward.errors.InvalidProof` (401 ``invalid_token``) with the session
    untouched; a proof without the current nonce gets :func:`nonce_refusal`'s answer."""
    proof = precondition(manager, policy, passed, token)
    with nonce_asked(policy, manager.clock.now()):
        session = await manager.validate(token, context=context, proof=proof)
        if passed is not None and proof.checked is None:  # a proof for an unbound session
            await check(manager, policy, passed, token=token, session=session)
    return session


class ConfirmProof:
    """``confirm``'s proof check, run by the manager before the confirmation writes anything:
    a session bound to a DPoP key needs ``passed``, a proof of that key for ``token`` (as
    :func:`proven_session`); a proof passed for an unbound session is checked too, once.
    ``bound`` replaces the check of the session's binding (one that also knows DBSC's bound
    cookie: :func:`sessionward.service.api_dbsc.precondition`)."""

    __slots__ = ("bound", "manager", "passed", "policy", "spent", "token")

    def __init__(
        self,
        manager: AsyncSessionManager,
        policy: DpopPolicy,
        passed: PassedProof | None,
        token: str,
        bound: AsyncDpopCheck | None = None,
    ) -> None:
        self.manager, self.policy, self.passed, self.token = manager, policy, passed, token
        self.bound = precondition(manager, policy, passed, token) if bound is None else bound
        self.spent = False

    async def __call__(self, record: SessionRecord) -> Proof:
        verdict = await self.bound(record)
        if verdict is Proof.UNBOUND and self.passed is not None and not self.spent:
            session = Session(record)
            await check(self.manager, self.policy, self.passed, token=self.token, session=session)
            self.spent = True
        return verdict


async def unproven(record: SessionRecord) -> Proof:
    """The proof check of a pre-login token carried over at issue (``previous_token``): the
    validation on the way renews, touches and learns nothing for a session bound to a DPoP
    key."""
    return Proof.UNBOUND if dpop_key(record) is None else Proof.PENDING
