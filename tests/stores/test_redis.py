"""Redis store specifics: round trips, TTLs, the user index, memory, Cluster slots, races.

The contract suite (tests/contract) proves the store's behaviour; these tests prove what is
particular to Redis: that ``validate`` costs one ``GET``, that TTLs follow the deadlines, that
the per-user index cannot leak, that a user's keys share one Cluster slot, and that the cap
holds when many logins race.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
import redis
from contract.records import make_record
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.cluster import LoadBalancingStrategy
from redis.crc import key_slot
from redis.exceptions import ClusterDownError, ReadOnlyError, ResponseError, TryAgainError
from servers import (
    RedisClusterServers,
    RedisServer,
    private_cluster,
    private_redis,
    redis_cluster,  # noqa: F401 - fixture
    redis_server,  # noqa: F401 - fixture
)

from sessionward import AsyncSessionManager, Policy, SessionManager
from sessionward.core.record import SessionRecord
from sessionward.core.token import mint, parse, token_from_parts
from sessionward.errors import (
    ConfigError,
    InvalidArgument,
    InvalidToken,
    SessionLimitReached,
    StoreCorrupt,
    StoreUnavailable,
)
from sessionward.stores import MemoryStore
from sessionward.stores._sync.redis import _decode, _encode, _translate
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


def store_on(url: str, clock: FakeClock, **options: Any) -> RedisStore:
    """A store whose TTLs run in real time from the fake clock's present."""
    return RedisStore(url, clock_offset=time.time() - clock.now(), **options)


def manager_on(store: RedisStore, clock: FakeClock, policy: Policy = NEVER_TOUCH) -> SessionManager:
    return SessionManager(store, policy=policy, clock=clock)


def _expiry(client: redis.Redis, key: bytes) -> int:
    return int(client.execute_command("PEXPIRETIME", key))  # type: ignore[no-untyped-call]


def session_key(session_id: str) -> bytes:
    return base64.urlsafe_b64decode(session_id)


def bucket_entries(client: redis.Redis, key: bytes) -> list[tuple[str, int]]:
    """(session id, fingerprint) of every entry of an index bucket, read from the documented
    layout: a byte h; h < 128: fingerprint h, then the 8 id bytes after the bucket's tag;
    h >= 128: fingerprint h - 128, then the whole 12-byte id."""
    value = client.get(key) or b""
    assert isinstance(value, bytes)
    tag, out, at = key[:4], [], 0  # (no key prefix in these tests)
    while at < len(value):
        h = value[at]
        if h < 128:
            out.append((base64.urlsafe_b64encode(tag + value[at + 1 : at + 9]).decode(), h))
            at += 9
        else:
            out.append((base64.urlsafe_b64encode(value[at + 1 : at + 13]).decode(), h - 128))
            at += 13
    assert at == len(value)
    return out


def index_entries(client: redis.Redis, store: RedisStore, user: str) -> list[str]:
    """The ids the user's bucket lists under the user's fingerprint, sorted."""
    _, fp, key = store._hashed(user.encode())
    return sorted(m for m, f in bucket_entries(client, key) if f == fp)


def neighbours(store: RedisStore, *, same_fingerprint: bool) -> tuple[str, str]:
    """Two user ids that share an index bucket (and, if asked, the fingerprint too)."""
    seen: dict[Any, str] = {}
    for i in range(1_000_000):
        user = f"n-{i}"
        _, fp, key = store._hashed(user.encode())
        mark = (key, fp) if same_fingerprint else key
        if mark in seen and (same_fingerprint or store._hashed(seen[mark].encode())[1] != fp):
            return seen[mark], user
        seen[mark] = user
    raise AssertionError("no neighbours found")


class Commands:
    """What clients sent the server (MONITOR), not counting commands run inside scripts."""

    SENTINEL = "sessionward-test-sentinel"

    def __init__(self, port: int) -> None:
        self._client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
        self._monitor = self._client.monitor()  # type: ignore[no-untyped-call]
        self._monitor.__enter__()

    def take(self) -> list[str]:
        """Every command name sent since the last call, in order."""
        self._client.echo(self.SENTINEL)
        seen: list[str] = []
        for _ in range(10_000):
            event = self._monitor.next_command()
            command = str(event["command"])
            if command == f"ECHO {self.SENTINEL}":
                return seen
            if event["client_type"] != "lua":
                seen.append(command.split(" ", 1)[0].upper())
        raise AssertionError("sentinel not seen")

    def close(self) -> None:
        self._monitor.__exit__()
        self._client.close()


@pytest.fixture
def commands(server: RedisServer) -> Iterator[Commands]:
    monitor = Commands(server.port)
    yield monitor
    monitor.close()


# -- round trips -------------------------------------------------------------------------------


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
    policy = Policy(idle_timeout=3600, absolute_timeout=7200, touch_interval=10)
    manager = manager_on(store_on(server.url, clock), clock, policy)

    def writes() -> list[list[str]]:
        session = manager.issue("alice")
        assert session.token is not None
        seen = [commands.take()]
        clock.advance(60)
        manager.validate(session.token)
        seen.append(commands.take())
        manager.update_data(session.id, lambda d: d.update(n=1))
        seen.append(commands.take())
        manager.revoke(session.id)
        seen.append(commands.take())
        return seen

    writes()  # the first call of each script also loads it (EVALSHA, SCRIPT LOAD, EVALSHA)
    assert writes() == [
        ["EVALSHA"],  # add, with the user's index
        ["GET", "EVALSHA"],  # validate: read, then touch
        ["GET", "EVALSHA"],  # update_data by id: read, then replace
        ["EVALSHA"],  # revoke: delete, with the user's index
    ]
    manager.close()


# -- TTLs and the index ------------------------------------------------------------------------


def test_ttls_follow_the_idle_deadline(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock()
    offset = time.time() - clock.now()
    store = RedisStore(server.url, clock_offset=offset)
    policy = Policy(idle_timeout=600, absolute_timeout=7200, touch_interval=30)
    manager = manager_on(store, clock, policy)
    first = manager.issue("alice")
    index = store._index_key(b"alice")

    def expiry_of(session_id: str) -> int:
        return int(_expiry(raw, session_key(session_id)))

    assert expiry_of(first.id) == math.ceil((first.expires_at + offset) * 1000)
    assert _expiry(raw, index) == expiry_of(first.id)
    clock.advance(100)
    second = manager.issue("alice")
    assert _expiry(raw, index) == expiry_of(second.id) > expiry_of(first.id)
    clock.advance(100)
    assert first.token is not None
    touched = manager.validate(first.token)  # a touch: first now outlives second
    assert touched.expires_at == clock.now() + 600
    assert expiry_of(first.id) == math.ceil((touched.expires_at + offset) * 1000)
    assert _expiry(raw, index) == expiry_of(first.id) > expiry_of(second.id)
    manager.close()


def test_the_store_keeps_a_16_byte_verifier_and_reads_32(server: RedisServer) -> None:
    clock = FakeClock(1_795_871_859.123456)
    short = store_on(server.url, clock)
    full = store_on(server.url, clock, verifier_size=32)
    old = manager_on(full, clock).issue("alice")
    new = manager_on(short, clock).issue("124156789")
    assert old.token is not None
    assert new.token is not None
    stored = short.get(new.id)
    assert stored is not None
    assert stored.secret_hash == hashlib.sha256(parse(new.token).secret).digest()[:16]
    assert len(stored.secret_hash) == 16
    assert len(full.get(old.id).secret_hash) == 32  # type: ignore[union-attr]
    manager = manager_on(short, clock)
    assert manager.validate(new.token).user_id == "124156789"
    assert manager.validate(old.token).user_id == "alice"  # written with 32 bytes: still read
    # a secret that differs from the real one only after its first 16 bytes is another secret
    # with another hash: refused
    forged = token_from_parts(new.id, parse(new.token).secret[:16] + bytes(16))
    with pytest.raises(InvalidToken) as caught:
        manager.validate(forged)
    assert caught.value.reason == "mismatch"
    with pytest.raises(ConfigError):
        RedisStore(server.url, verifier_size=20)
    short.close()
    full.close()


@pytest.mark.parametrize("mode", ["standalone", "cluster"])
@pytest.mark.parametrize("user", ["0", "124156789", "999999999999999", "1000000000000000", "00"])
def test_the_scripts_read_numeric_user_ids_as_python_writes_them(
    mode: str, user: str, request: pytest.FixtureRequest
) -> None:
    # The Lua scripts turn a packed numeric id back into text to find the user's bucket and
    # compare owners (cap, listing, logout-everywhere, touch): it must be the same text.
    target = request.getfixturevalue("server" if mode == "standalone" else "cluster")
    clock = FakeClock(1_795_871_859.123456)
    store = store_on(target.url, clock)
    policy = Policy(
        idle_timeout=600, absolute_timeout=7200, touch_interval=30, max_sessions_per_user=3
    )
    manager = manager_on(store, clock, policy)
    sessions = []
    for _ in range(4):  # the cap evicts the oldest
        sessions.append(manager.issue(user))
        clock.advance(1)
    packed = _decode(sessions[-1].id, _encode(sessions[-1].record))
    assert packed.user_id == user
    listed = [s.id for s in manager.list_user(user)]
    assert listed == [s.id for s in sessions[1:]]
    assert manager.get(sessions[0].id) is None
    clock.advance(45)
    assert sessions[1].token is not None
    touched = manager.validate(sessions[1].token)  # the touch script extends the bucket
    assert touched.last_seen == clock.now()
    assert [s.id for s in manager.list_user(user)] == listed
    assert manager.revoke_user(user, keep=sessions[3]) == 2
    assert [s.id for s in manager.list_user(user)] == [sessions[3].id]
    manager.close()


def test_lua_touch_writes_what_python_would(server: RedisServer, raw: redis.Redis) -> None:
    # The touch script re-encodes last_seen and expires_at itself: it must pick the same
    # codes as _encode (seconds, then 2**-22 s units, then a double) and keep the record
    # in the 44-byte class, for numeric and text ids, compact and earlier formats.
    clock = FakeClock(1_795_871_859.123456)
    store = store_on(server.url, clock)
    policy = Policy(idle_timeout=600, absolute_timeout=7200, touch_interval=30)
    manager = manager_on(store, clock, policy)
    sessions = [manager.issue("124156789"), manager.issue("alice-123"), manager.issue(None)]
    legacy = make_record(clock.now(), user_id="bob")
    raw.set(session_key(legacy.id), _encode(legacy, compact=False), px=600_000)
    for step in (61.3370123, 45.0, 1e-7, 3 * 3600 + 0.5):
        clock.advance(step)
        for record_id in [s.id for s in sessions] + [legacy.id]:
            store.touch(record_id, last_seen=clock.now(), expires_at=clock.now() + 600)
            value = raw.get(session_key(record_id))
            assert isinstance(value, bytes)
            record = _decode(record_id, value)
            assert record.last_seen == clock.now()
            assert record.expires_at == clock.now() + 600
            assert value == _encode(record, compact=value[0] >= 3)
    # last_seen three hours after created_at: a 6-byte code
    assert [len(raw.get(session_key(s.id)) or b"") for s in sessions] == [43, 49, 40]
    store.close()


def test_nothing_is_left_after_every_session_expired(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock()
    manager = manager_on(
        store_on(server.url, clock), clock, Policy(idle_timeout=0.5, absolute_timeout=60)
    )
    store = manager.store
    assert isinstance(store, RedisStore)
    for i in range(20):
        manager.issue(f"user-{i % 4}")
        manager.issue(None)
    buckets = {store._index_key(f"user-{i}".encode()) for i in range(4)}
    assert raw.dbsize() == 40 + len(buckets)  # records + the users' index buckets
    deadline = time.monotonic() + 5
    while raw.dbsize() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert raw.dbsize() == 0  # the indexes expired with their last session
    manager.close()


def test_dead_index_members_are_pruned_on_read(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock)
    short = manager_on(store, clock, Policy(idle_timeout=0.3, absolute_timeout=60))
    long = manager_on(store, clock)
    doomed = short.issue("alice")
    kept = long.issue("alice")
    time.sleep(0.5)
    assert raw.get(session_key(doomed.id)) is None
    # the entry outlives its record until the index is read
    assert index_entries(raw, store, "alice") == sorted([doomed.id, kept.id])
    assert [s.id for s in long.list_user("alice")] == [kept.id]
    assert index_entries(raw, store, "alice") == [kept.id]
    store.close()


def test_index_skips_records_of_another_user(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock)
    manager = manager_on(store, clock)
    session = manager.issue("alice")
    # A stale member (say, a crash between two steps) names a record that is not alice's.
    raw.set(session_key(session.id), _encode(session.record._replace(user_id="mallory")))
    assert manager.list_user("alice") == []
    assert manager.revoke_user("alice") == 0
    assert raw.exists(session_key(session.id)) == 1
    assert index_entries(raw, store, "alice") == []
    manager.close()


@pytest.mark.parametrize("same_fingerprint", [False, True])
def test_users_sharing_a_bucket_stay_apart(
    server: RedisServer, raw: redis.Redis, same_fingerprint: bool
) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock)
    manager = manager_on(store, clock)
    alice, bob = neighbours(store, same_fingerprint=same_fingerprint)
    assert store._index_key(alice.encode()) == store._index_key(bob.encode())
    bobs = []
    for _ in range(3):
        clock.advance(1)
        bobs.append(manager.issue(bob).id)
        clock.advance(1)
        manager.issue(alice)
    assert len(raw.get(store._index_key(alice.encode())) or b"") == 6 * 9  # 9 bytes an entry
    # the cap counts and evicts alice's sessions only (bob's are older)
    capped = SessionManager(store, policy=Policy(max_sessions_per_user=3), clock=clock)
    clock.advance(1)
    capped.issue(alice)
    assert sorted(s.id for s in manager.list_user(bob)) == sorted(bobs)
    assert len(manager.list_user(alice)) == 3
    assert manager.revoke_user(alice) == 3
    assert sorted(s.id for s in manager.list_user(bob)) == sorted(bobs)
    assert index_entries(raw, store, bob) == sorted(bobs)
    assert [m for m, _ in bucket_entries(raw, store._index_key(bob.encode()))] == bobs
    manager.close()


def test_a_capped_login_drops_the_users_dead_entries_at_once(
    server: RedisServer, raw: redis.Redis
) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock)
    short = manager_on(store, clock, Policy(idle_timeout=0.3, absolute_timeout=60))
    capped = manager_on(store, clock, Policy(max_sessions_per_user=3))
    alice = "alice"
    for _ in range(50):
        short.issue(alice)
    assert len(index_entries(raw, store, alice)) == 50
    time.sleep(0.5)  # every one of them expired; nobody reads alice's index
    clock.advance(0.5)
    kept = capped.issue(alice)  # the cap reads every entry of alice's: all dead but this one
    assert index_entries(raw, store, alice) == [kept.id]
    store.close()


def test_logins_clear_the_dead_entries_of_other_users(
    server: RedisServer, raw: redis.Redis
) -> None:
    """Without a cap a login checks 4 entries of its bucket, picked by the new id's random
    bytes: another user's dead entries go within a few hundred logins (expected ~150 here;
    a dead entry surviving 1,500 has odds ~1e-6)."""
    clock = FakeClock()
    store = store_on(server.url, clock)
    short = manager_on(store, clock, Policy(idle_timeout=0.3, absolute_timeout=60))
    long = manager_on(store, clock)
    alice, bob = neighbours(store, same_fingerprint=False)
    for _ in range(50):
        short.issue(alice)
    time.sleep(0.5)
    clock.advance(0.5)
    logins = 0
    while index_entries(raw, store, alice):
        long.issue(bob)
        logins += 1
        assert logins <= 1500
    assert len(index_entries(raw, store, bob)) == logins  # none of bob's live ones dropped
    store.close()


def test_a_bucket_stays_bounded_while_users_keep_logging_in(
    server: RedisServer, raw: redis.Redis
) -> None:
    """Sessions keep expiring in a bucket that never goes quiet: its size follows the live
    sessions (20 a round here), not the logins so far (300)."""
    clock = FakeClock()
    store = store_on(server.url, clock)
    short = manager_on(store, clock, Policy(idle_timeout=0.2, absolute_timeout=60))
    alice, bob = neighbours(store, same_fingerprint=False)
    key = store._index_key(alice.encode())
    sizes = []
    for _ in range(15):
        for i in range(20):
            short.issue(alice if i % 2 else bob)
        sizes.append(len(bucket_entries(raw, key)))
        time.sleep(0.25)
        clock.advance(0.25)
    # expected ~27 (20 live, about a quarter dead); without pruning the last would be 300
    assert max(sizes) <= 60, sizes
    assert raw.exists(key) == 0  # and it expired with its last session
    store.close()


def test_index_spread_splits_each_tag_into_buckets(server: RedisServer, raw: redis.Redis) -> None:
    for bad in (0, 257, True, 2.0):
        with pytest.raises(ConfigError):
            RedisStore(server.url, index_spread=bad)  # type: ignore[arg-type]
    clock = FakeClock()
    store = store_on(server.url, clock, index_spread=16)
    manager = manager_on(store, clock)
    users = [f"spread-{i}" for i in range(40)]
    for user in users:
        for _ in range(2):
            manager.issue(user)
    buckets = {store._index_key(u.encode()) for u in users}
    assert {len(b) for b in buckets} == {5}  # "{tag}" and the bucket's byte
    assert {b[4] for b in buckets} <= set(range(16))
    assert len({b[4] for b in buckets}) > 1
    for user in users:
        _, fp, key = store._hashed(user.encode())
        assert key[:4] == store._tag(user.encode())  # the same slot as the user's sessions
        assert len([m for m, f in bucket_entries(raw, key) if f == fp]) >= 2
        assert len(manager.list_user(user)) == 2
    assert manager.revoke_user(users[0]) == 2
    assert manager.list_user(users[0]) == []
    assert index_entries(raw, store, users[0]) == []  # its entries went with them
    manager.close()


def test_a_key_prefix_holds_every_key(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock, prefix=b"sw:", index_spread=4)
    policy = Policy(idle_timeout=600, absolute_timeout=7200, touch_interval=30)
    manager = manager_on(store, clock, policy)
    capped = SessionManager(store, policy=Policy(max_sessions_per_user=2), clock=clock)
    first = manager.issue("alice")
    clock.advance(1)
    second = manager.issue("alice")
    clock.advance(1)
    third = capped.issue("alice")  # evicts the first
    other = store.add(make_record(clock.now(), user_id="alice"))  # an id without the tag
    assert other == []
    anonymous = manager.issue(None)
    keys: list[bytes] = list(raw.scan_iter())
    assert keys
    assert all(k.startswith(b"sw:") for k in keys)
    listed = {s.id for s in manager.list_user("alice")}
    assert first.id not in listed
    assert {second.id, third.id} <= listed
    assert len(listed) == 3
    clock.advance(60)
    assert second.token is not None
    assert manager.validate(second.token).last_seen == clock.now()  # a touch, with the prefix
    assert manager.revoke_user("alice") == 3
    assert manager.list_user("alice") == []
    assert list(raw.scan_iter()) == [b"sw:" + session_key(anonymous.id)]  # buckets gone too
    manager.close()


def test_an_id_without_the_users_tag_is_indexed_whole(
    server: RedisServer, raw: redis.Redis
) -> None:
    clock = FakeClock()
    store = store_on(server.url, clock)
    record = make_record(clock.now(), user_id="alice")
    store.add(record)
    key = store._index_key(b"alice")
    assert session_key(record.id)[:4] != store._tag(b"alice")
    assert len(raw.get(key) or b"") == 13
    assert index_entries(raw, store, "alice") == [record.id]
    assert [r.id for r in store.list_user("alice")] == [record.id]
    assert store.delete(record.id)
    assert raw.exists(key) == 0  # its last entry went with it
    store.close()


# -- encoding and memory -----------------------------------------------------------------------

times = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15),
    st.sampled_from([0.0, 1_800_000_000.0, 1_800_000_000.123, 1_795_871_859.123456]),
)
text = st.text(max_size=40)


@st.composite
def records(draw: st.DrawFn) -> SessionRecord:
    created = draw(times)
    last_seen = draw(
        st.one_of(
            st.just(created),
            times,
            st.integers(0, 10**6).map(lambda n: created + n),
            st.floats(-1e9, 1e9).map(lambda d: created + d),
        )
    )
    return SessionRecord(
        id="AAAAAAAAAAAAAAAA",
        secret_hash=draw(st.binary(min_size=32, max_size=32) | st.binary(max_size=40)),
        prev_secret_hash=draw(st.none() | st.binary(max_size=40)),
        grace_until=draw(st.just(0.0) | times),
        generation=draw(st.integers(-(2**70), 2**70)),
        user_id=draw(st.none() | text | st.integers(0, 10**16).map(str)),
        auth_level=draw(st.integers(-5, 2**40)),
        auth_time=draw(st.none() | st.just(created) | times),
        scopes=draw(text),
        data=draw(st.just("{}") | text),
        created_at=created,
        rotated_at=draw(st.just(created) | times),
        last_seen=last_seen,
        expires_at=draw(times | st.integers(0, 10**6).map(lambda n: last_seen + n)),
        absolute_expires_at=draw(times | st.integers(0, 10**6).map(lambda n: created + n)),
        version=draw(st.integers(-(2**70), 2**70)),
        context=draw(st.just("[]") | text),
    )


@settings(max_examples=400, deadline=None)
@given(records())
def test_encoding_round_trips_exactly(record: SessionRecord) -> None:
    decoded = _decode(record.id, _encode(record))
    assert tuple(decoded) == tuple(record)
    assert [type(v) for v in decoded] == [type(v) for v in record]


# Where the varints change width (1, 2, 3, 4 bytes): the decoder reads up to three bytes inline.
WIDTHS = [0, 1, 30, 31, 63, 64, 4094, 4095, 8191, 8192, 524_286, 524_287, 2**40 - 1]


@pytest.mark.parametrize("n", WIDTHS)
def test_every_varint_width_round_trips(n: int) -> None:
    base = make_record(1_795_871_859.5)
    for delta in (float(n), -float(n), n / 1000, -n / 1000):
        at = base.created_at + delta
        record = base._replace(
            generation=n, auth_level=-n, version=n + 1, last_seen=at, expires_at=at + delta,
            rotated_at=at, auth_time=at, absolute_expires_at=at, grace_until=at - delta,
            user_id="u" * (n % 300), scopes="s" * (n % 200),
        )  # fmt: skip
        decoded = _decode(record.id, _encode(record))
        assert tuple(decoded) == tuple(record)
        assert [type(v) for v in decoded] == [type(v) for v in record]


@settings(max_examples=150, deadline=None)
@given(records(), st.binary(min_size=1, max_size=3))
def test_a_cut_or_padded_record_is_store_corrupt(record: SessionRecord, extra: bytes) -> None:
    value = _encode(record)
    for cut in range(len(value)):
        with pytest.raises(StoreCorrupt):
            _decode(record.id, value[:cut])
    with pytest.raises(StoreCorrupt):
        _decode(record.id, value + extra)
    for unknown in (b"\x00", b"\x05", b"\xff"):
        with pytest.raises(StoreCorrupt):
            _decode(record.id, unknown + value[1:])


class ShortVerifierMemoryStore(MemoryStore):
    """A memory store that asks for the 16-byte verifier, as the Redis store does."""

    verifier_size = 16


def test_a_fresh_login_fits_redis_44_byte_string_class() -> None:
    # Up to 44 bytes, Redis keeps a string in one 64-byte allocation with its object header;
    # beyond, in two (16 + 64 bytes). A never-rotated record omits its generation (format 3).
    clock = FakeClock(1_795_871_859.123456)
    manager = SessionManager(ShortVerifierMemoryStore(), clock=clock)
    numeric = manager.issue("124156789").record
    text = manager.issue("alice-123").record
    anonymous = manager.issue(None).record
    assert len(numeric.secret_hash) == len(text.secret_hash) == 16
    assert [_encode(r)[0] for r in (numeric, text, anonymous)] == [3, 3, 3]
    # the numeric id is one 4-byte varint; the text id its 9 bytes and a length byte
    assert [len(_encode(r)) for r in (numeric, text, anonymous)] == [38, 44, 35]
    # a touch at an arbitrary clock reading: last_seen costs 5 bytes (2**-22 s units), not 9
    clock.advance(61.3370123)
    touched = numeric._replace(last_seen=clock.now(), expires_at=clock.now() + 1800)
    assert len(_encode(touched)) == 42
    assert tuple(_decode(touched.id, _encode(touched))) == tuple(touched)
    rotated = _encode(numeric._replace(generation=1))
    assert rotated[0] == 4
    assert len(rotated) == 39
    # the earlier format, for comparison: 32-byte verifier, text ids, ms units
    legacy = text._replace(secret_hash=bytes(32))
    assert _encode(legacy, compact=False)[0] == 2
    assert len(_encode(legacy, compact=False)) == 60


@pytest.mark.parametrize("compact", [True, False])
@pytest.mark.parametrize("size", [16, 32, 20])
@pytest.mark.parametrize("generation", [0, 1, -1, 2**40])
def test_every_format_round_trips(generation: int, size: int, compact: bool) -> None:
    record = make_record(1_795_871_859.5)._replace(
        generation=generation, secret_hash=bytes(range(size))
    )
    value = _encode(record, compact=compact)
    formats = (3, 4) if compact else (2, 1)
    assert value[0] == (formats[0] if generation == 0 else formats[1])
    assert tuple(_decode(record.id, value)) == tuple(record)
    if generation == 0:  # the generation spelled out (as format 1 was written before) reads
        other = _encode(record._replace(generation=60), compact=compact)  # one 0x78 more
        at = next(i for i in range(1, len(value)) if value[i] != other[i])
        spelled = bytes((formats[1],)) + value[1:at] + b"\x00" + value[at:]
        assert tuple(_decode(record.id, spelled)) == tuple(record)


@pytest.mark.parametrize(
    ("user", "packed"),
    [
        ("0", True),
        ("7", True),
        ("124156789", True),
        ("9" * 15, True),
        ("1" + "0" * 14, True),
        ("9" * 16, False),  # more than 15 digits
        ("00", False),  # a leading zero: "0" would come back
        ("0124", False),
        ("-1", False),
        ("+1", False),
        (" 1", False),
        ("1 ", False),
        ("1e3", False),
        ("\u0663", False),  # ARABIC-INDIC DIGIT THREE: isdigit(), but not ASCII
        ("\u00b2", False),  # SUPERSCRIPT TWO
        ("\uff11", False),  # FULLWIDTH DIGIT ONE
        ("alice", False),
        ("", False),
    ],
)
def test_numeric_user_ids_pack_only_when_they_come_back_the_same(user: str, packed: bool) -> None:
    record = make_record(1_795_871_859.5, user_id=user)
    value = _encode(record)
    assert _decode(record.id, value).user_id == user
    # format, created_at (8), last_seen (code 0), expires_at (+1800 s: 2 bytes), flags,
    # version: the user varint starts at byte 14, odd when the id is packed as a number
    assert _encode(record._replace(user_id="x" * 5))[14] == 2 * 5
    assert (value[14] & 1 == 1) is packed


def test_a_user_number_out_of_range_is_store_corrupt() -> None:
    record = make_record(1_795_871_859.5, user_id="7")
    value = _encode(record)
    assert _decode(record.id, value).user_id == "7"
    at = value.index(bytes((15,)), 10)  # the varint 2*7+1 after flags and version
    big = bytearray()
    n = 2 * 10**15 + 1  # 10**15: 16 digits, never written
    while n >= 0x80:
        big.append((n & 0x7F) | 0x80)
        n >>= 7
    big.append(n)
    with pytest.raises(StoreCorrupt):
        _decode(record.id, value[:at] + bytes(big) + value[at + 1 :])


def _memory_manager(clock: FakeClock) -> tuple[SessionManager, Any]:
    from sessionward.stores import MemoryStore

    store = MemoryStore()
    return SessionManager(store, clock=clock), store


def bytes_per_session(client: redis.Redis, issue: Callable[[int], object], count: int) -> float:
    """Growth of Redis ``used_memory`` per issued session (keys, values, TTLs, indexes).

    The keyspace is first filled with as many placeholder keys with TTLs, so that the key and
    expiry tables are already sized for the measurement: otherwise whether a table doubles
    inside it depends on what ran before (the figure at 1M, where that cost is spread over
    every key, is in benchmarks/). One warm-up issue first opens the store's connection and
    loads its scripts, which are not per-session costs."""
    issue(count)
    client.flushall()
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.set(f"placeholder:{i}", b"", px=3_600_000)
    pipe.execute()
    before = int(client.info("memory")["used_memory"])
    for i in range(count):
        issue(i)
    after = int(client.info("memory")["used_memory"])
    client.flushall()
    return (after - before) / count


def test_memory_per_session(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock(1_795_871_859.123456)
    manager = manager_on(store_on(server.url, clock), clock)
    anonymous = bytes_per_session(raw, lambda i: manager.issue(None), 4000)
    users = bytes_per_session(raw, lambda i: manager.issue(str(100_000 + i // 3)), 4000)
    # At 4,000 sessions the index buckets are nearly all new (1,333 users over 32,385
    # buckets): each costs its key, TTL and table slots, shared by ~3 sessions here and by
    # ~31 at 1M sessions, where the figure is ~190 B (benchmarks/). Before the buckets: ~290.
    assert anonymous <= 190
    assert users <= 265
    manager.close()


def test_undecodable_values_are_store_corrupt(server: RedisServer, raw: redis.Redis) -> None:
    clock = FakeClock()
    manager = manager_on(store_on(server.url, clock), clock)
    session = manager.issue("alice")
    assert session.token is not None
    raw.set(session_key(session.id), b"\x01garbage")
    with pytest.raises(StoreCorrupt):
        manager.validate(session.token)
    raw.delete(session_key(session.id))
    raw.zadd(session_key(session.id), {"x": 1})
    with pytest.raises(StoreCorrupt):
        manager.validate(session.token)
    manager.close()


# -- configuration -----------------------------------------------------------------------------


def test_url_chooses_the_mode(server: RedisServer, cluster: RedisClusterServers) -> None:
    assert RedisStore(server.url).cluster is False
    ports = ",".join(f"127.0.0.1:{n.port}" for n in cluster.nodes[:2])
    clustered = RedisStore(f"redis+cluster://{ports}")
    assert clustered.cluster is True
    assert clustered.ping()
    clustered.close()
    with pytest.raises(ConfigError):
        RedisStore("http://127.0.0.1:1")
    with pytest.raises(ConfigError):
        RedisStore("redis+cluster://no-port")
    with pytest.raises(ConfigError):
        RedisStore(server.url, prefix=b"{bad}")


def test_unreachable_server_is_store_unavailable() -> None:
    from servers import free_port

    clock = FakeClock()
    manager = manager_on(store_on(f"redis://127.0.0.1:{free_port()}/0", clock), clock)
    started = time.monotonic()
    token, _ = mint()
    with pytest.raises(StoreUnavailable):
        manager.validate(token)
    with pytest.raises(StoreUnavailable):
        manager.issue("alice")
    assert time.monotonic() - started < 3
    manager.close()


# -- the fast GET ------------------------------------------------------------------------------
#
# ``get`` sends a pre-packed GET on connections of the store's own. These prove it keeps the
# client's failure behaviour: a dropped connection heals at once, a timed-out or cancelled GET
# never leaves a reply behind for the next one (which would hand out another session), and a
# forked child never shares the parent's sockets.


def _two_records(store: RedisStore) -> tuple[SessionRecord, SessionRecord]:
    now = time.time()
    first, second = make_record(now, user_id="alice"), make_record(now, user_id="bob")
    store.add(first)
    store.add(second)
    return first, second


def _got(record: SessionRecord | None) -> tuple[Any, ...] | None:
    # The whole record: ``get`` names a record after the id it asked for, so a reply meant
    # for another GET would show in the fields (user, secret hash), not in the id.
    return None if record is None else tuple(record)


def test_the_fast_get_serves_standalone_defaults_only(
    server: RedisServer, cluster: RedisClusterServers
) -> None:
    plain = RedisStore(server.url)
    assert plain._lane is not None
    assert plain._lane.idle == []
    plain.get(make_record(time.time()).id)
    assert len(plain._lane.idle) == 1  # one connection of its own, back after the call
    for options in (
        {"retry": None},
        {"single_connection_client": True},
        {"protocol": 3},
        {"health_check_interval": 30},
    ):
        other = RedisStore(server.url, **options)
        assert other._lane is None
        assert other.get(make_record(time.time()).id) is None  # through the client
        other.close()
    clustered = RedisStore(cluster.url)
    assert clustered._lane is None  # on a Cluster: lanes of connections per node
    assert clustered._lanes == {}
    for record in (make_record(time.time(), user_id=f"u{i}") for i in range(12)):
        assert clustered.get(record.id) is None
    assert clustered._lanes is not None
    assert 1 <= len(clustered._lanes) <= 3
    assert all(len(lane.idle) == lane.made == 1 for lane in clustered._lanes.values())
    clustered.close()
    replicas: dict[str, Any] = {"load_balancing_strategy": LoadBalancingStrategy.ROUND_ROBIN}
    for cluster_options in (replicas, {"retry": None}):
        other = RedisStore(cluster.url, **cluster_options)
        assert other._lanes is None
        assert other.get(make_record(time.time()).id) is None  # through the cluster client
        other.close()
    plain.close()


def test_a_dropped_connection_heals_at_once(server: RedisServer, raw: redis.Redis) -> None:
    store = RedisStore(server.url)
    first, second = _two_records(store)
    assert _got(store.get(first.id)) == tuple(first)
    killed = raw.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1
    assert _got(store.get(second.id)) == tuple(second)  # one immediate retry on a new socket
    store.close()


def test_an_outage_uses_up_no_connections() -> None:
    with private_redis() as server:
        store = RedisStore(server.url, connect_timeout=0.5)
        record = make_record(time.time())
        store.add(record)
        assert _got(store.get(record.id)) == tuple(record)
        server.stop()
        for _ in range(250):  # more than the client pool's 100 connections
            with pytest.raises(StoreUnavailable):
                store.get(record.id)
        server.start()  # an empty server (no persistence here): reachable is what counts
        assert store.get(record.id) is None
        assert store._lane is not None
        assert store._lane.made == 1  # the same connection, reconnected
        store.close()


def test_a_timed_out_get_leaves_no_reply_behind(server: RedisServer, raw: redis.Redis) -> None:
    store = RedisStore(server.url, socket_timeout=0.3)
    first, second = _two_records(store)
    assert _got(store.get(first.id)) == tuple(first)
    raw.execute_command("CLIENT", "PAUSE", "900")  # type: ignore[no-untyped-call]
    with pytest.raises(StoreUnavailable):
        store.get(first.id)  # its reply comes after the pause, to a closed socket
    time.sleep(1.0)
    assert _got(store.get(second.id)) == tuple(second)
    assert _got(store.get(first.id)) == tuple(first)
    store.close()


def test_a_cancelled_async_get_leaves_no_reply_behind(
    server: RedisServer, raw: redis.Redis
) -> None:
    sync_store = RedisStore(server.url)
    first, second = _two_records(sync_store)

    async def scenario() -> None:
        store = AsyncRedisStore(server.url)
        assert _got(await store.get(first.id)) == tuple(first)
        raw.execute_command("CLIENT", "PAUSE", "600")  # type: ignore[no-untyped-call]
        pending = asyncio.ensure_future(store.get(first.id))
        await asyncio.sleep(0.2)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await asyncio.sleep(0.6)
        assert _got(await store.get(second.id)) == tuple(second)
        assert _got(await store.get(first.id)) == tuple(first)
        # many at once: each task on a connection of its own, every answer its own record
        records = [first, second] * 20
        got = await asyncio.gather(*(store.get(r.id) for r in records))
        assert [_got(r) for r in got] == [tuple(r) for r in records]
        await store.close()

    asyncio.run(scenario())
    sync_store.close()


def test_threads_share_the_fast_get_safely(server: RedisServer) -> None:
    store = RedisStore(server.url)
    first, second = _two_records(store)
    wrong: list[tuple[Any, ...] | None] = []

    def reader(record: SessionRecord) -> None:
        for _ in range(300):
            got = _got(store.get(record.id))
            if got != tuple(record):
                wrong.append(got)

    threads = [threading.Thread(target=reader, args=(r,)) for r in (first, second) * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert store._lane is not None
    assert 1 <= len(store._lane.idle) <= 8
    store.close()


def _in_forked_child(check: Callable[[], bool]) -> bool:
    """``check()`` run in a forked child (which reports and exits, never returning into
    pytest); False if it raised."""
    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(writable, b"1" if check() else b"0")
        finally:
            os._exit(0)
    os.close(writable)  # so that a child that wrote nothing reads as b""
    os.waitpid(pid, 0)
    try:
        return os.read(readable, 1) == b"1"
    finally:
        os.close(readable)


def test_a_forked_child_opens_its_own_connection(server: RedisServer) -> None:
    store = RedisStore(server.url)
    first, second = _two_records(store)
    assert _got(store.get(first.id)) == tuple(first)
    assert store._lane is not None
    inherited = list(store._lane.idle)

    def child() -> bool:
        lane = store._lane  # the at-fork hook gave the child a lane of its own
        fresh = lane is not None and lane.idle == []
        ok = fresh and _got(store.get(second.id)) == tuple(second)
        return ok and lane is not None and all(c not in inherited for c in lane.idle)

    assert _in_forked_child(child)
    assert _got(store.get(first.id)) == tuple(first)  # the parent's socket is still in step
    assert store._lane.idle == inherited
    store.close()


# -- Cluster -----------------------------------------------------------------------------------


def test_a_users_sessions_share_the_slot_of_its_index(cluster: RedisClusterServers) -> None:
    clock = FakeClock()
    store = store_on(cluster.url, clock)
    manager = manager_on(store, clock)
    slots = set()
    for i in range(30):
        user = f"user-{i}"
        index_slot = key_slot(store._index_key(user.encode()))
        for _ in range(2):
            session = manager.issue(user)
            assert key_slot(session_key(session.id)) == index_slot
        slots.add(index_slot)
        assert len(manager.list_user(user)) == 2
    owners = {_owner(cluster, slot) for slot in slots}
    assert len(owners) == 3  # users spread over every master
    anonymous = [manager.issue(None) for _ in range(30)]
    assert len({_owner(cluster, key_slot(session_key(s.id))) for s in anonymous}) == 3
    manager.close()


def _owner(cluster: RedisClusterServers, slot: int) -> int:
    for start, end, *nodes in _slots(cluster):
        if start <= slot <= end:
            return int(nodes[0][1])
    raise AssertionError(slot)


def _slots(cluster: RedisClusterServers) -> list[Any]:
    client = redis.Redis(host="127.0.0.1", port=cluster.nodes[0].port)
    try:
        return list(client.execute_command("CLUSTER", "SLOTS"))  # type: ignore[no-untyped-call]
    finally:
        client.close()


def test_cluster_validate_after_revoke_everywhere(cluster: RedisClusterServers) -> None:
    clock = FakeClock()
    manager = manager_on(store_on(cluster.url, clock), clock)
    sessions = [manager.issue("bob") for _ in range(3)]
    assert manager.revoke_user("bob", keep=sessions[0]) == 2
    for session in sessions[1:]:
        assert session.token is not None
        with pytest.raises(InvalidToken):
            manager.validate(session.token)
    assert sessions[0].token is not None
    assert manager.validate(sessions[0].token).id == sessions[0].id
    manager.close()


def _misroute(store: RedisStore | AsyncRedisStore, session_id: str) -> Callable[[], None]:
    """Point the client's slot map for ``session_id`` at a wrong node; returns the check to
    run after a read: the GET went to that node first, and the map is right again."""
    nodes = cast(Any, store._client).nodes_manager
    slot = key_slot(session_key(session_id))
    right = nodes.slots_cache[slot][0]
    wrong = next(n for n in nodes.nodes_cache.values() if n.name != right.name)
    nodes.slots_cache[slot] = [wrong]

    def check() -> None:
        assert nodes.get_node_from_slot(slot).name == right.name
        assert store._lanes is not None
        assert store._lanes[wrong.name].made >= 1

    return check


def test_cluster_fast_get_follows_a_stale_slot_map(cluster: RedisClusterServers) -> None:
    # The store routes its GET by the cluster client's slot map; when the map is wrong (a
    # slot moved, a failover), the node answers MOVED and the read goes to the cluster client,
    # which follows it and corrects the map. The node is told wrongly here: the MOVED is real.
    clock = FakeClock()
    store = store_on(cluster.url, clock)
    manager = manager_on(store, clock)
    sessions = [manager.issue(f"user-{i}") for i in range(12)]
    for session in sessions:
        check = _misroute(store, session.id)
        assert session.token is not None
        assert manager.validate(session.token).id == session.id
        check()
    # and the lanes hold only connections in step: every record still reads right
    for session in sessions:
        assert _got(store.get(session.id)) == tuple(session.record)
    manager.close()


def test_async_cluster_fast_get_follows_a_stale_slot_map(cluster: RedisClusterServers) -> None:
    async def scenario() -> None:
        store = AsyncRedisStore(cluster.url)
        manager = AsyncSessionManager(store, policy=NEVER_TOUCH)
        sessions = [await manager.issue(f"user-{i}") for i in range(6)]
        for session in sessions:
            check = _misroute(store, session.id)
            assert session.token is not None
            assert (await manager.validate(session.token)).id == session.id
            check()
        await manager.close()

    asyncio.run(scenario())


def test_a_forked_child_opens_its_own_cluster_connections(cluster: RedisClusterServers) -> None:
    store = RedisStore(cluster.url)
    first, second = _two_records(store)
    assert _got(store.get(first.id)) == tuple(first)
    assert store._lanes
    inherited = [c for lane in store._lanes.values() for c in lane.idle]

    def child() -> bool:
        ok = store._lanes == {} and _got(store.get(second.id)) == tuple(second)
        mine = [c for lane in (store._lanes or {}).values() for c in lane.idle]
        return ok and bool(mine) and all(c not in inherited for c in mine)

    assert _in_forked_child(child)
    assert _got(store.get(first.id)) == tuple(first)  # the parent's sockets are still in step
    store.close()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ClusterDownError("The cluster is down"), StoreUnavailable),  # redis-py drops the code
        (ClusterDownError("CLUSTERDOWN Hash slot not served"), StoreUnavailable),
        (TryAgainError(), StoreUnavailable),
        (ReadOnlyError("You can't write against a read only replica."), StoreUnavailable),
        (ResponseError("LOADING Redis is loading the dataset in memory"), StoreUnavailable),
        (ResponseError("WRONGTYPE Operation against a key holding the wrong kind"), StoreCorrupt),
        (ResponseError("sessionward: corrupt index bucket"), StoreCorrupt),
        (ResponseError("ERR something else"), StoreCorrupt),
    ],
)
def test_server_states_that_pass_are_unavailable_not_corrupt(
    error: Exception, expected: type[Exception]
) -> None:
    # A Cluster that is down (seen while its nodes restart) or a replica that is read-only
    # will answer again: StoreUnavailable (503), not StoreCorrupt.
    assert type(_translate(error)) is expected


def test_cluster_fast_get_fails_closed_when_the_nodes_are_gone() -> None:
    with private_cluster() as cluster:
        clock = FakeClock()
        store = store_on(cluster.url, clock, connect_timeout=0.5, socket_timeout=0.5)
        manager = manager_on(store, clock)
        session = manager.issue("alice")
        assert session.token is not None
        assert manager.validate(session.token).id == session.id
        for node in cluster.nodes:
            node.stop()
        started = time.monotonic()
        for _ in range(5):
            with pytest.raises(StoreUnavailable):
                manager.validate(session.token)
        assert time.monotonic() - started < 60
        # Back (empty: no persistence here; the slot map is kept in the nodes' config files):
        # the store reconnects by itself, with no connection leaked by the failed calls.
        for node in cluster.nodes:
            node.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                assert store.get(session.id) is None
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the store never reached the Cluster again"
                time.sleep(0.1)
        assert store._lanes is not None
        assert all(lane.made <= 2 for lane in store._lanes.values())
        fresh = manager.issue("alice")
        assert fresh.token is not None
        assert manager.validate(fresh.token).id == fresh.id
        manager.close()


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
def test_cap_holds_under_racing_logins(mode: str, request: pytest.FixtureRequest) -> None:
    url = (
        request.getfixturevalue("server").url
        if mode == "standalone"
        else request.getfixturevalue("cluster").url
    )
    clock = FakeClock()
    store = store_on(url, clock)
    reject = Policy(max_sessions_per_user=3, on_session_limit="reject")
    manager = manager_on(store, clock, reject)
    results = _race(12, lambda i: manager.issue("carol"))
    granted = [r for r in results if not isinstance(r, Exception)]
    assert len(granted) == 3
    assert all(isinstance(r, SessionLimitReached) for r in results if isinstance(r, Exception))
    assert len(manager.list_user("carol")) == 3
    evict = manager_on(store, clock, Policy(max_sessions_per_user=3))
    results = _race(12, lambda i: evict.issue("dave"))
    assert not [r for r in results if isinstance(r, Exception)]
    assert len(evict.list_user("dave")) == 3
    store.close()


def test_no_lost_update_under_racing_writers(server: RedisServer) -> None:
    clock = FakeClock()
    manager = manager_on(store_on(server.url, clock), clock)
    session = manager.issue("erin", data={"n": 0})

    def bump(i: int) -> None:
        for _ in range(20):
            manager.update_data(session.id, lambda d: d.update(n=d["n"] + 1), retries=200)

    results = _race(8, bump)
    assert results == [None] * 8
    final = manager.get(session.id)
    assert final is not None
    assert final.data["n"] == 160
    manager.close()


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


# -- local read cache --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["standalone", "cluster"])
def test_a_revoke_on_one_node_is_seen_by_the_next_validate_on_another(
    mode: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("server" if mode == "standalone" else "cluster").url
    node_a = SessionManager(RedisStore(url, cache_size=1000), policy=NEVER_TOUCH)
    node_b = NodeB("redis", url, "0")
    served_from_memory = 0
    try:
        for round_ in range(40):
            session = node_a.issue(f"user-{round_ % 5}", data={"round": round_})
            assert session.token is not None
            first = node_b.validate(session.token)
            second = node_b.validate(session.token)
            assert first["ok"] == second["ok"] == {"round": round_}
            # Usually served from B's memory; not always: B's subscription may still be
            # connecting, or the invalidation published by the issue may reach B after B
            # cached the record (it then only costs a miss). Correctness is asserted below.
            served_from_memory += second["hits"] - first["hits"]
            node_a.update_data(session, lambda d: d.update(changed=True))
            assert node_b.validate(session.token)["ok"] == {"round": round_, "changed": True}
            if round_ % 2:
                node_a.revoke(session.id)
            else:
                node_a.revoke_user(f"user-{round_ % 5}")
            assert node_b.validate(session.token).get("rejected") == "unknown"
        assert served_from_memory >= 10
    finally:
        node_b.close()
        node_a.close()


def test_cached_reads_skip_the_server_and_stay_correct(
    server: RedisServer, commands: Commands
) -> None:
    clock = FakeClock()
    store = RedisStore(server.url, cache_size=100, clock_offset=time.time() - clock.now())
    manager = manager_on(store, clock)
    session = manager.issue("alice")
    assert session.token is not None
    manager.validate(session.token)
    commands.take()
    for _ in range(20):
        manager.validate(session.token)
    assert commands.take() == []  # every validate answered from memory
    assert store.cache_info()["hits"] >= 20
    for round_ in range(50):  # another node (caching too) changes the record, 50 times
        other = store_on(server.url, clock, cache_size=10)
        later = clock.now() + round_ + 1
        other.touch(session.id, last_seen=later, expires_at=later + 99)
        assert manager.validate(session.token).expires_at == later + 99
        other.close()
    manager.close()


def test_no_cache_while_the_subscription_is_down(server: RedisServer, raw: redis.Redis) -> None:
    store = RedisStore(server.url, cache_size=100)
    manager = SessionManager(store, policy=NEVER_TOUCH)
    session = manager.issue("alice")
    assert session.token is not None
    manager.validate(session.token)
    manager.validate(session.token)
    assert store.cache_info()["size"] == 1
    raw.client_kill_filter(_type="pubsub")
    # Invalidations may be lost while unsubscribed: the cache is emptied and bypassed.
    raw.delete(session_key(session.id))
    with pytest.raises(InvalidToken):
        manager.validate(session.token)
    assert store.cache_info()["size"] == 0
    fresh = manager.issue("alice")
    assert fresh.token is not None
    deadline = time.monotonic() + 5
    while store.cache_info()["hits"] == 0 and time.monotonic() < deadline:
        manager.validate(fresh.token)  # resubscribes after a pause, then caches again
        time.sleep(0.05)
    assert store.cache_info()["hits"] > 0
    manager.close()
