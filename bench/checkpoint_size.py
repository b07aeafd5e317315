"""Checkpoint size of a long conversation: ours vs LangGraph, both in SQLite, same graph.

A chat graph (one node appending an assistant reply to `messages`) runs N turns on one thread;
every turn adds a user and an assistant message (~250 bytes each). LangGraph stores the whole
message list in every checkpoint (quadratic growth); we store the appended tail (linear).

    python bench/checkpoint_size.py [--turns 200]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time


def reply(n: int) -> str:
    return f"Reply number {n}: " + "this is what the assistant said, at some length. " * 5


def run_ours(path: str, turns: int) -> int:
    from agentforge.graphs import START, MessagesState, SqliteSaver, StateGraph

    g = StateGraph(MessagesState)
    g.add_node("bot", lambda s: {"messages": [{"role": "assistant", "content": reply(len(s["messages"]))}]})
    g.add_edge(START, "bot")
    with SqliteSaver(path) as saver:
        app = g.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "chat"}}
        for turn in range(turns):
            out = app.invoke({"messages": [{"role": "user", "content": f"Question {turn}: " + "tell me more. " * 15}]}, config)
        assert len(out["messages"]) == 2 * turns
        saver.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return os.path.getsize(path)


def run_langgraph(path: str, turns: int) -> int:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import START, MessagesState, StateGraph

    g = StateGraph(MessagesState)
    g.add_node("bot", lambda s: {"messages": [{"role": "assistant", "content": reply(len(s["messages"]))}]})
    g.add_edge(START, "bot")
    conn = sqlite3.connect(path, check_same_thread=False)
    app = g.compile(checkpointer=SqliteSaver(conn))
    config = {"configurable": {"thread_id": "chat"}}
    for turn in range(turns):
        out = app.invoke({"messages": [{"role": "user", "content": f"Question {turn}: " + "tell me more. " * 15}]}, config)
    assert len(out["messages"]) == 2 * turns
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return os.path.getsize(path)


def measure(turns: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ours = run_ours(os.path.join(tmp, "ours.db"), turns)
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        theirs = run_langgraph(os.path.join(tmp, "langgraph.db"), turns)
        theirs_s = time.perf_counter() - start
    return {"ours_bytes": ours, "langgraph_bytes": theirs, "ratio": theirs / ours, "ours_s": ours_s, "langgraph_s": theirs_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    r = measure(args.turns)
    print(f"{args.turns}-turn conversation, SQLite file size after the run:")
    print(f"  agentforge  {r['ours_bytes'] / 1e6:8.2f} MB   ({r['ours_s']:.1f} s)")
    print(f"  langgraph   {r['langgraph_bytes'] / 1e6:8.2f} MB   ({r['langgraph_s']:.1f} s)")
    print(f"  langgraph / agentforge = {r['ratio']:.1f}x")


if __name__ == "__main__":
    main()
