"""Sandboxed filesystem MCP server: list, read, search and write files under one root directory.

Every path is resolved (symlinks included) before use and must stay under the root: `..`,
absolute paths elsewhere and symlinks pointing out are refused. Reads and listings are bounded.

    python -m agentforge.tools.servers.filesystem ROOT [--read-only] [--http --port 8765 --token T]
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from agentforge.tools.mcp_server import MCPToolServer, Resource
from agentforge.tools.servers._cli import serve_main
from agentforge.tools.tool import Tool

MAX_READ = 256 * 1024
MAX_WRITE = 1024 * 1024
MAX_ENTRIES = 500


class SandboxError(ValueError):
    pass


class Sandbox:
    """Paths relative to `root`, never outside it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ValueError(f"{root} is not a directory")

    def path(self, path: str) -> Path:
        if not isinstance(path, str) or "\x00" in path:
            raise SandboxError("invalid path")
        candidate = Path(path) if os.path.isabs(path) else self.root / path
        resolved = candidate.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise SandboxError(f"access denied: {path!r} is outside the allowed directory")
        return resolved

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.root)) or "."


def build(root: str | Path, read_only: bool = False) -> MCPToolServer:
    box = Sandbox(root)

    def list_directory(path: str = ".") -> list[str]:
        """List a directory under the root: names, with a trailing "/" for directories.

        Args:
            path: Directory relative to the root ("." is the root itself).
        """
        directory = box.path(path)
        if not directory.is_dir():
            raise SandboxError(f"{path!r} is not a directory")
        entries = sorted(directory.iterdir())
        if len(entries) > MAX_ENTRIES:
            raise SandboxError(f"{path!r} has {len(entries)} entries; the limit is {MAX_ENTRIES}: use search_files")
        return [e.name + ("/" if e.is_dir() else "") for e in entries]

    def read_file(path: str, offset: int = 0, length: int = 65536) -> str:
        """Read a text file under the root, `length` bytes from `offset` (at most 256 KiB per call).

        Args:
            path: File relative to the root.
            offset: Byte offset to start at.
            length: How many bytes to read.
        """
        file = box.path(path)
        if not file.is_file():
            raise SandboxError(f"{path!r} is not a file")
        if offset < 0 or length < 1 or length > MAX_READ:
            raise SandboxError(f"offset must be >= 0 and length between 1 and {MAX_READ}")
        with open(file, "rb") as f:
            f.seek(offset)
            data = f.read(length)
        return data.decode("utf-8", errors="replace")

    def search_files(pattern: str, path: str = ".") -> list[str]:
        """Find files whose name matches a glob pattern (e.g. "*.md"), under a directory of the root.

        Args:
            pattern: Glob on the file name.
            path: Directory to search in, relative to the root.
        """
        base = box.path(path)
        found = []
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            for name in filenames + dirnames:
                if fnmatch.fnmatch(name, pattern):
                    found.append(box.relative(Path(dirpath) / name))
                    if len(found) >= MAX_ENTRIES:
                        return found + [f"... (stopped at {MAX_ENTRIES} matches)"]
        return sorted(found)

    def write_file(path: str, content: str) -> str:
        """Write a text file under the root (creating its directory), replacing what was there.

        Args:
            path: File relative to the root.
            content: The new text.
        """
        if len(content.encode()) > MAX_WRITE:
            raise SandboxError(f"content is larger than the {MAX_WRITE}-byte limit")
        file = box.path(path)
        if file == box.root or file.is_dir():
            raise SandboxError(f"{path!r} is a directory")
        file.parent.mkdir(parents=True, exist_ok=True)
        box.path(box.relative(file.parent))  # the created parent is still inside (no race through a symlink)
        file.write_text(content, encoding="utf-8")
        return f"wrote {len(content)} characters to {box.relative(file)}"

    tools = [Tool(list_directory), Tool(read_file), Tool(search_files)]
    if not read_only:
        tools.append(Tool(write_file))
    readme = Resource("file:///", "root listing", lambda: "\n".join(list_directory(".")),
                      description="The entries at the root of the allowed directory")
    return MCPToolServer("filesystem", tools, resources=[readme],
                         instructions=f"Files under {box.root}; paths are relative to it.")


if __name__ == "__main__":
    serve_main(lambda args: build(args.root, args.read_only), __doc__, lambda p: (
        p.add_argument("root"), p.add_argument("--read-only", action="store_true")))
