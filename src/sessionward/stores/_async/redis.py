"""Sessions in Redis, standalone or Cluster: one round trip per ``get``, TTLs, Lua for the rest.

Key layout (``P`` is the optional key prefix)::

    P + <12 raw id bytes>              the record: one compact binary string, PEXPIREAT
    P + "{" t1 t2 "}" [+ spread byte]  an index bucket: the entries of every user hashed to it

* ``get`` is a single ``GET``: the key is the session id itself (12 bytes, the smallest key
  Redis stores without growing its allocation), the value a packed record (see ``_encode``).
* The per-user index is bucketed: a key per user would cost ~160 B per user (key, TTL, hash
  table slots), more than the session. Users hash (``sha1(salt + user)``) to one of 32,385
  buckets (times ``index_spread``); a bucket is one string of 9-byte entries (a user
  fingerprint byte and the id's 8 bytes after its tag; 13 bytes for an id with another tag).
* Every write that sets a record's TTL runs in a Lua script (``EVALSHA``) that also keeps the
  index: create-only ``add`` with the concurrent-session cap, ``replace`` with its
  version check, ``touch``, ``delete``. No lost update, no double grant.
* The index cannot leak: a bucket's TTL is raised to the latest TTL of any session written
  into it or touched; each login into a bucket checks 4 of its entries and drops those whose
  record is gone (so about a quarter of a busy bucket is dead at most); a capped login, and
  any read of a user's sessions, drops that user's dead entries; a delete removes its entry;
  an empty bucket disappears.
* TTLs follow ``expires_at`` (``PEXPIREAT``), plus an optional ``expire_grace``.

Redis Cluster. ``t1 t2`` is a hash tag derived from the user id (15 bits of
``sha1(salt + user)``), so a user's index bucket lives in one slot. Sessions are looked up by
id alone, so the id must lead to that slot: :meth:`AsyncRedisStore.new_session_id` (which the
session manager calls when a store has it) mints ids whose first four bytes are the user's
``{t1t2}`` tag. Such a session shares the slot of its user's bucket, and every operation on it
is one atomic script in one slot. Records whose id does not carry the user's tag (imported,
built by hand) still work, through a slower path of single-slot steps ordered so that a crash
between them leaves at worst a stale index entry (pruned later), never an unindexed session.
No command ever spans two slots.
Standalone servers use the same layout (so data can move to a cluster) and need no routing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import math
import os
import secrets
import struct
import threading
import time
import weakref
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Final, cast
from urllib.parse import unquote, urlsplit

import redis as redis_package
from redis.asyncio import Redis, RedisCluster, cluster, retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterDownError,
    ConnectionError,
    MaxConnectionsError,
    MovedError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

from sessionward._backoff import async_pause
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

__all__ = ["AsyncRedisStore"]

# -- record encoding ---------------------------------------------------------------------------
#
#   format | created_at <d | last_seen T(created) | expires_at T(last_seen) | flags varint
#   | version zz | [user] | [generation zz] | auth_level zz | [rotated_at T(created)]
#   | [auth_time T(created)] | absolute_expires_at T(created) | [grace_until T(rotated_at)]
#   | secret_hash (the format's size, or len+bytes) | [prev len+bytes] | [scopes] | [data]
#   | [context]
#
# Formats 0x03 (generation 0, which it omits) and 0x04 are what this version writes, the
# compact formats; 0x01 and 0x02 (the same pair) are the earlier ones, still read.
# * secret_hash: 16 bytes in the compact formats (the short verifier the store asks the
#   manager for, see ``tokens.hash_secret``), 32 in the earlier ones; any other length is
#   written len+bytes under the _HASH_LEN flag.
# * user: len+utf8 in the earlier formats. In the compact ones a varint u: even, u/2 bytes of
#   utf8 follow; odd, the id is the decimal integer (u-1)/2 (canonical spelling, < 10**15),
#   so the common numeric ids of databases cost 4-7 bytes instead of 1 + their digits.
# * A time T(base) is a varint code: 0 = base, 1 = None, 2 = 0.0, 3 = an 8-byte double
#   follows, 4 + 4n + k = base + n s (k=0), base - n s (k=1), base + n u (k=2), base - n u
#   (k=3), where the unit u is 1 ms in the earlier formats and 2**-22 s in the compact ones.
#   2**-22 s is the spacing of doubles between 2**30 and 2**31 (Unix times from 2004 to 2038),
#   so the distance between two such times is always a whole number of units: a clock
#   reading (last_seen, rotated_at) costs 4-6 bytes instead of 9. The encoder only uses a
#   code when decoding it gives back exactly the same float.
# Fields that are equal to their default (rotated_at = created_at, auth_time = created_at,
# grace_until = 0.0, data "{}", context "[]", empty scopes) cost one flag bit. The Lua scripts
# read the header up to the user id, so the layout up to there is shared with ``_LUA_PRELUDE``.
#
# Why the compact formats: Redis keeps a string of up to 44 bytes in one 64-byte allocation
# with its object header ("embstr"), and a longer one in two (16 + 64 bytes up to 60). A
# fresh login of a 9-character id fits 44 bytes only with the short verifier, and a touched
# one only with the numeric id and the 2**-22 s unit: 16 bytes a session, 9 % at 1M.

_FORMAT: Final = 1
_FORMAT_GEN0: Final = 2  # the same, for generation 0 (every session until it rotates): omitted
_COMPACT: Final = 4
_COMPACT_GEN0: Final = 3
_SHORT_HASH: Final = tokens.VERIFIER_BYTES
_UNITS: Final = 4194304.0  # 2**22 units a second in the compact formats' time codes
_MAX_UNITS: Final = float(1 << 50)  # so that 4n + 3 stays exact in the Lua scripts' doubles
_MAX_NUMERIC: Final = 15  # digits of a user id packed as an integer (< 2**50)
_NUMERIC_CODES: Final = 2 * 10**_MAX_NUMERIC  # the user varints that spell such an integer
_USER, _ROTATED, _AUTH_TIME, _GRACE, _PREV, _HASH_LEN, _SCOPES, _DATA, _CONTEXT = (
    1 << bit for bit in range(9)
)
_DOUBLE = struct.Struct("<d")
_ID_BYTES: Final = 12
_MAX_DELTA: Final = 1 << 40
_MAX_PXAT: Final = (1 << 53) - 1
_ECHO_WAIT: Final = 0.25
_URLSAFE: Final = bytes.maketrans(b"-_/", b"+/!")  # a "/" in the input becomes invalid


def _varint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _zigzag(n: int) -> int:
    return n << 1 if n >= 0 else ((-n) << 1) - 1


def _put_bytes(out: bytearray, data: bytes) -> None:
    _varint(out, len(data))
    out += data


def _put_time(out: bytearray, value: float | None, base: float, compact: bool = True) -> None:
    if value is None:
        out.append(1)
    elif value == base:
        out.append(0)
    elif value == 0.0:
        out.append(2)
    else:
        delta = value - base
        if math.isfinite(delta) and abs(delta) < _MAX_DELTA:
            n = abs(int(delta))
            if delta == int(delta) and (base + n if delta > 0 else base - n) == value:
                _varint(out, 4 + 4 * n + (0 if delta > 0 else 1))
                return
            if compact:
                units = abs(delta) * _UNITS
                if units == int(units) and units < _MAX_UNITS:
                    n = int(units)
                    if (base + n / _UNITS if delta > 0 else base - n / _UNITS) == value:
                        _varint(out, 4 + 4 * n + (2 if delta > 0 else 3))
                        return
            else:
                ms = abs(round(delta * 1000))
                if (base + ms / 1000 if delta > 0 else base - ms / 1000) == value:
                    _varint(out, 4 + 4 * ms + (2 if delta > 0 else 3))
                    return
        out.append(3)
        out += _DOUBLE.pack(value)


def _numeric(user: str) -> int | None:
    """The integer a user id spells in canonical decimal (no sign, no leading zero, ASCII
    digits only, at most 15 of them), or None."""
    if (
        len(user) <= _MAX_NUMERIC
        and user.isascii()
        and user.isdigit()
        and (user[0] != "0" or user == "0")
    ):
        return int(user)
    return None


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument("text fields must be valid Unicode") from None


def _encode(r: SessionRecord, compact: bool = True) -> bytes:
    """The stored value of ``r``: a compact format (3 or 4), or with ``compact=False`` the
    earlier format (1 or 2) that versions before it wrote (kept for the tests that check it
    is still read)."""
    flags = 0
    if r.user_id is not None:
        flags |= _USER
    if r.rotated_at != r.created_at:
        flags |= _ROTATED
    if r.auth_time is None or r.auth_time != r.created_at:
        flags |= _AUTH_TIME
    if r.grace_until != 0.0:
        flags |= _GRACE
    if r.prev_secret_hash is not None:
        flags |= _PREV
    if len(r.secret_hash) != (_SHORT_HASH if compact else 32):
        flags |= _HASH_LEN
    if r.scopes:
        flags |= _SCOPES
    if r.data != "{}":
        flags |= _DATA
    if r.context != "[]":
        flags |= _CONTEXT
    if compact:
        out = bytearray((_COMPACT if r.generation else _COMPACT_GEN0,))
    else:
        out = bytearray((_FORMAT if r.generation else _FORMAT_GEN0,))
    out += _DOUBLE.pack(r.created_at)
    _put_time(out, r.last_seen, r.created_at, compact)
    _put_time(out, r.expires_at, r.last_seen, compact)
    _varint(out, flags)
    _varint(out, _zigzag(r.version))
    if r.user_id is not None:
        number = _numeric(r.user_id) if compact else None
        if number is not None:
            _varint(out, 2 * number + 1)
        elif compact:
            user = _utf8(r.user_id)
            _varint(out, 2 * len(user))
            out += user
        else:
            _put_bytes(out, _utf8(r.user_id))
    if r.generation:
        _varint(out, _zigzag(r.generation))
    _varint(out, _zigzag(r.auth_level))
    if flags & _ROTATED:
        _put_time(out, r.rotated_at, r.created_at, compact)
    if flags & _AUTH_TIME:
        _put_time(out, r.auth_time, r.created_at, compact)
    _put_time(out, r.absolute_expires_at, r.created_at, compact)
    if flags & _GRACE:
        _put_time(out, r.grace_until, r.rotated_at, compact)
    if flags & _HASH_LEN:
        _put_bytes(out, r.secret_hash)
    else:
        out += r.secret_hash
    if r.prev_secret_hash is not None:
        _put_bytes(out, r.prev_secret_hash)
    if flags & _SCOPES:
        _put_bytes(out, _utf8(r.scopes))
    if flags & _DATA:
        _put_bytes(out, _utf8(r.data))
    if flags & _CONTEXT:
        _put_bytes(out, _utf8(r.context))
    return bytes(out)


_unpack_head = struct.Struct("<Bd").unpack_from  # the format byte and created_at
_unpack_double = _DOUBLE.unpack_from
_new_record = tuple.__new__  # SessionRecord(*fields) without NamedTuple's Python-level __new__


def _varint_at(buf: bytes, at: int) -> tuple[int, int]:
    # Unrolled for the one-, two- and three-byte values that nearly every record holds.
    byte = buf[at]
    if byte < 0x80:
        return byte, at + 1
    n = byte & 0x7F
    byte = buf[at + 1]
    if byte < 0x80:
        return n | byte << 7, at + 2
    n |= (byte & 0x7F) << 7
    byte = buf[at + 2]
    if byte < 0x80:
        return n | byte << 14, at + 3
    n |= (byte & 0x7F) << 14
    at, shift = at + 3, 21
    while True:
        byte = buf[at]
        at += 1
        n |= (byte & 0x7F) << shift
        if byte < 0x80:
            return n, at
        shift += 7


def _time_at(buf: bytes, at: int, base: float, unit: float) -> tuple[float | None, int]:
    # The code's varint, unrolled for one to three bytes (a time within ~6 days of its base).
    code = buf[at]
    if code < 0x80:
        at += 1
    else:
        byte = buf[at + 1]
        if byte < 0x80:
            code = (code & 0x7F) | byte << 7
            at += 2
        elif buf[at + 2] < 0x80:
            code = (code & 0x7F) | (byte & 0x7F) << 7 | buf[at + 2] << 14
            at += 3
        else:
            code, at = _varint_at(buf, at)
    if code >= 4:
        n = (code - 4) >> 2
        kind = code & 3
        if kind == 0:
            return base + n, at
        if kind == 1:
            return base - n, at
        return (base + n / unit if kind == 2 else base - n / unit), at
    if code == 0:
        return base, at
    if code == 1:
        return None, at
    if code == 2:
        return 0.0, at
    return _unpack_double(buf, at)[0], at + 8


def _text_at(buf: bytes, at: int) -> tuple[str, int]:
    size = buf[at]
    if size < 0x80:
        at += 1
    else:
        size, at = _varint_at(buf, at)
    end = at + size
    if end > len(buf):
        raise IndexError("truncated text")
    return buf[at:end].decode("utf-8"), end


def _decode(session_id: str, value: bytes) -> SessionRecord:
    """The inverse of ``_encode``. It runs on every ``get``, so it is written flat: the format
    byte and created_at come from one ``unpack_from``, one-byte varints (nearly all of them) and
    an untouched last_seen are read inline, the readers it calls are unrolled for up to three
    bytes, and the tuple is built without ``SessionRecord.__new__``."""
    try:
        created_at: float
        form, created_at = _unpack_head(value)
        if form in (_COMPACT_GEN0, _COMPACT):
            compact, unit, size = True, _UNITS, _SHORT_HASH
        elif form in (_FORMAT_GEN0, _FORMAT):
            compact, unit, size = False, 1000.0, 32
        else:
            raise ValueError("unknown record format")
        # last_seen: base created_at; code 0 (never touched) is the common case.
        code = value[9]
        if code == 0:
            last_seen = created_at
            at = 10
        else:
            when, at = _time_at(value, 9, created_at, unit)
            if when is None:
                raise ValueError("missing last_seen")
            last_seen = when
        expires_at, at = _time_at(value, at, last_seen, unit)
        flags = value[at]
        if flags < 0x80:
            at += 1
        else:
            flags, at = _varint_at(value, at)
        version = value[at]
        if version < 0x80:
            at += 1
        else:
            version, at = _varint_at(value, at)
        user_id = None
        if flags & _USER:
            if compact:
                code = value[at]
                if code < 0x80:
                    at += 1
                else:
                    code, at = _varint_at(value, at)
                if code & 1:
                    if code >= _NUMERIC_CODES:
                        raise ValueError("user id number out of range")
                    user_id = str(code >> 1)
                else:
                    end = at + (code >> 1)
                    if end > len(value):
                        raise IndexError("truncated text")
                    user_id = value[at:end].decode("utf-8")
                    at = end
            else:
                user_id, at = _text_at(value, at)
        if form in (_FORMAT_GEN0, _COMPACT_GEN0):
            generation = 0
        else:
            generation = value[at]
            if generation < 0x80:
                at += 1
            else:
                generation, at = _varint_at(value, at)
        auth_level = value[at]
        if auth_level < 0x80:
            at += 1
        else:
            auth_level, at = _varint_at(value, at)
        rotated_at: float | None = created_at
        auth_time: float | None = created_at
        if flags & _ROTATED:
            rotated_at, at = _time_at(value, at, created_at, unit)
        if flags & _AUTH_TIME:
            auth_time, at = _time_at(value, at, created_at, unit)
        absolute, at = _time_at(value, at, created_at, unit)
        grace_until: float | None = 0.0
        if flags & _GRACE:
            grace_until, at = _time_at(value, at, rotated_at or 0.0, unit)
        if flags & _HASH_LEN:
            size, at = _varint_at(value, at)
        secret_hash = value[at : at + size]
        at += size
        prev = None
        if flags & _PREV:
            size, at = _varint_at(value, at)
            prev = value[at : at + size]
            at += size
        scopes = ""
        data = "{}"
        context = "[]"
        if flags & (_SCOPES | _DATA | _CONTEXT):
            if flags & _SCOPES:
                scopes, at = _text_at(value, at)
            if flags & _DATA:
                data, at = _text_at(value, at)
            if flags & _CONTEXT:
                context, at = _text_at(value, at)
        if (
            at != len(value)
            or expires_at is None
            or rotated_at is None
            or absolute is None
            or grace_until is None
        ):
            raise ValueError("malformed record")
    except (IndexError, ValueError, struct.error) as exc:
        raise StoreCorrupt(f"undecodable session record ({exc})") from None
    return _new_record(SessionRecord, (
        session_id, secret_hash, prev, grace_until,
        generation >> 1 if not generation & 1 else -((generation + 1) >> 1), user_id,
        auth_level >> 1 if not auth_level & 1 else -((auth_level + 1) >> 1), auth_time,
        scopes, data, created_at, rotated_at, last_seen, expires_at, absolute,
        version >> 1 if not version & 1 else -((version + 1) >> 1), context,
    ))  # fmt: skip


def _version_bytes(version: int) -> bytes:
    out = bytearray()
    _varint(out, _zigzag(version))
    return bytes(out)


# -- Lua ---------------------------------------------------------------------------------------
#
# ARGV[1..3] of every script: key prefix, tag salt, and the mode: "1" (cluster) or "0", then
# the index spread in decimal (``b"0" + b"1"`` = standalone, one bucket per tag). Scripts read
# records only far enough to learn last_seen / expires_at / user / version bytes, compute the
# user's index bucket exactly as ``AsyncRedisStore._bucket`` does, and touch a bucket only when
# it shares the record's slot (``colocated``); otherwise they hand the user back to Python.
#
# A bucket is one string: a run of entries, each a byte ``h`` then an id. ``h < 128``: ``h`` is
# the fingerprint of the user the entry was indexed for, and the 8 bytes after the bucket's
# ``{tag}`` follow (the id begins with that tag); ``h >= 128``: fingerprint ``h - 128``, and the
# whole 12-byte id follows. A user's entries are those with the user's fingerprint whose record
# names that user; entries of other users sharing the bucket are only checked for existence.

_LUA_PRELUDE = r"""
local P, SALT = ARGV[1], ARGV[2]
local CLUSTER, SPREAD = string.sub(ARGV[3], 1, 1) == '1', tonumber(string.sub(ARGV[3], 2))
local sub, byte, char = string.sub, string.byte, string.char
local function vdec(s, i)
  local n, mul = 0, 1
  while true do
    local b = byte(s, i)
    if not b then error('sessionward: truncated record') end
    i = i + 1
    n = n + (b % 128) * mul
    if b < 128 then return n, i end
    mul = mul * 128
  end
end
local function venc(n)
  local out = {}
  while n >= 128 do
    local b = n % 128
    out[#out + 1] = char(b + 128)
    n = (n - b) / 128
  end
  out[#out + 1] = char(n)
  return table.concat(out)
end
-- time codes 4n+2 and 4n+3 count ms in formats 1 and 2, 2^-22 s in the compact 3 and 4
local function tdec(s, i, base)
  local unit = 1000
  if byte(s, 1) >= 3 then unit = 4194304 end
  local c
  c, i = vdec(s, i)
  if c == 0 then return base, i end
  if c == 1 then return false, i end
  if c == 2 then return 0.0, i end
  if c == 3 then return (struct.unpack('<d', s, i)), i + 8 end
  local w = c - 4
  local k = w % 4
  local n = (w - k) / 4
  if k == 0 then return base + n, i end
  if k == 1 then return base - n, i end
  if k == 2 then return base + n / unit, i end
  return base - n / unit, i
end
local function tenc(t, base, compact)
  if t == base then return '\0' end
  local d = t - base
  if d == d and math.abs(d) < 1099511627776 then
    local n = math.abs(d)
    if d == math.floor(d) then
      if d > 0 and base + n == t then return venc(4 + 4 * n) end
      if d < 0 and base - n == t then return venc(5 + 4 * n) end
    end
    n = n * 4194304
    if compact and n == math.floor(n) and n < 1125899906842624 then
      if d > 0 and base + n / 4194304 == t then return venc(6 + 4 * n) end
      if d < 0 and base - n / 4194304 == t then return venc(7 + 4 * n) end
    end
  end
  return '\3' .. struct.pack('<d', t)
end
-- created, last_seen, expires_at, user (or false), version bytes, index after last_seen
local function head(s)
  local form = byte(s, 1)
  if not (form and form >= 1 and form <= 4) then error('sessionward: unknown record format') end
  local created = struct.unpack('<d', s, 2)
  local ls, i = tdec(s, 10, created)
  local after_ls = i
  local exp
  exp, i = tdec(s, i, ls)
  local flags
  flags, i = vdec(s, i)
  local vstart = i
  local _
  _, i = vdec(s, i)
  local version = sub(s, vstart, i - 1)
  local user = false
  if flags % 2 == 1 then
    local n
    n, i = vdec(s, i)
    if form <= 2 then
      user = sub(s, i, i + n - 1)
    elseif n % 2 == 1 then
      user = string.format('%.0f', (n - 1) / 2)
    else
      user = sub(s, i, i + n / 2 - 1)
    end
  end
  return created, ls, exp, user, version, after_ls
end
-- the user's {tag}, fingerprint (7 bits) and bucket key, as AsyncRedisStore._bucket
local function hashed(user)
  local h = redis.sha1hex(SALT .. user)
  local a, b = tonumber(sub(h, 1, 2), 16) % 128, tonumber(sub(h, 3, 4), 16)
  if a == 125 then a = 124 end
  if b == 125 then b = 124 end
  local t = '{' .. char(a, b) .. '}'
  local k = P .. t
  if SPREAD > 1 then k = k .. char(tonumber(sub(h, 7, 8), 16) % SPREAD) end
  return t, tonumber(sub(h, 5, 6), 16) % 128, k
end
local function bucket_of(user)
  local _, fp, k = hashed(user)
  return k, fp
end
local function colocated(user, key)
  return (not CLUSTER) or sub(key, #P + 1, #P + 4) == (hashed(user))
end
-- every change or deletion of a record is announced, for the nodes' local read caches
local function changed(member)
  redis.call('PUBLISH', P .. 'sessionward:changed', member)
end
local function extend(ikey, pxat)
  if redis.call('PEXPIRETIME', ikey) < pxat then redis.call('PEXPIREAT', ikey, pxat) end
end
-- a bucket's entries as {member, fingerprint, encoded entry}
local function entries(ikey)
  local s = redis.call('GET', ikey)
  local out = {}
  if not s then return out end
  local btag = sub(ikey, #P + 1, #P + 4)
  local i, n = 1, #s
  while i <= n do
    local h = byte(s, i)
    if h >= 128 then
      out[#out + 1] = {sub(s, i + 1, i + 12), h - 128, sub(s, i, i + 12)}
      i = i + 13
    else
      out[#out + 1] = {btag .. sub(s, i + 1, i + 8), h, sub(s, i, i + 8)}
      i = i + 9
    end
  end
  if i ~= n + 1 then error('sessionward: corrupt index bucket') end
  return out
end
local function entry(ikey, member, fp)
  if sub(member, 1, 4) == sub(ikey, #P + 1, #P + 4) then return char(fp) .. sub(member, 5) end
  return char(fp + 128) .. member
end
-- write back the entries kept (the bucket keeps its TTL; an empty one disappears)
local function store_entries(ikey, kept)
  if #kept == 0 then
    redis.call('DEL', ikey)
    return
  end
  local parts = {}
  for n, e in ipairs(kept) do parts[n] = e[3] end
  redis.call('SET', ikey, table.concat(parts), 'KEEPTTL')
end
local function bucket_add(ikey, member, fp)
  local s = redis.call('GET', ikey)
  if s and string.find(s, sub(member, 5), 1, true) then
    for _, e in ipairs(entries(ikey)) do
      if e[1] == member and e[2] == fp then return end
    end
  end
  -- SET of the whole, not APPEND: APPEND leaves the string room to grow (up to its own size
  -- again), about 5 bytes a session across the buckets; SET allocates what it holds.
  redis.call('SET', ikey, (s or '') .. entry(ikey, member, fp), 'KEEPTTL')
end
local function bucket_remove(ikey, member)
  local s = redis.call('GET', ikey)
  if not (s and string.find(s, sub(member, 5), 1, true)) then return end
  local kept, found = {}, false
  for _, e in ipairs(entries(ikey)) do
    if e[1] == member then found = true else kept[#kept + 1] = e end
  end
  if found then store_entries(ikey, kept) end
end
-- does an existing record with this owner belong in this bucket entry?
local function belongs(owner, ikey, fp)
  if not owner then return false end
  local k, f = bucket_of(owner)
  return k == ikey and f == fp
end
local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = byte(s, i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    for j = 18, 0, -6 do
      out[#out + 1] = byte(B64, math.floor(n / 2 ^ j) % 64 + 1)
    end
  end
  return out
end
-- the order of the ids' base64url text, as Python sorts them (never the locale's collation)
local function id_before(x, y)
  local a, b = b64(x), b64(y)
  for i = 1, #a do
    if a[i] ~= b[i] then return a[i] < b[i] end
  end
  return false
end
local function unindex(user, key, member)
  if colocated(user, key) then
    bucket_remove((bucket_of(user)), member)
    return false
  end
  return user
end
"""

# KEYS: record [, bucket]. ARGV 4..: value, pxat, member, limit, evict, now, user, fingerprint.
# Returns {'E'} exists, {'L'} limit reached, {'F'} the bucket holds an entry of this user in
# another slot (cluster, caller falls back), or {'OK', evicted member...}.
#
# Every login into a bucket prunes it at a bounded cost: it checks PRUNE entries picked by the
# new id's random bytes (each entry has a PRUNE/n chance per login, so a dead one is found
# within ~n/PRUNE logins of the bucket: at most ~1/PRUNE of a busy bucket is dead) and drops
# those whose record is gone. With a cap, every entry with the user's fingerprint is also read
# (GET), counted, and dropped when dead or not the user's. Only the entry headers are walked;
# when nothing is dropped, the new entry is appended.
_LUA_ADD = r"""
local PRUNE = 4
local key, ikey = KEYS[1], KEYS[2]
if redis.call('EXISTS', key) == 1 then return {'E'} end
local value, pxat, member = ARGV[4], tonumber(ARGV[5]), ARGV[6]
local limit = tonumber(ARGV[7])
local evicted = {}
if ikey then
  local now, user, fp = tonumber(ARGV[9]), ARGV[10], tonumber(ARGV[11])
  local btag = sub(ikey, #P + 1, #P + 4)
  local s = redis.call('GET', ikey) or ''
  local starts, i, n = {}, 1, #s
  while i <= n do
    starts[#starts + 1] = i
    if byte(s, i) >= 128 then i = i + 13 else i = i + 9 end
  end
  if i ~= n + 1 then error('sessionward: corrupt index bucket') end
  local count = #starts
  local function id_at(at)
    if byte(s, at) >= 128 then return sub(s, at + 1, at + 12) end
    return btag .. sub(s, at + 1, at + 8)
  end
  local drop, live = {}, {}
  if limit > 0 then
    for k = 1, count do
      local at = starts[k]
      if byte(s, at) % 128 == fp then
        local m = id_at(at)
        if CLUSTER and sub(m, 1, 4) ~= btag then return {'F'} end
        local v = redis.call('GET', P .. m)
        if not v then
          drop[k] = true
        else
          local created, _, exp, owner = head(v)
          if owner == user then
            if exp > now then live[#live + 1] = {created, m, k} end
          elseif not belongs(owner, ikey, fp) then
            drop[k] = true
          end
        end
      end
    end
  end
  if count > 0 then
    for j = 1, PRUNE do
      local k = byte(member, 12 - j) % count + 1
      if not drop[k] then
        local m = id_at(starts[k])
        if not (CLUSTER and sub(m, 1, 4) ~= btag) and redis.call('EXISTS', P .. m) == 0 then
          drop[k] = true
        end
      end
    end
  end
  local excess = #live - limit + 1
  if limit > 0 and excess > 0 then
    if ARGV[8] ~= '1' then return {'L'} end
    table.sort(live, function(x, y)
      if x[1] ~= y[1] then return x[1] < y[1] end
      return id_before(x[2], y[2])
    end)
    for e = 1, excess do
      local m = live[e][2]
      redis.call('DEL', P .. m)
      changed(m)
      drop[live[e][3]] = true
      evicted[#evicted + 1] = m
    end
  end
  if next(drop) == nil then
    redis.call('SET', ikey, s .. entry(ikey, member, fp), 'KEEPTTL')  -- see bucket_add
  else
    local parts = {}
    for k = 1, count do
      if not drop[k] then
        local at = starts[k]
        if byte(s, at) >= 128 then parts[#parts + 1] = sub(s, at, at + 12)
        else parts[#parts + 1] = sub(s, at, at + 8) end
      end
    end
    parts[#parts + 1] = entry(ikey, member, fp)
    redis.call('SET', ikey, table.concat(parts), 'KEEPTTL')
  end
  extend(ikey, pxat)
end
redis.call('SET', key, value, 'PXAT', pxat)
return {'OK', unpack(evicted)}
"""

# KEYS: record [, new user's bucket when it shares the slot]. ARGV 4..: expected version
# bytes, value, pxat, member, has user, user, fingerprint. Returns {'N'}, {'C'} or
# {'OK' [, old user]}.
_LUA_REPLACE = r"""
local key, ikey = KEYS[1], KEYS[2]
local v = redis.call('GET', key)
if not v then return {'N'} end
local value, pxat, member = ARGV[5], tonumber(ARGV[6]), ARGV[7]
local _, _, _, old, version = head(v)
if version ~= ARGV[4] then return {'C'} end
local new = false
if ARGV[8] == '1' then new = ARGV[9] end
redis.call('SET', key, value, 'PXAT', pxat)
changed(member)
local out = {'OK'}
if old and old ~= new then out[2] = unindex(old, key, member) end
if ikey then
  bucket_add(ikey, member, tonumber(ARGV[10]))
  extend(ikey, pxat)
end
return out
"""

# KEYS: record. ARGV 4..: last_seen <d, expires_at <d, pxat.
# Returns 0 (no change), 1, or the user whose bucket (in another slot) needs its TTL raised.
_LUA_TOUCH = r"""
local key = KEYS[1]
local v = redis.call('GET', key)
if not v then return 0 end
local created, ls, _, user, _, after_ls = head(v)
local new_ls, new_exp = struct.unpack('<d', ARGV[4]), struct.unpack('<d', ARGV[5])
if not (ls < new_ls) then return 0 end
local _, rest = tdec(v, after_ls, ls)
local pxat = tonumber(ARGV[6])
local compact = byte(v, 1) >= 3
local stamp = sub(v, 1, 9) .. tenc(new_ls, created, compact) .. tenc(new_exp, new_ls, compact)
redis.call('SET', key, stamp .. sub(v, rest), 'PXAT', pxat)
changed(sub(key, #P + 1))
if user then
  if colocated(user, key) then extend((bucket_of(user)), pxat) else return user end
end
return 1
"""

# KEYS: record. ARGV 4..: member, expected value ('' = any), required owner flag, owner.
# Returns 0, 1, or the user whose bucket (in another slot) still lists the member.
_LUA_DELETE = r"""
local key = KEYS[1]
local v = redis.call('GET', key)
if not v then return 0 end
if ARGV[5] ~= '' and v ~= ARGV[5] then return 0 end
local _, _, _, user = head(v)
if ARGV[6] == '1' and user ~= ARGV[7] then return 0 end
redis.call('DEL', key)
changed(ARGV[4])
if user then
  local elsewhere = unindex(user, key, ARGV[4])
  if elsewhere then return elsewhere end
end
return 1
"""

# KEYS: bucket. ARGV 4..: user, mode ('list' | 'delete'), keep member, fingerprint.
# Returns {values or deleted members, the user's entries in other slots (for the caller)}.
# The user's entries whose record is gone or names someone else are dropped.
_LUA_USER = r"""
local ikey = KEYS[1]
local user, mode, keep, fp = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local btag = sub(ikey, #P + 1, #P + 4)
local out, foreign, kept, dropped = {}, {}, {}, false
for _, e in ipairs(entries(ikey)) do
  local m = e[1]
  if e[2] ~= fp then
    kept[#kept + 1] = e
  elseif CLUSTER and sub(m, 1, 4) ~= btag then
    if m ~= keep then foreign[#foreign + 1] = m end
    kept[#kept + 1] = e
  else
    local v = redis.call('GET', P .. m)
    local owner = false
    if v then owner = select(4, head(v)) end
    if owner == user then
      if mode == 'list' then
        out[#out + 1] = m
        out[#out + 1] = v
        kept[#kept + 1] = e
      elseif m ~= keep then
        redis.call('DEL', P .. m)
        changed(m)
        out[#out + 1] = m
        dropped = true
      else
        kept[#kept + 1] = e
      end
    elseif belongs(owner, ikey, fp) then
      kept[#kept + 1] = e
    else
      dropped = true
    end
  end
end
if dropped then store_entries(ikey, kept) end
return {out, foreign}
"""

# KEYS: bucket. ARGV 4..: mode ('add' | 'remove' | 'extend'), member, pxat, fingerprint.
_LUA_INDEX = r"""
local ikey, mode, member = KEYS[1], ARGV[4], ARGV[5]
if mode == 'remove' then
  bucket_remove(ikey, member)
  return 1
end
if mode == 'add' then bucket_add(ikey, member, tonumber(ARGV[7])) end
if redis.call('EXISTS', ikey) == 1 then extend(ikey, tonumber(ARGV[6])) end
return 1
"""


# -- errors ------------------------------------------------------------------------------------


class _Translated:
    """``with _TRANSLATED:`` maps redis-py exceptions onto ours at the store boundary."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None or isinstance(exc, StoreError):
            return
        if isinstance(exc, RedisError | OSError):
            raise _translate(exc) from exc
        if isinstance(exc, Exception) and _raised_by_the_driver(tb):
            # redis-py's own bugs under load (seen: asyncio Cluster connections torn down
            # while another task connects them) fail the request, never the caller's code.
            raise StoreUnavailable(f"redis client failure: {type(exc).__name__}") from exc


_DRIVER = os.path.dirname(redis_package.__file__ or "") + os.sep


def _raised_by_the_driver(tb: TracebackType | None) -> bool:
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last is not None and last.tb_frame.f_code.co_filename.startswith(_DRIVER)


def _translate(exc: BaseException) -> StoreError:
    name = type(exc).__name__
    if isinstance(exc, AuthenticationError):
        return StoreUnavailable(f"redis: authentication failed ({name})")
    if isinstance(exc, ConnectionError | TimeoutError | RedisClusterException | OSError):
        return StoreUnavailable(f"redis: {name}: {exc}")
    if isinstance(exc, ResponseError):
        message = str(exc)
        if "sessionward:" in message or "WRONGTYPE" in message:
            return StoreCorrupt(f"redis: {message}")
        # redis-py strips the code from the replies it has a class for ("The cluster is
        # down"), so both the classes and the codes are checked.
        if isinstance(exc, ClusterDownError | TryAgainError | ReadOnlyError) or message.startswith(
            ("READONLY", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN")
        ):
            return StoreUnavailable(f"redis: {name}: {message}")
        return StoreCorrupt(f"redis: {message}")
    return StoreUnavailable(f"redis: {name}: {exc}")


_TRANSLATED = _Translated()

# Client options under which ``get`` keeps redis-py's full command path.
_FULL_PATH_OPTIONS: Final = frozenset(
    {
        "retry",
        "single_connection_client",
        "connection_pool",
        "health_check_interval",  # PINGs before reuse, which the fast GET skips
        "cache",
        "cache_config",
        "protocol",
    }
)
_STORES: weakref.WeakSet[Any] = weakref.WeakSet()


def _forget_inherited_connections() -> None:
    # In a forked child the parent's sockets are not ours to use (nor to close).
    for store in list(_STORES):
        if store._lane is not None:
            store._lane = store._lane.fresh()
        if store._lanes is not None:
            store._lanes = {}


os.register_at_fork(after_in_child=_forget_inherited_connections)


_node: Any = cluster.ClusterNode  # the sync flavour's constructor is untyped

# Cluster client options under which ``get`` keeps the cluster client's path.
_CLUSTER_FULL_PATH_OPTIONS: Final = frozenset(
    {"read_from_replicas", "load_balancing_strategy", "cluster_error_retry_attempts"}
)
# Error replies after which a Cluster read is handed to the cluster client.
_REDIRECTIONS: Final = (MovedError, AskError, TryAgainError, ClusterDownError)


class _Lane:
    """The fast GET's connections to one server (a standalone server, or one Cluster node):
    the client's connection class and settings for it, at most its connection limit; a
    connection is in ``idle`` only in step."""

    __slots__ = ("connection_class", "idle", "kwargs", "limit", "made")

    def __init__(self, connection_class: Any, kwargs: dict[str, Any], limit: int) -> None:
        self.connection_class = connection_class
        self.kwargs = kwargs
        self.limit = limit
        self.idle: list[Any] = []
        self.made = 0

    @classmethod
    def of_pool(cls, pool: Any) -> _Lane:
        return cls(pool.connection_class, pool.connection_kwargs, pool.max_connections)

    @classmethod
    def of(cls, node: Any) -> _Lane | None:
        """A lane to a Cluster ``node``, or None while it has no connection settings yet."""
        if hasattr(node, "connection_class"):  # redis.asyncio's node holds them itself
            return cls(node.connection_class, node.connection_kwargs, node.max_connections)
        owner = getattr(node, "redis_connection", None)  # redis' node: through its client
        return None if owner is None else cls.of_pool(owner.connection_pool)

    def fresh(self) -> _Lane:
        """The same settings with no connections (for a forked child)."""
        return _Lane(self.connection_class, self.kwargs, self.limit)

    def connect(self) -> Any:
        """A new connection (unconnected until first used), within the limit."""
        if self.made >= self.limit:
            raise MaxConnectionsError("Too many connections")
        self.made += 1
        return self.connection_class(**self.kwargs)


def _connect(url: str, options: dict[str, Any]) -> tuple[Redis | RedisCluster, bool]:
    """A client for ``url``: ``redis://``, ``rediss://``, ``unix://`` (standalone) or
    ``redis+cluster://host:port[,host:port...]`` / ``rediss+cluster://`` (Cluster)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("redis", "rediss", "unix"):
        return Redis.from_url(url, **options), False
    if scheme not in ("redis+cluster", "rediss+cluster"):
        raise ConfigError(
            "redis URL must start with redis://, rediss://, unix:// or redis+cluster://"
        )
    nodes = []
    for host_port in parts.netloc.rpartition("@")[2].split(","):
        host, _, port = host_port.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError("cluster URL needs host:port[,host:port...]")
        nodes.append(_node(host.strip("[]"), int(port)))
    if parts.username:
        options.setdefault("username", unquote(parts.username))
    if parts.password:
        options.setdefault("password", unquote(parts.password))
    if scheme == "rediss+cluster":
        options.setdefault("ssl", True)
    options.pop("retry_on_timeout", None)
    return RedisCluster(startup_nodes=nodes, **options), True


class _LocalCache:
    """Records by raw id with a deadline, plus the bookkeeping that keeps them honest.

    ``epoch`` counts invalidations; a read stores its result only if its id was not
    invalidated after the read began (``recent``), so a slow read cannot resurrect a record
    another node changed meanwhile. Plain dict operations: safe under the GIL from threads.
    """

    def __init__(self, size: int, ttl: float) -> None:
        self.size = size
        self.ttl = ttl
        self.entries: dict[bytes, tuple[SessionRecord, float]] = {}
        self.recent: dict[bytes, int] = {}
        self.epoch = 0
        self.floor = 0  # reads that began before this epoch may not store
        self.subscribed = False
        self.drain_lock = threading.Lock()
        self.messages = 0  # announcements heard on the subscription
        self.pongs = 0  # PING replies read on the subscription
        self.last_heard: dict[bytes, int] = {}  # raw id -> ``messages`` when last heard
        self.hits = self.misses = self.invalidations = 0

    def lookup(self, raw: bytes) -> SessionRecord | None:
        entry = self.entries.get(raw)
        if entry is not None and entry[1] > time.monotonic():
            self.hits += 1
            return entry[0]
        self.misses += 1
        return None

    def store(self, raw: bytes, record: SessionRecord, began: int) -> None:
        if began < self.floor or self.recent.get(raw, -1) >= began:
            return
        if len(self.entries) >= self.size:
            self.entries.pop(next(iter(self.entries)), None)  # the oldest insertion
        self.entries[raw] = (record, time.monotonic() + self.ttl)

    def forget(self, raw: bytes) -> None:
        self.epoch += 1
        self.invalidations += 1
        self.entries.pop(raw, None)
        if len(self.recent) >= 4 * self.size + 1024:
            self.recent.clear()
            self.floor = self.epoch  # reads in flight may have lost their mark: no storing
        self.recent[raw] = self.epoch

    def heard(self, raw: bytes) -> None:
        self.messages += 1
        if len(self.last_heard) >= 4 * self.size + 1024:
            self.last_heard.clear()  # a writer waiting on a cleared mark waits it out, safely
        self.last_heard[raw] = self.messages
        self.forget(raw)

    def reset(self, *, subscribed: bool) -> None:
        self.epoch += 1
        self.floor = self.epoch
        self.entries.clear()
        self.recent.clear()
        self.subscribed = subscribed


class AsyncRedisStore:
    """Sessions in Redis. ``url`` chooses the mode: ``redis://host:port/db``,
    ``rediss://...`` (TLS), ``unix:///path``, or ``redis+cluster://host:port[,host:port]``.

    * ``prefix``: bytes put in front of every key (use one when the database is shared; each
      byte costs memory per session). Must not contain ``{`` or ``}``.
    * ``tag_salt``: mixed into the user hash tags; set the same value on every node. A secret
      salt keeps outsiders from testing a guessed user id against a session id's tag.
    * ``index_spread``: index buckets per hash tag (1 to 256, default 1: 32,385 buckets).
      Every login walks its bucket, so aim for a few dozen sessions per bucket: 1 up to
      ~2M logged-in sessions, then about sessions / 1M (16 at 10M, 128 at 100M). Set it once,
      on every node: after a change, older sessions are no longer listed (nor revoked by
      ``delete_user``) until they expire.
    * ``expire_grace``: seconds Redis keeps a record after its ``expires_at`` (default 0). The
      manager refuses expired records either way; a grace lets it report them as expired.
    * ``clock_offset``: seconds added to record times to turn them into wall-clock expiry
      times. Only for tests that run the manager on a fake clock far from the real one.
    * ``socket_timeout`` / ``connect_timeout``: seconds before a stalled server counts as
      unavailable. Other keyword arguments go to the redis-py client.
    * ``cache_size``: keep up to this many records in process memory (default 0: no cache).
      ``get`` then answers from memory when it can, and every change or deletion made by any
      node reaches every cache through Redis pub/sub: before each cached read the store
      applies the invalidations already on its subscription socket (a non-blocking read,
      no round trip). While the subscription is down nothing is served from memory.
      ``cache_ttl`` bounds how long an entry may be served (default 5 s).
    * ``verifier_size``: bytes of ``sha256(secret)`` kept per session: 16 (the default) or
      32. Matching 16 bytes still takes 2**128 guesses, the strength of the rest of the
      system (P-256, ASVS' 128 bits), and it lets a fresh session fit Redis' 44-byte string
      class: 16 bytes less per session (docs/design.md, "The short verifier"). Records of
      either size are read whatever the setting.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: bytes = b"",
        tag_salt: bytes = b"",
        expire_grace: float = 0.0,
        clock_offset: float = 0.0,
        socket_timeout: float = 2.0,
        connect_timeout: float = 2.0,
        cache_size: int = 0,
        cache_ttl: float = 5.0,
        index_spread: int = 1,
        verifier_size: int = tokens.VERIFIER_BYTES,
        **client_options: Any,
    ) -> None:
        if b"{" in prefix or b"}" in prefix:
            raise ConfigError("the key prefix must not contain '{' or '}'")
        if type(verifier_size) is not int or verifier_size not in (16, 32):
            raise ConfigError("verifier_size must be 16 or 32")
        if not math.isfinite(expire_grace) or expire_grace < 0:
            raise ConfigError("expire_grace must be a non-negative number of seconds")
        if not math.isfinite(clock_offset):
            raise ConfigError("clock_offset must be finite")
        if cache_size < 0 or not 0 < cache_ttl < math.inf:
            raise ConfigError("need cache_size >= 0 and a positive, finite cache_ttl")
        if type(index_spread) is not int or not 1 <= index_spread <= 256:
            raise ConfigError("index_spread must be an int from 1 to 256")
        options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            # One immediate retry heals a pooled connection the server dropped (restart, idle
            # timeout); anything longer would stall requests during a real outage. Timeouts are
            # not retried: the command may have run, and a write must not run twice.
            "retry": retry.Retry(NoBackoff(), 1, supported_errors=(ConnectionError,)),
            **client_options,
        }
        self._client, self.cluster = _connect(url, options)
        # The fast GET (see ``_fast_get``), standalone only, when nothing asked for behaviour
        # that redis-py's full command path provides (custom retries, one shared connection,
        # a pool of the caller's, health checks, client-side caching, RESP3 pushes): otherwise
        # ``None``, and ``get`` uses the client.
        pool: Any = getattr(self._client, "connection_pool", None)
        kwargs = getattr(pool, "connection_kwargs", {})
        self._lane: _Lane | None = (
            _Lane.of_pool(pool)
            if pool is not None
            and not self.cluster
            and not _FULL_PATH_OPTIONS & client_options.keys()
            and kwargs.get("protocol") in (None, 2, "2")
            and getattr(pool, "cache", None) is None
            else None
        )
        # On a Cluster, the fast GET keeps connections of its own per node (``_Lane``), found
        # by the client's slot map; a redirection or a node it cannot reach hands the read to
        # the cluster client, which follows MOVED/ASK and refreshes the map.
        self._lanes: dict[str, _Lane] | None = (
            {}
            if self.cluster
            and not (_FULL_PATH_OPTIONS | _CLUSTER_FULL_PATH_OPTIONS) & client_options.keys()
            else None
        )
        self._get_head = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s" % (len(prefix) + _ID_BYTES, prefix)
        _STORES.add(self)
        self._prefix = prefix
        self.verifier_size: int = verifier_size
        self._salt = tag_salt
        self._shift = expire_grace + clock_offset
        self._spread = index_spread
        self._head = (prefix, tag_salt, (b"1" if self.cluster else b"0") + b"%d" % index_spread)
        register = self._client.register_script
        self._add = register(_LUA_PRELUDE + _LUA_ADD)
        self._replace = register(_LUA_PRELUDE + _LUA_REPLACE)
        self._touch = register(_LUA_PRELUDE + _LUA_TOUCH)
        self._delete = register(_LUA_PRELUDE + _LUA_DELETE)
        self._user = register(_LUA_PRELUDE + _LUA_USER)
        self._index = register(_LUA_PRELUDE + _LUA_INDEX)
        self._closed = False
        # redis-py's asyncio Cluster client maps the slots on first use; tasks that race into
        # that first use can be handed connections it then closes. Map them once, up front.
        self._unmapped = self.cluster and callable(getattr(self._client, "initialize", None))
        self._cache = _LocalCache(cache_size, cache_ttl) if cache_size else None
        self._channel = prefix + b"sessionward:changed"
        self._pubsub: Any = None
        self._replace_pubsub = False
        self._resubscribe_at = 0.0

    # -- keys and routing -------------------------------------------------------------------

    def _raw(self, session_id: str) -> bytes | None:
        """The 12 bytes a public id spells, or None for anything that is not an id."""
        if type(session_id) is not str or len(session_id) != 16 or "+" in session_id:
            return None
        try:
            raw = binascii.a2b_base64(
                session_id.encode("ascii").translate(_URLSAFE), strict_mode=True
            )
        except (binascii.Error, UnicodeEncodeError):
            return None
        return raw if len(raw) == _ID_BYTES else None

    def _raw_or_raise(self, session_id: str) -> bytes:
        raw = self._raw(session_id)
        if raw is None:
            raise InvalidArgument("not a session id")
        return raw

    def _hashed(self, user: bytes) -> tuple[bytes, int, bytes]:
        """The user's ``{tag}`` (15 bits), fingerprint (7 bits) and index bucket key, as the
        Lua ``hashed`` computes them."""
        digest = hashlib.sha1(self._salt + user, usedforsecurity=False).digest()
        a, b = digest[0] & 0x7F, digest[1]
        tag = bytes((0x7B, 124 if a == 125 else a, 124 if b == 125 else b, 0x7D))
        key = self._prefix + tag
        if self._spread > 1:
            key += bytes((digest[3] % self._spread,))
        return tag, digest[2] & 0x7F, key

    def _tag(self, user: bytes) -> bytes:
        return self._hashed(user)[0]

    def _index_key(self, user: bytes) -> bytes:
        """The key of the bucket that indexes ``user``'s sessions (shared with other users)."""
        return self._hashed(user)[2]

    def _pxat(self, expires_at: float) -> int:
        when = (expires_at + self._shift) * 1000
        if not when > 1:  # also NaN
            return 1
        return _MAX_PXAT if when >= _MAX_PXAT else math.ceil(when)

    def new_session_id(self, user_id: str | None) -> str:
        """A fresh random session id that leads to ``user_id``'s slot (its first 4 bytes are the
        user's ``{tag}``; 64 random bits follow). The session manager uses it when issuing."""
        if user_id is None:
            return tokens.new_session_id()
        raw = self._tag(_utf8(user_id)) + secrets.token_bytes(_ID_BYTES - 4)
        return base64.urlsafe_b64encode(raw).decode("ascii")

    def _id(self, member: bytes) -> str:
        return base64.urlsafe_b64encode(member).decode("ascii")

    async def _map_slots(self) -> None:
        with _TRANSLATED:
            await cast(Any, self._client).initialize()
        self._unmapped = False

    async def _eval(self, script: Any, keys: Sequence[bytes], *args: bytes | int | float) -> Any:
        if self._unmapped:
            await self._map_slots()
        with _TRANSLATED:
            return await script(keys=keys, args=(*self._head, *args))

    # -- the store interface ----------------------------------------------------------------

    async def get(self, session_id: str) -> SessionRecord | None:
        raw = self._raw(session_id)
        if raw is None:
            return None
        if self._unmapped:
            await self._map_slots()
        if self._cache is not None:
            return await self._cached_get(session_id, raw, self._cache)
        # ``with _TRANSLATED`` spelled as try/except: the same mapping, without two calls on
        # the path every request takes.
        try:
            if self._lane is not None:
                value: Any = await self._fast_get(raw, self._lane)
            elif self._lanes is not None:
                value = await self._cluster_get(raw, self._lanes)
            else:
                value = await self._client.get(self._prefix + raw)
        except Exception as exc:
            _TRANSLATED.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return None if value is None else _decode(session_id, value)

    async def _fast_get(self, raw: bytes, lane: _Lane) -> Any:
        """``GET`` on a connection of the store's own, without redis-py's generic command path
        (pool checkout with its pending-data poll, argument packing, retry and observability
        wrappers, response callbacks): the command is packed once, sent, and the reply read.

        The connections are ``lane``'s: the client pool's class with its settings (address,
        TLS, auth, db, timeouts), at most its ``max_connections``; on a Cluster, those of one
        node. A connection goes back to the lane only in step: its reply read whole, or closed
        (it reconnects when next used). As on the client's path, a ``ConnectionError`` is
        retried once at once (a pooled connection the server dropped reconnects) and a
        timeout is not."""
        idle = lane.idle
        try:
            conn = idle.pop()
        except IndexError:
            conn = lane.connect()
        packed = (self._get_head + raw + b"\r\n",)
        try:
            try:
                await conn.send_packed_command(packed, False)
                value = await conn.read_response()
            except ConnectionError:
                await conn.send_packed_command(packed, False)
                value = await conn.read_response()
        except ResponseError:
            idle.append(conn)  # an error reply, read whole: the connection is in step
            raise
        except BaseException:
            try:
                await conn.disconnect()  # closed, it owes no reply: reusable
            except Exception:  # in doubt, never reuse it
                lane.made -= 1
            else:
                idle.append(conn)
            raise
        idle.append(conn)
        return value

    async def _cluster_get(self, raw: bytes, lanes: dict[str, _Lane]) -> Any:
        """The fast GET on a Cluster: to the node the client's slot map names, on a lane of
        connections of the store's own. Whatever the map cannot answer at once (a slot not
        covered, a node not connected yet) and every redirection (``MOVED``, ``ASK``), retry
        signal (``TRYAGAIN``, ``CLUSTERDOWN``) or unreachable node goes to the cluster client,
        which follows it and refreshes the map; a timeout is raised, as on a single server."""
        key = self._prefix + raw
        client: Any = self._client
        try:
            node = client.nodes_manager.get_node_from_slot(key_slot(key))
        except RedisClusterException:
            return await client.get(key)
        lane = lanes.get(node.name)
        if lane is None:
            lane = _Lane.of(node)
            if lane is None:
                return await client.get(key)
            lane = lanes.setdefault(node.name, lane)
        try:
            return await self._fast_get(raw, lane)
        except (ResponseError, ConnectionError) as exc:
            if isinstance(exc, ResponseError) and not isinstance(exc, _REDIRECTIONS):
                raise
            return await client.get(key)

    # -- the local read cache ---------------------------------------------------------------

    async def _cached_get(
        self, session_id: str, raw: bytes, cache: _LocalCache
    ) -> SessionRecord | None:
        # Another thread or task reading the subscription: do not wait, read Redis instead.
        listening = cache.drain_lock.acquire(blocking=False)
        if listening:
            try:
                listening = await self._drain(cache)
            finally:
                cache.drain_lock.release()
        if listening:
            hit = cache.lookup(raw)
            if hit is not None:
                return hit
        epoch = cache.epoch
        with _TRANSLATED:  # a miss reads as an uncached store does
            if self._lane is not None:
                value = await self._fast_get(raw, self._lane)
            elif self._lanes is not None:
                value = await self._cluster_get(raw, self._lanes)
            else:
                value = await self._client.get(self._prefix + raw)
        record = None if value is None else _decode(session_id, cast(bytes, value))
        if listening and record is not None:
            cache.store(raw, record, epoch)
        return record

    async def _drain(self, cache: _LocalCache, wait: float = 0.0) -> bool:
        """Apply every invalidation waiting on the subscription (waiting up to ``wait`` s for
        the first); False while unsubscribed (the cache is then empty and unused)."""
        pubsub = self._pubsub
        try:
            if self._replace_pubsub and pubsub is not None:
                self._replace_pubsub = False
                self._pubsub = None
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
                pubsub = None
            if pubsub is None:
                if time.monotonic() < self._resubscribe_at:
                    return False
                self._resubscribe_at = time.monotonic() + 0.5
                if self._unmapped:
                    await self._map_slots()
                pubsub = cast(Any, self._client).pubsub()
                self._pubsub = pubsub
                cache.reset(subscribed=False)
                await pubsub.subscribe(self._channel)
                # redis-py would reconnect and resubscribe silently, losing the messages sent
                # in between; without retries the loss surfaces here and empties the cache.
                pubsub.connection.retry = retry.Retry(NoBackoff(), 0)
            while True:
                message = await pubsub.get_message(timeout=wait)
                wait = 0.0
                if message is None:
                    return cache.subscribed
                kind = message["type"]
                if kind == "message":
                    cache.heard(message["data"])
                elif kind == "subscribe":  # (re)subscribed: only what follows is complete
                    cache.reset(subscribed=True)
                elif kind == "pong":
                    cache.pongs += 1
        except (RedisError, OSError):
            self._pubsub = None
            cache.reset(subscribed=False)
            if pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            return False

    async def _mark(self) -> int:
        """Before a write: the count of announcements heard so far (subscribing first, so the
        write's own announcement will be heard)."""
        cache = self._cache
        if cache is None:
            return 0
        if not cache.subscribed and cache.drain_lock.acquire(blocking=False):
            try:
                await self._drain(cache, wait=0.05)
            finally:
                cache.drain_lock.release()
        return cache.messages

    async def _announced(self, raws: Sequence[bytes], mark: int) -> None:
        """After a write whose script announced ``raws``: forget them here and, with a cache,
        wait until every subscriber has been sent the announcement, so that when a revoke
        returns, no node's cache can still serve the session.

        Two steps on this node's own subscription: hear our own announcement (the server that
        delivers it has then handed it to every subscriber in that pass), then a PING behind
        it (answered only after that pass is written out). One extra round trip per write,
        none per read."""
        cache = self._cache
        if cache is None or not raws:
            return
        for raw in raws:
            cache.forget(raw)
        deadline = time.monotonic() + _ECHO_WAIT
        while any(cache.last_heard.get(r, -1) <= mark for r in raws):
            if not await self._listen(cache, deadline):
                return
        pongs = cache.pongs
        sent = False
        while not sent:
            if cache.drain_lock.acquire(blocking=False):
                try:
                    sent = self._pubsub is not None and cache.subscribed
                    if sent:
                        await self._pubsub.ping()
                except (RedisError, OSError):
                    sent = False
                finally:
                    cache.drain_lock.release()
                if not sent:
                    return self._unsubscribed(cache)
            elif not await self._listen(cache, deadline):
                return
        while cache.pongs <= pongs:
            if not await self._listen(cache, deadline):
                return

    async def _listen(self, cache: _LocalCache, deadline: float) -> bool:
        """Read the subscription for a moment (or let the thread reading it do so); False
        when the subscription is gone or the deadline passed (the cache is then dropped)."""
        if not cache.subscribed or time.monotonic() > deadline:
            self._unsubscribed(cache)
            return False
        if cache.drain_lock.acquire(blocking=False):
            try:
                await self._drain(cache, wait=0.01)
            finally:
                cache.drain_lock.release()
        else:
            await async_pause(2)
        return True

    def _unsubscribed(self, cache: _LocalCache) -> None:
        """Trust nothing cached: a message may be lost. The next drain replaces the
        subscription (closing it needs the drain lock, which a reader may hold now)."""
        cache.reset(subscribed=False)
        self._replace_pubsub = True

    def cache_info(self) -> dict[str, int]:
        """Hits, misses and invalidations of the local cache (zeros when it is off)."""
        cache = self._cache
        if cache is None:
            return {"hits": 0, "misses": 0, "invalidations": 0, "size": 0}
        return {
            "hits": cache.hits,
            "misses": cache.misses,
            "invalidations": cache.invalidations,
            "size": len(cache.entries),
        }

    async def add(self, record: SessionRecord, *, cap: UserCap | None = None) -> list[str]:
        raw = self._raw_or_raise(record.id)
        key = self._prefix + raw
        value = _encode(record)
        pxat = self._pxat(record.expires_at)
        if record.user_id is None:
            result = await self._eval(self._add, [key], value, pxat, raw, 0, 0, 0)
            if result[0] == b"E":
                raise AlreadyExists(record.id)
            return []
        user = _utf8(record.user_id)
        tag, fp, ikey = self._hashed(user)
        if not self.cluster or raw[:4] == tag:
            limit, evict, now = (cap.limit, int(cap.evict_oldest), cap.now) if cap else (0, 0, 0)
            mark = await self._mark()
            result = await self._eval(
                self._add, [key, ikey], value, pxat, raw, limit, evict, now, user, fp
            )
            status = result[0]
            if status == b"OK":
                await self._announced(result[1:], mark)
                return [self._id(m) for m in result[1:]]
            if status == b"E":
                raise AlreadyExists(record.id)
            if status == b"L":
                raise SessionLimitReached("the user's session limit is reached")
        return await self._add_across_slots(record, raw, key, value, pxat, user, cap)

    async def _add_across_slots(
        self,
        record: SessionRecord,
        raw: bytes,
        key: bytes,
        value: bytes,
        pxat: int,
        user: bytes,
        cap: UserCap | None,
    ) -> list[str]:
        """Cluster, id not routed to the user's slot: single-slot steps, index first."""
        if self._unmapped:
            await self._map_slots()
        victims: list[SessionRecord] = []
        if cap is not None:
            live = [r for r in await self._members(user) if r.expires_at > cap.now]
            live.sort(key=lambda r: (r.created_at, r.id))
            excess = len(live) - cap.limit + 1
            if excess > 0 and not cap.evict_oldest:
                raise SessionLimitReached("the user's session limit is reached")
            victims = live[: max(0, excess)]
        with _TRANSLATED:
            if await self._client.exists(key):
                raise AlreadyExists(record.id)
        await self._index_entry(user, b"add", raw, pxat)
        result = await self._eval(self._add, [key], value, pxat, raw, 0, 0, 0)
        if result[0] == b"E":
            raise AlreadyExists(record.id)
        evicted = []
        for victim in victims:
            if await self._delete_one(self._raw_or_raise(victim.id), owner=user):
                evicted.append(victim.id)
        return evicted

    async def _index_entry(self, user: bytes, mode: bytes, raw: bytes, pxat: int) -> None:
        """One step on the user's bucket for the cross-slot paths: ``add`` (and raise its TTL
        to ``pxat``), ``remove``, or ``extend`` (the TTL only)."""
        _, fp, ikey = self._hashed(user)
        await self._eval(self._index, [ikey], mode, raw, pxat, fp)

    async def _members(self, user: bytes) -> list[SessionRecord]:
        """Every record the user's index lists (pruning what is gone or not the user's)."""
        _, fp, ikey = self._hashed(user)
        out, foreign = await self._eval(self._user, [ikey], user, b"list", b"", fp)
        records = [_decode(self._id(out[i]), out[i + 1]) for i in range(0, len(out), 2)]
        name = user.decode("utf-8")
        for member in foreign:
            with _TRANSLATED:
                value = await self._client.get(self._prefix + member)
            record = None if value is None else _decode(self._id(member), cast(bytes, value))
            if record is None or record.user_id != name:
                await self._index_entry(user, b"remove", member, 0)
            else:
                records.append(record)
        return records

    async def replace(self, record: SessionRecord, *, expected_version: int) -> None:
        raw = self._raw(record.id)
        if raw is None:
            raise NotFound(record.id)
        key = self._prefix + raw
        value = _encode(record)
        pxat = self._pxat(record.expires_at)
        keys = [key]
        user = b""
        fp = 0
        if record.user_id is not None:
            user = _utf8(record.user_id)
            tag, fp, ikey = self._hashed(user)
            if not self.cluster or raw[:4] == tag:
                keys.append(ikey)
            else:  # index first: a stale entry is pruned on read, a missing one would hide it
                await self._index_entry(user, b"add", raw, pxat)
        mark = await self._mark()
        result = await self._eval(
            self._replace, keys, _version_bytes(expected_version), value, pxat, raw,
            int(record.user_id is not None), user, fp,
        )  # fmt: skip
        status = result[0]
        if status == b"OK":
            await self._announced([raw], mark)
        if status == b"N":
            raise NotFound(record.id)
        if status == b"C":
            raise VersionConflict(record.id)
        if len(result) > 1 and result[1]:
            await self._unindex(result[1], raw)

    async def _unindex(self, user: bytes, raw: bytes) -> None:
        await self._index_entry(user, b"remove", raw, 0)

    async def touch(self, session_id: str, *, last_seen: float, expires_at: float) -> None:
        raw = self._raw(session_id)
        if raw is None:
            return
        pxat = self._pxat(expires_at)
        mark = await self._mark()
        result = await self._eval(
            self._touch, [self._prefix + raw], _DOUBLE.pack(last_seen), _DOUBLE.pack(expires_at),
            pxat,
        )  # fmt: skip
        if result:
            await self._announced([raw], mark)
        if isinstance(result, bytes):
            await self._index_entry(result, b"extend", b"", pxat)

    async def delete(self, session_id: str) -> bool:
        raw = self._raw(session_id)
        return False if raw is None else await self._delete_one(raw)

    async def _delete_one(
        self, raw: bytes, *, expected: bytes = b"", owner: bytes | None = None
    ) -> bool:
        mark = await self._mark()
        result = await self._eval(
            self._delete, [self._prefix + raw], raw, expected, int(owner is not None), owner or b""
        )
        if result:
            await self._announced([raw], mark)
        if isinstance(result, bytes):
            await self._unindex(result, raw)
            return True
        return bool(result)

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        user = _utf8(user_id)
        records = await self._members(user)
        records.sort(key=lambda r: (r.created_at, r.id))
        return records

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        user = _utf8(user_id)
        _, fp, ikey = self._hashed(user)
        kept = (self._raw(keep) or b"") if keep is not None else b""
        mark = await self._mark()
        deleted, foreign = await self._eval(self._user, [ikey], user, b"delete", kept, fp)
        await self._announced(deleted, mark)
        ids = [self._id(m) for m in deleted]
        for member in foreign:
            if await self._delete_one(member, owner=user):
                ids.append(self._id(member))
            else:
                await self._index_entry(user, b"remove", member, 0)
        return ids

    async def purge_expired(self, now: float) -> int:
        """Walks the keyspace (``SCAN``, every master) and deletes records whose
        ``expires_at <= now``, each only if unchanged since it was read. Redis already drops
        records at their TTL, so production deployments rarely need this."""
        if self._unmapped:
            await self._map_slots()
        size = len(self._prefix) + _ID_BYTES
        batch: list[bytes] = []
        total = 0
        with _TRANSLATED:
            async for key in self._client.scan_iter(count=1000, _type="string"):
                if len(key) == size and key.startswith(self._prefix):
                    batch.append(key)
                    if len(batch) >= 500:
                        total += await self._purge_batch(batch, now)
                        batch = []
        if batch:
            total += await self._purge_batch(batch, now)
        return total

    async def _purge_batch(self, keys: list[bytes], now: float) -> int:
        with _TRANSLATED:
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            values = await pipe.execute()
        total = 0
        start = len(self._prefix)
        for key, value in zip(keys, values, strict=True):
            if not value:
                continue
            raw = key[start:]
            try:
                record = _decode(self._id(raw), value)
            except StoreCorrupt:
                continue
            if record.expires_at <= now and await self._delete_one(raw, expected=value):
                total += 1
        return total

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        pubsub, self._pubsub = self._pubsub, None
        lanes = [*(self._lanes or {}).values(), *([self._lane] if self._lane else [])]
        self._lane = self._lanes = None
        with _TRANSLATED:
            for lane in lanes:
                for conn in lane.idle:
                    await conn.disconnect()
            if pubsub is not None:
                await pubsub.aclose()
            await self._client.aclose()

    async def ping(self) -> bool:
        """True when the server answers (for health checks)."""
        with _TRANSLATED:
            return bool(await self._client.ping())
