"""Served graphs are traced: /metrics counts their runs and nodes, the trace store keeps each run,
/traces shows it (checked in Chromium, linked from the chat app's answer), bad ids get JSON 404s."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agentforge.agents import ScriptedChatModel, create_react_agent
from agentforge.server import ServerConfig, create_app
from agentforge.tools.servers.calculator import calculate
from agentforge.tracing import flush

ARTIFACTS = Path(__file__).parents[1] / "artifacts"


def calc_agent(turns: int = 4):
    call = {"name": "calculate", "args": {"expression": "1234 * 5678"}}
    replies = [{"tool_calls": [call]}, "1234 * 5678 is 7006652."] * turns
    return create_react_agent(ScriptedChatModel(replies), [calculate], name="calc")


@pytest.fixture(scope="module")
def traced_url(server_llm, serve_app, tmp_path_factory):
    store = tmp_path_factory.mktemp("traces") / "traces.sqlite"
    return serve_app(create_app(server_llm, "smollm2-135m", config=ServerConfig(trace_store=str(store)),
                                graphs={"calc": calc_agent()}))


def test_runs_are_traced_counted_and_shown(traced_url):
    get_sync_client = pytest.importorskip("langgraph_sdk").get_sync_client  # the Agent Protocol client users run

    client = get_sync_client(url=traced_url, api_key=None)
    out = client.runs.wait(client.threads.create()["thread_id"], "calc",
                           input={"messages": [{"role": "user", "content": "What is 1234 * 5678?"}]})
    assert out["messages"][-1]["content"] == "1234 * 5678 is 7006652."
    flush()
    [summary] = httpx.get(f"{traced_url}/api/traces").json()
    assert summary["name"] == "calc" and summary["error"] is None
    spans = httpx.get(f"{traced_url}/api/traces/{summary['trace_id']}").json()
    assert sorted(s["kind"] for s in spans) == ["graph", "llm", "llm", "node", "node", "tool"]
    page = httpx.get(f"{traced_url}/traces/{summary['trace_id']}").text
    assert "<b>calculate</b>" in page and "2 LLM calls" in page and "1 tool calls" in page
    assert f"/traces/{summary['trace_id']}" in httpx.get(f"{traced_url}/traces").text
    metrics = httpx.get(f"{traced_url}/metrics").text
    assert 'agentforge_graph_runs_total{graph="calc",status="success"} 1.0' in metrics
    assert 'agentforge_graph_node_seconds_count{graph="calc",node="agent"} 2.0' in metrics
    assert 'agentforge_graph_node_seconds_count{graph="calc",node="tools"} 1.0' in metrics
    missing = httpx.get(f"{traced_url}/api/traces/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "trace_not_found"


def test_tracing_off_answers_404(server_llm, serve_app):
    url = serve_app(create_app(server_llm, "smollm2-135m"))
    reply = httpx.get(f"{url}/api/traces")
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "tracing_off"


def test_chat_answer_links_to_its_trace(traced_url, browser):
    page = browser.new_page()
    page.goto(traced_url)
    page.wait_for_function("document.querySelectorAll('#mode option').length === 2")
    page.click("#settings summary")
    page.select_option("#mode", "calc")
    page.fill("#input", "What is 1234 * 5678?")
    page.press("#input", "Enter")
    link = page.locator(".message.assistant a.trace-link")
    link.wait_for()
    flush()
    page.goto(traced_url + link.get_attribute("href"))
    assert page.locator("li.tool b").inner_text() == "calculate"
    assert page.locator("li.llm").count() == 2 and page.locator("li.graph > .row b").inner_text() == "calc"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "trace_viewer.png"), full_page=True)
