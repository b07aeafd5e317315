"""`SqliteStore`: the long-term memory store in an SQLite file (the embedded default)."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

import numpy as np

from .memory import BaseStore, Item, Namespace

_SCHEMA = """CREATE TABLE IF NOT EXISTS store (
    namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, embedding BLOB,
    PRIMARY KEY (namespace, key))"""
_SEP = "\x1f"  # joins namespace parts (refused inside them); every stored namespace ends with it


class SqliteStore(BaseStore):
    """A store in an SQLite file (":memory:" for a throwaway one); safe across threads."""

    def __init__(self, path: str | Path, *, index: dict | None = None) -> None:
        super().__init__(index=index)
        self.conn = sqlite3.connect(str(path), check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(_SCHEMA)
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()

    def _write(self, item, vector):
        blob = None if vector is None else np.asarray(vector, dtype=np.float32).tobytes()
        self.conn.execute("INSERT OR REPLACE INTO store VALUES (?, ?, ?, ?, ?, ?)",
                          (encode_namespace(item.namespace), item.key, json.dumps(item.value), item.created_at.isoformat(),
                           item.updated_at.isoformat(), blob))
        self.conn.commit()

    def _read(self, namespace, key):
        row = self.conn.execute("SELECT namespace, key, value, created_at, updated_at, embedding FROM store "
                                "WHERE namespace = ? AND key = ?", (encode_namespace(namespace), key)).fetchone()
        return _item(row)[0] if row else None

    def _remove(self, namespace, key):
        self.conn.execute("DELETE FROM store WHERE namespace = ? AND key = ?", (encode_namespace(namespace), key))
        self.conn.commit()

    def _scan(self, prefix):
        encoded = encode_namespace(prefix)
        rows = self.conn.execute("SELECT namespace, key, value, created_at, updated_at, embedding FROM store "
                                 "WHERE substr(namespace, 1, ?) = ?", (len(encoded), encoded))
        return [_item(row) for row in rows]


def encode_namespace(namespace: Namespace) -> str:
    """The namespace as one string whose prefixes are its prefixes' encodings."""
    return "".join(part + _SEP for part in namespace)


def decode_namespace(encoded: str) -> Namespace:
    return tuple(encoded.split(_SEP)[:-1])


def _item(row) -> tuple[Item, np.ndarray | None]:
    namespace, key, value, created, updated, blob = row
    vector = None if blob is None else np.frombuffer(blob, dtype=np.float32)
    return Item(json.loads(value), key, decode_namespace(namespace), datetime.fromisoformat(created), datetime.fromisoformat(updated)), vector
