"""GraphRAG on the real embedded model (SmolLM2-135M) through the command line: both extraction
methods index a small corpus into a non-empty graph with reports that parse (structured output
holds the model to the schemas), a question gets a cited answer, and the graph MCP server
answers an MCP client."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _graphrag_corpus import DOCS

from agentforge.cli import main
from agentforge.tools.mcp_client import MCPClient, StdioServer

# the model extracts from three documents (a minute on two cores), the NLP method from all five
FILES = {"llm": ["zentrix_labs.md", "orlan.md", "mara_quell.md"],
         "fast": ["zentrix_labs.md", "orlan.md", "renata_szabo.md", "lumen_9.md", "mara_quell.md"]}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """Index the corpus once per method: (--kb options, what `graphrag index` printed)."""
    done = {}

    def index(method):
        if method not in done:
            corpus = tmp_path_factory.mktemp(f"coast-{method}")
            for name in FILES[method]:
                (corpus / name).write_text(DOCS[name])
            kb = ["--kb", f"coast-{method}", "--kb-path", str(tmp_path_factory.mktemp(f"kb-{method}"))]
            with contextlib.redirect_stdout(io.StringIO()) as out:
                assert main(["graphrag", "index", str(corpus), "--method", method, *kb]) == 0
            done[method] = kb, out.getvalue()
        return done[method]

    return index


@pytest.mark.slow
@pytest.mark.parametrize("method", ["llm", "fast"])
def test_both_methods_index_a_small_corpus_on_the_embedded_model(method, indexed, capsys):
    kb, out = indexed(method)
    assert "estimate" in out and "measured:" in out
    chunks = len(FILES[method])
    counts = re.search(rf"(\d+) entities, (\d+) relationships, (\d+) communities, (\d+) reports from {chunks} chunks",
                       out)
    assert counts and int(counts[1]) > 0 and int(counts[4]) > 0, out
    if method == "llm":
        assert re.search(rf"^extract\s+{chunks}\s+\d+", out, re.M), out  # one extraction call per chunk, measured
    reports = json.loads((Path(kb[3]) / "graph" / "reports.json").read_text())
    assert any(r["written_by"] == "llm" and r["title"] and 0 <= r["rating"] <= 10 for r in reports), reports
    assert all(r["error"] is None for r in reports)  # every reply parsed
    assert main(["graphrag", "query", "Who founded Zentrix Labs?", "--why", *kb]) == 0
    answer = capsys.readouterr().out
    assert re.search(r"\nSources:\n\[\d+\] ", answer), answer
    assert main(["graphrag", "communities", *kb]) == 0
    assert re.search(r"level 0 .* entities", capsys.readouterr().out)


@pytest.mark.slow
def test_the_graph_mcp_server(indexed):
    kb, _ = indexed("fast")
    server = StdioServer(sys.executable, ["-m", "agentforge.cli", "mcp", "serve", "graphrag", *kb])
    with MCPClient({"graph": server}, timeout=300) as mcp:
        assert {t.name for t in mcp.get_tools()} == {f"graph_{m}_search" for m in ("local", "global", "drift",
                                                                                   "hybrid")} | {
            "graph_list_communities", "graph_describe_entity"}
        entity = mcp.call_tool("graph", "describe_entity", {"name": "Zentrix Labs"}).content
        assert entity.startswith("Zentrix Labs (name):") and "zentrix_labs.md" in entity
        assert "level 0" in mcp.call_tool("graph", "list_communities").content
        answer = mcp.call_tool("graph", "local_search", {"question": "Where is Zentrix Labs headquartered?"})
        assert not answer.is_error and re.search(r"\n\[\d+\] (/|report of community)", answer.content), answer.content
        assert mcp.call_tool("graph", "local_search", {"question": ""}).is_error


def test_cli_errors_are_clear(tmp_path):
    kb = ["--kb", "nothing", "--kb-path", str(tmp_path / "kb")]
    out = subprocess.run([sys.executable, "-m", "agentforge.cli", "graphrag", "query", "anything?", *kb],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "has no graph; run `agentforge graphrag index PATH --kb nothing`" in out.stderr
    assert main(["graphrag", "entity", "Nobody", *kb]) == 1
    assert main(["graphrag", "index", "--estimate", *kb]) == 0
