"""`agentforge ingest`, `agentforge ask` (end to end on SmolLM2: a cited answer naming the right
file) and the knowledge-base MCP server `agentforge mcp serve kb --kb NAME`."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from agentforge.cli import main
from agentforge.tools.mcp_client import MCPClient, StdioServer


@pytest.fixture(scope="module")
def cli_kb(tmp_path_factory, corpus):
    path = tmp_path_factory.mktemp("cli-kb")
    assert main(["ingest", str(corpus[0]), "--kb", "fixture", "--kb-path", str(path)]) == 0
    return path


def test_ingest_reports_what_changed(cli_kb, corpus, capsys, tmp_path):
    capsys.readouterr()
    assert main(["ingest", str(corpus[0]), "--kb", "fixture", "--kb-path", str(cli_kb)]) == 0
    assert re.search(r"fixture: \d+ documents, 2\d\d chunks \(0 added, 0 updated, 0 removed, 2\d\d unchanged; 0 embedded\)",
                     capsys.readouterr().out)
    (tmp_path / "empty.md").write_text("")
    assert main(["ingest", str(tmp_path / "empty.md"), "--kb", "other", "--kb-path", str(tmp_path / "kb")]) == 1
    assert "empty.md: empty file" in capsys.readouterr().err
    assert main(["ask", "anything?", "--kb", "nothing-here", "--kb-path", str(tmp_path / "kb2")]) == 2
    assert "is empty" in capsys.readouterr().err


@pytest.mark.slow
def test_ask_answers_with_a_citation_that_names_the_right_file(cli_kb, corpus):
    question = corpus[1][1]  # "Which product of Belmoson Dynamics checks the blades of wind turbines?"
    out = subprocess.run([sys.executable, "-m", "agentforge.cli", "ask", question.question, "--kb", "fixture",
                          "--kb-path", str(cli_kb)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    answer, sources = out.stdout.split("\nSources:\n")
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", answer)}
    listed = dict(re.findall(r"^\[(\d+)\] (\S+)", sources, re.M))
    assert cited and cited == {int(n) for n in listed}
    assert any(listed[str(n)].endswith("/" + question.file) for n in cited), out.stdout


def test_knowledge_base_mcp_server(cli_kb, corpus):
    question = corpus[1][0]
    server = StdioServer(sys.executable, ["-m", "agentforge.cli", "mcp", "serve", "kb", "--kb", "fixture",
                                          "--kb-path", str(cli_kb)])
    with MCPClient({"kb": server}, timeout=120) as mcp:
        assert {t.name for t in mcp.get_tools()} == {"kb_search", "kb_list_sources"}
        found = mcp.call_tool("kb", "search", {"query": question.question, "k": 3}).content
        assert found.startswith("[1] ") and question.file in found
        assert f"{question.file} (" in mcp.call_tool("kb", "list_sources").content
        assert mcp.call_tool("kb", "search", {"query": ""}).is_error

