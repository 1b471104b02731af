"""Redis store specifics: the key layout, TTLs, the user index, the salt and user placement,
Cluster slots and redirections, failures, races and change announcements.

The contract suite (tests/contract) proves the store's behaviour over standalone and Cluster;
these tests prove what is particular to Redis.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import math
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from contract.records import make_record
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    MovedError,
    ReadOnlyError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)
from servers import (
    WAIT,
    RedisClusterServers,
    RedisServer,
    free_port,
    private_cluster,
    private_redis,
    redis_cluster,  # noqa: F401 - fixture
    redis_server,  # noqa: F401 - fixture
)

from sessionward import Policy, SessionManager
from sessionward.core.record import SessionRecord
from sessionward.core.token import mint
from sessionward.errors import (
    AlreadyExists,
    ConfigError,
    InvalidArgument,
    InvalidToken,
    SessionLimitReached,
    StoreCorrupt,
    StoreUnavailable,
)
from sessionward.stores import Broadcast, Locality, UserCap, UserIndex
from sessionward.stores._redis_layout import decode, encode, slot_tags
from sessionward.stores._sync.redis import _translate
from sessionward.stores.redis import AsyncRedisStore, RedisStore
from sessionward.testing import FakeClock

from .nodes import NodeB

NEVER_TOUCH = Policy(idle_timeout=3600, absolute_timeout=7200, touch_interval=3000)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> RedisServer:
    found = request.getfixturevalue("redis_server")
    assert isinstance(found, RedisServer)
    found.call("FLUSHALL")
    return found


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> RedisClusterServers:
    found = request.getfixturevalue("redis_cluster")
    assert isinstance(found, RedisClusterServers)
    found.flush()
    return found


@pytest.fixture
def raw(server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=server.port)
    yield client
    client.close()


def store_on(url: str, clock: FakeClock, offset: float | None = None, **options: Any) -> RedisStore:
    """A store whose TTLs run in real time from the fake clock's present."""
    if offset is None:
        offset = time.time() - clock.now()
    store = RedisStore(url, clock_offset=offset, **options)
    store.get("AAAAAAAAAAAAAAAA")  # the first call reads the salt
    return store


def manager_on(store: RedisStore, clock: FakeClock, policy: Policy = NEVER_TOUCH) -> SessionManager:
    return SessionManager(store, policy=policy, clock=clock)


def raw_id(session_id: str) -> bytes:
    return base64.urlsafe_b64decode(session_id)


def key_of(session_id: str, prefix: bytes = b"") -> bytes:
    """The documented key of a session: ``P {raw[0:2]} raw[2:]``."""
    raw = raw_id(session_id)
    return prefix + b"{" + raw[:2] + b"}" + raw[2:]


@functools.cache
def _first_tag_of_each_slot() -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for n in range(1 << 16):
        tag = n.to_bytes(2, "big")
        if b"}" not in tag:
            found.setdefault(key_slot(b"{" + tag + b"}"), tag)
    return found


def index_of(store: RedisStore, user: str, prefix: bytes = b"") -> bytes:
    """The key of the index hash that lists ``user``'s sessions: the first two-byte tag that
    Redis places in the slot of the user's tag."""
    slot = key_slot(b"{" + store.user_locality(user) + b"}")
    return prefix + b"{" + _first_tag_of_each_slot()[slot] + b"}"


def entries(client: Any, index: bytes, field: bytes) -> list[str]:
    """The session ids an index lists under ``field`` (12 raw bytes each), sorted."""
    value = client.hget(index, field) or b""
    assert len(value) % 12 == 0
    return sorted(
        base64.urlsafe_b64encode(value[i : i + 12]).decode() for i in range(0, len(value), 12)
    )


def local_record(store: RedisStore, now: float, user: str | None, **fields: Any) -> SessionRecord:
    """A record whose id starts with the user's locality, as the manager mints them."""
    locality = store.user_locality(user) if user is not None else b""
    raw = locality + secrets.token_bytes(12 - len(locality))
    return make_record(now, user_id=user, id=base64.urlsafe_b64encode(raw).decode(), **fields)


def pexpiretime(client: Any, key: bytes) -> int:
    return int(client.execute_command("PEXPIRETIME", key))


class Commands:
    """What clients sent the server (MONITOR), not counting commands run inside scripts."""

    MARK = "sessionward-test-mark"

    def __init__(self, port: int) -> None:
        self._client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
        self._monitor = self._client.monitor()  # type: ignore[no-untyped-call]
        self._monitor.__enter__()

    def take(self) -> list[str]:
        """Every command name sent since the last call, in order."""
        self._client.echo(self.MARK)
        seen: list[str] = []
        for _ in range(10_000):
            event = self._monitor.next_command()
            command = str(event["command"])
            if command == f"ECHO {self.MARK}":
                return seen
            if event["client_type"] != "lua":
                seen.append(command.split(" ", 1)[0].upper())
        raise AssertionError("mark not seen")

    def close(self) -> None:
        self._monitor.__exit__()
        self._client.close()


@pytest.fixture
def commands(server: RedisServer) -> Iterator[Commands]:
    monitor = Commands(server.port)
    yield monitor
    monitor.close()


# -- capabilities and round trips ------------------------------------------------------------


def test_the_store_has_its_capabilities(server: RedisServer) -> None:
    store = RedisStore(server.url)
    assert isinstance(store, UserIndex)
    assert isinstance(store, Broadcast)
    assert isinstance(store, Locality)
    assert not hasattr(store, "verifier_size")
    assert not hasattr(store, "new_session_id")
    store.close()


def test_validate_costs_one_get(server: RedisServer, commands: Commands) -> None:
    clock = FakeClock()
    manager = manager_on(store_on(server.url, clock), clock)
    session = manager.issue("alice", data={"cart": [1, 2, 3]})
    assert session.token is not None
    manager.validate(session.token)  # connection warm
    commands.take()
    for _ in range(50):
        manager.validate(session.token)
    assert commands.take() == ["GET"] * 50
    manager.close()


def test_each_write_is_one_script_call(server: RedisServer, commands: Commands) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock)

    def writes() -> list[list[str]]:
        record = local_record(store, clock.now(), "alice")
        store.add(record, cap=UserCap(5, True, clock.now()))
        seen = [commands.take()]
        store.touch(record.id, last_seen=clock.now() + 60, expires_at=clock.now() + 999)
        seen.append(commands.take())
        store.replace(record._replace(version=2, data='{"n":1}'), expected_version=1)
        seen.append(commands.take())
        store.delete(record.id)
        seen.append(commands.take())
        store.delete_user("alice")
        seen.append(commands.take())
        return seen

    writes()  # the first call of each script loads it (EVALSHA, SCRIPT LOAD, EVALSHA)
    assert writes() == [["EVALSHA"]] * 5
    store.close()


# -- keys, TTLs and the index ------------------------------------------------------------------


def test_keys_are_as_documented(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock)
    record = local_record(store, clock.now(), "alice")
    anonymous = local_record(store, clock.now(), None)
    store.add(record)
    store.add(anonymous)
    salt = raw.get(b"sessionward:salt")
    assert isinstance(salt, bytes)
    assert len(salt) == 32
    index = index_of(store, "alice")
    assert sorted(raw.keys()) == sorted(
        [key_of(record.id), key_of(anonymous.id), index, b"sessionward:salt"]
    )
    assert raw.type(index) == b"hash"
    assert entries(raw, index, b"alice") == [record.id]
    assert raw.hkeys(index) == [b"alice"]
    value = raw.get(key_of(record.id))
    assert isinstance(value, bytes)
    assert decode(record.id, value) == record
    assert value[28:30] == index[1:3]  # the header names the user's index
    assert raw.pttl(b"sessionward:salt") == -1
    store.close()


def test_ttls_follow_the_deadlines(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock()
    offset = time.time() - clock.now()
    store = store_on(server.url, clock, offset)  # one offset: the expected times round alike
    first = local_record(store, clock.now(), "alice", expires_at=clock.now() + 600)
    second = local_record(store, clock.now(), "alice", expires_at=clock.now() + 900)
    index = index_of(store, "alice")

    def pxat(expires_at: float) -> int:
        return math.ceil((expires_at + offset) * 1000)

    store.add(first)
    assert pexpiretime(raw, key_of(first.id)) == pxat(first.expires_at)
    assert pexpiretime(raw, index) == pxat(first.expires_at)
    store.add(second)
    assert pexpiretime(raw, index) == pxat(second.expires_at)
    later = clock.now() + 100
    store.touch(first.id, last_seen=later, expires_at=later + 1200)  # first now outlives second
    assert pexpiretime(raw, key_of(first.id)) == pxat(later + 1200) == pexpiretime(raw, index)
    store.touch(first.id, last_seen=later, expires_at=later + 5000)  # not newer: ignored
    assert pexpiretime(raw, key_of(first.id)) == pxat(later + 1200)
    store.replace(second._replace(version=2, expires_at=later + 3000), expected_version=1)
    assert pexpiretime(raw, key_of(second.id)) == pxat(later + 3000) == pexpiretime(raw, index)
    store.close()


def test_expiry_is_pxat_and_nothing_is_left_after(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock()  # it stands still: every key expires `idle` real seconds from here
    idle = 4.0  # time for 21 logins on a loaded machine (a run took more than 0.5 s)
    manager = manager_on(
        store_on(server.url, clock), clock, Policy(idle_timeout=idle, absolute_timeout=60)
    )
    sessions = [manager.issue(f"user-{i % 4}") for i in range(20)] + [manager.issue(None)]
    assert all(raw.exists(key_of(s.id)) for s in sessions)
    deadline = time.monotonic() + WAIT
    while raw.dbsize() > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert raw.keys() == [b"sessionward:salt"]  # the indexes expired with their last session
    manager.close()


def test_a_login_drops_dead_entries(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock)
    index = index_of(store, "alice")
    doomed = [local_record(store, clock.now(), "alice") for _ in range(5)]
    for record in doomed:
        store.add(record)
    for record in doomed:
        raw.delete(key_of(record.id))  # as if expired, with nobody reading the index
    assert len(entries(raw, index, b"alice")) == 5
    assert store.list_user("alice") == []  # readers check each entry
    kept = local_record(store, clock.now(), "alice")
    store.add(kept)
    assert entries(raw, index, b"alice") == [kept.id]
    store.close()


def test_the_index_skips_records_of_another_user(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock)
    record = local_record(store, clock.now(), "alice")
    store.add(record)
    # A stale entry (say, a crash between two steps) names a record that is not alice's.
    raw.set(key_of(record.id), encode(record._replace(user_id="mallory"), b"\0\0"))
    assert store.list_user("alice") == []
    assert store.delete_user("alice") == []
    assert raw.exists(key_of(record.id)) == 1
    assert entries(raw, index_of(store, "alice"), b"alice") == []
    store.close()


def _neighbours(store: RedisStore, count: int) -> list[str]:
    """``count`` user ids that share one index hash."""
    by_index: dict[bytes, list[str]] = {}
    for i in range(1_000_000):
        user = f"n-{i}"
        found = by_index.setdefault(index_of(store, user), [])
        found.append(user)
        if len(found) == count:
            return found
    raise AssertionError("no neighbours")


def test_users_sharing_an_index_stay_apart(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock)
    alice, bob = _neighbours(store, 2)
    bobs = []
    for i in range(3):
        bobs.append(local_record(store, clock.now() - 10 + i, bob))
        store.add(bobs[-1])
        store.add(local_record(store, clock.now() - 5 + i, alice))
    # the cap counts and evicts alice's sessions only (bob's are older)
    store.add(local_record(store, clock.now(), alice), cap=UserCap(3, True, clock.now()))
    assert store.list_user(bob) == bobs
    assert len(store.list_user(alice)) == 3
    assert len(store.delete_user(alice)) == 3
    assert store.list_user(bob) == bobs
    assert entries(raw, index_of(store, bob), bob.encode()) == sorted(r.id for r in bobs)
    store.close()


def test_an_index_stays_bounded_while_users_keep_logging_in(
    server: RedisServer, raw: redis.Redis
) -> None:
    """Each login also prunes one other user of its index, so the ids of users who never come
    back do not pile up in an index that never goes quiet."""
    clock = FakeClock()
    store = store_on(server.url, clock)
    users = _neighbours(store, 8)
    index = index_of(store, users[0])
    for user in users[1:]:
        for _ in range(5):
            store.add(local_record(store, clock.now(), user))
    for key in raw.scan_iter(match=b"{*", _type="string"):
        raw.delete(key)  # every one of them expired; these users never come back
    for _ in range(60):
        store.add(local_record(store, clock.now(), users[0]))
    assert raw.hkeys(index) == [users[0].encode()]
    store.close()


def test_a_key_prefix_holds_every_key(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock, prefix=b"sw:")
    first = local_record(store, clock.now() - 2, "alice")
    second = local_record(store, clock.now() - 1, "alice")
    other = make_record(clock.now(), user_id="alice")  # an id without the user's locality
    anonymous = local_record(store, clock.now(), None)
    for record in (first, second, other, anonymous):
        store.add(record)
    store.add(local_record(store, clock.now(), "alice"), cap=UserCap(3, True, clock.now()))
    assert all(k.startswith(b"sw:") for k in raw.scan_iter())
    assert raw.exists(key_of(second.id, b"sw:"), index_of(store, "alice", b"sw:")) == 2
    assert store.get(first.id) is None  # evicted by the cap
    store.touch(second.id, last_seen=clock.now() + 60, expires_at=clock.now() + 999)
    assert len(store.delete_user("alice")) == 3
    assert sorted(raw.scan_iter()) == sorted([b"sw:sessionward:salt", key_of(anonymous.id, b"sw:")])
    with pytest.raises(ConfigError):
        RedisStore(server.url, prefix=b"{bad}")
    store.close()


def test_purge_deletes_what_redis_keeps_past_expiry(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock, expire_grace=3600, prefix=b"p*[x]:")
    expired = [local_record(store, clock.now() - 100, "alice", expires_at=clock.now() - 1)]
    live = local_record(store, clock.now(), "alice")
    for record in (*expired, live):
        store.add(record)
    index = index_of(store, "alice", b"p*[x]:")
    raw.hset(index, b"ghost", secrets.token_bytes(12))  # an entry whose record is gone
    assert store.purge_expired(clock.now()) == 1
    assert store.list_user("alice") == [live]
    assert raw.hkeys(index) == [b"alice"]
    assert entries(raw, index, b"alice") == [live.id]
    store.close()


# -- the record format -------------------------------------------------------------------------

times = st.one_of(
    st.floats(allow_nan=False),
    st.sampled_from([0.0, 1_800_000_000.0, 1_800_000_000.123, 1_795_871_859.123456]),
)
u32 = st.integers(0, 2**32 - 1)
text = st.text(max_size=40)
hashes = st.binary(max_size=255)


@st.composite
def records(draw: st.DrawFn) -> SessionRecord:
    created = draw(times)
    return SessionRecord(
        id="AAAAAAAAAAAAAAAA",
        secret_hash=draw(st.binary(min_size=16, max_size=16) | hashes),
        prev_secret_hash=draw(st.none() | hashes),
        grace_until=draw(st.just(0.0) | times),
        generation=draw(u32),
        user_id=draw(st.none() | text),
        auth_level=draw(u32),
        auth_time=draw(st.none() | st.just(created) | times),
        scopes=draw(st.just("") | text),
        data=draw(st.just("{}") | text),
        created_at=created,
        rotated_at=draw(st.just(created) | times),
        last_seen=draw(st.just(created) | times),
        expires_at=draw(times),
        absolute_expires_at=draw(times),
        version=draw(u32),
        context=draw(st.just("[]") | text),
        successor=draw(st.none() | st.binary(min_size=32, max_size=32) | hashes),
    )


@settings(max_examples=300, deadline=None)
@given(records(), st.binary(min_size=2, max_size=2))
def test_the_format_round_trips_every_field_exactly(record: SessionRecord, tag: bytes) -> None:
    value = encode(record, tag)
    decoded = decode(record.id, value)
    assert tuple(decoded) == tuple(record)
    assert [type(v) for v in decoded] == [type(v) for v in record]
    assert value[28:30] == tag


@settings(max_examples=100, deadline=None)
@given(records())
def test_a_cut_record_is_store_corrupt_or_another_secret(record: SessionRecord) -> None:
    value = encode(record, b"ab")
    fixed = len(value) - len(record.secret_hash)  # everything before the secret hash
    for cut in range(fixed):
        with pytest.raises(StoreCorrupt):
            decode(record.id, value[:cut])
    flags_at = 32 + (0 if record.user_id is None else len(record.user_id.encode()))
    unknown = (
        value[:flags_at]
        + bytes((value[flags_at], value[flags_at + 1] | 0x80))
        + value[flags_at + 2 :]
    )
    with pytest.raises(StoreCorrupt):
        decode(record.id, unknown)


def test_a_fresh_login_fits_the_80_byte_class() -> None:
    # Redis keeps a string of up to 76 bytes in one 80-byte allocation.
    clock = FakeClock(1_795_871_859.123456)
    login = make_record(clock.now(), user_id="124156789", secret_hash=bytes(16))
    assert len(encode(login, b"ab")) == 71
    clock.advance(61.337)
    touched = login._replace(last_seen=clock.now(), expires_at=clock.now() + 1800)
    assert len(encode(touched, b"ab")) == 71  # a touch rewrites the header in place
    assert len(encode(make_record(clock.now(), user_id=None, secret_hash=bytes(16)), b"ab")) == 58


@pytest.mark.parametrize(
    "fields",
    [
        {"version": 2**32},
        {"version": -1},
        {"generation": -1},
        {"auth_level": 2**32},
        {"prev_secret_hash": bytes(256)},
        {"successor": bytes(256)},
        {"user_id": "x" * 65_535},
        {"data": '{"x":"\ud800"}'},
    ],
)
def test_values_beyond_the_limits_are_refused(server: RedisServer, fields: dict[str, Any]) -> None:
    store = RedisStore(server.url)
    record = make_record(time.time(), **fields)
    with pytest.raises(InvalidArgument):
        store.add(record)
    assert store.get(record.id) is None
    store.close()


def test_successor_round_trips_through_the_store(server: RedisServer) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock)
    record = local_record(store, clock.now(), "alice")
    assert record.successor is None
    store.add(record)
    assert store.get(record.id) == record
    rotated = record._replace(version=2, successor=os.urandom(32), grace_until=clock.now() + 30)
    store.replace(rotated, expected_version=1)
    assert store.get(record.id) == rotated
    assert store.list_user("alice") == [rotated]
    store.close()


def test_the_touch_script_writes_what_python_would(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock(1_795_871_859.123456)
    store = store_on(server.url, clock)
    records = [local_record(store, clock.now(), u, data='{"a":1}') for u in ("124156789", None)]
    for record in records:
        store.add(record)
    for step in (61.3370123, 1e-7, 3 * 3600 + 0.5):
        clock.advance(step)
        for record in records:
            store.touch(record.id, last_seen=clock.now(), expires_at=clock.now() + 600.25)
            value = raw.get(key_of(record.id))
            assert isinstance(value, bytes)
            expected = record._replace(last_seen=clock.now(), expires_at=clock.now() + 600.25)
            assert value == encode(expected, value[28:30])
    store.close()


def test_undecodable_values_are_store_corrupt(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock)
    record = local_record(store, clock.now(), "alice")
    store.add(record)
    raw.set(key_of(record.id), b"\x01garbage")
    with pytest.raises(StoreCorrupt):
        store.get(record.id)
    with pytest.raises(StoreCorrupt):  # the scripts refuse it too
        store.touch(record.id, last_seen=clock.now() + 1, expires_at=clock.now() + 2)
    raw.delete(key_of(record.id))
    raw.zadd(key_of(record.id), {"x": 1})
    with pytest.raises(StoreCorrupt):
        store.get(record.id)
    store.close()


# -- the salt and where users go ---------------------------------------------------------------


def test_the_salt_is_made_once_and_shared(server: RedisServer, raw: redis.Redis) -> None:
    first = RedisStore(server.url)
    assert first.user_locality("alice") == b""  # nothing read yet
    first.get("AAAAAAAAAAAAAAAA")
    salt = raw.get(b"sessionward:salt")
    assert isinstance(salt, bytes)
    assert len(salt) == 32
    users = [f"user-{i}" for i in range(50)]
    localities = [first.user_locality(u) for u in users]

    async def from_another_process() -> list[bytes]:
        second = AsyncRedisStore(server.url)
        await second.get("AAAAAAAAAAAAAAAA")
        found = [second.user_locality(u) for u in users]
        await second.close()
        return found

    assert asyncio.run(from_another_process()) == localities
    later = RedisStore(server.url)
    later.get("AAAAAAAAAAAAAAAA")
    assert raw.get(b"sessionward:salt") == salt  # SET NX: the first one stays
    assert [later.user_locality(u) for u in users] == localities
    assert all(len(loc) == 2 and loc[0] != 0x7D for loc in localities)
    # keyed: HMAC-SHA256 under the deployment's salt, not a hash anyone can compute
    expected = [hmac.digest(salt, u.encode(), hashlib.sha256)[:2] for u in users]
    assert all(
        a == b or (b[0] == 0x7D and a == b"|" + b[1:])
        for a, b in zip(localities, expected, strict=True)
    )
    unkeyed = [hashlib.sha256(u.encode()).digest()[:2] for u in users]
    assert sum(a == b for a, b in zip(localities, unkeyed, strict=True)) <= 2
    elsewhere = RedisStore(server.url.rsplit("/", 1)[0] + "/1")  # another deployment
    elsewhere.get("AAAAAAAAAAAAAAAA")
    assert (
        sum(elsewhere.user_locality(u) == loc for u, loc in zip(users, localities, strict=True))
        <= 2
    )
    for store in (first, later, elsewhere):
        store.close()


def test_every_slot_has_its_index_tag() -> None:
    tags = slot_tags()
    assert len(set(tags)) == len(tags) == 16384
    assert all(key_slot(b"{" + tag + b"}") == slot for slot, tag in enumerate(tags))
    assert not [tag for tag in tags if b"}" in tag]  # a "}" would cut the hash tag short


def test_a_given_salt_stays_out_of_redis(server: RedisServer, raw: redis.Redis) -> None:
    store = RedisStore(server.url, salt=b"our own secret")
    assert store.user_locality("alice") == hmac.digest(b"our own secret", b"alice", "sha256")[:2]
    store.add(make_record(time.time()))
    assert raw.exists(b"sessionward:salt") == 0
    for bad in (b"", "text"):
        with pytest.raises(ConfigError):
            RedisStore(server.url, salt=bad)  # type: ignore[arg-type]
    store.close()


# -- Cluster -------------------------------------------------------------------------------------


def _owner(cluster: RedisClusterServers, slot: int) -> int:
    client = redis.Redis(host="127.0.0.1", port=cluster.nodes[0].port)
    try:
        ranges = client.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
    finally:
        client.close()
    for start, end, *nodes in ranges:
        if start <= slot <= end:
            return int(nodes[0][1])
    raise AssertionError(slot)


def test_a_users_sessions_share_the_slot_of_its_index(cluster: RedisClusterServers) -> None:
    clock = FakeClock()
    store = store_on(cluster.url, clock)
    owners = set()
    for i in range(30):
        user = f"user-{i}"
        slot = key_slot(index_of(store, user))
        for _ in range(2):
            record = local_record(store, clock.now(), user)
            store.add(record, cap=UserCap(5, True, clock.now()))
            assert key_slot(key_of(record.id)) == slot
        owners.add(_owner(cluster, slot))
        assert len(store.list_user(user)) == 2
    assert len(owners) == 3  # users spread over every master
    store.close()


def test_a_record_outside_its_users_slot(cluster: RedisClusterServers) -> None:
    clock = FakeClock()
    store = store_on(cluster.url, clock)
    client = redis.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
    index = index_of(store, "alice")
    away = next(
        r
        for r in (make_record(clock.now(), user_id="alice") for _ in range(100))
        if key_slot(key_of(r.id)) != key_slot(index)
    )
    here = local_record(store, clock.now() + 1, "alice")
    store.add(away, cap=UserCap(3, True, clock.now()))
    store.add(here, cap=UserCap(3, True, clock.now()))
    assert entries(client, index, b"\xffalice") == [away.id]  # listed first, in the index's slot
    assert entries(client, index, b"alice") == [here.id]
    assert store.list_user("alice") == [away, here]
    assert store.add(
        local_record(store, clock.now() + 2, "alice"), cap=UserCap(2, True, clock.now())
    ) == [away.id]
    assert client.hexists(index, b"\xffalice") == 0  # removed with its record
    later = clock.now() + 50
    moved = make_record(clock.now(), user_id="bob")
    store.add(moved)
    store.touch(moved.id, last_seen=later, expires_at=later + 5000)  # the index outlives it
    assert pexpiretime(client, index_of(store, "bob")) >= pexpiretime(client, key_of(moved.id))
    store.replace(moved._replace(user_id="alice", version=2), expected_version=1)
    assert store.list_user("bob") == []
    assert client.hexists(index_of(store, "bob"), b"\xffbob") == 0
    assert len(store.delete_user("alice")) == 3
    assert store.list_user("alice") == []
    client.close()
    store.close()


class SlotMove:
    """Moving one slot to another master, as ``redis-cli --cluster reshard`` does it: the
    slot is marked importing and migrating, its keys are MIGRATEd, then given to the new
    owner on every node."""

    def __init__(self, cluster: RedisClusterServers, slot: int) -> None:
        self.cluster, self.slot = cluster, slot
        source_port = _owner(cluster, slot)
        self.target_port = next(n.port for n in cluster.nodes if n.port != source_port)
        self.source = redis.Redis(host="127.0.0.1", port=source_port)
        self.target = redis.Redis(host="127.0.0.1", port=self.target_port)
        self.target_id = self._run(self.target, "CLUSTER", "MYID")
        self._run(
            self.target,
            "CLUSTER",
            "SETSLOT",
            slot,
            "IMPORTING",
            self._run(self.source, "CLUSTER", "MYID"),
        )
        self._run(self.source, "CLUSTER", "SETSLOT", slot, "MIGRATING", self.target_id)

    @staticmethod
    def _run(client: redis.Redis, *args: Any) -> Any:
        return client.execute_command(*args)  # type: ignore[no-untyped-call]

    def migrate(self, keys: list[bytes] | None = None) -> None:
        """Move ``keys`` (by default every key left in the slot) to the new owner."""
        moving = (
            keys
            if keys is not None
            else self._run(self.source, "CLUSTER", "GETKEYSINSLOT", self.slot, 1000)
        )
        for key in moving:
            self.source.migrate("127.0.0.1", self.target_port, key, 0, 5000)

    def finish(self) -> int:
        """Move the rest and give the slot to the new owner; returns its port."""
        self.migrate()
        for node in self.cluster.nodes:
            client = redis.Redis(host="127.0.0.1", port=node.port)
            self._run(client, "CLUSTER", "SETSLOT", self.slot, "NODE", self.target_id)
            client.close()
        self.source.close()
        self.target.close()
        return self.target_port


def test_cluster_follows_moved_after_a_real_reshard(cluster: RedisClusterServers) -> None:
    clock = FakeClock()
    store = store_on(cluster.url, clock)
    manager = manager_on(store, clock)
    records = [local_record(store, clock.now() + i, "carol") for i in range(3)]
    for record in records:
        store.add(record)
    slot = key_slot(key_of(records[0].id))
    assert store.get(records[0].id) == records[0]  # the client's map is right, then...
    new_owner = SlotMove(cluster, slot).finish()
    assert _owner(cluster, slot) == new_owner
    assert store.get(records[0].id) == records[0]  # ... MOVED: followed, map refreshed
    store.touch(records[1].id, last_seen=clock.now() + 60, expires_at=clock.now() + 999)
    assert store.list_user("carol")[1].last_seen == clock.now() + 60
    fresh = local_record(store, clock.now() + 9, "carol")
    assert store.add(fresh, cap=UserCap(3, True, clock.now())) == [records[0].id]
    assert sorted(store.delete_user("carol", keep=fresh.id)) == sorted(r.id for r in records[1:])
    assert [s.id for s in manager.list_user("carol")] == [fresh.id]
    store.close()


def test_cluster_follows_ask_while_a_slot_moves(cluster: RedisClusterServers) -> None:
    clock = FakeClock()
    store = store_on(cluster.url, clock)
    moved, staying = (local_record(store, clock.now() + i, "dave") for i in range(2))
    store.add(moved)
    store.add(staying)
    move = SlotMove(cluster, key_slot(key_of(moved.id)))
    try:
        move.migrate([key_of(moved.id)])  # half way: one key moved
        assert store.get(moved.id) == moved  # ASK: asked of the importing node
        assert store.get(staying.id) == staying
        # a script over keys now on two nodes cannot run atomically: unavailable, no write
        with pytest.raises(StoreUnavailable):
            store.add(local_record(store, clock.now(), "dave"), cap=UserCap(5, True, clock.now()))
    finally:
        move.finish()
    assert store.list_user("dave") == [moved, staying]
    store.close()


def test_cluster_follows_a_stale_slot_map(cluster: RedisClusterServers) -> None:
    clock = FakeClock()
    store = store_on(cluster.url, clock)
    records = [local_record(store, clock.now(), f"u{i}") for i in range(6)]
    for record in records:
        store.add(record)
    nodes = store._client.nodes_manager
    for record in records:  # point the client's map for each slot at a wrong node
        slot = key_slot(key_of(record.id))
        right = nodes.slots_cache[slot][0]
        nodes.slots_cache[slot] = [
            next(n for n in nodes.nodes_cache.values() if n.name != right.name)
        ]
        assert store.get(record.id) == record  # MOVED, followed
        assert nodes.get_node_from_slot(slot).name == right.name  # and the map corrected
    store.close()


def test_cluster_fails_closed_when_the_nodes_are_gone() -> None:
    with private_cluster() as cluster:
        clock = FakeClock()
        store = store_on(cluster.url, clock, connect_timeout=0.5, socket_timeout=0.5)
        manager = manager_on(store, clock)
        session = manager.issue("alice")
        assert session.token is not None
        for node in cluster.nodes:
            node.stop()
        started = time.monotonic()
        for _ in range(5):
            with pytest.raises(StoreUnavailable):
                manager.validate(session.token)
        assert time.monotonic() - started < 60
        for node in cluster.nodes:  # back, empty (no persistence): reachable is what counts
            node.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                assert store.get(session.id) is None
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the store never reached the Cluster again"
                time.sleep(0.1)
        fresh = manager.issue("alice")
        assert fresh.token is not None
        assert manager.validate(fresh.token).id == fresh.id
        manager.close()


# -- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionError("refused"), StoreUnavailable),
        (TimeoutError("timed out"), StoreUnavailable),
        (ClusterDownError("The cluster is down"), StoreUnavailable),  # redis-py drops the code
        (ResponseError("CLUSTERDOWN Hash slot not served"), StoreUnavailable),
        (TryAgainError(), StoreUnavailable),
        (ReadOnlyError("You can't write against a read only replica."), StoreUnavailable),
        (ResponseError("READONLY You can't write against a read only replica."), StoreUnavailable),
        (BusyLoadingError("Redis is loading the dataset in memory"), StoreUnavailable),
        (ResponseError("MASTERDOWN Link with MASTER is down"), StoreUnavailable),
        (ResponseError("BUSY Redis is busy running a script."), StoreUnavailable),
        (
            ResponseError("OOM command not allowed when used memory > 'maxmemory'."),
            StoreUnavailable,
        ),
        (MovedError("3999 127.0.0.1:6381"), StoreUnavailable),  # redirections never ending
        (AskError("3999 127.0.0.1:6381"), StoreUnavailable),
        (ResponseError("WRONGTYPE Operation against a key holding the wrong kind"), StoreCorrupt),
        (ResponseError("sessionward: corrupt record"), StoreCorrupt),
        (ResponseError("ERR something else"), StoreCorrupt),
    ],
)
def test_server_states_that_pass_are_unavailable(error: Exception, expected: type) -> None:
    assert type(_translate(error)) is expected


def test_unreachable_server_is_store_unavailable() -> None:
    clock = FakeClock()
    manager = manager_on(RedisStore(f"redis://127.0.0.1:{free_port()}/0"), clock)
    started = time.monotonic()
    token, _ = mint()
    with pytest.raises(StoreUnavailable):
        manager.validate(token)
    with pytest.raises(StoreUnavailable):
        manager.issue("alice")
    assert time.monotonic() - started < 3
    manager.close()
    with pytest.raises(StoreUnavailable):  # the sync Cluster client connects at once
        RedisStore(f"redis+cluster://127.0.0.1:{free_port()}", connect_timeout=0.5)


def test_a_read_only_replica_is_unavailable(server: RedisServer) -> None:
    with private_redis("--replicaof", "127.0.0.1", str(server.port)) as replica:
        store = RedisStore(replica.url, salt=b"s")
        with pytest.raises(StoreUnavailable):
            store.add(make_record(time.time()))
        store.close()


def test_a_write_is_never_retried(server: RedisServer, raw: redis.Redis) -> None:
    store = RedisStore(server.url, socket_timeout=0.3)
    store.add(make_record(time.time()))  # connected, script loaded
    raw.config_resetstat()
    # Writes wait until UNPAUSE (the 60 s bound only matters if the test dies in between).
    raw.execute_command("CLIENT", "PAUSE", "60000", "WRITE")  # type: ignore[no-untyped-call]
    try:
        record = make_record(time.time())
        with pytest.raises(StoreUnavailable):
            store.add(record)  # timed out: its connection is closed, its command dropped...
    finally:
        # A command sent again during the pause waits in the server, and runs here, before
        # the next command of ours.
        raw.execute_command("CLIENT", "UNPAUSE")  # type: ignore[no-untyped-call]
    # ... and not sent again on another connection to run after the pause
    assert "cmdstat_evalsha" not in raw.info("commandstats")
    assert store.get(record.id) is None
    store.close()


def test_a_dropped_connection_heals_at_once(server: RedisServer, raw: redis.Redis) -> None:
    store = RedisStore(server.url)
    record = make_record(time.time())
    store.add(record)
    assert raw.client_kill_filter(_type="normal", skipme=True) >= 1
    assert store.get(record.id) == record  # the pool replaces a connection the server closed
    store.close()


@contextlib.contextmanager
def stopped(server: RedisServer) -> Iterator[None]:
    """The server process stopped (SIGSTOP): connections stay open, commands wait unanswered
    for as long as the block runs, and are answered after it."""
    assert server.process is not None
    server.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        server.process.send_signal(signal.SIGCONT)


def test_a_timed_out_get_leaves_no_reply_behind(server: RedisServer, raw: redis.Redis) -> None:
    store = RedisStore(server.url, socket_timeout=0.3)
    first, second = make_record(time.time()), make_record(time.time(), user_id="bob")
    store.add(first)
    store.add(second)
    # Commands wait, unanswered, until the server runs again.
    with stopped(server), pytest.raises(StoreUnavailable):
        store.get(first.id)  # its reply comes later, on that connection
    # A reused connection would hand us that late reply first, whatever the timing.
    assert store.get(second.id) == second
    assert store.get(first.id) == first
    store.close()


def test_a_cancelled_async_get_leaves_no_reply_behind(
    server: RedisServer, raw: redis.Redis
) -> None:
    first, second = make_record(time.time()), make_record(time.time(), user_id="bob")

    async def scenario() -> None:
        store = AsyncRedisStore(server.url)
        await store.add(first)
        await store.add(second)
        with stopped(server):  # the get waits, unanswered, until the server runs again
            pending = asyncio.ensure_future(store.get(first.id))
            await asyncio.sleep(0.2)
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
        assert await store.get(second.id) == second
        got = await asyncio.gather(*(store.get(r.id) for r in [first, second] * 20))
        assert got == [first, second] * 20
        await store.close()

    asyncio.run(scenario())


def test_a_forked_child_uses_connections_of_its_own(server: RedisServer) -> None:
    store = RedisStore(server.url)
    first, second = make_record(time.time()), make_record(time.time(), user_id="bob")
    store.add(first)
    store.add(second)
    assert store.get(first.id) == first
    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports and exits, never returning into pytest
        try:
            ok = all(store.get(second.id) == second for _ in range(20))
            os.write(writable, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(writable)
    os.waitpid(pid, 0)
    assert os.read(readable, 1) == b"1"
    os.close(readable)
    assert all(store.get(first.id) == first for _ in range(20))  # the parent's still in step
    store.close()


@pytest.mark.parametrize(
    "bad", ["", "A" * 15, "A" * 17, "AAAAAAAAAAAAAAA+", "AAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAé_"]
)
def test_strings_that_are_not_ids_never_reach_a_key(server: RedisServer, bad: str) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock)
    assert store.get(bad) is None
    assert store.delete(bad) is False
    store.touch(bad, last_seen=clock.now(), expires_at=clock.now() + 1)
    with pytest.raises(InvalidArgument):
        store.add(make_record(clock.now())._replace(id=bad))
    store.close()


# -- races -------------------------------------------------------------------------------------


def _race(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` for i in range(count) on as many threads, released together."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            results[i] = work(i)
        except Exception as exc:  # the outcome is what we check
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.parametrize("mode", ["standalone", "cluster"])
def test_the_cap_holds_under_racing_logins(mode: str, request: pytest.FixtureRequest) -> None:
    target = request.getfixturevalue("server" if mode == "standalone" else "cluster")
    clock = FakeClock()
    store = store_on(target.url, clock)
    now = clock.now()
    results = _race(
        12, lambda i: store.add(local_record(store, now, "carol"), cap=UserCap(3, False, now))
    )
    granted = [r for r in results if r == []]
    assert len(granted) == 3
    assert all(isinstance(r, SessionLimitReached) for r in results if r != [])
    assert len(store.list_user("carol")) == 3
    results = _race(
        12, lambda i: store.add(local_record(store, now + i, "dave"), cap=UserCap(3, True, now))
    )
    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(len(r) for r in results if isinstance(r, list)) == 9  # every eviction reported
    assert len(store.list_user("dave")) == 3
    store.close()


def test_no_lost_update_under_racing_writers(server: RedisServer) -> None:
    clock = FakeClock()
    manager = manager_on(store_on(server.url, clock), clock)
    session = manager.issue("erin", data={"n": 0})

    def bump(i: int) -> None:
        for _ in range(20):
            manager.update_data(session.id, lambda d: d.update(n=d["n"] + 1), retries=200)

    assert _race(8, bump) == [None] * 8
    final = manager.get(session.id)
    assert final is not None
    assert final.data["n"] == 160
    manager.close()


def test_a_duplicate_id_is_refused_before_any_eviction(server: RedisServer) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock)
    first = local_record(store, clock.now(), "alice")
    store.add(first)
    with pytest.raises(AlreadyExists):
        store.add(first._replace(data='{"x":1}'), cap=UserCap(1, True, clock.now()))
    assert store.get(first.id) == first
    store.close()


# -- URLs ----------------------------------------------------------------------------------------


def test_the_url_chooses_the_mode(server: RedisServer, cluster: RedisClusterServers) -> None:
    assert RedisStore(server.url).cluster is False
    ports = ",".join(f"127.0.0.1:{n.port}" for n in cluster.nodes[:2])
    clustered = RedisStore(f"redis+cluster://{ports}")
    assert clustered.cluster is True
    assert clustered.get("AAAAAAAAAAAAAAAA") is None
    clustered.close()
    for bad in (
        "http://127.0.0.1:1",
        "redis+cluster://no-port",
        "redis+sentinel://127.0.0.1:1",  # no service name
        "redis+sentinel://127.0.0.1:1/mymaster/x",
        "redis+other://127.0.0.1:1",
    ):
        with pytest.raises(ConfigError):
            RedisStore(bad)


@pytest.fixture
def sentinel(server: RedisServer) -> Iterator[str]:
    """A Sentinel watching the test server as ``mymaster``: the URL to reach it through."""
    directory = Path(tempfile.mkdtemp(prefix="sw-sentinel-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(3):  # a free port another process takes before the Sentinel: another
            port = free_port()
            config = directory / "sentinel.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
                f"sentinel monitor mymaster 127.0.0.1 {server.port} 1\n"
            )
            process = subprocess.Popen(
                ["redis-server", str(config), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if _sentinel_answers(process, port):
                break
        else:
            raise AssertionError("no Sentinel started on three free ports")
        yield f"redis+sentinel://127.0.0.1:{port}/mymaster/0"
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def _sentinel_answers(process: subprocess.Popen[bytes], port: int) -> bool:
    """True once the Sentinel names the master; False if it exited (its port was taken)."""
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        deadline = time.monotonic() + WAIT
        while process.poll() is None:
            try:
                if client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"):  # type: ignore[no-untyped-call]
                    return True
            except redis.ConnectionError:
                pass
            assert time.monotonic() < deadline, "sentinel did not start"
            time.sleep(0.05)
        return False
    finally:
        client.close()


def test_sentinel_finds_the_master(sentinel: str, raw: redis.Redis) -> None:
    clock = FakeClock()
    store = store_on(sentinel, clock)
    record = local_record(store, clock.now(), "alice")
    store.add(record)
    assert raw.exists(key_of(record.id)) == 1  # written on the master the Sentinel named
    assert store.list_user("alice") == [record]
    subscription = store.subscribe()
    store.delete(record.id)
    assert _changes(subscription, 1) == [record.id]
    subscription.close()
    store.close()


# -- change announcements ----------------------------------------------------------------------


def _changes(subscription: Any, count: int, timeout: float = WAIT) -> list[str]:
    """What ``changed()`` returns until ``count`` ids came (or the time is up)."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        found = subscription.changed()
        assert found is not None
        got.extend(found)
        time.sleep(0.01)
    return got


@pytest.mark.parametrize("mode", ["standalone", "cluster"])
def test_every_change_is_announced(mode: str, request: pytest.FixtureRequest) -> None:
    target = request.getfixturevalue("server" if mode == "standalone" else "cluster")
    clock = FakeClock()
    writer = store_on(target.url, clock, expire_grace=3600)
    listener = RedisStore(target.url)
    subscription = listener.subscribe()
    now = clock.now()
    a, b, c, d = (local_record(writer, now - 4 + i, "alice") for i in range(4))
    anonymous = local_record(writer, now - 10, None, expires_at=now - 1)
    for record in (a, b, c, d, anonymous):
        writer.add(record)
    assert subscription.changed() == []  # an add changes nothing anyone holds
    writer.replace(a._replace(version=2), expected_version=1)
    writer.touch(b.id, last_seen=now + 1, expires_at=now + 99)
    writer.delete(c.id)
    e = local_record(writer, now, "alice")
    assert writer.add(e, cap=UserCap(3, True, now)) == [a.id]  # the oldest
    writer.delete_user("alice", keep=b.id)
    writer.purge_expired(now)
    got = _changes(subscription, 7)
    assert anonymous.id in got  # purged from another slot: its order against the rest is open
    assert [i for i in got if i != anonymous.id] == [a.id, b.id, c.id, a.id, d.id, e.id]
    subscription.close()
    listener.close()
    writer.close()


def test_changed_reads_only_what_has_arrived(server: RedisServer) -> None:
    store = RedisStore(server.url)
    subscription = store.subscribe()
    started = time.perf_counter()
    for _ in range(1000):
        assert subscription.changed() == []
    assert time.perf_counter() - started < 5.0  # no waiting on the network (5 ms a call: 5 s)
    subscription.close()
    subscription.close()  # idempotent
    store.close()


def test_a_lost_subscription_reports_none_then_comes_back(
    server: RedisServer, raw: redis.Redis
) -> None:
    async def scenario() -> None:
        store = AsyncRedisStore(server.url)
        subscription = await store.subscribe()
        record = make_record(time.time())
        await store.add(record)
        raw.client_kill_filter(_type="pubsub")
        await store.delete(record.id)  # announced while nobody listens: lost
        await asyncio.sleep(0.05)
        assert await subscription.changed() is None
        assert await subscription.changed() is None  # reconnected, and says so once more
        other = make_record(time.time())
        await store.add(other)
        await store.delete(other.id)
        heard: list[str] = []
        deadline = time.monotonic() + WAIT
        while not heard:  # published before the delete returned; delivered a moment later
            assert time.monotonic() < deadline, "the change was never announced"
            answer = await subscription.changed()
            assert answer is not None
            heard += answer
            await asyncio.sleep(0.01)
        assert heard == [other.id]
        await subscription.close()
        await store.close()

    asyncio.run(scenario())


def test_a_silent_server_is_noticed() -> None:
    with private_redis() as server:
        store = RedisStore(server.url, socket_timeout=0.5)
        subscription = store.subscribe()
        assert subscription.changed() == []
        assert server.process is not None
        server.process.send_signal(signal.SIGSTOP)  # the connection stays open, and silent
        try:
            deadline = time.monotonic() + WAIT
            while (changed := subscription.changed()) is not None:
                assert changed == []
                assert time.monotonic() < deadline, "a silent server was never noticed"
                time.sleep(0.05)
        finally:
            server.process.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + WAIT
        while subscription.changed() is None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        record = make_record(time.time())
        store.add(record)
        store.delete(record.id)
        assert _changes(subscription, 1) == [record.id]
        subscription.close()
        store.close()


def test_subscribing_to_a_missing_server_is_unavailable() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.5)
    with pytest.raises(StoreUnavailable):
        store.subscribe()
    store.close()


@pytest.mark.parametrize("mode", ["standalone", "cluster"])
def test_a_revoke_in_one_process_is_refused_by_another(
    mode: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("server" if mode == "standalone" else "cluster").url
    node_a = SessionManager(RedisStore(url), policy=NEVER_TOUCH)
    node_b = NodeB("redis", url, "0")
    try:
        for round_ in range(6):
            session = node_a.issue(f"user-{round_ % 3}", data={"round": round_})
            assert session.token is not None
            assert node_b.validate(session.token)["ok"] == {"round": round_}
            node_a.update_data(session, lambda d: d.update(changed=True))
            assert node_b.validate(session.token)["ok"] == {"round": round_, "changed": True}
            if round_ % 2:
                node_a.revoke(session.id)
            else:
                node_a.revoke_user(f"user-{round_ % 3}")
            assert node_b.validate(session.token).get("rejected") == "unknown"
    finally:
        node_b.close()
        node_a.close()


def test_a_manager_session_validates_through_the_store(server: RedisServer) -> None:
    """End to end: issue, validate, rotate, revoke with the manager on the Redis store."""
    clock = FakeClock()
    manager = manager_on(store_on(server.url, clock), clock)
    session = manager.issue("alice", scopes=["read"])
    assert session.token is not None
    assert manager.validate(session.token).scopes == {"read"}
    rotated = manager.rotate(session)
    assert rotated.token is not None
    assert manager.validate(rotated.token).generation == 1
    manager.revoke(session.id)
    with pytest.raises(InvalidToken):
        manager.validate(rotated.token)
    manager.close()
