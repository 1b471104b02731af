"""The Shared Signals transmitter: stream management, and the SETs of each stream.

A poll stream reads the event log forward from its own cursor (``fill``): every entry of the
stream's application, newer than the stream's ``since``, that maps to an event the stream
delivers becomes one signed SET in the stream's queue, and the cursor moves, in one store
transaction. A SET leaves the queue when a poll acknowledges it (``ack`` or ``setErrs``,
RFC 8936); until then every poll answers it again. A push stream is a consumer of the
delivery engine (:mod:`sessionward.signals.push`), which asks :meth:`Transmitter.sets_for`
for each entry's SET. Either way delivery is at least once and a receiver deduplicates by
``jti``, which is stable for one event on one stream.

A ``paused`` stream sends nothing: events wait in the log and flow once it is ``enabled``.
A ``disabled`` stream holds nothing: enabling it again starts at the end of the log. When the
transmitter itself changes a stream's status (:meth:`Transmitter.change_status`, not the
receiver's request), it sends a ``stream-updated`` SET: before stopping the stream, or once
it is enabled again; on a poll stream such a SET is answered whatever the status.

Subjects (:mod:`sessionward.signals.subjects`): each stream keeps the transmitter's
``default_subjects`` of its creation and a list of subjects; an event whose ``sub_id`` the
stream does not carry makes no SET on it. The list is decided when the SET is made (a poll's
fill, a push delivery), so a subject added while events wait in a paused stream gets them.

The methods are synchronous (short store statements, a signature per SET); the service
calls the heavier ones in a worker thread.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any, Final

from sessionward.core.jose import b64decode, loads_object
from sessionward.errors import InvalidArgument, NotFound
from sessionward.jwt.keyset import KeySet
from sessionward.signals.caep import signals_of
from sessionward.signals.delivery import log_end
from sessionward.signals.push import AUTHORIZATION, KIND, SSF_KINDS, push_headers, send_verification
from sessionward.signals.set import STREAM_UPDATED, VERIFICATION, set_claims, sign_set
from sessionward.signals.streams import POLL, PUSH, STATUSES, Stream, new_stream, receiver_fields
from sessionward.signals.subjects import (
    ALL,
    DEFAULT_SUBJECTS,
    SubjectFilter,
    added,
    check_subject,
    removed,
)
from sessionward.signals.webhook_endpoints import check_public_target
from sessionward.stores.consumers.base import ACTIVE, DISABLED, Consumer, ConsumerStore
from sessionward.stores.eventlog.base import EventLog, LoggedEvent
from sessionward.stores.ssf import PendingSet, StreamStore

__all__ = ["TooManyStreams", "TooSoon", "Transmitter", "UnknownStream"]

_log = logging.getLogger("sessionward.signals")
PAGE: Final = 200
MAX_FILL: Final = 1000  # log entries read per fill call; the next call goes on
MAX_STREAMS: Final = 20  # per application
MAX_PENDING: Final = 10_000  # SETs waiting for a poll's ack; past it the log holds the rest
MAX_EVENTS: Final = 256  # SETs returned by one poll (as many as one poll may acknowledge)
NOTICE: Final = "su-"  # the jti prefix of stream-updated SETs: polled whatever the status
#: The stored document's keys beside the stream's own fields.
_EXTRA: Final = ("verified_at", "default_subjects", "subjects")


class UnknownStream(InvalidArgument):
    """No stream with that id for this application."""


class TooManyStreams(InvalidArgument):
    """The application has ``MAX_STREAMS`` streams already."""


class TooSoon(InvalidArgument):
    """A verification request within ``min_verification_interval`` of the previous one."""


def _to_stream(document: Mapping[str, Any]) -> Stream:
    fields = dict(document)
    requested = fields.get("events_requested")
    fields["events_requested"] = None if requested is None else tuple(requested)
    for name in _EXTRA:
        fields.pop(name, None)
    return Stream(**fields)


def _document(stream: Stream, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The stored form: the stream, and ``extra`` (verification time, subjects). The
    receiver's ``authorization_header`` is kept once, with the push stream's consumer (its
    ``credentials``), not here."""
    out = asdict(replace(stream, authorization=None))
    out["events_requested"] = (
        None if stream.events_requested is None else list(stream.events_requested)
    )
    out.update({k: v for k, v in (extra or {}).items() if k in _EXTRA})
    return out


def _subject_filter(document: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """The stream's subject mode and list (a stream stored without them carries ALL)."""
    mode = document.get("default_subjects", ALL)
    subjects = document.get("subjects")
    return (mode if mode in DEFAULT_SUBJECTS else ALL), (
        subjects if isinstance(subjects, list) else []
    )


class Transmitter:
    """``issuer`` is the ``iss`` of every SET; ``keys`` sign them (the active key);
    ``poll_url`` is the poll endpoint's URL without the stream id; ``public_user`` turns a
    stored user id into the one receivers know."""

    def __init__(
        self,
        *,
        issuer: str,
        keys: KeySet,
        streams: StreamStore,
        log: EventLog,
        now: Callable[[], float],
        poll_url: str,
        public_user: Callable[[str], str | None] = lambda user: user,
        allow_http: bool = False,
        public_only: bool = False,
        consumers: ConsumerStore | None = None,
        default_subjects: str = ALL,
    ) -> None:
        if default_subjects not in DEFAULT_SUBJECTS:
            raise InvalidArgument("default_subjects must be ALL or NONE")
        self.issuer = issuer
        self.keys = keys
        self.streams = streams
        self.log = log
        self.now = now
        self.poll_url = poll_url
        self.public_user = public_user
        self.allow_http = allow_http
        #: Refuse push targets on loopback, private or reserved addresses (resolving names).
        self.public_only = public_only
        #: Push streams are consumers here (sessionward.signals.push); ``None``: poll only.
        self.consumers = consumers
        #: Seconds a poll without ``returnImmediately`` waits for a SET.
        self.long_poll = 10.0
        #: Called when a push stream may have something to send (the deliverer's wake-up).
        self.wake: Callable[[], None] = lambda: None
        #: The subjects a new stream carries before any is added or removed (SSF 1.0 §7.1).
        self.default_subjects = default_subjects
        # Per stream: the last list seen (the very object) and its prepared filter; a fill
        # reads the document once, a push round once per consumer.
        self._filters: dict[str, tuple[object, SubjectFilter]] = {}
        # The threads sending verification and stream-updated events; close() stops them.
        self._stop = threading.Event()
        self._senders: list[threading.Thread] = []
        self._senders_lock = threading.Lock()

    # -- stream management ------------------------------------------------------------------

    def create(self, application: str, fields: Mapping[str, Any]) -> Stream:
        if len(self.streams.by_application(application)) >= MAX_STREAMS:
            raise TooManyStreams(f"an application has at most {MAX_STREAMS} streams")
        stream = new_stream(
            fields,
            application=application,
            issuer=self.issuer,
            audience=application,
            poll_url=self.poll_url,
            now=self.now(),
            allow_http=self.allow_http,
        )
        if stream.method == PUSH and self.consumers is None:
            raise InvalidArgument("push delivery is not available here: use poll")
        self._check_target(stream)
        extra = {"default_subjects": self.default_subjects, "subjects": []}
        self.streams.save(stream.stream_id, application, _document(stream, extra))
        end = log_end(self.log)  # a new stream starts now, not at the oldest entry kept
        self.streams.enqueue(stream.stream_id, None, end, [])
        self._sync_consumer(stream, restart=True)
        _log.info("ssf stream %s created for %s (%s)", stream.stream_id, application, stream.method)
        return stream

    def get(self, application: str, stream_id: object) -> Stream:
        if not isinstance(stream_id, str) or not stream_id:
            raise InvalidArgument("stream_id is required")
        document = self.streams.get(stream_id)
        if document is None or document.get("application") != application:
            raise UnknownStream("no such stream")
        stream = _to_stream(document)
        consumer = None if self.consumers is None else self.consumers.get(stream.stream_id)
        if stream.method == PUSH and consumer is not None:
            authorization = consumer.credentials.get(AUTHORIZATION)
            if isinstance(authorization, str):
                stream = replace(stream, authorization=authorization)
        return stream

    def streams_of(self, application: str) -> list[Stream]:
        return [_to_stream(d) for d in self.streams.by_application(application)]

    def update(self, application: str, body: Mapping[str, Any], *, replace_all: bool) -> Stream:
        stream = self.get(application, body.get("stream_id"))
        updated = receiver_fields(
            stream,
            body,
            poll_url=self.poll_url,
            replace_all=replace_all,
            allow_http=self.allow_http,
        )
        if updated.endpoint_url != stream.endpoint_url:
            self._check_target(updated)
        self._save(updated)
        if updated.method != stream.method:  # another method starts at the end of the log
            self._skip_to_end(stream.stream_id)
        self._sync_consumer(updated, restart=updated.method != stream.method)
        return updated

    def delete(self, application: str, stream_id: object) -> None:
        stream = self.get(application, stream_id)
        self.streams.delete(stream.stream_id)
        if self.consumers is not None:
            self.consumers.remove(stream.stream_id)
        _log.info("ssf stream %s deleted", stream.stream_id)

    def set_status(
        self, application: str, stream_id: object, status: object, reason: object = None
    ) -> Stream:
        """The receiver's request (SSF 1.0 §8.1.2.2): no stream-updated event."""
        stream = self.get(application, stream_id)
        return self._apply_status(stream, *_status_args(status, reason))

    def change_status(
        self, application: str, stream_id: object, status: object, reason: object = None
    ) -> Stream:
        """The transmitter's own decision (an operator's): the stream's receiver is told with
        a stream-updated SET (SSF 1.0 §8.1.5), before the stream stops, or once it is
        enabled again. The same status again changes the reason only, and tells nothing."""
        stream = self.get(application, stream_id)
        status, reason = _status_args(status, reason)
        if status == stream.status:
            return self._apply_status(stream, status, reason)
        body: dict[str, Any] = {"status": status}
        if reason:
            body["reason"] = reason
        jti = NOTICE + secrets.token_hex(16)
        sub_id = {"format": "opaque", "id": stream.stream_id}
        token = self._sign(stream, jti, STREAM_UPDATED, body, sub_id, None)
        if stream.method == PUSH and stream.status == "enabled":
            self._push_now(stream, token)  # told before it stops
        updated = self._apply_status(stream, status, reason)
        if stream.method == PUSH and stream.status != "enabled":
            self._push_now(stream, token)
        elif stream.method == POLL:  # after a disabling drop; answered whatever the status
            self._queue(stream.stream_id, PendingSet(jti, token, self.now()))
        _log.info("ssf stream %s: stream-updated (%s) sent", stream.stream_id, status)
        return updated

    def _apply_status(self, stream: Stream, status: str, reason: str | None) -> Stream:
        now = self.now()
        updated = stream.with_status(status, reason, now)
        self._save(updated)
        if status == "disabled":  # holds nothing: what was waiting for a poll goes too
            queued = self.streams.pending(stream.stream_id, MAX_PENDING)
            self.streams.ack(stream.stream_id, [p.jti for p in queued])
        restart = stream.status == "disabled" and status != "disabled"
        if restart:  # a disabled stream held nothing: it starts again at the end of the log
            self._skip_to_end(stream.stream_id)
        self._sync_consumer(updated, restart=restart)
        _log.info("ssf stream %s is %s", stream.stream_id, status)
        return updated

    def _push_now(self, stream: Stream, token: str) -> None:
        credentials = {} if stream.authorization is None else {AUTHORIZATION: stream.authorization}
        headers = push_headers(credentials)
        with self._senders_lock:
            self._senders = [t for t in self._senders if t.is_alive()]
            self._senders.append(
                send_verification(
                    stream.endpoint_url, token, headers, what="notice", stop=self._stop
                )
            )

    def _queue(self, stream_id: str, pending: PendingSet) -> None:
        """Queue one SET that comes from no log entry (the cursor stays)."""
        for _ in range(20):
            cursor = self.streams.cursor(stream_id)
            if self.streams.enqueue(stream_id, cursor, cursor, [pending]):
                return
        raise InvalidArgument("the stream kept changing; try again")  # pragma: no cover

    # -- subjects (SSF 1.0 §8.1.3) ----------------------------------------------------------

    def add_subject(
        self, application: str, stream_id: object, subject: object, verified: object = None
    ) -> None:
        """The receiver wants events about ``subject`` (an RFC 9493 Subject Identifier)."""
        if verified is not None and not isinstance(verified, bool):
            raise InvalidArgument("verified must be a boolean")
        self._subjects(application, stream_id, subject, added)

    def remove_subject(self, application: str, stream_id: object, subject: object) -> None:
        """The receiver wants no more events about ``subject``."""
        self._subjects(application, stream_id, subject, removed)

    def subjects_of(self, application: str, stream_id: object) -> tuple[str, list[Any]]:
        """The stream's mode (``ALL``: the list is what was removed; ``NONE``: what was
        added) and its list."""
        stream = self.get(application, stream_id)
        return _subject_filter(self.streams.get(stream.stream_id) or {})

    def _subjects(
        self,
        application: str,
        stream_id: object,
        subject: object,
        change: Callable[[str, list[Any], dict[str, Any]], list[Any]],
    ) -> None:
        stream = self.get(application, stream_id)
        checked = check_subject(subject)

        def edit(document: dict[str, Any]) -> dict[str, Any] | None:
            mode, subjects = _subject_filter(document)
            after = change(mode, subjects, checked)
            if after == subjects and "default_subjects" in document:
                return None
            return {**document, "default_subjects": mode, "subjects": after}

        document = self.streams.update(stream.stream_id, edit)
        if document is None:
            raise UnknownStream("no such stream")
        if stream.method == PUSH and self.consumers is not None:
            # The consumer carries the document the renderer reads, on every node; its place
            # in the log, its state and its delivery history stay.
            try:
                self.consumers.set_config(stream.stream_id, _document(stream, document))
            except NotFound:
                self._sync_consumer(stream, restart=False)

    def status_of(self, application: str, stream_id: object) -> dict[str, Any]:
        """The status object; a push stream the engine disabled after repeated failures is
        ``paused`` (its events wait) with the reason."""
        stream = self.get(application, stream_id)
        out = stream.status_object()
        consumer = None if self.consumers is None else self.consumers.get(stream.stream_id)
        if (
            stream.status == "enabled"
            and consumer is not None
            and consumer.state == DISABLED
            and consumer.disabled_reason not in STATUSES
        ):
            out.update(status="paused", reason=f"delivery failed: {consumer.disabled_reason}")
        return out

    def _skip_to_end(self, stream_id: str) -> None:
        for _ in range(20):
            cursor = self.streams.cursor(stream_id)
            if self.streams.enqueue(stream_id, cursor, log_end(self.log), []):
                return

    def _check_target(self, stream: Stream) -> None:
        if stream.method == PUSH and self.public_only:
            check_public_target(stream.endpoint_url)

    def _save(self, stream: Stream) -> None:
        """Store the stream's fields; what else the document holds (subjects, the last
        verification) is kept as it is at that moment."""
        if (
            self.streams.update(stream.stream_id, lambda current: _document(stream, current))
            is None
        ):
            raise UnknownStream("no such stream")

    def _sync_consumer(self, stream: Stream, *, restart: bool) -> None:
        """Make the stream's consumer (push streams only) match the stream: its target, its
        credential, its document (what the renderer reads, on any node), its state. It
        keeps its place in the log unless ``restart`` (then: the end of the log)."""
        if self.consumers is None:
            if stream.method == PUSH:
                raise InvalidArgument("push delivery is not available here: use poll")
            return
        current = self.consumers.get(stream.stream_id)
        if current is not None:
            self.consumers.remove(stream.stream_id)
        if stream.method != PUSH:
            return
        now = self.now()
        enabled = stream.status == "enabled"
        consumer = Consumer(
            id=stream.stream_id,
            kind=KIND,
            application=stream.application,
            url=stream.endpoint_url,
            created_at=now if current is None else current.created_at,
            config=_document(stream, self.streams.get(stream.stream_id)),
            credentials={}
            if stream.authorization is None
            else {AUTHORIZATION: stream.authorization},
            kinds=SSF_KINDS,
            cursor=log_end(self.log) if restart or current is None else current.cursor,
            state=ACTIVE if enabled else DISABLED,
            disabled_reason=None if enabled else stream.status,
            next_attempt=now,
        )
        if current is not None and enabled and current.state == ACTIVE:
            consumer = consumer.with_(
                failures=current.failures,
                first_failure=current.first_failure,
                next_attempt=current.next_attempt,
            )
        self.consumers.add(consumer)
        if enabled:
            self.wake()

    def verify(self, application: str, stream_id: object, state: object = None) -> str:
        """Queue a verification event (SSF 1.0 §8.1.4); returns its ``jti``."""
        stream = self.get(application, stream_id)
        if state is not None and (not isinstance(state, str) or len(state) > 1024):
            raise InvalidArgument("state must be text of at most 1024 characters")
        now = self.now()
        last = (self.streams.get(stream.stream_id) or {}).get("verified_at")
        if isinstance(last, int | float) and now - last < stream.min_verification_interval:
            raise TooSoon("a verification was requested less than the interval ago")
        jti = secrets.token_hex(16)
        body = {} if state is None else {"state": state}
        sub_id = {"format": "opaque", "id": stream.stream_id}
        token = self._sign(stream, jti, VERIFICATION, body, sub_id, None)
        self.streams.update(stream.stream_id, lambda document: {**document, "verified_at": now})
        if stream.method == PUSH:
            if stream.status != "enabled":
                raise InvalidArgument(f"the stream is {stream.status}: nothing is sent on it")
            self._push_now(stream, token)
            return jti
        self._queue(stream.stream_id, PendingSet(jti, token, now))
        return jti

    # -- filling the queue ------------------------------------------------------------------

    def fill(self, stream: Stream) -> int:
        """Turn new log entries into queued SETs; returns how many SETs were queued."""
        if stream.status != "enabled":
            return 0
        document = self.streams.get(stream.stream_id) or {}
        queued = read = lost = 0
        while read < MAX_FILL and lost < 20:
            room = MAX_PENDING - self.streams.count(stream.stream_id)  # an entry: one SET at most
            if room <= 0:
                break
            cursor = self.streams.cursor(stream.stream_id)
            entries = self.log.read(cursor, min(PAGE, room))
            if not entries:
                break
            sets = [s for entry in entries for s in self._sets_of(stream, entry, document)]
            if not self.streams.enqueue(stream.stream_id, cursor, entries[-1].id, sets):
                lost += 1  # another process moved the cursor (or the stream is gone)
                continue
            queued += len(sets)
            read += len(entries)
            if len(entries) < min(PAGE, room):
                break
        return queued

    def sets_for(self, document: Mapping[str, Any], entry: LoggedEvent) -> list[PendingSet]:
        """The SETs ``entry`` means for the stream of ``document`` (the push renderer's
        question: the document travels with the consumer)."""
        return self._sets_of(_to_stream(document), entry, document)

    def _sets_of(
        self, stream: Stream, entry: LoggedEvent, document: Mapping[str, Any]
    ) -> list[PendingSet]:
        if entry.application != stream.application or entry.at < stream.since:
            return []
        delivered = stream.events_delivered
        subjects = self._filter(stream, document)
        out = []
        for signal in signals_of(entry.to_dict(), issuer=self.issuer, public_user=self.public_user):
            if signal.event_type not in delivered:
                continue
            if not subjects.carries(signal.sub_id):
                continue
            jti = _jti(stream.stream_id, entry.id, signal.event_type)
            token = self._sign(
                stream, jti, signal.event_type, signal.event, signal.sub_id, signal.txn
            )
            out.append(PendingSet(jti, token, entry.at))
        return out

    def _filter(self, stream: Stream, document: Mapping[str, Any]) -> SubjectFilter:
        listed = document.get("subjects")
        cached = self._filters.get(stream.stream_id)
        if cached is not None and cached[0] is listed and listed is not None:
            return cached[1]
        mode, subjects = _subject_filter(document)
        prepared = SubjectFilter(mode, subjects, stream.application)
        if len(self._filters) >= 1024:
            self._filters.clear()
        self._filters[stream.stream_id] = (listed, prepared)
        return prepared

    def _sign(
        self,
        stream: Stream,
        jti: str,
        event_type: str,
        event: Mapping[str, Any],
        sub_id: Mapping[str, Any],
        txn: str | None,
    ) -> str:
        claims = set_claims(
            issuer=stream.iss,
            audience=stream.aud,
            jti=jti,
            iat=int(self.now()),
            event_type=event_type,
            event=event,
            sub_id=sub_id,
            txn=txn,
        )
        return sign_set(claims, self.keys)

    # -- poll delivery (RFC 8936) -----------------------------------------------------------

    def poll(
        self,
        application: str,
        stream_id: str,
        *,
        max_events: int | None,
        ack: Sequence[str] = (),
        set_errs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> tuple[dict[str, str], bool]:
        """Acknowledge, fill, and answer up to ``max_events`` queued SETs (``None``: the
        limit of one poll) with whether more are waiting."""
        stream = self.get(application, stream_id)
        if stream.method != POLL:
            raise UnknownStream("no such poll stream")
        done = list(ack)
        for jti, error in (set_errs or {}).items():
            _log.warning(
                "ssf stream %s: the receiver refused SET %s: %s",
                stream_id,
                jti,
                str(error.get("err", "?"))[:64],
            )
            done.append(jti)
        if done:
            self.streams.ack(stream.stream_id, done)
        self.fill(stream)
        limit = max(MAX_EVENTS if max_events is None else min(max_events, MAX_EVENTS), 0)
        # A paused or disabled stream transmits nothing but its stream-updated notices.
        prefix = "" if stream.status == "enabled" else NOTICE
        pending = self.streams.pending(stream.stream_id, limit + 1, prefix)
        sets = {p.jti: self._current(p.token) for p in pending[:limit]}
        return sets, len(pending) > limit

    def _current(self, token: str) -> str:
        """``token`` as queued, or signed again when its key no longer verifies (rotated out
        of the key set, or revoked, while the SET waited for its poll): same claims, same
        ``jti``."""
        header, payload, _ = token.split(".")
        kid = loads_object(b64decode(header)).get("kid")
        if isinstance(kid, str) and self.keys.get(kid) is not None:
            return token
        return sign_set(loads_object(b64decode(payload)), self.keys)

    def close(self, timeout: float = 15.0) -> None:
        """Stop the senders' retries and wait up to ``timeout`` seconds for a request in
        flight, then close the stream store."""
        with self._senders_lock:
            self._stop.set()
            senders, self._senders = self._senders, []
        deadline = time.monotonic() + timeout
        for thread in senders:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.streams.close()


def _status_args(status: object, reason: object) -> tuple[str, str | None]:
    if reason is not None and (not isinstance(reason, str) or len(reason) > 256):
        raise InvalidArgument("reason must be text of at most 256 characters")
    if not isinstance(status, str):
        raise InvalidArgument("status is required")
    if status not in STATUSES:
        raise InvalidArgument(f"status must be one of {', '.join(STATUSES)}")
    return status, reason


def _jti(stream_id: str, entry_id: str, event_type: str) -> str:
    text = f"{stream_id}\x1f{entry_id}\x1f{event_type}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
