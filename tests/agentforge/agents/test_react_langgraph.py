"""Differential: LangGraph's prebuilt `create_react_agent` and ours, given the same scripted replies
and tools, produce the same message sequence and the same interrupts."""

from __future__ import annotations

import json
import warnings

import pytest

pytest.importorskip("langgraph.prebuilt")
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage  # noqa: E402
from langchain_core.tools import tool as lc_tool  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver as LGSaver  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from langgraph.prebuilt import create_react_agent as lg_create_react_agent  # noqa: E402

from agentforge.agents import ScriptedChatModel, create_react_agent  # noqa: E402
from agentforge.graphs import InMemorySaver  # noqa: E402
from agentforge.tools import tool  # noqa: E402


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def lookup(key: str) -> str:
    """Look a key up in the directory."""
    return {"ceo": "Ada Lovelace", "office": "Room 42"}.get(key, "unknown")


class ToolFakeModel(GenericFakeChatModel):
    """LangChain's fake chat model, accepting tools (the script already holds the calls)."""

    def bind_tools(self, tools, **kwargs):
        return self


SCRIPTS = {
    "answer": ["Hello there."],
    "one_call": [[("lookup", {"key": "ceo"})], "The CEO is Ada Lovelace."],
    "chain": [[("lookup", {"key": "office"})], [("add", {"a": 40, "b": 2})], "Room 42, 42."],
    "parallel": [[("add", {"a": 1, "b": 2}), ("lookup", {"key": "ceo"}), ("add", {"a": 3, "b": 4})], "3, Ada, 7."],
    "unknown_tool": [[("fly", {"to": "moon"})], "I cannot fly."],
    "bad_arguments": [[("add", {"a": "two", "b": 2})], "Bad numbers."],
    "step_limit": [[("add", {"a": i, "b": i})] for i in range(8)],
}


def replies(script, ours: bool):
    out = []
    for turn, step in enumerate(script):
        if isinstance(step, str):
            out.append(step if ours else AIMessage(content=step, id=f"m{turn}"))
            continue
        tool_calls = [{"name": n, "args": a, "id": f"call_{turn}_{i}"} for i, (n, a) in enumerate(step)]
        out.append({"content": "", "tool_calls": tool_calls, "id": f"m{turn}"} if ours else
                   AIMessage(content="", tool_calls=tool_calls, id=f"m{turn}"))
    return out


def normalized(messages) -> list[tuple]:
    """Role, text (errors only by their status: the two runtimes word them differently), calls."""
    out = []
    for m in messages:
        if isinstance(m, dict) or hasattr(m, "role"):  # ours
            role, content, call_id = m.role, m.content, m.tool_call_id
            calls = [(c.function.name, json.loads(c.function.arguments), c.id) for c in m.tool_calls or ()]
            error = getattr(m, "status", None) == "error"
        else:
            role = {"human": "user", "ai": "assistant", "tool": "tool"}[m.type]
            content, call_id = m.content, getattr(m, "tool_call_id", None)
            calls = [(c["name"], c["args"], c["id"]) for c in getattr(m, "tool_calls", None) or ()]
            error = getattr(m, "status", None) == "error"
        out.append((role, "<error>" if error else content, calls, call_id))
    return out


def run_both(script, config=None, **kwargs):
    lg_model = ToolFakeModel(messages=iter(replies(script, ours=False)))
    ours_model = ScriptedChatModel(replies(script, ours=True))
    lg = lg_create_react_agent(lg_model, [lc_tool(add), lc_tool(lookup)], **kwargs)
    ours = create_react_agent(ours_model, [tool(add), tool(lookup)], **kwargs)
    question = {"messages": [{"role": "user", "content": "question"}]}
    lg_out = lg.invoke(question, config)
    ours_out = ours.invoke(question, config)
    return lg, ours, lg_out, ours_out


@pytest.mark.parametrize("name", [n for n in SCRIPTS if n != "step_limit"])
def test_same_messages_as_langgraph(name):
    _, _, lg_out, ours_out = run_both(SCRIPTS[name])
    assert normalized(ours_out["messages"]) == normalized(lg_out["messages"])


def test_same_stop_at_the_step_limit():
    _, _, lg_out, ours_out = run_both(SCRIPTS["step_limit"], {"recursion_limit": 6})
    assert normalized(ours_out["messages"]) == normalized(lg_out["messages"])
    assert ours_out["messages"][-1].content == "Sorry, need more steps to process this request."


def test_at_the_other_parity_of_the_limit_ours_stops_where_langgraph_raises():
    from langgraph.errors import GraphRecursionError

    with pytest.raises(GraphRecursionError):
        run_both(SCRIPTS["step_limit"], {"recursion_limit": 7})
    ours = create_react_agent(ScriptedChatModel(replies(SCRIPTS["step_limit"], ours=True)), [tool(add)])
    out = ours.invoke({"messages": ["question"]}, {"recursion_limit": 7})
    assert out["messages"][-1].content == "Sorry, need more steps to process this request."


def test_same_interrupts_before_tools_and_same_resume():
    lg_config = {"configurable": {"thread_id": "lg"}}
    ours_config = {"configurable": {"thread_id": "ours"}}
    script = SCRIPTS["parallel"]
    lg_model = ToolFakeModel(messages=iter(replies(script, ours=False)))
    lg = lg_create_react_agent(lg_model, [lc_tool(add), lc_tool(lookup)], checkpointer=LGSaver(),
                               interrupt_before=["tools"])
    ours = create_react_agent(ScriptedChatModel(replies(script, ours=True)), [tool(add), tool(lookup)],
                              checkpointer=InMemorySaver(), interrupt_before=["tools"])
    question = {"messages": [{"role": "user", "content": "question"}]}
    lg.invoke(question, lg_config)
    ours.invoke(question, ours_config)
    lg_state, ours_state = lg.get_state(lg_config), ours.get_state(ours_config)
    assert ours_state.next == lg_state.next == ("tools", "tools", "tools")
    assert normalized(ours_state.values["messages"]) == normalized(lg_state.values["messages"])
    lg_out = lg.invoke(None, lg_config)  # continue past the breakpoint
    ours_out = ours.invoke(None, ours_config)
    assert normalized(ours_out["messages"]) == normalized(lg_out["messages"])
