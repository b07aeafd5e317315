"""An agent graph whose tools come from two MCP servers at once: the calculator and a read-only
filesystem over this repository's docs, both started over stdio by one MCPClient.

    python examples/mcp_agent.py "What is 1234 * 5678?"

The model (SmolLM2-135M by default) must call a tool on its first turn (tool_choice="required",
so the call is always well-formed), then answers from the tool results (tool_choice="none").
"""

from __future__ import annotations

import sys
from pathlib import Path

from agentforge.graphs import START, MessagesState, StateGraph
from agentforge.tools import ToolNode, tools_condition
from agentforge.tools.mcp_client import MCPClient, StdioServer

DOCS = Path(__file__).resolve().parents[1] / "docs"


def mcp_servers(docs: Path = DOCS) -> MCPClient:
    return MCPClient({
        "calc": StdioServer(sys.executable, ["-m", "agentforge.tools.servers.calculator"]),
        "docs": StdioServer(sys.executable, ["-m", "agentforge.tools.servers.filesystem", str(docs), "--read-only"]),
    })


def llm_model(llm, tools, max_tokens: int = 200):
    """A model node: calls tools on the user's turn, answers once tool results are in."""
    from agentforge.engine import SamplingParams

    specs = [t.spec for t in tools]
    params = SamplingParams(temperature=0.2, max_tokens=max_tokens, repetition_penalty=1.1, seed=0)

    def model(state):
        last = state["messages"][-1]
        choice = "none" if last.role == "tool" else "required"
        completion = llm.chat(state["messages"], params, tools=specs, tool_choice=choice,
                              parallel_tool_calls=False)[0].outputs[0]
        return {"messages": [{"role": "assistant", "content": completion.text or None,
                              "tool_calls": [c.model_dump() for c in completion.tool_calls or []] or None}]}

    return model


def build_agent(model, tools):
    """model -> (tool calls?) -> tools -> model ... -> END"""
    graph = StateGraph(MessagesState)
    graph.add_node("model", model).add_node("tools", ToolNode(tools))
    graph.add_edge(START, "model").add_conditional_edges("model", tools_condition).add_edge("tools", "model")
    return graph.compile()


def main() -> None:
    from agentforge.engine import LLM, ChatMessage

    question = " ".join(sys.argv[1:]) or "What is 1234 * 5678?"
    with mcp_servers() as mcp:
        tools = mcp.get_tools()
        print("tools:", ", ".join(t.name for t in tools))
        agent = build_agent(llm_model(LLM("smollm2-135m"), tools), tools)
        for update in agent.stream({"messages": [{"role": "user", "content": question}]}, stream_mode="updates"):
            for node, change in update.items():  # what each node returned: plain dicts or messages
                for message in map(ChatMessage.model_validate, change["messages"]):
                    calls = [f"{c.function.name}({c.function.arguments})" for c in message.tool_calls or []]
                    print(f"[{node}] {message.role}: {message.content or ''} {' '.join(calls)}".rstrip())


if __name__ == "__main__":
    main()
