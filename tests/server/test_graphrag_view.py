"""The knowledge-graph viewer in the chat server, in real Chromium: communities in colours, an
entity's description, sources, relationships and reports on click; its JSON and GraphML APIs, and
404s with JSON bodies for graphs it does not serve. The screenshot is kept in tests/artifacts/."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import networkx as nx
import pytest

from agentforge.rag import KnowledgeBase, LocalEmbedder
from agentforge.rag.graphrag import GraphIndex
from agentforge.server import ServerConfig, create_app

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
sys.path.insert(0, str(Path(__file__).parents[1] / "agentforge" / "graphrag"))
from _graphrag_corpus import write_corpus  # noqa: E402
from _graphrag_helpers import graphrag_model  # noqa: E402

ARTIFACTS = Path(__file__).parents[1] / "artifacts"


@pytest.fixture(scope="module")
def app_url(server_llm, serve_app, tmp_path_factory):
    kb = KnowledgeBase("coast-view", embedder=LocalEmbedder())  # in the data directory, where the server looks
    kb.ingest(write_corpus(tmp_path_factory.mktemp("coast"), distractors=False))
    index = GraphIndex(kb, graphrag_model(), method="fast")
    index.index()
    index.close()
    KnowledgeBase("no-graph", embedder=LocalEmbedder())
    return serve_app(create_app(server_llm, "smollm2-135m", ServerConfig(graphrag=["coast-view", "no-graph"])))


def test_graph_json_graphml_and_errors(app_url, tmp_path):
    view = httpx.get(f"{app_url}/api/graphrag/coast-view").json()
    names = {n["name"] for n in view["nodes"]}
    assert {"Zentrix Labs", "Mara Quell", "Orlan"} <= names and view["edges"] and view["communities"]
    zentrix = next(n for n in view["nodes"] if n["name"] == "Zentrix Labs")
    assert zentrix["sources"] and zentrix["group"] in {c["id"] for c in view["communities"] if c["level"] == 0}
    graphml = httpx.get(f"{app_url}/api/graphrag/coast-view/graphml")
    (tmp_path / "g.graphml").write_bytes(graphml.content)
    assert nx.read_graphml(tmp_path / "g.graphml").number_of_nodes() == len(view["nodes"])
    for path, code in (("/api/graphrag/secret-kb", "graph_not_found"), ("/graphrag/secret-kb", "graph_not_found"),
                       ("/api/graphrag/no-graph", "graph_not_built")):
        response = httpx.get(app_url + path)
        assert response.status_code == 404 and response.json()["error"]["code"] == code


def test_graph_view_in_chromium(app_url, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{app_url}/graphrag/coast-view")
    page.wait_for_selector("#canvas circle")
    fills = {page.locator("#canvas circle").nth(i).get_attribute("fill")
             for i in range(page.locator("#canvas circle").count())}
    assert len(fills) > 1  # communities in different colours
    page.locator("#canvas circle[data-id='zentrix labs']").click()
    details = page.locator("#details")
    assert details.locator("h2").inner_text() == "Zentrix Labs"
    text = details.inner_text()
    assert "Zentrix Labs is headquartered in Orlan" in text and "zentrix_labs.md" in text
    assert "Orlan:" in text  # a relationship
    assert details.locator(".report").count() >= 1  # its community's report
    assert page.locator("#canvas circle.dim").count() > 0  # the rest of the graph fades
    page.locator("#communities li").first.click()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#canvas circle[data-id='zentrix labs']").click()
    page.screenshot(path=str(ARTIFACTS / "graphrag_view.png"))
    assert (ARTIFACTS / "graphrag_view.png").stat().st_size > 5000 and not errors
