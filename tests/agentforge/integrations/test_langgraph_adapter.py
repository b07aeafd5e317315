"""A LangGraph graph as a node of ours and ours as a node of theirs: state crosses both ways
(messages converted, ids kept), interrupts propagate and resume, failures surface."""

from __future__ import annotations

import operator
import warnings
from typing import Annotated, TypedDict

import pytest

pytest.importorskip("langgraph")
from langchain_core.messages import AIMessage  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver as LGSaver  # noqa: E402
from langgraph.graph import END as LG_END  # noqa: E402
from langgraph.graph import START as LG_START  # noqa: E402
from langgraph.graph import MessagesState as LGMessagesState  # noqa: E402
from langgraph.graph import StateGraph as LGStateGraph  # noqa: E402
from langgraph.types import Command as LGCommand  # noqa: E402
from langgraph.types import interrupt as lg_interrupt  # noqa: E402

from agentforge.agents import ScriptedChatModel, create_react_agent  # noqa: E402
from agentforge.graphs import END, START, Command, InMemorySaver, MessagesState, StateGraph, interrupt  # noqa: E402
from agentforge.integrations.langgraph import as_langgraph_node, langgraph_node  # noqa: E402


def their_one_node_graph(name, node, state=LGMessagesState, **compile):
    """LangGraph: START -> name -> END, compiled."""
    builder = LGStateGraph(state)
    builder.add_node(name, node)
    builder.add_edge(LG_START, name)
    builder.add_edge(name, LG_END)
    return builder.compile(**compile)


def our_one_node_graph(name, node, state=MessagesState):
    """Ours: START -> name -> END, compiled."""
    builder = StateGraph(state)
    builder.add_node(name, node)
    builder.add_edge(START, name)
    builder.add_edge(name, END)
    return builder.compile()


def their_approval_graph():
    def ask(state):
        answer = lg_interrupt({"question": "approve?", "seen": len(state["messages"])})
        return {"messages": [AIMessage(content=f"approved={answer}")]}

    return their_one_node_graph("ask", ask)


def our_graph_around(node, checkpointer=None):
    builder = StateGraph(MessagesState)
    builder.add_node("pre", lambda state: {"messages": [{"role": "assistant", "content": "pre", "id": "pre"}]})
    builder.add_node("inner", node)
    builder.add_edge(START, "pre")
    builder.add_edge("pre", "inner")
    builder.add_edge("inner", END)
    return builder.compile(checkpointer=checkpointer)


def test_their_graph_in_ours_gets_our_messages_and_its_interrupt_pauses_ours():
    ours = our_graph_around(langgraph_node(their_approval_graph()), InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    paused = ours.invoke({"messages": [{"role": "user", "content": "ship it", "id": "u"}]}, config)
    [pending] = paused["__interrupt__"]
    assert pending.value == {"question": "approve?", "seen": 2}  # it saw our two messages
    assert ours.get_state(config).next == ("inner",)
    final = ours.invoke(Command(resume="yes"), config)
    assert [(m.role, m.content) for m in final["messages"]] == [("user", "ship it"), ("assistant", "pre"),
                                                                ("assistant", "approved=yes")]
    assert [m.id for m in final["messages"][:2]] == ["u", "pre"]  # the same messages, not copies appended


def test_our_graph_in_theirs_and_our_interrupt_pauses_theirs():
    def ask(state):
        first = interrupt("name?")
        second = interrupt(f"confirm {first}?")
        return {"messages": [{"role": "assistant", "content": f"{first}:{second}"}]}

    theirs = their_one_node_graph("ours", as_langgraph_node(our_one_node_graph("ask", ask)), checkpointer=LGSaver())
    config = {"configurable": {"thread_id": "t"}}
    assert theirs.invoke({"messages": [("user", "hi")]}, config)["__interrupt__"][0].value == "name?"
    assert theirs.invoke(LGCommand(resume="Ada"), config)["__interrupt__"][0].value == "confirm Ada?"
    final = theirs.invoke(LGCommand(resume="yes"), config)
    assert [(m.type, m.content) for m in final["messages"]] == [("human", "hi"), ("ai", "Ada:yes")]


def test_our_react_agent_runs_as_a_node_of_their_graph():
    model = ScriptedChatModel([{"content": "", "tool_calls": [{"name": "add", "args": {"a": 40, "b": 2}, "id": "c1"}]},
                               "The answer is 42."])

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    theirs = their_one_node_graph("agent", as_langgraph_node(create_react_agent(model, [add])))
    final = theirs.invoke({"messages": [("user", "40 + 2?")]})
    assert [m.type for m in final["messages"]] == ["human", "ai", "tool", "ai"]
    assert final["messages"][1].tool_calls[0]["args"] == {"a": 40, "b": 2} and final["messages"][2].content == "42"
    assert final["messages"][3].content == "The answer is 42."


def test_plain_state_crosses_and_their_prebuilt_agent_runs_in_ours():
    class Count(TypedDict):
        n: int
        log: Annotated[list, operator.add]

    theirs = their_one_node_graph("double", lambda s: {"n": s["n"] * 2, "log": ["doubled"]}, state=Count)
    ours = our_one_node_graph("theirs", langgraph_node(theirs), state=Count)
    # their final state is the node's update, as for a subgraph node: a plain list reducer appends it again
    assert ours.invoke({"n": 21, "log": ["start"]}) == {"n": 42, "log": ["start", "start", "doubled"]}

    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moved to langchain.agents.create_agent in LangGraph 1.0
        from langgraph.prebuilt import create_react_agent as lg_react_agent

        agent = lg_react_agent(GenericFakeChatModel(messages=iter([AIMessage(content="hello from LangGraph")])), [])
    final = our_graph_around(langgraph_node(agent)).invoke({"messages": [{"role": "user", "content": "hi"}]})
    assert [(m.role, m.content) for m in final["messages"]] == [("user", "hi"), ("assistant", "pre"),
                                                                ("assistant", "hello from LangGraph")]


def test_a_failing_inner_graph_fails_the_node_with_its_error_and_bad_arguments_are_refused():
    def broken(state):
        raise RuntimeError("inner failure")

    ours = our_graph_around(langgraph_node(their_one_node_graph("broken", broken)))
    with pytest.raises(RuntimeError, match="inner failure"):
        ours.invoke({"messages": [{"role": "user", "content": "hi"}]})
    with pytest.raises(TypeError, match="compiled LangGraph graph"):
        langgraph_node(ours)
    with pytest.raises(TypeError, match="compiled AgentForge graph"):
        as_langgraph_node(their_approval_graph())
