"""The dependency rule of ../shared/ARCHITECTURE.md, checked on every module by walking its imports.

- `engine/`, `graphs/` and `tools/` never import the application layer (`agentforge.<app>` or the
  `agentforge` package itself), and never each other — except the engine's shared surface, which
  graphs/ and tools/ may import: `agentforge.engine.protocol`, `.errors` and `.tool_schema`.
- Inside the application layer imports go downward only: tracing and prompts at the bottom, then agents, then
  rag, then a2a / eval / finetune / integrations, then server, and cli (which starts the server) on top.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOWER = {"engine": "agentforge.engine", "graphs": "agentforge.graphs", "tools": "agentforge.tools"}
SHARED_SURFACE = {"agentforge.engine.protocol", "agentforge.engine.errors", "agentforge.engine.tool_schema"}
APP_LEVELS = {"tracing": 0, "prompts": 0, "agents": 1, "rag": 2, "a2a": 3, "eval": 3, "finetune": 3, "integrations": 3,
              "server": 4, "cli": 5}


def imports(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in `path`, a module of `package`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def owner(module: str) -> str | None:
    """Which part of the project an absolute module name belongs to: a lower layer, an app package, the root."""
    if module == "agentforge":
        return "root"
    if not module.startswith("agentforge."):
        return None
    first = module.split(".")[1]
    return first if first in LOWER or first in APP_LEVELS else "root"


def violations(root: Path = ROOT) -> list[str]:
    problems = []
    for folder, package in [*LOWER.items(), ("agentforge", "agentforge")]:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            module_package = ".".join([package, *parts[:-1]] if path.name != "__init__.py" else [package, *parts])
            me = folder if folder in LOWER else (parts[0] if parts else "root")
            for line, target in imports(path, module_package):
                them = owner(target)
                where = f"{path.relative_to(root)}:{line} imports {target}"
                if them is None or them == me:
                    continue
                if me in LOWER:
                    if them in LOWER and not any(target.startswith(s + ".") for s in SHARED_SURFACE):
                        problems.append(f"{where}: {me}/ may use only the engine's shared surface "
                                        f"({', '.join(sorted(SHARED_SURFACE))})")
                    elif them not in LOWER:
                        problems.append(f"{where}: {me}/ must not import the application layer")
                elif me in APP_LEVELS and them in APP_LEVELS and APP_LEVELS[them] >= APP_LEVELS[me]:
                    problems.append(f"{where}: {me} may import only lower application packages")
                elif me in APP_LEVELS and them == "root" and APP_LEVELS[me] < APP_LEVELS["server"]:
                    problems.append(f"{where}: only server and cli may import the agentforge package itself")
    return problems


def test_every_import_follows_the_layer_rule():
    assert violations() == []


def test_the_check_catches_forbidden_imports(tmp_path):
    for folder in (*LOWER, "agentforge"):
        (tmp_path / folder).mkdir()
    (tmp_path / "agentforge" / "tracing").mkdir()
    (tmp_path / "agentforge" / "agents").mkdir()
    (tmp_path / "tools" / "ok.py").write_text("from agentforge.engine.protocol import ChatMessage\n")
    (tmp_path / "tools" / "bad.py").write_text("from agentforge.engine.tool_format import ToolCalling\n")
    (tmp_path / "graphs" / "bad.py").write_text("from agentforge import __version__\nimport agentforge.agents\n")
    (tmp_path / "engine" / "bad.py").write_text("from agentforge.graphs import StateGraph\n")
    (tmp_path / "agentforge" / "tracing" / "bad.py").write_text("from ..agents import react\n")
    (tmp_path / "agentforge" / "agents" / "ok.py").write_text("from agentforge.tracing import spans\n")
    found = "\n".join(violations(tmp_path))
    assert "tools/bad.py:1 imports agentforge.engine.tool_format" in found
    assert "graphs/bad.py:1 imports agentforge.__version__" in found and "graphs/bad.py:2" in found
    assert "engine/bad.py:1 imports agentforge.graphs" in found
    assert "agentforge/tracing/bad.py:1 imports agentforge.agents.react" in found
    assert "ok.py" not in found
