"""The Redis store's layout: the record format, where users' indexes go, and the Lua scripts.

Shared by both flavours of ``sessionward.stores.redis`` (it does no I/O). A record is one
Redis string, little-endian. The header is all the scripts ever read of it::

    0  version u32 | 4 created_at f64 | 12 last_seen f64 | 20 expires_at f64
    28 tag, 2 bytes (the user's index tag) | 30 user length u16 (0xFFFF: anonymous)
    32 user id, UTF-8

then flags u16, absolute_expires_at f64, the fields whose flag is set, in this order:
generation u32, auth_level u32, rotated_at f64, auth_time f64, grace_until f64,
prev_secret_hash and successor (u8 length + bytes), scopes, data and context (u32 length +
UTF-8); last, the secret hash (the rest of the value). A field left out has its default: 0,
``created_at`` (rotated_at, auth_time; a flag marks a None auth_time), 0.0, None, ``""``,
``"{}"``, ``"[]"``. A fresh login of a 9-character user id with a 16-byte verifier is 71 bytes,
under the 76 that Redis keeps in an 80-byte allocation.

Limits: version, generation and auth_level from 0 to 2**32 - 1; hashes up to 255 bytes; a
user id up to 65,534 bytes of UTF-8. Times are stored as they are (no rounding).

The users of one Cluster hash slot share one index hash, named by the first two-byte hash tag
Redis puts in that slot (:func:`index_tag`), so there are at most 16,384 of them, on a Cluster
or not. A record's header names its user's index (``tag``).
"""

from __future__ import annotations

import functools
import struct
from typing import Final

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from sessionward.core.record import SessionRecord
from sessionward.errors import InvalidArgument, StoreCorrupt

__all__ = ["SCRIPTS", "decode", "encode", "index_tag", "slot_tags", "touched", "version_bytes"]

_HEAD = struct.Struct("<Iddd2sH")  # version, created_at, last_seen, expires_at, tag, user length
_BODY = struct.Struct("<Hd")  # flags, absolute_expires_at
_U32, _F64, _U8 = struct.Struct("<I"), struct.Struct("<d"), struct.Struct("<B")
_TIMES = struct.Struct("<dd")  # last_seen, expires_at
_ANONYMOUS: Final = 0xFFFF
(_GENERATION, _AUTH_LEVEL, _ROTATED, _AUTH_TIME, _NO_AUTH_TIME, _GRACE, _PREV, _SUCCESSOR,
 _SCOPES, _DATA, _CONTEXT) = (1 << bit for bit in range(11))  # fmt: skip


def encode(r: SessionRecord, tag: bytes) -> bytes:
    """The stored value of ``r``, whose user's index tag is ``tag``."""
    try:
        flags, tail = 0, []
        if r.generation != 0:
            flags |= _GENERATION
            tail.append(_U32.pack(r.generation))
        if r.auth_level != 0:
            flags |= _AUTH_LEVEL
            tail.append(_U32.pack(r.auth_level))
        if r.rotated_at != r.created_at:
            flags |= _ROTATED
            tail.append(_F64.pack(r.rotated_at))
        if r.auth_time is None:
            flags |= _NO_AUTH_TIME
        elif r.auth_time != r.created_at:
            flags |= _AUTH_TIME
            tail.append(_F64.pack(r.auth_time))
        if r.grace_until != 0.0:
            flags |= _GRACE
            tail.append(_F64.pack(r.grace_until))
        for flag, value in ((_PREV, r.prev_secret_hash), (_SUCCESSOR, r.successor)):
            if value is not None:
                flags |= flag
                tail.append(_U8.pack(len(value)) + value)
        for flag, text, default in (
            (_SCOPES, r.scopes, ""),
            (_DATA, r.data, "{}"),
            (_CONTEXT, r.context, "[]"),
        ):
            if text != default:
                flags |= flag
                data = text.encode("utf-8")
                tail.append(_U32.pack(len(data)) + data)
        user = b"" if r.user_id is None else r.user_id.encode("utf-8")
        length = _ANONYMOUS if r.user_id is None else len(user)
        if len(user) >= _ANONYMOUS:
            raise InvalidArgument("the user id is longer than 65,534 bytes")
        head = _HEAD.pack(r.version, r.created_at, r.last_seen, r.expires_at, tag, length)
        body = _BODY.pack(flags, r.absolute_expires_at)
    except (struct.error, UnicodeEncodeError) as exc:
        raise InvalidArgument(f"the record does not fit the Redis format ({exc})") from None
    return b"".join((head, user, body, *tail, r.secret_hash))


def decode(session_id: str, value: bytes) -> SessionRecord:
    """The record ``session_id`` stored as ``value``; ``StoreCorrupt`` if it is unreadable."""
    try:
        version, created, seen, expires, _, length = _HEAD.unpack_from(value)
        at = _HEAD.size
        user = None
        if length != _ANONYMOUS:
            if at + length > len(value):
                raise ValueError("truncated")
            user = value[at : at + length].decode("utf-8")
            at += length
        flags, absolute = _BODY.unpack_from(value, at)
        at += _BODY.size
        generation = auth_level = 0
        rotated, auth_time, grace = created, None if flags & _NO_AUTH_TIME else created, 0.0
        prev = successor = None
        scopes, data, context = "", "{}", "[]"
        if flags & _GENERATION:
            (generation,) = _U32.unpack_from(value, at)
            at += 4
        if flags & _AUTH_LEVEL:
            (auth_level,) = _U32.unpack_from(value, at)
            at += 4
        if flags & _ROTATED:
            (rotated,) = _F64.unpack_from(value, at)
            at += 8
        if flags & _AUTH_TIME:
            (auth_time,) = _F64.unpack_from(value, at)
            at += 8
        if flags & _GRACE:
            (grace,) = _F64.unpack_from(value, at)
            at += 8
        if flags & _PREV:
            prev, at = _bytes_at(value, at)
        if flags & _SUCCESSOR:
            successor, at = _bytes_at(value, at)
        if flags & _SCOPES:
            scopes, at = _text_at(value, at)
        if flags & _DATA:
            data, at = _text_at(value, at)
        if flags & _CONTEXT:
            context, at = _text_at(value, at)
        if flags >> 11:
            raise ValueError("unknown flags")
    except (struct.error, UnicodeDecodeError, ValueError, IndexError) as exc:
        raise StoreCorrupt(f"unreadable session record ({exc})") from None
    return SessionRecord._make((
        session_id, value[at:], prev, grace, generation, user, auth_level, auth_time, scopes,
        data, created, rotated, seen, expires, absolute, version, context, successor,
    ))  # fmt: skip


def touched(last_seen: float, expires_at: float) -> bytes:
    """What a touch writes over bytes 12 to 27 of a record (the touch script checks first)."""
    return _TIMES.pack(last_seen, expires_at)


def version_bytes(version: int) -> bytes | None:
    """The first 4 bytes of a record of ``version`` (None for a version no record has)."""
    return _U32.pack(version) if 0 <= version < 1 << 32 else None


def _bytes_at(value: bytes, at: int) -> tuple[bytes, int]:
    end = at + 1 + value[at]
    if end > len(value):
        raise ValueError("truncated")
    return value[at + 1 : end], end


def _text_at(value: bytes, at: int) -> tuple[str, int]:
    (size,) = _U32.unpack_from(value, at)
    end = at + 4 + size
    if end > len(value):
        raise ValueError("truncated")
    return value[at + 4 : end].decode("utf-8"), end


# -- where the indexes go ----------------------------------------------------------------------


@functools.cache
def slot_tags() -> list[bytes]:
    """For each Cluster slot, the first two-byte hash tag that Redis puts in it."""
    tags: list[bytes] = [b""] * REDIS_CLUSTER_HASH_SLOTS
    for n in range(1 << 16):
        tag = n.to_bytes(2, "big")
        slot = key_slot(b"{" + tag + b"}")
        if not tags[slot] and b"}" not in tag:
            tags[slot] = tag
    return tags


def index_tag(key: bytes) -> bytes:
    """The tag of the index hash in ``key``'s slot (one per slot, shared by its users)."""
    return slot_tags()[key_slot(key)]


# -- the scripts -------------------------------------------------------------------------------
#
# ARGV[1..3] of every script: the key prefix, "1" on a Cluster, and the tag of the index in the
# slot of the record the script works on (on a Cluster; "" otherwise). A user's index hash has
# the user's sessions in that slot under the field ``user``, which the scripts keep exact, and
# on a Cluster the ids of the user's sessions in other slots under "\255" .. user (no UTF-8
# text starts with that byte), which the store keeps. A script writes an index only when it
# shares the script's slot (``near``).

_COMMON = r"""
local P, CLUSTER, HOME, sub = ARGV[1], ARGV[2] == '1', ARGV[3], string.sub
local function record_key(id) return P .. '{' .. sub(id, 1, 2) .. '}' .. sub(id, 3) end
local function index_key(tag) return P .. '{' .. tag .. '}' end
local function near(tag) return not CLUSTER or tag == HOME end
local function head(v)  -- version bytes, created_at, last_seen, expires_at, tag, user or false
  if #v < 32 then error('sessionward: corrupt record') end
  local created, seen, expires = struct.unpack('<ddd', v, 5)
  local n = struct.unpack('<H', v, 31)
  return sub(v, 1, 4), created, seen, expires, sub(v, 29, 30), n ~= 65535 and sub(v, 33, 32 + n)
end
local function changed(id) redis.call('PUBLISH', P .. 'sessionward:changed', id) end
local function ids_of(index, field)
  local s, out = redis.call('HGET', index, field) or '', {}
  for i = 1, #s, 12 do out[#out + 1] = sub(s, i, i + 11) end
  return out
end
local function save(index, field, ids)
  if #ids == 0 then redis.call('HDEL', index, field)
  else redis.call('HSET', index, field, table.concat(ids)) end
end
local function extend(index, pxat)
  if redis.call('PEXPIRETIME', index) < pxat then redis.call('PEXPIREAT', index, pxat) end
end
local function owned(index, user)  -- the user's ids here whose record names the user, and those
  local kept, values = {}, {}
  for _, id in ipairs(ids_of(index, user)) do
    local v = redis.call('GET', record_key(id))
    if v and select(6, head(v)) == user then kept[#kept + 1] = id; values[id] = v end
  end
  return kept, values
end
local function prune(index, user) save(index, user, (owned(index, user))) end
local function add_id(index, field, id, pxat)
  local ids = ids_of(index, field)
  for _, other in ipairs(ids) do if other == id then ids = nil; break end end
  if ids then ids[#ids + 1] = id; save(index, field, ids) end
  extend(index, pxat)
end
local function remove_id(index, field, id)
  local kept = {}
  for _, other in ipairs(ids_of(index, field)) do
    if other ~= id then kept[#kept + 1] = other end
  end
  save(index, field, kept)
end
"""

# KEYS: record [, user's index]. ARGV[4..]: value, pxat, id, user, cap limit (0: none),
# evict "1"/"0", now. Returns {0, evicted ids...}, {1} the id exists, {2} the cap is reached,
# {3} the user has sessions in other slots (the store enforces the cap itself).
_ADD = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return {1} end
local evicted = {}
if KEYS[2] then
  local index, id, user, limit = KEYS[2], ARGV[6], ARGV[7], tonumber(ARGV[8])
  if limit > 0 and redis.call('HEXISTS', index, '\255' .. user) == 1 then return {3} end
  local ids, values = owned(index, user)
  if limit > 0 then
    local now, alive, keep = tonumber(ARGV[10]), {}, {}
    for _, other in ipairs(ids) do
      local _, created, _, expires = head(values[other])
      if expires > now then alive[#alive + 1] = {created, other} else keep[#keep + 1] = other end
    end
    local excess = #alive - limit + 1
    if excess > 0 and ARGV[9] ~= '1' then return {2} end
    table.sort(alive, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
    for i, entry in ipairs(alive) do
      if i <= excess then
        redis.call('DEL', record_key(entry[2]))
        changed(entry[2])
        evicted[#evicted + 1] = entry[2]
      else keep[#keep + 1] = entry[2] end
    end
    ids = keep
  end
  ids[#ids + 1] = id
  save(index, user, ids)
  extend(index, tonumber(ARGV[5]))
  local other = redis.call('HRANDFIELD', index)  -- one more user: dead ids cannot pile up
  if other and other ~= user and sub(other, 1, 1) ~= '\255' then prune(index, other) end
end
redis.call('SET', KEYS[1], ARGV[4], 'PXAT', ARGV[5])
return {0, unpack(evicted)}
"""

# KEYS: record [, the new user's index when near]. ARGV[4..]: value, pxat, id, the new user's
# index tag and user id ("" if anonymous), expected version bytes. Returns {0}, {1} not found,
# {2} version conflict, or {0, tag, user}: the previous user, whose index the store updates.
_REPLACE = r"""
local v = redis.call('GET', KEYS[1])
if not v then return {1} end
local version, _, _, _, tag, user = head(v)
if version ~= ARGV[8] then return {2} end
local id, moved = ARGV[6], user and tag .. user ~= ARGV[7]
if moved and near(tag) then remove_id(index_key(tag), user, id) end
redis.call('SET', KEYS[1], ARGV[4], 'PXAT', ARGV[5])
if KEYS[2] then add_id(KEYS[2], sub(ARGV[7], 3), id, tonumber(ARGV[5])) end
changed(id)
if moved and not near(tag) then return {0, tag, user} end
return {0}
"""

# KEYS: record. ARGV[4..]: last_seen and expires_at (two f64), pxat, id. Returns the user's
# index tag when the store must extend that index in another slot.
_TOUCH = r"""
local v = redis.call('GET', KEYS[1])
if not v then return false end
local _, _, seen, _, tag, user = head(v)
if seen >= struct.unpack('<d', ARGV[4]) then return false end
redis.call('SETRANGE', KEYS[1], 12, ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
changed(ARGV[6])
if user and near(tag) then extend(index_key(tag), tonumber(ARGV[5]))
elseif user then return tag end
return false
"""

# KEYS: record. ARGV[4..]: id, then conditions: now ("", or delete only if expired by then),
# owner ("", or delete only if the record names this user). Returns 0, 1 if deleted, or
# {tag, user} if deleted and the user's index is in another slot.
_DELETE = r"""
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local _, _, _, expires, tag, user = head(v)
if ARGV[5] ~= '' and expires > tonumber(ARGV[5]) then return 0 end
if ARGV[6] ~= '' and user ~= ARGV[6] then return 0 end
redis.call('DEL', KEYS[1])
changed(ARGV[4])
if not user then return 1 end
if near(tag) then remove_id(index_key(tag), user, ARGV[4]); return 1 end
return {tag, user}
"""

# KEYS: the user's index. ARGV[4..]: user, id to keep (or ""). Returns {deleted ids, the ids
# of the user's sessions in other slots}.
_DELETE_USER = r"""
local index, user, keep = KEYS[1], ARGV[4], ARGV[5]
local kept, deleted = {}, {}
for _, id in ipairs((owned(index, user))) do
  if id == keep then kept[#kept + 1] = id
  else redis.call('DEL', record_key(id)); changed(id); deleted[#deleted + 1] = id end
end
save(index, user, kept)
return {deleted, ids_of(index, '\255' .. user)}
"""

# KEYS: an index. ARGV[4..]: field, id, pxat (add the id) or "" (remove it).
_INDEX = r"""
if ARGV[6] == '' then remove_id(KEYS[1], ARGV[4], ARGV[5])
else add_id(KEYS[1], ARGV[4], ARGV[5], tonumber(ARGV[6])) end
"""

# KEYS: an index. Drops the ids whose record is gone or names another user.
_PRUNE = r"""
for _, user in ipairs(redis.call('HKEYS', KEYS[1])) do
  if sub(user, 1, 1) ~= '\255' then prune(KEYS[1], user) end
end
"""

SCRIPTS: Final = {
    name: _COMMON + body
    for name, body in (
        ("add", _ADD),
        ("replace", _REPLACE),
        ("touch", _TOUCH),
        ("delete", _DELETE),
        ("delete_user", _DELETE_USER),
        ("index", _INDEX),
        ("prune", _PRUNE),
    )
}
