"""Parent links across processes: a traced run's tool that calls an MCP server sends its span as
the W3C `traceparent` MCP reserves in `_meta`, and a traced graph served there joins the caller's
trace under that span; malformed trace context is ignored, never an error."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from agentforge.agents import ScriptedChatModel, create_react_agent
from agentforge.tools.mcp_client import MCPClient, StdioServer
from agentforge.tracing import SqliteTraceStore, continue_trace, flush, trace_headers, traced
from agentforge.tracing.propagation import remote_parent
from agentforge.tracing.spans import Recorder, normalize_trace_id

SERVER = Path(__file__).with_name("_traced_mcp_server.py")


def test_trace_context_is_parsed_strictly_and_named_runs_keep_their_trace():
    parent = remote_parent({"TraceParent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                            "langsmith-trace": "20260101T000000000000Z1b4e28ba-2fa1-11d2-883f-0016d3cca427"})
    assert (parent.trace_id, parent.span_id) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    assert parent.langsmith_trace.endswith("0016d3cca427")
    for bad in ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "garbage", "",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4BF9-00f0-01"):
        assert remote_parent({"traceparent": bad}) is None
    assert remote_parent({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "langsmith-trace": "not a dotted order"}).langsmith_trace is None
    assert continue_trace({"configurable": {"thread_id": "t"}}, {"traceparent": "garbage"}) == {"configurable": {"thread_id": "t"}}
    joined = continue_trace(None, {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    assert Recorder("g", None, parent=remote_parent(joined["metadata"])).root.parent_id == "00f067aa0ba902b7"
    run_id = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    assert Recorder("g", None, run_id).trace_id == normalize_trace_id(run_id) == run_id.replace("-", "")
    assert trace_headers() == {}  # outside a graph node there is no span to name


def test_an_mcp_served_traced_graph_joins_the_callers_trace_under_its_tool_span(tmp_path):
    store_path = tmp_path / "traces.sqlite"
    with MCPClient({"remote": StdioServer(sys.executable, [str(SERVER), str(store_path)])}) as mcp:
        [shout] = mcp.get_tools()
        model = ScriptedChatModel([{"tool_calls": [{"name": shout.name, "args": {"text": "hello"}}]}, "Done."])
        store = SqliteTraceStore(store_path)
        caller = traced(create_react_agent(model, [shout], name="caller"), [store])
        out = caller.invoke({"messages": ["Shout hello."]})
        flush()
    assert '"HELLO"' in out["messages"][2].content
    [root] = [s for s in store.traces() if s.name == "caller"]
    deadline = time.time() + 30  # the server exports from its own process
    while time.time() < deadline and not any(s.name == "shouter" for s in store.trace(root.trace_id)):
        time.sleep(0.2)
    spans = store.trace(root.trace_id)
    [tool] = [s for s in spans if s.kind == "tool"]
    [served] = [s for s in spans if s.name == "shouter"]
    assert served.kind == "graph" and served.parent_id == tool.span_id and served.trace_id == root.trace_id
    assert [s.name for s in spans if s.parent_id == served.span_id] == ["upper"]
    assert [s.name for s in store.traces()] == ["caller"]  # one trace, listed once
