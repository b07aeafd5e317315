"""`PostgresSaver`: checkpoints in PostgreSQL (psycopg 3, pooled) for several processes sharing threads.

Same tables and contract as `SqliteSaver`; every save is one transaction.
"""

from __future__ import annotations

from .checkpoint import BaseCheckpointSaver

SCHEMA = """
CREATE TABLE IF NOT EXISTS agentforge_checkpoints (
    thread_id TEXT NOT NULL, ns TEXT NOT NULL, id TEXT NOT NULL, parent_id TEXT, data BYTEA NOT NULL,
    PRIMARY KEY (thread_id, ns, id));
CREATE TABLE IF NOT EXISTS agentforge_blobs (
    thread_id TEXT NOT NULL, ns TEXT NOT NULL, channel TEXT NOT NULL, version TEXT NOT NULL, data BYTEA NOT NULL,
    PRIMARY KEY (thread_id, ns, channel, version));
CREATE TABLE IF NOT EXISTS agentforge_writes (
    thread_id TEXT NOT NULL, ns TEXT NOT NULL, checkpoint_id TEXT NOT NULL, task_id TEXT NOT NULL,
    idx INTEGER NOT NULL, channel TEXT NOT NULL, data BYTEA NOT NULL,
    PRIMARY KEY (thread_id, ns, checkpoint_id, task_id, idx));
"""
TABLES = ("agentforge_checkpoints", "agentforge_blobs", "agentforge_writes")


class PostgresSaver(BaseCheckpointSaver):
    """Checkpoints in PostgreSQL through a psycopg connection pool.

    >>> saver = PostgresSaver("postgresql://user@localhost/db")
    >>> app = graph.compile(checkpointer=saver)
    """

    def __init__(self, conninfo: str, *, min_size: int = 1, max_size: int = 8) -> None:
        super().__init__()
        from psycopg_pool import ConnectionPool

        self.conninfo = conninfo

        self.pool = ConnectionPool(conninfo, min_size=min_size, max_size=max_size, open=True,
                                   kwargs={"autocommit": True})
        with self.pool.connection() as conn:
            conn.execute(SCHEMA)

    @classmethod
    def from_conn_string(cls, conninfo: str) -> PostgresSaver:
        return cls(conninfo)

    def close(self) -> None:
        self.pool.close()

    def _put(self, thread_id, ns, checkpoint_id, parent_id, data, blobs) -> None:
        with self.pool.connection() as conn, conn.transaction():
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO agentforge_blobs VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [(thread_id, ns, channel, version, blob) for channel, version, blob in blobs],
                )
                cur.execute(
                    "INSERT INTO agentforge_checkpoints VALUES (%s, %s, %s, %s, %s) "
                    "ON CONFLICT (thread_id, ns, id) DO UPDATE SET data = EXCLUDED.data",
                    (thread_id, ns, checkpoint_id, parent_id, data),
                )

    def _put_writes(self, thread_id, ns, checkpoint_id, task_id, rows) -> None:
        with self.pool.connection() as conn, conn.transaction():
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{thread_id}|{ns}|{checkpoint_id}|{task_id}",))
                cur.execute(
                    "SELECT COALESCE(MAX(idx) + 1, 0) FROM agentforge_writes "
                    "WHERE thread_id = %s AND ns = %s AND checkpoint_id = %s AND task_id = %s",
                    (thread_id, ns, checkpoint_id, task_id),
                )
                start = cur.fetchone()[0]
                cur.executemany(
                    "INSERT INTO agentforge_writes VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [(thread_id, ns, checkpoint_id, task_id, start + idx, channel, value) for idx, channel, value in rows],
                )

    def _get(self, thread_id, ns, checkpoint_id):
        with self.pool.connection() as conn:
            if checkpoint_id is None:
                row = conn.execute(
                    "SELECT id, parent_id, data FROM agentforge_checkpoints WHERE thread_id = %s AND ns = %s "
                    "ORDER BY id DESC LIMIT 1", (thread_id, ns),
                ).fetchone()
            else:
                row = conn.execute(
                    "SELECT id, parent_id, data FROM agentforge_checkpoints WHERE thread_id = %s AND ns = %s AND id = %s",
                    (thread_id, ns, checkpoint_id),
                ).fetchone()
        return None if row is None else (row[0], row[1], bytes(row[2]))

    def _list(self, thread_id, ns, before_id, limit):
        query = "SELECT id, parent_id, data FROM agentforge_checkpoints WHERE thread_id = %s AND ns = %s"
        params: list = [thread_id, ns]
        if before_id is not None:
            query += " AND id < %s"
            params.append(before_id)
        query += " ORDER BY id DESC"
        if limit is not None:
            query += " LIMIT %s"
            params.append(limit)
        with self.pool.connection() as conn:
            return [(r[0], r[1], bytes(r[2])) for r in conn.execute(query, params).fetchall()]

    def _get_blob(self, thread_id, ns, channel, version) -> bytes:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT data FROM agentforge_blobs WHERE thread_id = %s AND ns = %s AND channel = %s AND version = %s",
                (thread_id, ns, channel, version),
            ).fetchone()
        if row is None:
            raise KeyError(f"checkpoint data for channel {channel!r} version {version!r} is missing")
        return bytes(row[0])

    def _get_writes(self, thread_id, ns, checkpoint_id):
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT task_id, channel, data FROM agentforge_writes WHERE thread_id = %s AND ns = %s "
                "AND checkpoint_id = %s ORDER BY task_id, idx", (thread_id, ns, checkpoint_id),
            ).fetchall()
        return [(r[0], r[1], bytes(r[2])) for r in rows]

    def _delete_thread(self, thread_id) -> None:
        with self.pool.connection() as conn, conn.transaction():
            for table in TABLES:
                conn.execute(f"DELETE FROM {table} WHERE thread_id = %s", (thread_id,))

    def size_bytes(self) -> int:
        """Bytes of stored checkpoint data (rows, channel blobs, pending writes)."""
        with self.pool.connection() as conn:
            return sum(conn.execute(f"SELECT COALESCE(SUM(OCTET_LENGTH(data)), 0) FROM {t}").fetchone()[0] for t in TABLES)
