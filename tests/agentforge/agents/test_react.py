"""create_react_agent's control flow, driven by a scripted model: tool loops, parallel calls, tool
errors, unknown tools, the step limit, human approval (approve / edit / reject, several at once)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from pydantic import BaseModel

from agentforge.agents import ScriptedChatModel, create_react_agent
from agentforge.graphs import Command, InMemorySaver, SqliteSaver
from agentforge.tools import tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def lookup(key: str) -> str:
    """Look a key up in the company directory."""
    return {"ceo": "Ada Lovelace", "office": "Room 42"}[key]


@tool(timeout=0.5)
def slow() -> str:
    """Never answers in time."""
    time.sleep(5)
    return "late"


def call(name: str, id: str, **args) -> dict:
    return {"name": name, "args": args, "id": id}


def calls(*items: dict) -> dict:
    return {"content": "", "tool_calls": list(items)}


def shape(messages) -> list[tuple]:
    return [(m.role, m.content if m.role != "assistant" or not m.tool_calls else
             [(c.function.name, json.loads(c.function.arguments)) for c in m.tool_calls]) for m in messages]


def test_tool_loop_feeds_each_result_back_until_the_answer():
    model = ScriptedChatModel([calls(call("lookup", "c1", key="ceo")), calls(call("add", "c2", a=40, b=2)),
                               "Ada Lovelace; 42"])
    out = create_react_agent(model, [add, lookup], prompt="Be brief.").invoke({"messages": ["who and how much?"]})
    assert shape(out["messages"]) == [
        ("user", "who and how much?"), ("assistant", [("lookup", {"key": "ceo"})]), ("tool", "Ada Lovelace"),
        ("assistant", [("add", {"a": 40, "b": 2})]), ("tool", "42"), ("assistant", "Ada Lovelace; 42")]
    first, third = model.calls[0], model.calls[2]
    assert first["tools"] == ["add", "lookup"]
    assert [m.role for m in first["messages"]] == ["system", "user"] and first["messages"][0].content == "Be brief."
    assert [m.role for m in third["messages"]] == ["system", "user", "assistant", "tool", "assistant", "tool"]


def test_parallel_calls_run_together_and_answer_in_call_order():
    model = ScriptedChatModel([calls(call("add", "a", a=1, b=2), call("lookup", "b", key="office"),
                                     call("add", "c", a=3, b=4)), "done"])
    out = create_react_agent(model, [add, lookup]).invoke({"messages": ["go"]})
    tool_messages = [m for m in out["messages"] if m.role == "tool"]
    assert [(m.tool_call_id, m.content) for m in tool_messages] == [("a", "3"), ("b", "Room 42"), ("c", "7")]


@pytest.mark.parametrize("bad_call, expected", [
    (call("lookup", "x", key="nobody"), "KeyError"),
    (call("delete_everything", "x"), "no tool named 'delete_everything'"),
    (call("add", "x", a="two", b=2), "invalid arguments for 'add'"),
    (call("slow", "x"), "timed out"),
])
def test_a_failing_call_becomes_an_error_message_and_the_run_goes_on(bad_call, expected):
    model = ScriptedChatModel([calls(bad_call), "sorry, that failed"])
    out = create_react_agent(model, [add, lookup, slow]).invoke({"messages": ["go"]})
    error = out["messages"][2]
    assert error.role == "tool" and error.status == "error" and expected in error.content
    assert out["messages"][-1].content == "sorry, that failed"
    assert model.calls[1]["messages"][-1].content == error.content  # the model read the error


def test_the_step_limit_stops_a_tool_loop_with_a_reason():
    for limit, model_calls in ((6, 3), (7, 3), (8, 4)):  # never a GraphRecursionError, whatever the parity
        model = ScriptedChatModel([calls(call("add", f"c{i}", a=i, b=1)) for i in range(10)])
        out = create_react_agent(model, [add]).invoke({"messages": ["loop"]}, {"recursion_limit": limit})
        assert out["messages"][-1].content == "Sorry, need more steps to process this request."
        assert not out["messages"][-1].tool_calls
        assert len(model.calls) == model_calls


def test_a_reply_that_only_repeats_answered_calls_is_asked_again_without_tools():
    model = ScriptedChatModel([calls(call("lookup", "c1", key="ceo")), calls(call("lookup", "c2", key="ceo")),
                               "Ada Lovelace"])
    out = create_react_agent(model, [lookup]).invoke({"messages": ["who is the ceo?"]})
    assert shape(out["messages"])[1:] == [("assistant", [("lookup", {"key": "ceo"})]), ("tool", "Ada Lovelace"),
                                          ("assistant", "Ada Lovelace")]
    assert [c["tool_choice"] for c in model.calls] == [None, None, "none"]


def test_structured_response_after_the_answer():
    class Answer(BaseModel):
        value: int

    model = ScriptedChatModel([calls(call("add", "c", a=2, b=2)), "It is 4.", '{"value": 4}'])
    out = create_react_agent(model, [add], response_format=Answer).invoke({"messages": ["2+2?"]})
    assert out["structured_response"] == Answer(value=4)
    assert model.calls[2]["response_format"] is Answer and model.calls[2]["tools"] == []


def test_text_mode_react_turns_actions_into_tool_calls():
    model = ScriptedChatModel([
        'Thought: I need the directory.\nAction: lookup\nAction Input: {"key": "office"}\nObservation: made up',
        "Thought: I know the answer\nFinal Answer: Room 42",
    ], native_tools=False)
    out = create_react_agent(model, [lookup]).invoke({"messages": ["where is the office?"]})
    assert shape(out["messages"]) == [("user", "where is the office?"), ("assistant", [("lookup", {"key": "office"})]),
                                      ("tool", "Room 42"), ("assistant", "Room 42")]
    system, *rest = model.calls[1]["messages"]
    assert "lookup: Look a key up" in system.content and "Action Input" in system.content
    assert rest[-1].role == "user" and rest[-1].content == "Observation: Room 42"
    assert model.calls[1]["tools"] == []  # the endpoint never sees API tools


def test_async_run_streams_tokens_through_the_graph():
    model = ScriptedChatModel([calls(call("add", "c", a=1, b=1)), "one plus one is two"])
    agent = create_react_agent(model, [add])

    async def collect():
        return [(chunk.content, meta["langgraph_node"])
                async for chunk, meta in agent.astream({"messages": ["1+1?"]}, stream_mode="messages")]

    streamed = asyncio.run(collect())
    assert "".join(c for c, node in streamed if node == "agent") == "one plus one is two"


def approval_agent(model, saver=None, **kwargs):
    return create_react_agent(model, [add, lookup], checkpointer=saver or InMemorySaver(), **kwargs)


def test_parallel_calls_each_wait_for_approval_with_their_own_interrupt():
    model = ScriptedChatModel([calls(call("add", "a", a=1, b=2), call("lookup", "b", key="ceo"),
                                     call("add", "c", a=5, b=5)), "finished"])
    agent = approval_agent(model, approve_tools=True)
    config = {"configurable": {"thread_id": "t"}}
    out = agent.invoke({"messages": ["go"]}, config)
    pending = out["__interrupt__"]
    assert [i.value["tool_call"]["id"] for i in pending] == ["a", "b", "c"] and len({i.id for i in pending}) == 3
    assert [m.role for m in out["messages"]] == ["user", "assistant"]  # nothing ran yet
    out = agent.invoke(Command(resume={pending[0].id: "approve",
                                       pending[1].id: {"type": "reject", "message": "private"},
                                       pending[2].id: {"type": "edit", "args": {"a": 20, "b": 22}}}), config)
    results = {m.tool_call_id: (m.content, m.status) for m in out["messages"] if m.role == "tool"}
    assert results == {"a": ("3", "success"), "b": ("The user rejected this call of 'lookup': private", "error"),
                       "c": ("42", "success")}
    assert out["messages"][-1].content == "finished"


def test_approval_is_asked_only_for_the_named_tools_and_resumes_one_at_a_time(tmp_path):
    model = ScriptedChatModel([calls(call("add", "a", a=1, b=2), call("lookup", "b", key="ceo")), "ok"])
    with SqliteSaver.from_conn_string(str(tmp_path / "agent.db")) as saver:
        agent = approval_agent(model, saver, approve_tools=["lookup"])
        config = {"configurable": {"thread_id": "t"}}
        out = agent.invoke({"messages": ["go"]}, config)
        assert [i.value["tool_call"]["name"] for i in out["__interrupt__"]] == ["lookup"]
        state = agent.get_state(config)
        assert [m.content for m in state.values["messages"] if m.role == "tool"] == ["3"]  # add already ran
        out = agent.invoke(Command(resume="approve"), config)
    assert [m.content for m in out["messages"] if m.role == "tool"] == ["3", "Ada Lovelace"]


def test_a_malformed_approval_answer_asks_again_and_loses_nothing():
    model = ScriptedChatModel([calls(call("add", "a", a=1, b=2)), "ok"])
    agent = approval_agent(model, approve_tools=True)
    config = {"configurable": {"thread_id": "t"}}
    agent.invoke({"messages": ["go"]}, config)
    out = agent.invoke(Command(resume={"type": "edit", "args": "not an object"}), config)
    again = out["__interrupt__"][0].value
    assert "needs 'args'" in again["error"] and again["tool_call"]["id"] == "a"
    out = agent.invoke(Command(resume=42), config)
    assert "answer with 'approve'" in out["__interrupt__"][0].value["error"]
    out = agent.invoke(Command(resume="approve"), config)
    assert [m.content for m in out["messages"] if m.role == "tool"] == ["3"] and out["messages"][-1].content == "ok"


def test_bad_construction_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="unknown tools"):
        create_react_agent(ScriptedChatModel([]), [add], approve_tools=["nope"])
    with pytest.raises(ValueError, match="tool_calling"):
        create_react_agent(ScriptedChatModel([]), [add], tool_calling="xml")
    with pytest.raises(TypeError, match="ChatModel or a model name"):
        create_react_agent(42, [add])
