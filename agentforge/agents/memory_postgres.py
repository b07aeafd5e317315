"""`PostgresStore`: the long-term memory store in PostgreSQL (psycopg 3, pooled), for several
processes sharing memories. `pip install agentforge[postgres]`."""

from __future__ import annotations

import json

import numpy as np

from .memory import BaseStore, Item
from .memory_sqlite import decode_namespace, encode_namespace

SCHEMA = """CREATE TABLE IF NOT EXISTS agentforge_store (
    namespace TEXT NOT NULL, key TEXT NOT NULL, value JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, embedding BYTEA,
    PRIMARY KEY (namespace, key))"""
_COLUMNS = "namespace, key, value, created_at, updated_at, embedding"


class PostgresStore(BaseStore):
    """A store in PostgreSQL.

    >>> store = PostgresStore("postgresql://user@localhost/db", index={"embed": embed, "dims": 384})
    """

    def __init__(self, conninfo: str, *, index: dict | None = None, min_size: int = 1, max_size: int = 4) -> None:
        super().__init__(index=index)
        from psycopg_pool import ConnectionPool

        self.pool = ConnectionPool(conninfo, min_size=min_size, max_size=max_size, open=True,
                                   kwargs={"autocommit": True})
        with self.pool.connection() as conn:
            conn.execute(SCHEMA)

    def close(self) -> None:
        self.pool.close()

    def _write(self, item, vector):
        blob = None if vector is None else np.asarray(vector, dtype=np.float32).tobytes()
        with self.pool.connection() as conn:
            conn.execute(f"INSERT INTO agentforge_store ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) "
                         "ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, "
                         "updated_at = EXCLUDED.updated_at, embedding = EXCLUDED.embedding",
                         (encode_namespace(item.namespace), item.key, json.dumps(item.value), item.created_at,
                          item.updated_at, blob))

    def _read(self, namespace, key):
        with self.pool.connection() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM agentforge_store WHERE namespace = %s AND key = %s",
                               (encode_namespace(namespace), key)).fetchone()
        return _item(row)[0] if row else None

    def _remove(self, namespace, key):
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM agentforge_store WHERE namespace = %s AND key = %s",
                         (encode_namespace(namespace), key))

    def _scan(self, prefix):
        encoded = encode_namespace(prefix)
        with self.pool.connection() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM agentforge_store WHERE left(namespace, %s) = %s",
                                (len(encoded), encoded)).fetchall()
        return [_item(row) for row in rows]


def _item(row) -> tuple[Item, np.ndarray | None]:
    namespace, key, value, created, updated, blob = row
    vector = None if blob is None else np.frombuffer(bytes(blob), dtype=np.float32)
    return Item(value, key, decode_namespace(namespace), created, updated), vector
