"""The example agent: tools from two MCP servers at once, in a graph with ToolNode."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "mcp_agent.py"


def load_example():
    spec = importlib.util.spec_from_file_location("mcp_agent", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call(name, arguments):
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]}


def test_agent_uses_tools_from_two_mcp_servers():
    example = load_example()

    def scripted(state):  # calls one tool of each server, then answers from their results
        results = [m for m in state["messages"] if m.role == "tool"]
        if not results:
            return {"messages": [call("calc_calculate", {"expression": "1234 * 5678"})]}
        if len(results) == 1:
            return {"messages": [call("docs_search_files", {"pattern": "graphs.md"})]}
        return {"messages": [{"role": "assistant", "content": f"{results[0].content}; {results[1].content}"}]}

    with example.mcp_servers() as mcp:
        tools = mcp.get_tools()
        assert {"calc_calculate", "docs_read_file", "docs_search_files"} <= {t.name for t in tools}
        out = example.build_agent(scripted, tools).invoke({"messages": [{"role": "user", "content": "go"}]})
    assert out["messages"][-1].content == '7006652; ["graphs.md"]'


@pytest.mark.slow
def test_agent_with_the_embedded_model_calls_a_tool_then_answers(smollm2):
    example = load_example()
    with example.mcp_servers() as mcp:
        tools = mcp.get_tools()
        agent = example.build_agent(example.llm_model(smollm2, tools, max_tokens=60), tools)
        out = agent.invoke({"messages": [{"role": "user", "content": "What is 1234 * 5678?"}]})
    roles = [m.role for m in out["messages"]]
    assert roles[:3] == ["user", "assistant", "tool"] and roles[-1] == "assistant"
    assert out["messages"][1].tool_calls[0].function.name in {t.name for t in tools}
    assert not out["messages"][-1].tool_calls
