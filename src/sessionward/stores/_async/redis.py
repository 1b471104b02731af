"""Sessions in Redis, standalone, Sentinel or Cluster, through redis-py's own clients and pools.

    store = AsyncRedisStore("redis://127.0.0.1:6379/0")                   # standalone
    store = AsyncRedisStore("rediss://:secret@cache.example:6380/0")      # TLS
    store = AsyncRedisStore("unix:///run/redis.sock?db=0")                # Unix socket
    store = AsyncRedisStore("redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/0")
    store = AsyncRedisStore("redis+cluster://10.0.0.1:7000,10.0.0.2:7000")  # Redis Cluster

``rediss+sentinel://`` and ``rediss+cluster://`` use TLS. A Sentinel URL ends with the
master's service name (and optionally a database); its user and password are the master's
(the Sentinels' own go in ``sentinel_kwargs={"password": ...}``).

Options:

* ``prefix``: bytes put before every key and the channel name, for a shared database. No
  ``{`` or ``}``. Redis keeps keys of up to 14 bytes in a smaller allocation, so a prefix
  costs 16 bytes per session.
* ``salt``: the key of the hash that places users (below). By default a random salt is made
  in Redis itself on first use (``SET NX``) and shared by every process that uses the
  database; pass the same bytes to every process to keep it out of Redis instead.
* ``expire_grace``: seconds Redis keeps a record past its ``expires_at`` (default 0); the
  manager refuses expired records either way. ``clock_offset``: seconds added to record times
  to make Redis expiry times (for tests whose clock is far from the wall clock).
* ``socket_timeout`` / ``connect_timeout``: seconds before a stalled server counts as
  unavailable (default 2). Other keyword arguments go to the redis-py client.

Keys (``P`` is the prefix, ``raw`` the 12 bytes a session id spells)::

    P "{" raw[0:2] "}" raw[2:]  string  one record (``stores/_redis_layout.py``), expiring at
                                        its expires_at (PXAT)
    P "{" slot tag "}"          hash    user id -> the raw ids of the user's sessions, 12 bytes
                                        each, for the users of one Cluster slot; it expires
                                        with the last of those sessions
    P "sessionward:salt"        string  the salt: 32 random bytes, no TTL
    channel P "sessionward:changed"     the raw id of every record changed or removed

A user's locality (:meth:`~AsyncRedisStore.user_locality`) is two bytes of
``HMAC-SHA256(salt, user id)``. The session ids the manager mints for the user start with it,
so the user's sessions share a Cluster hash slot with the index hash of that slot, and every
write is one Lua script in one slot. One index per slot (named by the first two-byte hash tag
Redis puts in the slot) costs about 25 bytes a session; a key per user would cost about 160.
A record whose id does not lead to its user's slot (built by hand) works too, in more steps:
its index entry is written first, in the index's slot, and its user's cap is enforced by
reading that user's sessions, not atomically with the insert. A login reads the user's other
sessions (for the cap, and to drop dead entries) and those of one more user of its index:
give users a cap rather than thousands of sessions each.
The salt key must live as long as the sessions: keep it when flushing keys, and give Redis
persistence (or pass ``salt``), or list and revoke-all will miss the sessions made before.

Failures: connection errors, timeouts, a Cluster that is down or moving a slot (CLUSTERDOWN,
TRYAGAIN), a read-only replica or a loading server raise ``StoreUnavailable``; an unreadable
record raises ``StoreCorrupt``. No command is retried (a retried write could run twice), but
redis-py follows Cluster redirections (MOVED, ASK), which never ran the command.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import math
import re
import secrets
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis, RedisCluster, Sentinel
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

from sessionward.core import token as tokens
from sessionward.core.cap import UserCap
from sessionward.core.record import SessionRecord
from sessionward.errors import (
    AlreadyExists,
    ConfigError,
    InvalidArgument,
    NotFound,
    SessionLimitReached,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
    VersionConflict,
)
from sessionward.stores._redis_layout import (
    SCRIPTS,
    decode,
    encode,
    index_tag,
    slot_tags,
    touched,
    version_bytes,
)

__all__ = ["AsyncRedisStore", "AsyncRedisSubscription"]

_ID_BYTES: Final = 12
_NO_TAG: Final = b"\0\0"
_MAX_PXAT: Final = (1 << 53) - 1

# -- errors ------------------------------------------------------------------------------------

# Replies of a server that will answer again (redis-py strips the code from the replies it has
# a class for, not from the others). Everything else that is not a connection error is corrupt.
_UNAVAILABLE: Final = (ClusterDownError, TryAgainError, ReadOnlyError, AskError)
_UNAVAILABLE_REPLIES: Final = (
    "READONLY", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "OOM", "MOVED", "ASK",
)  # fmt: skip


def _translate(exc: BaseException) -> StoreError:
    """Our error for a redis-py error (or an OS error under it)."""
    if isinstance(exc, ResponseError) and not isinstance(exc, _UNAVAILABLE):
        message = str(exc)
        if not message.startswith(_UNAVAILABLE_REPLIES):
            return StoreCorrupt(f"redis: {message}")
    return StoreUnavailable(f"redis: {type(exc).__name__}: {exc}")


class _Translated:
    """``with _TRANSLATED:`` raises our errors for redis-py's, at the store's boundary."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: TracebackType | None) -> None:
        if isinstance(exc, RedisError | RedisClusterException | OSError):
            raise _translate(exc) from exc


_TRANSLATED = _Translated()

# -- connecting --------------------------------------------------------------------------------

_node: Any = ClusterNode  # untyped in the sync flavour

_CLUSTER_ONLY: Final = frozenset({
    "read_from_replicas", "load_balancing_strategy", "require_full_coverage",
    "reinitialize_steps", "cluster_error_retry_attempts", "dynamic_startup_nodes", "address_remap",
})  # fmt: skip


def _hosts(netloc: str) -> list[tuple[str, int]]:
    hosts = []
    for host_port in netloc.rpartition("@")[2].split(","):
        host, _, port = host_port.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError("the Redis URL needs host:port[,host:port...]")
        hosts.append((host.strip("[]"), int(port)))
    return hosts


def _in_turn(hosts: list[tuple[str, int]], options: dict[str, Any]) -> Callable[[], Any]:
    """A maker of clients for each host in turn."""
    turn = itertools.cycle(hosts)

    def connect() -> Any:
        host, port = next(turn)
        return Redis(host=host, port=port, **options)

    return connect


def _connect(url: str, options: dict[str, Any]) -> tuple[Any, bool, Callable[[], Any], list[Any]]:
    """The client for ``url``, whether it is a Cluster, a maker of plain clients for the change
    subscription (on a Cluster, on each node in turn: announcements reach them all), and the
    other clients the store must close (the Sentinels')."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("redis", "rediss", "unix"):
        return Redis.from_url(url, **options), False, lambda: Redis.from_url(url, **options), []
    base, _, kind = scheme.partition("+")
    if base not in ("redis", "rediss") or kind not in ("cluster", "sentinel"):
        raise ConfigError(
            "a Redis URL starts with redis://, rediss://, unix://, redis+sentinel:// or"
            " redis+cluster://"
        )
    hosts = _hosts(parts.netloc)
    if parts.username:
        options.setdefault("username", unquote(parts.username))
    if parts.password:
        options.setdefault("password", unquote(parts.password))
    if base == "rediss":
        options.setdefault("ssl", True)
    if kind == "cluster":
        nodes = [_node(host, port) for host, port in hosts]
        plain = {k: v for k, v in options.items() if k not in _CLUSTER_ONLY}
        return RedisCluster(startup_nodes=nodes, **options), True, _in_turn(hosts, plain), []
    service, _, db = parts.path.strip("/").partition("/")
    if not service or (db and not db.isdigit()):
        raise ConfigError("a Sentinel URL ends with /<service name>[/<db>]")
    watch = {k: v for k, v in options.items() if k.startswith("socket_") or k == "ssl"}
    sentinel = Sentinel(hosts, sentinel_kwargs=options.pop("sentinel_kwargs", watch), **options)
    master = int(db or 0)
    return (
        sentinel.master_for(service, db=master),
        False,
        lambda: sentinel.master_for(service, db=master),
        list(sentinel.sentinels),
    )


# -- the store ---------------------------------------------------------------------------------


def _raw_id(session_id: str) -> bytes | None:
    """The 12 bytes a public id spells, or None for anything that is not an id."""
    return base64.urlsafe_b64decode(session_id) if tokens.is_session_id(session_id) else None


def _public_id(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


class AsyncRedisStore:
    """Sessions in Redis (see the module's documentation for URLs, options, keys and limits)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: bytes = b"",
        salt: bytes | None = None,
        expire_grace: float = 0.0,
        clock_offset: float = 0.0,
        socket_timeout: float = 2.0,
        connect_timeout: float = 2.0,
        **client_options: Any,
    ) -> None:
        if not isinstance(prefix, bytes) or b"{" in prefix or b"}" in prefix:
            raise ConfigError("the key prefix must be bytes without '{' or '}'")
        if salt is not None and (not isinstance(salt, bytes) or not salt):
            raise ConfigError("the salt must be non-empty bytes")
        if not math.isfinite(expire_grace) or expire_grace < 0:
            raise ConfigError("expire_grace must be a non-negative number of seconds")
        if not math.isfinite(clock_offset):
            raise ConfigError("clock_offset must be finite")
        options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            "retry": Retry(NoBackoff(), 0),  # a retried write could run twice
            **client_options,
        }
        with _TRANSLATED:  # the sync Cluster client maps the slots right away
            self._client, self.cluster, self._subscriber, self._others = _connect(url, options)
        self._timeout = socket_timeout
        self._prefix = prefix
        self._salt = salt
        self._shift = expire_grace + clock_offset
        self._head = (prefix, b"1" if self.cluster else b"0")
        self._scripts = {name: self._client.register_script(s) for name, s in SCRIPTS.items()}

    # -- keys and placement -------------------------------------------------------------------

    def user_locality(self, user_id: str) -> bytes:
        """The 2 bytes that lead ``user_id``'s session ids to the slot of the user's index.
        Empty until the store has read its salt, which its first call of any kind does."""
        return b"" if self._salt is None else self._tag(user_id)

    def _tag(self, user_id: str) -> bytes:
        tag = hmac.digest(self._salt or b"", user_id.encode("utf-8"), hashlib.sha256)[:2]
        return tag if tag[0] != 0x7D else b"|" + tag[1:]  # a "}" would end the hash tag early

    def _index_tag(self, user_id: str) -> bytes:
        """The tag of the index hash that lists ``user_id``'s sessions."""
        return index_tag(b"{" + self._tag(user_id) + b"}")

    def _key(self, raw: bytes) -> bytes:
        return self._prefix + b"{" + raw[:2] + b"}" + raw[2:]

    def _index(self, tag: bytes) -> bytes:
        return self._prefix + b"{" + tag + b"}"

    def _home(self, key: bytes) -> bytes:
        """What the scripts on ``key`` compare index tags with to know if they share its slot."""
        return index_tag(key) if self.cluster else b""

    def _pxat(self, expires_at: float) -> int:
        when = (expires_at + self._shift) * 1000
        if not when > 1:  # also NaN
            return 1
        return _MAX_PXAT if when >= _MAX_PXAT else math.ceil(when)

    async def _ready(self) -> None:
        """Read the deployment's salt, making it if this is the first store ever."""
        if self._salt is not None:
            return
        slot_tags()  # built once per process, before the first login needs it
        key = self._prefix + b"sessionward:salt"
        with _TRANSLATED:
            await self._client.set(key, secrets.token_bytes(32), nx=True)
            salt = await self._client.get(key)
        if not salt:
            raise StoreCorrupt("redis: the salt key is empty")
        self._salt = salt

    async def _run(self, script: str, keys: Sequence[bytes], home: bytes, *args: Any) -> Any:
        with _TRANSLATED:
            return await self._scripts[script](keys=keys, args=(*self._head, home, *args))

    def _prepared(self, record: SessionRecord) -> tuple[bytes, bytes, bytes, int]:
        """The raw id, the index tag, the stored value and the expiry of a record to write."""
        raw = _raw_id(record.id)
        if raw is None:
            raise InvalidArgument("not a session id")
        tag = _NO_TAG if record.user_id is None else self._index_tag(record.user_id)
        return raw, tag, encode(record, tag), self._pxat(record.expires_at)

    # -- the store interface ------------------------------------------------------------------

    async def get(self, session_id: str) -> SessionRecord | None:
        raw = _raw_id(session_id)
        if raw is None:
            return None
        if self._salt is None:
            await self._ready()
        try:  # not ``with _TRANSLATED``: on the hot path, a try costs nothing when all is well
            value = await self._client.get(self._prefix + b"{" + raw[:2] + b"}" + raw[2:])
        except (RedisError, RedisClusterException, OSError) as exc:
            raise _translate(exc) from exc
        return None if value is None else decode(session_id, value)

    async def add(self, record: SessionRecord, *, cap: UserCap | None = None) -> list[str]:
        await self._ready()
        raw, tag, value, pxat = self._prepared(record)
        key = self._key(raw)
        home = self._home(key)
        if record.user_id is None:
            return await self._insert(record.id, [key], home, value, pxat, raw) or []
        user = record.user_id.encode("utf-8")
        keys = [key, self._index(tag)]
        near = not self.cluster or home == tag
        if near:
            limit = (cap.limit, b"1" if cap.evict_oldest else b"0", cap.now) if cap else (0,)
            evicted = await self._insert(record.id, keys, home, value, pxat, raw, user, *limit)
            if evicted is not None:
                return evicted
        else:
            with _TRANSLATED:
                if await self._client.exists(key):
                    raise AlreadyExists(record.id)
        # The user has sessions in other slots, or this is one: the cap is enforced by reading
        # them first, and an entry in another slot is written before its record.
        evicted = await self._make_room(record.user_id, cap) if cap else []
        if near:
            await self._insert(record.id, keys, home, value, pxat, raw, user, 0)
        else:
            await self._run("index", keys[1:], b"", b"\xff" + user, raw, pxat)
            await self._insert(record.id, keys[:1], home, value, pxat, raw)
        return evicted

    async def _insert(self, session_id: str, keys: list[bytes], *args: Any) -> list[str] | None:
        status, *evicted = await self._run("add", keys, *args)
        if status == 1:
            raise AlreadyExists(session_id)
        if status == 2:
            raise SessionLimitReached("the user has reached the session limit")
        return None if status == 3 else [_public_id(raw) for raw in evicted]

    async def _make_room(self, user_id: str, cap: UserCap) -> list[str]:
        """The cap, enforced by reading and then deleting (not atomic with the insert)."""
        live = [r for r in await self.list_user(user_id) if r.expires_at > cap.now]
        excess = len(live) - cap.limit + 1
        if excess <= 0:
            return []
        if not cap.evict_oldest:
            raise SessionLimitReached("the user has reached the session limit")
        doomed = [r.id for r in live[:excess]]
        for session_id in doomed:
            await self.delete(session_id)
        return doomed

    async def replace(self, record: SessionRecord, *, expected_version: int) -> None:
        await self._ready()
        raw, tag, value, pxat = self._prepared(record)
        expected = version_bytes(expected_version)
        if expected is None:
            raise VersionConflict(record.id)
        keys = [self._key(raw)]
        home, owner = self._home(keys[0]), b""
        if record.user_id is not None:
            owner = tag + record.user_id.encode("utf-8")
            if not self.cluster or home == tag:
                keys.append(self._index(tag))
            else:  # listed first, in the index's slot: a live record is never unlisted
                await self._run("index", [self._index(tag)], b"", b"\xff" + owner[2:], raw, pxat)
        status, *previous = await self._run(
            "replace", keys, home, value, pxat, raw, owner, expected
        )
        if status == 1:
            raise NotFound(record.id)
        if status == 2:
            raise VersionConflict(record.id)
        if previous:  # the previous user's index is in another slot
            await self._unlist(raw, *previous)

    async def _unlist(self, raw: bytes, tag: bytes, user: bytes) -> None:
        await self._run("index", [self._index(tag)], b"", b"\xff" + user, raw, b"")

    async def touch(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        raw = _raw_id(session_id)
        if raw is None:
            return
        key, pxat = self._key(raw), self._pxat(expires_at)
        times = touched(last_seen, expires_at)
        tag = await self._run("touch", [key], self._home(key), times, pxat, raw)
        if tag:  # the user's index is in another slot: it must outlive the record
            with _TRANSLATED:
                await self._client.pexpireat(self._index(tag), pxat, gt=True)

    async def delete(self, session_id: str) -> bool:
        raw = _raw_id(session_id)
        return raw is not None and await self._delete(raw)

    async def _delete(self, raw: bytes, now: float | None = None, owner: bytes = b"") -> bool:
        key = self._key(raw)
        when = b"" if now is None else now
        deleted = await self._run("delete", [key], self._home(key), raw, when, owner)
        if isinstance(deleted, list):  # the user's index is in another slot
            await self._unlist(raw, *deleted)
        return bool(deleted)

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        await self._ready()
        user = user_id.encode("utf-8")
        with _TRANSLATED:
            here, away = await self._client.hmget(
                self._index(self._index_tag(user_id)), [user, b"\xff" + user]
            )
            entries = (here or b"") + (away or b"")
            ids = [entries[i : i + _ID_BYTES] for i in range(0, len(entries), _ID_BYTES)]
            if not ids:
                return []
            async with self._client.pipeline(transaction=False) as pipe:
                for raw in ids:
                    pipe.get(self._key(raw))
                values = await pipe.execute()
        records = [
            decode(_public_id(raw), value)
            for raw, value in zip(ids, values, strict=True)
            if value is not None
        ]
        mine = [r for r in records if r.user_id == user_id]
        return sorted(mine, key=lambda r: (r.created_at, r.id))

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        await self._ready()
        user = user_id.encode("utf-8")
        kept = (_raw_id(keep) or b"") if keep is not None else b""
        index = self._index(self._index_tag(user_id))
        deleted, away = await self._run("delete_user", [index], b"", user, kept)
        for raw in (raw for raw in away if raw != kept):
            if await self._delete(raw, owner=user):
                deleted.append(raw)
        return [_public_id(raw) for raw in deleted]

    async def purge_expired(self, now: float) -> int:
        """Deletes the records past ``expires_at`` that Redis still keeps (``expire_grace``),
        then drops dead entries from every index. It scans the keyspace: run it now and
        then (hourly, say), not per request."""
        await self._ready()
        start, purged = len(self._prefix), 0
        match = re.sub(rb"([\\*?\[\]])", rb"\\\1", self._prefix) + b"{*"
        for key in await self._scan(match, "string", start + 2 + _ID_BYTES):
            purged += await self._delete(key[start + 1 : start + 3] + key[start + 4 :], now)
        for key in await self._scan(match, "hash", start + 4):
            await self._run("prune", [key], b"")
        return purged

    async def _scan(self, match: bytes, kind: str, length: int) -> list[bytes]:
        with _TRANSLATED:
            return [
                key
                async for key in self._client.scan_iter(match=match, _type=kind, count=1000)
                if len(key) == length
            ]

    async def subscribe(self) -> AsyncRedisSubscription:
        """Listen to the announcements of every change (see :class:`AsyncRedisSubscription`)."""
        channel = self._prefix + b"sessionward:changed"
        subscription = AsyncRedisSubscription(self._subscriber, channel, self._timeout)
        await subscription.open()
        return subscription

    async def close(self) -> None:
        for client in (self._client, *self._others):
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()


# -- change announcements ----------------------------------------------------------------------

_PING_AFTER: Final = 1.0  # seconds of silence before the subscription checks its connection
_RECONNECT_PAUSE: Final = 1.0


class AsyncRedisSubscription:
    """One process' view of the store's change announcements (Redis pub/sub).

    ``changed()`` reads only what has already arrived. A dropped connection, a server that
    cut off a subscriber too slow to read, or a connection silent for ``socket_timeout``
    after a ``PING`` (sent after a second of silence) is reported as ``None``; the next calls
    reconnect (at most once a second) and answer ``None`` until subscribed again.
    """

    def __init__(self, connect: Callable[[], Any], channel: bytes, timeout: float) -> None:
        self._connect = connect
        self._channel = channel
        self._timeout = timeout
        self._client: Any = None
        self._pubsub: Any = None
        self._reconnect_at = 0.0
        self._heard = 0.0
        self._pinged: float | None = None

    async def open(self) -> None:
        """Subscribe, and wait for the server to confirm (``StoreUnavailable`` otherwise)."""
        self._client = self._connect()
        self._pubsub = self._client.pubsub()
        try:
            with _TRANSLATED:
                await self._pubsub.subscribe(self._channel)
                reply = await self._pubsub.get_message(timeout=self._timeout)
            if reply is None or reply["type"] != "subscribe":
                raise StoreUnavailable("redis: the subscription was not confirmed")
        except StoreError:
            await self.close()
            raise
        self._heard, self._pinged = time.monotonic(), None

    async def changed(self) -> list[str] | None:
        if self._pubsub is None:
            if time.monotonic() >= self._reconnect_at:
                self._reconnect_at = time.monotonic() + _RECONNECT_PAUSE
                with contextlib.suppress(StoreError):
                    await self.open()
            return None
        ids = []
        try:
            while (message := await self._pubsub.get_message(timeout=0.0)) is not None:
                self._heard, self._pinged = time.monotonic(), None
                data = message["data"]
                if message["type"] == "message" and len(data) == _ID_BYTES:
                    ids.append(_public_id(data))
            now = time.monotonic()
            if self._pinged is not None and now - self._pinged > self._timeout:
                raise TimeoutError("no answer to PING")
            if self._pinged is None and now - self._heard > _PING_AFTER:
                await self._pubsub.ping()
                self._pinged = now
        except (RedisError, OSError):
            await self.close()
            return None
        return ids

    async def close(self) -> None:
        pubsub, client, self._pubsub, self._client = self._pubsub, self._client, None, None
        with contextlib.suppress(RedisError, OSError):
            if pubsub is not None:
                await pubsub.aclose()
            if client is not None:
                await client.aclose()
