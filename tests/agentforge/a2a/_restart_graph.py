"""Graphs for the restart test, served by `agentforge a2a serve _restart_graph:ATTR` in a child
process. Each node appends its name to $A2A_TEST_DIR/runs.log, so the test sees what ran and
how often; "slow" waits until $A2A_TEST_DIR/release exists."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from agentforge.graphs import END, START, MessagesState, StateGraph, interrupt


def _log(name: str) -> None:
    with open(Path(os.environ["A2A_TEST_DIR"]) / "runs.log", "a") as f:
        f.write(name + "\n")


def first(state):
    _log("first")
    return {"messages": [{"role": "assistant", "content": "first step done"}]}


async def slow(state):
    _log("slow")
    while not (Path(os.environ["A2A_TEST_DIR"]) / "release").exists():
        await asyncio.sleep(0.05)
    return {"messages": [{"role": "assistant", "content": "all done"}]}


def ask(state):
    _log("ask")
    name = interrupt("What is your name?")
    _log("greet")
    return {"messages": [{"role": "assistant", "content": f"Hello, {name}!"}]}


def route(state) -> str:
    return "ask" if state["messages"][0].content == "greet me" else "first"


builder = StateGraph(MessagesState)
builder.add_node("first", first)
builder.add_node("slow", slow)
builder.add_node("ask", ask)
builder.add_conditional_edges(START, route, ["ask", "first"])
builder.add_edge("first", "slow")
builder.add_edge("slow", END)
builder.add_edge("ask", END)
graph = builder.compile(name="restartable")
