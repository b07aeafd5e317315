"""A traced agent calling a traced A2A agent: both runs form one trace, the served run under the
caller's tool span, in the local store, in OpenTelemetry (same trace and span ids) and in LangSmith
(parent run, trace and dotted order); an untraced caller changes nothing on the server."""

from __future__ import annotations

import pytest
from _a2a_helpers import one_node_graph, run

from agentforge.a2a import RemoteAgent
from agentforge.agents import ScriptedChatModel, create_react_agent
from agentforge.tracing import LangSmithExporter, OpenTelemetryExporter, SqliteTraceStore, flush, traced


@pytest.fixture
def exporters(tmp_path, langsmith_server):
    from langsmith import Client
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    url, runs = langsmith_server
    store = SqliteTraceStore(tmp_path / "traces.sqlite")
    sinks = [store, OpenTelemetryExporter(provider), LangSmithExporter(Client(api_url=url, api_key="test"), project_name="t")]
    return sinks, store, memory, runs


def echo(state):
    return {"messages": [{"role": "assistant", "content": f"echo: {state['messages'][-1].content}"}]}


def test_a_served_agent_joins_the_callers_trace_in_every_exporter(serve_a2a, exporters):
    sinks, store, memory, runs = exporters
    url = serve_a2a(traced(one_node_graph(echo, name="echoer"), sinks))
    model = ScriptedChatModel([{"tool_calls": [{"name": "ask_echo", "args": {"request": "ping"}}]}, "It said ping."])
    caller = traced(create_react_agent(model, [RemoteAgent(url).as_tool(name="ask_echo")], name="caller"), sinks)
    out = run(caller.ainvoke({"messages": ["Ask the echo agent."]}))
    assert out["messages"][2].content == "echo: ping"
    flush()

    [root] = store.traces()  # one trace: the served run hangs inside it
    spans = store.trace(root.trace_id)
    [tool] = [s for s in spans if s.kind == "tool"]
    [served] = [s for s in spans if s.name == "echoer"]
    assert root.name == "caller" and served.parent_id == tool.span_id
    assert [s.name for s in spans if s.parent_id == served.span_id] == ["node"]

    otel = {s.name: s for s in memory.get_finished_spans()}
    otel_tool, otel_served = otel["execute_tool ask_echo"], otel["invoke_agent echoer"]
    assert otel_served.parent.span_id == otel_tool.context.span_id and otel_served.parent.is_remote
    assert otel_served.context.trace_id == otel_tool.context.trace_id == int(root.trace_id, 16)
    assert f"{otel_tool.context.span_id:016x}" == tool.span_id  # the exported ids are ours

    by_name = {r["name"]: r for r in runs.values()}
    ls_root, ls_tool, ls_served = by_name["caller"], by_name["ask_echo"], by_name["echoer"]
    assert ls_served["parent_run_id"] == ls_tool["id"] and ls_served["trace_id"] == ls_root["id"]
    assert ls_served["dotted_order"].startswith(ls_tool["dotted_order"] + ".")
    assert by_name["node"]["trace_id"] == ls_root["id"]


def test_an_untraced_caller_leaves_the_served_run_a_trace_of_its_own(serve_a2a, exporters):
    sinks, store, _, _ = exporters
    url = serve_a2a(traced(one_node_graph(echo, name="echoer"), sinks))
    assert run(RemoteAgent(url).send("hi")).text == "echo: hi"
    flush()
    [root] = store.traces()
    assert root.name == "echoer" and root.parent_id is None
