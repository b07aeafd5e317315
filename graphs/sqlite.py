"""`SqliteSaver`: checkpoints in one SQLite file (stdlib `sqlite3`, WAL) — the embedded default.

A run saves each task's writes as the task finishes and each checkpoint at its barrier, in one
transaction each, so a process killed at any moment resumes from the last completed step with the
finished tasks of the interrupted step kept.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from .checkpoint import BaseCheckpointSaver

SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    thread_id TEXT NOT NULL, ns TEXT NOT NULL, id TEXT NOT NULL, parent_id TEXT, data BLOB NOT NULL,
    PRIMARY KEY (thread_id, ns, id));
CREATE TABLE IF NOT EXISTS blobs (
    thread_id TEXT NOT NULL, ns TEXT NOT NULL, channel TEXT NOT NULL, version TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (thread_id, ns, channel, version));
CREATE TABLE IF NOT EXISTS writes (
    thread_id TEXT NOT NULL, ns TEXT NOT NULL, checkpoint_id TEXT NOT NULL, task_id TEXT NOT NULL,
    idx INTEGER NOT NULL, channel TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (thread_id, ns, checkpoint_id, task_id, idx));
"""


class SqliteSaver(BaseCheckpointSaver):
    """Checkpoints in a SQLite database file (":memory:" for a throwaway one).

    >>> saver = SqliteSaver("threads.db")
    >>> app = graph.compile(checkpointer=saver)
    """

    def __init__(self, path: str | Path = ":memory:") -> None:
        super().__init__()
        self.path = str(path)
        # other connections may share the file (another process, an A2A task store): transactions take
        # the write lock when they begin (BEGIN) and wait up to `timeout` for it
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a killed process
        self.conn.executescript(SCHEMA)
        self._conn_lock = threading.Lock()

    @classmethod
    def from_conn_string(cls, path: str) -> SqliteSaver:
        return cls(path)

    def close(self) -> None:
        self.conn.close()

    def _put(self, thread_id, ns, checkpoint_id, parent_id, data, blobs) -> None:
        with self._conn_lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.executemany(
                    "INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?, ?)",
                    [(thread_id, ns, channel, version, blob) for channel, version, blob in blobs],
                )
                self.conn.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?)",
                                  (thread_id, ns, checkpoint_id, parent_id, data))
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    def _put_writes(self, thread_id, ns, checkpoint_id, task_id, rows) -> None:
        with self._conn_lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                start = self.conn.execute(  # a task may write again (interrupt, resume...)
                    "SELECT COALESCE(MAX(idx) + 1, 0) FROM writes WHERE thread_id = ? AND ns = ? AND checkpoint_id = ? "
                    "AND task_id = ?", (thread_id, ns, checkpoint_id, task_id),
                ).fetchone()[0]
                self.conn.executemany(
                    "INSERT INTO writes VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(thread_id, ns, checkpoint_id, task_id, start + idx, channel, value) for idx, channel, value in rows],
                )
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    def _get(self, thread_id, ns, checkpoint_id):
        with self._conn_lock:
            if checkpoint_id is None:
                return self.conn.execute(
                    "SELECT id, parent_id, data FROM checkpoints WHERE thread_id = ? AND ns = ? ORDER BY id DESC LIMIT 1",
                    (thread_id, ns),
                ).fetchone()
            return self.conn.execute(
                "SELECT id, parent_id, data FROM checkpoints WHERE thread_id = ? AND ns = ? AND id = ?",
                (thread_id, ns, checkpoint_id),
            ).fetchone()

    def _list(self, thread_id, ns, before_id, limit):
        query = "SELECT id, parent_id, data FROM checkpoints WHERE thread_id = ? AND ns = ?"
        params: list = [thread_id, ns]
        if before_id is not None:
            query += " AND id < ?"
            params.append(before_id)
        query += " ORDER BY id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        with self._conn_lock:
            return self.conn.execute(query, params).fetchall()

    def _get_blob(self, thread_id, ns, channel, version) -> bytes:
        with self._conn_lock:
            row = self.conn.execute(
                "SELECT data FROM blobs WHERE thread_id = ? AND ns = ? AND channel = ? AND version = ?",
                (thread_id, ns, channel, version),
            ).fetchone()
        if row is None:
            raise KeyError(f"checkpoint data for channel {channel!r} version {version!r} is missing")
        return row[0]

    def _get_writes(self, thread_id, ns, checkpoint_id):
        with self._conn_lock:
            return self.conn.execute(
                "SELECT task_id, channel, data FROM writes WHERE thread_id = ? AND ns = ? AND checkpoint_id = ? "
                "ORDER BY task_id, idx",
                (thread_id, ns, checkpoint_id),
            ).fetchall()

    def _delete_thread(self, thread_id) -> None:
        with self._conn_lock:
            for table in ("checkpoints", "blobs", "writes"):
                self.conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))

    def size_bytes(self) -> int:
        """Bytes of stored checkpoint data (rows, channel blobs, pending writes), as in InMemorySaver."""
        with self._conn_lock:
            return sum(
                self.conn.execute(f"SELECT COALESCE(SUM(LENGTH(data)), 0) FROM {table}").fetchone()[0]
                for table in ("checkpoints", "blobs", "writes")
            )
