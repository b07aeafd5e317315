"""LangSmith export through the real `langsmith` SDK, against a local server that records what
the SDK sends (multipart run ingestion): the run tree's structure, names, inputs, outputs and
token counts; and `LANGSMITH_TRACING=true agentforge chat --once` sends its runs there."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from agentforge.agents import ScriptedChatModel, create_react_agent
from agentforge.tools.servers.calculator import calculate
from agentforge.tracing import flush, traced


def test_run_tree_reaches_langsmith(langsmith_server, monkeypatch):
    from langsmith import Client

    from agentforge.tracing.langsmith import LangSmithExporter

    url, runs = langsmith_server
    model = ScriptedChatModel([{"tool_calls": [{"name": "calculate", "args": {"expression": "6 * 7"}}]}, "It is 42."])
    agent = traced(create_react_agent(model, [calculate], name="calc"),
                   [LangSmithExporter(Client(api_url=url, api_key="test"), project_name="tests")])
    agent.invoke({"messages": ["What is 6 * 7?"]})
    flush()
    by_name = {}
    for run in runs.values():
        by_name.setdefault(run["name"], []).append(run)
    [root] = by_name["calc"]
    assert root["run_type"] == "chain" and root.get("parent_run_id") is None and root["session_name"] == "tests"
    assert root["outputs"]["messages"][-1]["content"] == "It is 42."
    assert root["inputs"]["messages"] == ["What is 6 * 7?"]
    [tool] = by_name["calculate"]
    assert tool["run_type"] == "tool" and tool["parent_run_id"] == root["id"]
    agents = by_name["agent"]
    assert len(agents) == 2 and all(a["parent_run_id"] == root["id"] for a in agents)
    llms = by_name["chat"]
    assert {llm["parent_run_id"] for llm in llms} == {a["id"] for a in agents}
    answer = next(llm for llm in llms if llm["outputs"].get("content") == "It is 42.")
    assert answer["run_type"] == "llm" and answer["outputs"]["usage_metadata"]["output_tokens"] == 3
    assert {run["trace_id"] for run in runs.values()} == {root["id"]}


@pytest.mark.slow
def test_chat_once_sends_runs_when_langsmith_tracing_is_on(langsmith_server):
    url, runs = langsmith_server
    env = {**os.environ, "LANGSMITH_TRACING": "true", "LANGSMITH_ENDPOINT": url, "LANGSMITH_API_KEY": "test",
           "LANGSMITH_PROJECT": "cli"}
    done = subprocess.run([sys.executable, "-m", "agentforge.cli", "chat", "--once",
                           "Compute 1234 * 5678 with the calculator.", "--max-tokens", "64"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    names = {run["name"] for run in runs.values()}
    assert {"demo", "agent", "calculate", "chat"} <= names, names
