"""Tracing: an agent run becomes one span tree (run -> nodes -> LLM calls with usage and time to
first token; tool calls), exported to OpenTelemetry with the GenAI names and to a SQLite store;
streaming is unchanged; a failing exporter costs a warning, never the run."""

from __future__ import annotations

import time
import warnings

import pytest
from typing_extensions import TypedDict

from agentforge.agents import ScriptedChatModel, create_react_agent
from agentforge.graphs import START, StateGraph
from agentforge.tools.servers.calculator import calculate
from agentforge.tracing import OpenTelemetryExporter, SqliteTraceStore, flush, traced


def agent():
    model = ScriptedChatModel([{"tool_calls": [{"name": "calculate", "args": {"expression": "6 * 7"}}]}, "It is 42."])
    return create_react_agent(model, [calculate], name="calc-agent")


class Collect:
    def __init__(self):
        self.runs = []

    def export(self, spans):
        self.runs.append(spans)


def test_an_agent_run_is_one_span_tree():
    sink = Collect()
    out = traced(agent(), [sink]).invoke({"messages": [{"role": "user", "content": "What is 6 * 7?"}]})
    flush()
    assert out["messages"][-1].content == "It is 42."
    [spans] = sink.runs
    by_kind = {}
    for span in spans:
        by_kind.setdefault(span.kind, []).append(span)
    root = by_kind["graph"][0]
    assert root.name == "calc-agent" and root.parent_id is None and root.outputs["messages"][-1]["content"] == "It is 42."
    assert [s.name for s in by_kind["node"]] == ["agent", "agent"]
    assert all(s.parent_id == root.span_id for s in by_kind["node"] + by_kind["tool"])
    [tool] = by_kind["tool"]
    assert tool.name == "calculate" and tool.inputs == {"arguments": '{"expression": "6 * 7"}'}
    assert tool.outputs["messages"][0]["content"] == "42"
    first, second = by_kind["llm"]
    assert first.parent_id == by_kind["node"][0].span_id and second.parent_id == by_kind["node"][1].span_id
    assert second.outputs["content"] == "It is 42." and second.attributes["completion_tokens"] == 3
    assert all(s.attributes["time_to_first_token_s"] >= 0 and s.end >= s.start for s in by_kind["llm"])
    assert len({s.trace_id for s in spans}) == 1


def test_streaming_through_the_tracer_is_unchanged():
    plain = list(agent().stream({"messages": ["What is 6 * 7?"]}, stream_mode="updates"))
    sink = Collect()
    seen = list(traced(agent(), [sink]).stream({"messages": ["What is 6 * 7?"]}, stream_mode="updates"))
    assert [list(u) for u in seen] == [list(u) for u in plain]
    both = list(traced(agent(), [sink]).stream({"messages": ["What is 6 * 7?"]}, stream_mode=["updates", "custom"]))
    assert [mode for mode, _ in both] == ["updates"] * len(plain)


def test_opentelemetry_genai_names_and_parents():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    traced(agent(), [OpenTelemetryExporter(provider)]).invoke({"messages": ["What is 6 * 7?"]})
    flush()
    spans = {s.name: s for s in memory.get_finished_spans()}
    root, tool, chat = spans["invoke_agent calc-agent"], spans["execute_tool calculate"], spans["chat"]
    assert root.attributes["gen_ai.operation.name"] == "invoke_agent" and root.parent is None
    assert tool.attributes["gen_ai.tool.name"] == "calculate" and tool.parent.span_id == root.context.span_id
    assert chat.attributes["gen_ai.operation.name"] == "chat" and "gen_ai.usage.output_tokens" in chat.attributes
    assert spans["agent"].parent.span_id == root.context.span_id and chat.parent.span_id == spans["agent"].context.span_id
    assert "gen_ai.output.messages" not in chat.attributes  # content only when opted in
    assert len({s.context.trace_id for s in memory.get_finished_spans()}) == 1


def test_sqlite_store_and_a_failing_exporter(tmp_path):
    class Broken:
        def export(self, spans):
            raise ConnectionError("collector down")

    store = SqliteTraceStore(tmp_path / "traces.sqlite")
    graph = traced(agent(), [Broken(), store])
    with pytest.warns(RuntimeWarning, match="Broken failed"):
        assert graph.invoke({"messages": ["What is 6 * 7?"]})["messages"][-1].content == "It is 42."
        flush()
    [root] = store.traces()
    spans = store.trace(root.trace_id)
    assert [s.kind for s in spans][:1] == ["graph"] and {s.kind for s in spans} == {"graph", "node", "llm", "tool"}
    with pytest.raises(ValueError, match="exporter"):
        traced(agent(), [])


class State(TypedDict):
    x: int


def test_a_failing_node_is_recorded_as_an_error():
    def boom(state):
        raise RuntimeError("node failed")

    graph = StateGraph(State).add_node("boom", boom).add_edge(START, "boom").compile()
    sink = Collect()
    with pytest.raises(RuntimeError):
        traced(graph, [sink]).invoke({"x": 1})
    flush()
    [spans] = sink.runs
    assert spans[0].error == "RuntimeError: node failed" and spans[1].name == "boom" and spans[1].error


def test_a_dead_otlp_collector_does_not_hold_up_the_run():
    """The collector accepts connections and never answers: the OTLP export waits out its timeout
    on the export thread while the run has already returned."""
    import socket

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(8)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{blackhole.getsockname()[1]}/v1/traces", timeout=1)))
    graph = StateGraph(State).add_node("double", lambda state: {"x": 2 * state["x"]}).add_edge(START, "double").compile()
    try:
        assert traced(graph, [OpenTelemetryExporter(provider)]).invoke({"x": 21}) == {"x": 42}
        assert flush(timeout=0) is False  # the export is still waiting on the collector
        assert flush(timeout=60) is True
    finally:
        blackhole.close()


def test_runs_reach_the_exporter_without_a_flush_and_in_order(tmp_path):
    # runs hand their spans to the tracing thread in batches; a quiet process still exports them
    # shortly after (no flush needed), each run as its own export, with the run's own values as data
    sink = Collect()
    graph = StateGraph(State).add_node("inc", lambda s: {"x": s["x"] + 1}).add_edge(START, "inc").compile()
    for x in range(5):
        graph_traced = traced(graph, [sink])
        graph_traced.invoke({"x": x})
    deadline = time.monotonic() + 10
    while len(sink.runs) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [[s.outputs for s in spans] for spans in sink.runs] == [[{"x": x + 1}, {"x": x + 1}] for x in range(5)]


def test_an_exporter_that_raises_a_warning_as_error_does_not_hang_flush():
    sink = Collect()

    class Loud:
        def export(self, spans):
            raise ConnectionError("down")

    graph = StateGraph(State).add_node("inc", lambda s: {"x": s["x"] + 1}).add_edge(START, "inc").compile()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the tracing thread's warning becomes an exception there
        traced(graph, [Loud(), sink]).invoke({"x": 1})
        assert flush(timeout=10)
    traced(graph, [sink]).invoke({"x": 2})  # the thread still exports what comes next
    assert flush(timeout=10) and sink.runs[-1][0].outputs == {"x": 3}


def test_a_forked_child_exports_its_own_runs():
    import multiprocessing

    graph = StateGraph(State).add_node("inc", lambda s: {"x": s["x"] + 1}).add_edge(START, "inc").compile()
    traced(graph, [Collect()]).invoke({"x": 1})  # the parent's tracing thread is running

    def child(queue):
        sink = Collect()
        traced(graph, [sink]).invoke({"x": 5})
        queue.put((flush(timeout=10), [s.outputs for s in sink.runs[0]] if sink.runs else None))

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=child, args=(queue,))
    process.start()
    assert queue.get(timeout=60) == (True, [{"x": 6}, {"x": 6}])
    process.join(timeout=60)
