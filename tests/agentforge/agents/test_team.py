"""Supervisor and swarm control flow with scripted models: routing, handoffs across a checkpoint, a
handoff in the same reply as an ordinary tool call, and bad handoffs."""

from __future__ import annotations

import pytest

from agentforge.agents import Agent, ScriptedChatModel, create_react_agent, create_supervisor, create_swarm
from agentforge.graphs import InMemorySaver, SqliteSaver
from agentforge.tools import tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def book_flight(city: str) -> str:
    """Book a flight."""
    return f"flight to {city} booked"


def handoff(target: str, id: str) -> dict:
    return {"name": f"transfer_to_{target}", "args": {}, "id": id}


def calls(*items) -> dict:
    return {"content": "", "tool_calls": list(items)}


def trail(messages) -> list[tuple]:
    return [(m.role, m.name if m.role == "assistant" else None,
             m.content if not m.tool_calls else [c.function.name for c in m.tool_calls]) for m in messages]


def test_supervisor_routes_to_an_agent_and_answers_from_its_reply():
    boss = ScriptedChatModel([calls(handoff("math", "h1")), "The sum is 5."])
    math = ScriptedChatModel([calls({"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}), "2 + 3 = 5"])
    team = create_supervisor(boss, [Agent("math", math, [add], description="adds numbers"),
                                    Agent("travel", ScriptedChatModel([]), [book_flight])])
    out = team.invoke({"messages": ["what is 2 + 3?"]})
    assert trail(out["messages"]) == [
        ("user", None, "what is 2 + 3?"), ("assistant", "supervisor", ["transfer_to_math"]),
        ("tool", None, "Transferred to math"), ("assistant", "math", ["add"]), ("tool", None, "5"),
        ("assistant", "math", "2 + 3 = 5"), ("assistant", "supervisor", "The sum is 5.")]
    assert boss.calls[0]["tools"] == ["transfer_to_math", "transfer_to_travel"]
    assert "math: adds numbers" in boss.calls[0]["messages"][0].content
    assert math.calls[0]["tools"] == ["add"]  # workers answer back; they get no handoff tools


def test_a_compiled_agent_can_be_a_supervised_member():
    worker = create_react_agent(ScriptedChatModel([calls({"name": "add", "args": {"a": 1, "b": 1}, "id": "w"}), "two"]),
                                [add], name="adder")
    boss = ScriptedChatModel([calls(handoff("adder", "h")), "It is two."])
    out = create_supervisor(boss, [worker]).invoke({"messages": ["1+1?"]})
    assert trail(out["messages"])[3:] == [("assistant", "adder", ["add"]), ("tool", None, "2"),
                                          ("assistant", "adder", "two"), ("assistant", "supervisor", "It is two.")]


def test_a_handoff_with_an_ordinary_call_in_the_same_reply_keeps_the_result():
    alice = ScriptedChatModel([calls({"name": "add", "args": {"a": 40, "b": 2}, "id": "c1"}, handoff("bob", "h1"))])
    bob = ScriptedChatModel(["Bob here: the answer is 42."])
    swarm = create_swarm([Agent("alice", alice, [add]), Agent("bob", bob, [book_flight])], default_active_agent="alice")
    out = swarm.invoke({"messages": ["add 40 and 2, then pass me to Bob"]})
    assert trail(out["messages"]) == [
        ("user", None, "add 40 and 2, then pass me to Bob"), ("assistant", "alice", ["add", "transfer_to_bob"]),
        ("tool", None, "42"), ("tool", None, "Transferred to bob"), ("assistant", "bob", "Bob here: the answer is 42.")]
    assert bob.calls[0]["messages"][-2].content == "42"  # Bob saw the result
    assert out["active_agent"] == "bob"


def test_the_active_agent_survives_a_checkpoint(tmp_path):
    alice = ScriptedChatModel([calls(handoff("bob", "h1"))])
    bob = ScriptedChatModel(["Bob: flights are my thing.", "Bob again."])

    def team(saver):
        return create_swarm([Agent("alice", alice), Agent("bob", bob, [book_flight])], default_active_agent="alice",
                            checkpointer=saver)

    config = {"configurable": {"thread_id": "t"}}
    with SqliteSaver.from_conn_string(str(tmp_path / "swarm.db")) as saver:
        team(saver).invoke({"messages": ["I need a flight"]}, config)
    with SqliteSaver.from_conn_string(str(tmp_path / "swarm.db")) as saver:  # a new process, the same thread
        out = team(saver).invoke({"messages": ["and another one"]}, config)
    assert out["messages"][-1].content == "Bob again." and len(alice.calls) == 1


def test_bad_handoffs_are_errors_the_model_reads():
    alice = ScriptedChatModel([calls(handoff("bob", "h1"), handoff("carol", "h2")), "ok"])
    carol = ScriptedChatModel(["unused"])
    bob = ScriptedChatModel([calls({"name": "add", "args": {"a": 1, "b": 2}, "id": "x"}), "Bob done."])
    swarm = create_swarm([Agent("alice", alice, handoffs=["bob"]), Agent("bob", bob), Agent("carol", carol)],
                         default_active_agent="alice", checkpointer=InMemorySaver())
    out = swarm.invoke({"messages": ["go"]}, {"configurable": {"thread_id": "t"}})
    tools = [m for m in out["messages"] if m.role == "tool"]
    assert tools[0].content == "Transferred to bob"
    assert tools[1].status == "error" and "alice cannot hand off to carol" in tools[1].content
    assert tools[2].status == "error" and "bob has no tool named 'add'" in tools[2].content
    assert out["messages"][-1].content == "Bob done." and carol.calls == []


def test_team_construction_is_checked():
    with pytest.raises(ValueError, match="default_active_agent"):
        create_swarm([Agent("a", ScriptedChatModel([]))], default_active_agent="b")
    with pytest.raises(ValueError, match="unique"):
        create_supervisor(ScriptedChatModel([]), [Agent("x", ScriptedChatModel([])), Agent("x", ScriptedChatModel([]))])
    with pytest.raises(TypeError, match="Agent or a compiled graph"):
        create_supervisor(ScriptedChatModel([]), ["not an agent"])


def test_agents_with_same_named_tools_each_run_their_own():
    @tool(name="lookup")
    def lookup_people(key: str) -> str:
        """People directory."""
        return f"person {key}"

    @tool(name="lookup")
    def lookup_rooms(key: str) -> str:
        """Room directory."""
        return f"room {key}"

    alice = ScriptedChatModel([calls({"name": "lookup", "args": {"key": "x"}, "id": "a1"}, handoff("bob", "h1"))])
    bob = ScriptedChatModel([calls({"name": "lookup", "args": {"key": "y"}, "id": "b1"}), "done"])
    swarm = create_swarm([Agent("alice", alice, [lookup_people]), Agent("bob", bob, [lookup_rooms])],
                         default_active_agent="alice")
    out = swarm.invoke({"messages": ["go"]})
    assert [m.content for m in out["messages"] if m.role == "tool"] == ["person x", "Transferred to bob", "room y"]
