"""The core needs none of LangChain, LangGraph or LlamaIndex: with them hidden (tests/_hidden_interop.py
makes every import of them fail as if uninstalled), every module outside `agentforge.integrations`
imports, core tests across the layers pass, and the adapters say which extra to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}

IMPORT_EVERYTHING = """
import _hidden_interop  # noqa: F401  (hides the packages first)
import importlib, pkgutil
import agentforge, agentforge.engine, agentforge.graphs, agentforge.tools

packages = [agentforge, agentforge.engine, agentforge.graphs, agentforge.tools]
modules = [m.name for p in packages for m in pkgutil.walk_packages(p.__path__, p.__name__ + ".")
           if not m.name.startswith("agentforge.integrations.")]
for name in modules:
    importlib.import_module(name)
print(len(modules), "modules")
for adapter, extra in [("langchain", "langchain"), ("langgraph", "langchain"), ("llamaindex", "llamaindex")]:
    try:
        importlib.import_module("agentforge.integrations." + adapter)
    except ImportError as exc:
        assert f"pip install 'agentforge[{extra}]'" in str(exc), exc
    else:
        raise AssertionError(adapter + " imported without its packages")
"""

CORE_TESTS = ["tests/test_layers.py", "tests/tools/test_tool.py", "tests/graphs/test_context_and_subgraph_state.py",
              "tests/agentforge/rag/test_rag_loaders.py", "tests/agentforge/agents/test_react.py",
              "tests/agentforge/rag/test_rag_ingest.py"]

KILLED_INGEST = "tests/agentforge/rag/test_rag_ingest.py::test_a_killed_ingestion_is_finished_by_the_next_run"  # 20 s, runs anyway


def test_every_core_module_imports_without_the_interop_packages():
    done = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[0]) > 150


def test_core_tests_pass_without_the_interop_packages():
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "_hidden_interop", "-p", "no:cacheprovider",
                           "-m", "not slow", *CORE_TESTS, "--deselect", KILLED_INGEST], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
