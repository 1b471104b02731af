"""The PostgreSQL store (needs the extra: ``pip install 'sessionward[postgres]'``).

    from sessionward.stores.postgres import PostgresStore, AsyncPostgresStore

    store = PostgresStore("postgresql://app@db.internal:5432/app")
    store = AsyncPostgresStore("host=/run/postgresql dbname=app", schema="sessions")

Importing ``sessionward`` never imports psycopg; only this module does.
"""

from sessionward.stores._async.postgres import AsyncPostgresStore
from sessionward.stores._sync.postgres import PostgresStore

__all__ = ["AsyncPostgresStore", "PostgresStore"]
