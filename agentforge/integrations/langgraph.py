"""LangGraph graphs as nodes of AgentForge graphs, and ours as nodes of theirs
(`pip install agentforge[langchain]`).

The two runtimes keep their own checkpoints, so only this crosses the boundary:

- **state in, state out**: the node's state goes in as the inner graph's input and the inner
  graph's final state comes back as the node's update (as when a compiled subgraph is a node in
  either runtime: a messages key with an id-keyed reducer merges it, a plain list reducer would
  append it again). Message lists are converted (`ChatMessage` ↔ LangChain messages), ids kept.
- **interrupts propagate**: an interrupt inside the inner graph becomes an interrupt of the outer
  node, with the same value; resuming the outer graph resumes the inner one with the answer.
  The inner run is not checkpointed by the outer one: on resume the node runs again from its
  input (like any node that interrupted) and the inner graph replays, answered by the resume
  values given so far, in order.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

try:
    from langchain_core.messages import BaseMessage
    from langgraph.checkpoint.memory import InMemorySaver as LangGraphSaver
    from langgraph.pregel import Pregel
    from langgraph.types import Command as LangGraphCommand
    from langgraph.types import interrupt as langgraph_interrupt
except ImportError as exc:  # the extra is not installed
    raise ImportError(f"agentforge.integrations.langgraph needs {exc.name}: pip install 'agentforge[langchain]'") from exc

from agentforge.engine.protocol import ChatMessage
from agentforge.graphs import Command, CompiledStateGraph, InMemorySaver, interrupt

from ._messages import from_langchain_messages, to_langchain_messages

__all__ = ["as_langgraph_node", "langgraph_node"]


def langgraph_node(graph: Pregel) -> Callable[[dict], dict]:
    """A compiled LangGraph graph as a node of an AgentForge graph:
    `builder.add_node("research", langgraph_node(their_graph))`."""
    if not isinstance(graph, Pregel):
        raise TypeError(f"expected a compiled LangGraph graph, got {type(graph).__name__}")

    def run_langgraph(state: dict) -> dict:
        inner = graph.copy(update={"checkpointer": LangGraphSaver()})  # this run's, gone with it
        config = {"configurable": {"thread_id": uuid.uuid4().hex}}
        final = inner.invoke(_convert(_state(state), to_langchain_messages), config)
        while final.get("__interrupt__"):
            final = inner.invoke(LangGraphCommand(resume=_answers(final["__interrupt__"], interrupt)), config)
        return _convert(final, from_langchain_messages)

    run_langgraph.__name__ = graph.get_name() if hasattr(graph, "get_name") else "langgraph"
    return run_langgraph


def as_langgraph_node(graph: CompiledStateGraph) -> Callable[[dict], dict]:
    """A compiled AgentForge graph as a node of a LangGraph graph:
    `builder.add_node("agent", as_langgraph_node(our_graph))`."""
    if not isinstance(graph, CompiledStateGraph):
        raise TypeError(f"expected a compiled AgentForge graph, got {type(graph).__name__}")

    def run_agentforge(state: dict) -> dict:
        inner = copy.copy(graph)
        inner.checkpointer, inner.inherit_checkpointer = InMemorySaver(), False
        config = {"configurable": {"thread_id": uuid.uuid4().hex}}
        final = inner.invoke(_convert(_state(state), from_langchain_messages), config)
        while final.get("__interrupt__"):
            final = inner.invoke(Command(resume=_answers(final["__interrupt__"], langgraph_interrupt)), config)
        return _convert(final, to_langchain_messages)

    run_agentforge.__name__ = graph.name or "agentforge"
    return run_agentforge


def _answers(interrupts: list, ask: Callable[[Any], Any]) -> Any:
    """Ask the outer runtime each inner interrupt's value; one answer, or answers by interrupt id."""
    if len(interrupts) == 1:
        return ask(interrupts[0].value)
    return {i.id: ask(i.value) for i in interrupts}


def _state(state: Any) -> dict:
    if not isinstance(state, dict):
        raise TypeError(f"a graph run as a node of the other runtime takes dict state, got {type(state).__name__}")
    return state


def _convert(state: dict, convert: Callable[[list], list]) -> dict:
    """The state with every list of messages converted; `__interrupt__` dropped."""
    out = {}
    for key, value in state.items():
        if key == "__interrupt__":
            continue
        if isinstance(value, list) and value and all(isinstance(m, (ChatMessage, BaseMessage)) for m in value):
            value = convert(value)
        out[key] = value
    return out
