"""Run context, nested subgraph state and debug output: LangGraph's meaning, on both runtimes."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, TypedDict

import pytest


class S(TypedDict, total=False):
    x: int
    log: Annotated[list, operator.add]


@dataclass
class Context:
    user: str
    greeting: str = "hello"


def thread(tid="t"):
    return {"configurable": {"thread_id": tid}}


def test_context_reaches_nodes_through_runtime_and_get_runtime(lg):
    def greet(state: S, runtime) -> dict:
        return {"log": [f"{runtime.context.greeting} {runtime.context.user}"]}

    def again(state: S) -> dict:
        return {"log": [f"again {lg.get_runtime().context.user}"]}

    g = lg.StateGraph(S, context_schema=Context)
    g.add_node("greet", greet).add_node("again", again)
    g.add_edge(lg.START, "greet").add_edge("greet", "again")
    app = g.compile()
    assert app.invoke({"log": []}, context={"user": "ada"})["log"] == ["hello ada", "again ada"]  # a dict is coerced
    assert app.invoke({"log": []}, context=Context("bob", "hi"))["log"] == ["hi bob", "again bob"]
    streamed = [u for u in app.stream({"log": []}, context=Context("cy"), stream_mode="updates")]
    assert streamed == [{"greet": {"log": ["hello cy"]}}, {"again": {"log": ["again cy"]}}]


def test_a_subgraph_sees_its_parents_context_and_the_stream_writer_works(lg):
    def inner(state: S, runtime) -> dict:
        runtime.stream_writer({"inner": runtime.context.user})
        return {"log": [f"inner {runtime.context.user}"]}

    sub = lg.StateGraph(S, context_schema=Context)
    sub.add_node("inner", inner).add_edge(lg.START, "inner")
    g = lg.StateGraph(S, context_schema=Context)
    g.add_node("sub", sub.compile()).add_edge(lg.START, "sub")
    chunks = list(g.compile().stream({"log": []}, context=Context("dee"), stream_mode=["custom", "values"],
                                     subgraphs=True))
    assert [(mode, chunk) for _, mode, chunk in chunks if mode == "custom"] == [("custom", {"inner": "dee"})]
    assert chunks[-1] == ((), "values", {"log": ["inner dee"]})


def test_get_state_with_subgraphs_shows_the_paused_subgraphs_own_state(lg):
    def ask(state: S) -> dict:
        return {"x": lg.interrupt("how much?"), "log": ["asked"]}

    sub = lg.StateGraph(S)
    sub.add_node("prep", lambda s: {"log": ["prep"]}).add_node("ask", ask)
    sub.add_edge(lg.START, "prep").add_edge("prep", "ask")
    g = lg.StateGraph(S)
    g.add_node("sub", sub.compile()).add_edge(lg.START, "sub")
    app = g.compile(checkpointer=lg.InMemorySaver())
    app.invoke({"log": []}, thread())
    plain = app.get_state(thread())
    (task,) = plain.tasks
    assert task.name == "sub" and task.state["configurable"]["checkpoint_ns"].startswith("sub:")
    nested = app.get_state(thread(), subgraphs=True).tasks[0].state
    assert nested.values == {"log": ["prep"]} and nested.next == ("ask",)
    assert [i.value for i in nested.interrupts] == ["how much?"]
    app.invoke(lg.Command(resume=3), thread())
    assert app.get_state(thread(), subgraphs=True).values == {"x": 3, "log": ["prep", "asked"]}


def test_debug_prints_each_task_its_writes_and_each_checkpoint(ours, capsys):
    g = ours.StateGraph(S)
    g.add_node("a", lambda s: {"x": 1}).add_edge(ours.START, "a")
    g.compile().invoke({"x": 0}, debug=True)
    printed = capsys.readouterr().out
    assert "[1:tasks] Starting task a" in printed and "[1:writes] Finished task a" in printed
    assert "[1:checkpoint] State at the end of step 1:\n{'log': [], 'x': 1}" in printed
    g2 = ours.StateGraph(S)
    g2.add_node("b", lambda s: {"x": 2}).add_edge(ours.START, "b")
    g2.compile(debug=True).invoke({"x": 0})
    assert "Starting task b" in capsys.readouterr().out
    g2.compile(debug=True).invoke({"x": 0}, debug=False)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("name", ["config", "writer"])
def test_nodes_get_the_other_keyword_arguments_they_name(lg, name):
    seen = {}

    def takes_config(state: S, config) -> dict:
        seen["config"] = config["configurable"]["thread_id"]
        return {"x": 1}

    def takes_writer(state: S, writer) -> dict:
        writer("hi")
        return {"x": 1}

    g = lg.StateGraph(S)
    g.add_node("n", takes_config if name == "config" else takes_writer).add_edge(lg.START, "n")
    app = g.compile(checkpointer=lg.InMemorySaver())
    chunks = list(app.stream({"x": 0}, thread("k"), stream_mode="custom"))
    assert (seen == {"config": "k"}) if name == "config" else chunks == ["hi"]
