"""Read-only SQLite MCP server: list tables, describe them, run SELECT queries with a row limit.

The database is opened read-only (`mode=ro`, `query_only`) and an authorizer refuses anything
but reading, so no statement can change it; one statement per call; results are bounded.

    python -m agentforge.tools.servers.sqlite DATABASE [--http --port 8765 --token T]
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from agentforge.tools.mcp_server import MCPToolServer, Prompt
from agentforge.tools.servers._cli import serve_main
from agentforge.tools.tool import Tool

MAX_ROWS = 1000
MAX_RESULT_BYTES = 512 * 1024
_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_PRAGMA}
_SAFE_PRAGMAS = {"table_info", "table_list", "index_list", "index_info", "foreign_key_list"}


class QueryError(ValueError):
    pass


def _authorize(action, arg1, arg2, db, trigger):
    if action == sqlite3.SQLITE_PRAGMA:
        return sqlite3.SQLITE_OK if arg1 in _SAFE_PRAGMAS else sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK if action in _READ_ACTIONS else sqlite3.SQLITE_DENY


def build(database: str | Path) -> MCPToolServer:
    path = Path(database).resolve()
    if not path.is_file():
        raise ValueError(f"{database} is not a file")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    conn.execute("PRAGMA query_only = ON")
    conn.set_authorizer(_authorize)
    lock = threading.Lock()

    def run(sql: str, params: tuple = (), limit: int = MAX_ROWS) -> dict:
        with lock:
            try:
                cursor = conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise QueryError(f"query refused or failed: {exc}") from exc
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchmany(limit + 1)
        truncated = len(rows) > limit
        rows = [list(r) for r in rows[:limit]]
        if sum(len(repr(r)) for r in rows) > MAX_RESULT_BYTES:
            raise QueryError(f"the result is larger than {MAX_RESULT_BYTES} bytes: select fewer columns or rows")
        return {"columns": columns, "rows": rows, "truncated": truncated}

    def list_tables() -> list[str]:
        """The tables of the database."""
        return [r[0] for r in run("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")["rows"]]

    def describe_table(table: str) -> list[dict]:
        """The columns of a table: name, type, whether it may be null, default, primary key.

        Args:
            table: The table's name.
        """
        if table not in list_tables():
            raise QueryError(f"no table named {table!r}")
        quoted = table.replace('"', '""')  # a known table name, quoted as an identifier
        rows = run(f'PRAGMA table_info("{quoted}")')["rows"]
        return [{"name": n, "type": t, "nullable": not nn, "default": d, "primary_key": bool(pk)}
                for _, n, t, nn, d, pk in rows]

    def query(sql: str, limit: int = 100) -> dict:
        """Run one read-only SQL query (SELECT / WITH); returns columns, rows and whether rows were cut.

        Args:
            sql: The query. Statements that write are refused.
            limit: At most this many rows (1-1000).
        """
        if not 1 <= limit <= MAX_ROWS:
            raise QueryError(f"limit must be between 1 and {MAX_ROWS}")
        return run(sql, limit=limit)

    explore = Prompt("explore", lambda topic: f"Explore the SQLite database to answer: {topic}. Start with "
                     "list_tables, then describe_table, then query.", "Answer a question from the database",
                     [("topic", "What to find out", True)])
    return MCPToolServer("sqlite", [Tool(list_tables), Tool(describe_table), Tool(query)], prompts=[explore],
                         instructions="A read-only SQLite database.")


if __name__ == "__main__":
    serve_main(lambda args: build(args.database), __doc__, lambda p: p.add_argument("database"))
