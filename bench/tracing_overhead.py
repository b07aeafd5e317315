"""What tracing costs a run: a 50-node graph (nodes that only add 1), a ReAct agent with a
scripted model (one tool call: the runtime's own cost), and the same agent on the embedded
SmolLM2; each untraced and traced to the local SQLite store. Prints the median run time of
interleaved runs and the slowdown, and the slowdown of back-to-back runs counting the export.

    python bench/tracing_overhead.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import TypedDict

from agentforge.agents import ScriptedChatModel, create_react_agent
from agentforge.graphs import START, StateGraph
from agentforge.tools.servers.calculator import calculate
from agentforge.tracing import SqliteTraceStore, flush, traced

RUNS = 200


class State(TypedDict):
    total: int


def chain(nodes: int = 50):
    graph = StateGraph(State)
    previous = START
    for n in range(nodes):
        graph.add_node(f"step{n}", lambda state: {"total": state["total"] + 1})
        graph.add_edge(previous, f"step{n}")
        previous = f"step{n}"
    return graph.compile()


def agent():
    replies = [{"tool_calls": [{"name": "calculate", "args": {"expression": "6 * 7"}}]}, "It is 42."] * RUNS * 2
    return create_react_agent(ScriptedChatModel(replies), [calculate])


def compare(name: str, plain, traced_graph, make_input, runs: int = RUNS) -> None:
    """Latency: the median of interleaved runs (the export thread's work lands between and inside
    them, as in a busy server); the slowdown is the median of each pair's ratio (an untraced run and
    the traced one right after it), which the machine's drift over the runs leaves alone. Cost:
    blocks of runs back to back, untraced and traced in turn, each traced block timed until `flush()`
    returns, so every span's JSON and SQLite write is paid for; the median of the blocks' ratios (the
    machine's speed drifts between blocks)."""
    times = {"off": [], "on": []}
    for _ in range(runs):
        for label, graph in (("off", plain), ("on", traced_graph)):
            start = time.perf_counter()
            graph.invoke(make_input())
            times[label].append(time.perf_counter() - start)
    flush()
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    slowdown = statistics.median(b / a for a, b in zip(times["off"], times["on"]))
    block, ratios = max(1, runs // 10), []
    for _ in range(runs // block):
        took = {}
        for label, graph in (("off", plain), ("on", traced_graph)):
            start = time.perf_counter()
            for _ in range(block):
                graph.invoke(make_input())
            flush()
            took[label] = time.perf_counter() - start
        ratios.append(took["on"] / took["off"])
    print(f"{name:24} median off {off * 1000:7.2f} ms  on {on * 1000:7.2f} ms  {100 * (slowdown - 1):+5.1f} %   "
          f"back to back incl. export: {100 * (statistics.median(ratios) - 1):+5.1f} %")


def main() -> None:
    store = SqliteTraceStore(Path(tempfile.mkdtemp()) / "traces.sqlite")
    graph = chain()
    compare("50-node graph", graph, traced(graph, [store]), lambda: {"total": 0})
    compare("agent run (1 tool call)", agent(), traced(agent(), [store]),
            lambda: {"messages": [{"role": "user", "content": "What is 6 * 7?"}]})
    from agentforge.agents import EngineChatModel

    model = EngineChatModel("smollm2-135m", max_tokens=64)
    real = create_react_agent(model, [calculate])
    compare("agent on SmolLM2-135M", real, traced(real, [store]),
            lambda: {"messages": [{"role": "user", "content": "Compute 1234 * 5678 with the calculator."}]}, runs=5)
    flush()
    print(f"traces stored: {len(store.traces(limit=10_000))}")


if __name__ == "__main__":
    main()
