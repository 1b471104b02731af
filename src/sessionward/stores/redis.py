"""The Redis store, standalone or Cluster (needs the extra: ``pip install 'sessionward[redis]'``).

    from sessionward.stores.redis import RedisStore, AsyncRedisStore

    store = RedisStore("redis://127.0.0.1:6379/0")            # standalone
    store = RedisStore("rediss://cache.example:6380/0")       # TLS
    store = RedisStore("redis+cluster://10.0.0.1:7000,10.0.0.2:7000")  # Redis Cluster

Importing ``sessionward`` never imports redis-py; only this module does.
"""

from sessionward.stores._async.redis import AsyncRedisStore
from sessionward.stores._sync.redis import RedisStore

__all__ = ["AsyncRedisStore", "RedisStore"]
