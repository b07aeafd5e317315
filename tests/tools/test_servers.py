"""The shipped filesystem and SQLite servers refuse what they must: traversal, symlink escapes,
writes outside the root, SQL that writes, huge results, malformed arguments."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from agentforge.tools.mcp_client import MCPClient, StdioServer
from agentforge.tools.servers import filesystem, sqlite


@pytest.fixture
def sandbox(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "notes.md").write_text("# Notes\nhello")
    (root / "docs").mkdir()
    (root / "docs" / "guide.md").write_text("guide")
    (outside / "secret.txt").write_text("top secret")
    os.symlink(outside / "secret.txt", root / "link_to_secret")
    os.symlink(outside, root / "link_to_outside")
    return root, outside


def call(server, name, arguments):
    return server.tools[name].invoke(arguments)


def test_filesystem_reads_lists_searches_and_writes_inside_the_root(sandbox):
    root, _ = sandbox
    fs = filesystem.build(root)
    assert json.loads(call(fs, "list_directory", {}).content) == ["docs/", "link_to_outside/", "link_to_secret", "notes.md"]
    assert call(fs, "read_file", {"path": "notes.md"}).content == "# Notes\nhello"
    assert call(fs, "read_file", {"path": "notes.md", "offset": 8, "length": 5}).content == "hello"
    assert json.loads(call(fs, "search_files", {"pattern": "*.md"}).content) == ["docs/guide.md", "notes.md"]
    assert not call(fs, "write_file", {"path": "new/dir/file.txt", "content": "ok"}).is_error
    assert (root / "new" / "dir" / "file.txt").read_text() == "ok"


@pytest.mark.parametrize(
    "tool, arguments",
    [
        ("read_file", {"path": "../outside/secret.txt"}),
        ("read_file", {"path": "docs/../../outside/secret.txt"}),
        ("read_file", {"path": "/etc/passwd"}),
        ("read_file", {"path": "link_to_secret"}),
        ("read_file", {"path": "link_to_outside/secret.txt"}),
        ("list_directory", {"path": ".."}),
        ("list_directory", {"path": "link_to_outside"}),
        ("search_files", {"pattern": "*", "path": "../outside"}),
        ("write_file", {"path": "../outside/evil.txt", "content": "x"}),
        ("write_file", {"path": "link_to_outside/evil.txt", "content": "x"}),
        ("write_file", {"path": "link_to_secret", "content": "overwritten"}),
    ],
)
def test_filesystem_refuses_escapes(sandbox, tool, arguments):
    root, outside = sandbox
    result = call(filesystem.build(root), tool, arguments)
    assert result.is_error and "outside the allowed directory" in result.content
    assert (outside / "secret.txt").read_text() == "top secret"
    assert not (outside / "evil.txt").exists()


def test_filesystem_bounds_and_bad_arguments(sandbox):
    root, _ = sandbox
    fs = filesystem.build(root)
    (root / "big.bin").write_bytes(b"x" * (filesystem.MAX_READ + 10))
    assert "length between 1 and" in call(fs, "read_file", {"path": "big.bin", "length": filesystem.MAX_READ + 1}).content
    assert len(call(fs, "read_file", {"path": "big.bin", "length": filesystem.MAX_READ}).content) == filesystem.MAX_READ
    assert "larger than" in call(fs, "write_file", {"path": "huge.txt", "content": "y" * (filesystem.MAX_WRITE + 1)}).content
    assert "is not a file" in call(fs, "read_file", {"path": "docs"}).content
    assert "invalid arguments" in call(fs, "read_file", {"path": 42}).content
    assert "invalid arguments" in call(fs, "read_file", {}).content
    assert "invalid path" in call(fs, "read_file", {"path": "a\x00b"}).content
    read_only = filesystem.build(root, read_only=True)
    assert "write_file" not in read_only.tools


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, product_id INTEGER REFERENCES products(id), qty INTEGER);
    """)
    conn.executemany("INSERT INTO products (name, price) VALUES (?, ?)", [(f"item {i}", i * 1.5) for i in range(2000)])
    conn.commit()
    conn.close()
    return path


def test_sqlite_lists_describes_and_queries(database):
    db = sqlite.build(database)
    assert json.loads(call(db, "list_tables", {}).content) == ["orders", "products"]
    columns = json.loads(call(db, "describe_table", {"table": "products"}).content)
    assert [(c["name"], c["type"], c["primary_key"]) for c in columns] == [
        ("id", "INTEGER", True), ("name", "TEXT", False), ("price", "REAL", False)]
    result = json.loads(call(db, "query", {"sql": "SELECT name, price FROM products WHERE id <= 3 ORDER BY id"}).content)
    assert result == {"columns": ["name", "price"], "rows": [["item 0", 0.0], ["item 1", 1.5], ["item 2", 3.0]],
                      "truncated": False}
    limited = json.loads(call(db, "query", {"sql": "SELECT id FROM products", "limit": 10}).content)
    assert len(limited["rows"]) == 10 and limited["truncated"] is True


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM products",
        "UPDATE products SET price = 0",
        "INSERT INTO products (name) VALUES ('x')",
        "DROP TABLE products",
        "CREATE TABLE t (x)",
        "ATTACH DATABASE '/tmp/other.db' AS other",
        "PRAGMA journal_mode = DELETE",
        "SELECT 1; DELETE FROM products",
        "WITH x AS (SELECT 1) DELETE FROM products",
    ],
)
def test_sqlite_refuses_sql_that_writes(database, sql):
    result = call(sqlite.build(database), "query", {"sql": sql})
    assert result.is_error and "refused or failed" in result.content
    conn = sqlite3.connect(database)
    assert conn.execute("SELECT COUNT(*) FROM products").fetchone()[0] == 2000
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["products", "orders"]


def test_sqlite_bounds_and_bad_arguments(database):
    db = sqlite.build(database)
    assert "limit must be between 1 and 1000" in call(db, "query", {"sql": "SELECT 1", "limit": 5000}).content
    huge = call(db, "query", {"sql": "SELECT zeroblob(1000000) || 'x' FROM products", "limit": 1000})
    assert huge.is_error and "larger than" in huge.content
    assert "no table named" in call(db, "describe_table", {"table": "nope'; DROP TABLE products; --"}).content
    assert "invalid arguments" in call(db, "query", {"sql": ["SELECT 1"]}).content
    assert "refused or failed" in call(db, "query", {"sql": "SELEKT 1"}).content


def test_shipped_servers_run_on_their_own_over_stdio(sandbox, database):
    root, _ = sandbox
    servers = {"fs": StdioServer(sys.executable, ["-m", "agentforge.tools.servers.filesystem", str(root), "--read-only"]),
               "db": StdioServer(sys.executable, ["-m", "agentforge.tools.servers.sqlite", str(database)])}
    with MCPClient(servers) as mcp:
        names = sorted(t.name for t in mcp.get_tools())
        assert names == ["db_describe_table", "db_list_tables", "db_query", "fs_list_directory", "fs_read_file",
                         "fs_search_files"]
        assert mcp.call_tool("fs", "read_file", {"path": "notes.md"}).content == "# Notes\nhello"
        assert "outside" in mcp.call_tool("fs", "read_file", {"path": "../outside/secret.txt"}).content
        assert json.loads(mcp.call_tool("db", "query", {"sql": "SELECT COUNT(*) FROM products"}).content)["rows"] == [[2000]]
        assert "Explore the SQLite database" in mcp.get_prompt("db", "explore", {"topic": "prices"})[0]["content"]
        assert "notes.md" in mcp.read_resource("fs", "file:///")


def test_cli_serves_a_shipped_server(tmp_path):
    missing = subprocess.run([sys.executable, "-m", "agentforge.cli", "mcp", "serve", "filesystem"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "needs a root directory" in missing.stderr
    with MCPClient({"calc": StdioServer(sys.executable, ["-m", "agentforge.cli", "mcp", "serve", "calculator"])}) as mcp:
        assert mcp.call_tool("calc", "calculate", {"expression": "6 * 7"}).content == "42"
