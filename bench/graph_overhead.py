"""Runtime overhead per superstep: ours vs LangGraph, same graphs, same run.

Shapes (after LangGraph's own `libs/langgraph/bench`): a 1,000-node sequential chain of no-op
nodes over MessagesState; a fan-out of 100 Sends into a subgraph that edits, generates and bumps
a joke 10 times (LangGraph's `fanout_to_subgraph`); a wide state of 300 keys with a node that
updates 10 of them per step for 100 steps. Each runs without and with an in-memory checkpointer.
Nodes do no work, so the time per superstep is the runtime's overhead.

    python bench/graph_overhead.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import operator
import time
from types import SimpleNamespace
from typing import Annotated, TypedDict


def runtimes() -> dict[str, SimpleNamespace]:
    import langgraph.checkpoint.memory
    import langgraph.graph
    import langgraph.types

    from agentforge import graphs

    return {
        "agentforge": SimpleNamespace(StateGraph=graphs.StateGraph, START=graphs.START, END=graphs.END,
                                      Send=graphs.Send, MessagesState=graphs.MessagesState, Saver=graphs.InMemorySaver),
        "langgraph": SimpleNamespace(StateGraph=langgraph.graph.StateGraph, START=langgraph.graph.START,
                                     END=langgraph.graph.END, Send=langgraph.types.Send,
                                     MessagesState=langgraph.graph.MessagesState,
                                     Saver=langgraph.checkpoint.memory.InMemorySaver),
    }


def sequential(rt, n: int = 1000):
    g = rt.StateGraph(rt.MessagesState)
    previous = rt.START
    for i in range(n):
        g.add_node(f"node_{i}", lambda state: None)
        g.add_edge(previous, f"node_{i}")
        previous = f"node_{i}"
    g.add_edge(previous, rt.END)
    return g, {"messages": []}, n + 1


def fanout(rt, n: int = 100):
    class Overall(TypedDict):
        subjects: list[str]
        jokes: Annotated[list[str], operator.add]

    class JokeInput(TypedDict):
        subject: str

    class JokeOutput(TypedDict):
        jokes: list[str]

    class JokeState(JokeInput, JokeOutput):
        pass

    sub = rt.StateGraph(JokeState, input_schema=JokeInput, output_schema=JokeOutput)
    sub.add_node("edit", lambda s: {"subject": f"{s['subject']} - hohoho"})
    sub.add_node("generate", lambda s: {"jokes": [f"Joke about {s['subject']}"]})
    sub.add_node("bump", lambda s: {"jokes": [s["jokes"][0] + " a"]})
    sub.add_edge(rt.START, "edit")
    sub.add_edge("edit", "generate")
    sub.add_edge("generate", "bump")
    sub.add_conditional_edges("bump", lambda s: rt.END if s["jokes"][0].endswith(" a" * 10) else "bump")
    sub.add_edge("generate", rt.END)
    g = rt.StateGraph(Overall)
    g.add_node("generate_joke", sub.compile())
    g.add_conditional_edges(rt.START, lambda s: [rt.Send("generate_joke", {"subject": x}) for x in s["subjects"]])
    g.add_edge("generate_joke", rt.END)
    steps = 2 + n * 13  # the parent's two steps, and each subgraph's input, edit, generate and 10 bumps
    return g, {"subjects": [f"subject {i}" for i in range(n)], "jokes": []}, steps


def wide(rt, keys: int = 300, steps: int = 100):
    Wide = TypedDict("Wide", {f"k{i}": int for i in range(keys)} | {"n": int})

    def work(state):
        n = state["n"] + 1
        return {"n": n, **{f"k{(n * 10 + j) % keys}": n for j in range(10)}}

    g = rt.StateGraph(Wide)
    g.add_node("work", work)
    g.add_edge(rt.START, "work")
    g.add_conditional_edges("work", lambda s: rt.END if s["n"] >= steps else "work")
    return g, {"n": 0, **{f"k{i}": 0 for i in range(keys)}}, steps + 1


SHAPES = {"sequential_1000": sequential, "fanout_100": fanout, "wide_state_300": wide}


def time_shape(rt, make, checkpointer: bool, repeat: int) -> tuple[float, int]:
    best = float("inf")
    for i in range(repeat):
        graph, inp, steps = make(rt)
        app = graph.compile(checkpointer=rt.Saver() if checkpointer else None)
        config = {"recursion_limit": 1_000_000}
        if checkpointer:
            config["configurable"] = {"thread_id": f"t{i}"}
        start = time.perf_counter()
        app.invoke(inp, config)
        best = min(best, time.perf_counter() - start)
    return best, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rts = runtimes()
    print(f"{'shape':<28}{'agentforge':>14}{'langgraph':>14}{'ratio':>8}   (µs per superstep, best of {args.repeat})")
    worst = float("inf")
    for name, make in SHAPES.items():
        for checkpointer in (False, True):
            label = name + (" + checkpointer" if checkpointer else "")
            ours, steps = time_shape(rts["agentforge"], make, checkpointer, args.repeat)
            theirs, _ = time_shape(rts["langgraph"], make, checkpointer, args.repeat)
            ratio = theirs / ours
            worst = min(worst, ratio)
            print(f"{label:<28}{ours / steps * 1e6:>14.1f}{theirs / steps * 1e6:>14.1f}{ratio:>7.1f}x")
    print(f"lowest ratio: {worst:.1f}x")


if __name__ == "__main__":
    main()
