"""The Redis store: standalone, Sentinel or Cluster (needs the extra: ``pip install
'sessionward[redis]'``).

    from sessionward.stores.redis import RedisStore, AsyncRedisStore

    store = RedisStore("redis://127.0.0.1:6379/0")                           # standalone
    store = RedisStore("rediss://cache.example:6380/0")                      # TLS
    store = RedisStore("redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster")  # Sentinel
    store = RedisStore("redis+cluster://10.0.0.1:7000,10.0.0.2:7000")        # Redis Cluster

Options, keys, memory and failure behaviour: ``sessionward.stores._async.redis``. Importing
``sessionward`` never imports redis-py; only this module does.
"""

from sessionward.stores._async.redis import AsyncRedisStore, AsyncRedisSubscription
from sessionward.stores._sync.redis import RedisStore, RedisSubscription

__all__ = ["AsyncRedisStore", "AsyncRedisSubscription", "RedisStore", "RedisSubscription"]
