"""The SQLite trace store: runs listed by their roots (a served run under its caller's span is not a
run of its own), spans exported again replace the stored ones, values round-trip exactly, and a
store written a row per span (before batches) opens with every span it held; runs traced to it are
committed by the time `flush()` returns."""

from __future__ import annotations

import json
import sqlite3

from typing_extensions import TypedDict

from agentforge.graphs import START, StateGraph
from agentforge.tracing import Span, SqliteTraceStore, flush, traced

TRACE = "ab" * 16


def run(span_id: str, parent_id: str | None = None, trace_id: str = TRACE, start: float = 1.0, **fields) -> list[Span]:
    """A run's spans: its root and one node under it."""
    root = Span(trace_id, span_id, parent_id, "graph-" + span_id, "graph", start, start + 1, inputs={"q": 1}, **fields)
    node = Span(trace_id, span_id[::-1], span_id, "node", "node", start + 0.1, start + 0.5, outputs={"x": [1, 2]})
    return [root, node]


def test_served_runs_hang_under_their_callers_span_and_only_orphans_are_listed(tmp_path):
    store = SqliteTraceStore(tmp_path / "traces.sqlite")
    caller = run("00000000000000a1")
    store.export(caller)
    store.export(run("00000000000000b2", parent_id=caller[1].span_id, start=1.2))  # served here, under the node
    store.export(run("00000000000000c3", parent_id="00000000000000ff", trace_id="cd" * 16, start=5.0))  # caller elsewhere
    assert [s.span_id for s in store.traces()] == ["00000000000000c3", "00000000000000a1"]  # newest first
    assert [s.name for s in store.trace(TRACE)] == ["graph-00000000000000a1", "node", "graph-00000000000000b2", "node"]
    assert store.traces(limit=1)[0].span_id == "00000000000000c3"


def test_a_span_exported_again_replaces_the_stored_one_and_values_round_trip(tmp_path):
    store = SqliteTraceStore(tmp_path / "traces.sqlite")
    first = run("00000000000000a1")
    store.export(first)
    again = run("00000000000000a1", outputs={"big": 123456789012345678901234567890, "text": "naïve ✓"})
    again[0].error, again[0].attributes = "ValueError: late", {"tokens": 3}
    store.export(again[:1])  # the root alone, finished later
    [root] = store.traces()
    spans = store.trace(TRACE)
    assert len(spans) == 2 and spans[0] == root == again[0]  # no duplicate, the newer copy, exact values
    assert spans[1] == first[1]


def test_a_store_written_a_row_per_span_opens_with_every_span(tmp_path):
    path = tmp_path / "traces.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE spans (trace_id TEXT, span_id TEXT, parent_id TEXT, name TEXT, kind TEXT, start REAL, "
               "end REAL, inputs TEXT, outputs TEXT, error TEXT, attributes TEXT, PRIMARY KEY (trace_id, span_id))")
    old = [*run("00000000000000a1"), *run("00000000000000c3", trace_id="cd" * 16, start=5.0)]
    db.executemany("INSERT INTO spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [(s.trace_id, s.span_id, s.parent_id, s.name, s.kind, s.start, s.end, json.dumps(s.inputs),
                     json.dumps(s.outputs), s.error, json.dumps(s.attributes)) for s in old])
    db.commit()
    db.close()
    store = SqliteTraceStore(path)
    assert [s.span_id for s in store.traces()] == ["00000000000000c3", "00000000000000a1"]
    assert store.trace(TRACE) == old[:2] and store.trace("cd" * 16) == old[2:]
    store.close()
    tables = {name for (name,) in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "spans" not in tables
    assert SqliteTraceStore(path).trace(TRACE) == old[:2]  # opened again: nothing moved twice, nothing lost


def test_runs_traced_to_the_store_are_committed_when_flush_returns(tmp_path):
    """On the tracing thread a batch of runs shares one transaction: flush() returns once it is
    committed, so another connection (a viewer, another process) reads every run."""

    class State(TypedDict):
        n: int

    graph = StateGraph(State).add_node("inc", lambda s: {"n": s["n"] + 1}).add_edge(START, "inc").compile()
    writer = traced(graph, [SqliteTraceStore(tmp_path / "traces.sqlite")])
    for n in range(5):
        writer.invoke({"n": n})
    assert flush()
    reader = SqliteTraceStore(tmp_path / "traces.sqlite")
    roots = reader.traces()
    assert sorted(r.inputs["n"] for r in roots) == [0, 1, 2, 3, 4]
    assert all([s.name for s in reader.trace(r.trace_id)] == ["LangGraph", "inc"] for r in roots)


def test_closing_the_store_commits_what_the_tracing_thread_holds_open(tmp_path):
    import threading

    from agentforge.tracing._export_thread import submit

    store = SqliteTraceStore(tmp_path / "traces.sqlite")
    exported, release = threading.Event(), threading.Event()

    def job():  # the tracing thread exports and its batch is not over yet
        store.export(run("00000000000000a1"))
        exported.set()
        release.wait(10)

    submit(job)
    assert exported.wait(10)
    store.close()
    release.set()
    assert flush()
    assert [s.name for s in SqliteTraceStore(tmp_path / "traces.sqlite").trace(TRACE)] == ["graph-00000000000000a1", "node"]


def test_span_values_become_json_data_and_only_a_long_one_is_cut():
    from pydantic import BaseModel

    from agentforge.tracing.spans import MAX_CHARS, to_json

    class Answer(BaseModel):
        text: str
        score: float | None = None

    [root, node] = to_json([*run("00000000000000b2")[:1], Span(TRACE, "00000000000000c3", None, "n", "node", 2.0,
                                                               inputs=(Answer(text="hi"), 2**70))])
    assert node.inputs == [{"text": "hi"}, 2**70] and root.inputs == {"q": 1}  # one trip for the whole run
    long = "x" * (MAX_CHARS + 10)
    [kept, cut] = to_json([Span(TRACE, "00000000000000d4", None, "a", "node", 1.0, inputs={"q": (1, 2)}),
                           Span(TRACE, "00000000000000e5", None, "b", "node", 1.0, inputs={"text": long})])
    assert kept.inputs == {"q": [1, 2]}  # the run is too long for one trip: each value on its own
    assert cut.inputs == {"truncated": '{"text":"' + long[:MAX_CHARS - 9]} and cut.outputs is None
