"""Agents over HTTP: LangGraph's own `langgraph-sdk` client against `agentforge serve`'s Agent
Protocol routes on 127.0.0.1 — threads, streamed runs, interrupts and resume, state history — and
bad requests answered with a 4xx while the server keeps going."""

from __future__ import annotations

import httpx
import pytest

from agentforge.agents import ScriptedChatModel, create_react_agent
from agentforge.server import create_app

langgraph_sdk = pytest.importorskip("langgraph_sdk")


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def calls(*items):
    return {"content": "", "tool_calls": [{"name": n, "args": a, "id": i} for n, a, i in items]}


@pytest.fixture(scope="module")
def url(server_llm, serve_app):
    graphs = {
        "calc": create_react_agent(ScriptedChatModel([calls(("add", {"a": 2, "b": 3}, "c1")), "2 + 3 = 5"] * 4), [add]),
        "approver": create_react_agent(ScriptedChatModel([calls(("add", {"a": 1, "b": 1}, "a"), ("add", {"a": 2, "b": 2},
                                                                                                  "b")), "done"] * 4),
                                       [add], approve_tools=True),
    }
    return serve_app(create_app(server_llm, "smollm2-135m", graphs=graphs))


@pytest.fixture
def client(url):
    return langgraph_sdk.get_sync_client(url=url, api_key=None)


def test_assistants_threads_and_a_streamed_run(client):
    assert sorted(a["assistant_id"] for a in client.assistants.search()) == ["approver", "calc"]
    thread = client.threads.create()
    parts = list(client.runs.stream(thread["thread_id"], "calc", input={"messages": [{"type": "human", "content": "2+3?"}]},
                                    stream_mode=["updates", "messages-tuple", "values"]))
    events = [p.event for p in parts]
    assert events[0] == "metadata" and {"updates", "messages", "values"} <= set(events)
    tokens = "".join(p.data[0]["content"] for p in parts if p.event == "messages" and p.data[1]["langgraph_node"] == "agent")
    assert tokens == "2 + 3 = 5"
    final = [p.data for p in parts if p.event == "values"][-1]
    assert [(m["type"], m["content"]) for m in final["messages"]] == [
        ("human", "2+3?"), ("ai", ""), ("tool", "5"), ("ai", "2 + 3 = 5")]
    assert final["messages"][1]["tool_calls"] == [{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1", "type": "tool_call"}]
    assert client.threads.get(thread["thread_id"])["status"] == "idle"


def test_interrupts_resume_and_history(client):
    thread_id = client.threads.create()["thread_id"]
    waited = client.runs.wait(thread_id, "approver", input={"messages": [{"role": "user", "content": "go"}]})
    pending = waited["__interrupt__"]
    assert [i["value"]["tool_call"]["id"] for i in pending] == ["a", "b"]
    assert client.threads.get(thread_id)["status"] == "interrupted"
    assert thread_id in [t["thread_id"] for t in client.threads.search(status="interrupted")]
    assert client.threads.search(metadata={"assistant_id": "approver"}, status="interrupted")[0]["thread_id"] == thread_id
    state = client.threads.get_state(thread_id)
    assert state["next"] == ["tools", "tools"] and len(state["interrupts"]) == 2
    resumed = list(client.runs.stream(thread_id, "approver", command={"resume": {
        pending[0]["id"]: "approve", pending[1]["id"]: {"type": "reject", "message": "enough"}}}, stream_mode="updates"))
    tool_updates = [p.data["tools"] for p in resumed if p.event == "updates" and "tools" in p.data]
    assert sorted(u["messages"][0]["content"] for u in tool_updates) == [
        "2", "The user rejected this call of 'add': enough"]
    state = client.threads.get_state(thread_id)
    assert state["values"]["messages"][-1]["content"] == "done" and state["next"] == []
    history = client.threads.get_history(thread_id, limit=100)
    assert len(history) >= 4 and history[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    assert history[0]["parent_checkpoint"]["checkpoint_id"] == history[1]["checkpoint"]["checkpoint_id"]


def test_bad_requests_get_a_4xx_and_the_server_keeps_going(url, client):
    thread_id = client.threads.create()["thread_id"]
    run = {"assistant_id": "calc", "input": {"messages": [{"role": "user", "content": "hi"}]}}
    cases = [
        ("post", "/threads/nope/runs/wait", run, 404),  # a run on a missing thread
        ("post", f"/threads/{thread_id}/runs/wait", {**run, "assistant_id": "ghost"}, 404),
        ("post", f"/threads/{thread_id}/runs/stream", {**run, "stream_mode": "telepathy"}, 400),
        ("post", f"/threads/{thread_id}/runs/wait", {**run, "command": {"resume": 1}}, 400),
        ("post", f"/threads/{thread_id}/runs/wait", {"assistant_id": "calc", "command": {"jump": 1}}, 400),
        ("post", f"/threads/{thread_id}/runs/wait", {"input": {}}, 400),  # no assistant_id
        ("get", "/threads/nope/state", None, 404),
        ("post", "/threads", {"thread_id": thread_id}, 409),
    ]
    for method, path, body, status in cases:
        response = httpx.request(method, url + path, json=body)
        assert response.status_code == status, (path, response.text)
        assert response.json()["error"]["message"]
    out = client.runs.wait(thread_id, "calc", input={"messages": [{"role": "user", "content": "2+3?"}]})
    assert out["messages"][-1]["content"] == "2 + 3 = 5"


def test_a_failing_run_reports_its_error_in_the_stream(url):
    thread_id = httpx.post(url + "/threads", json={}).json()["thread_id"]
    # the scripted model of "calc" has replies left, but a non-list "messages" fails the run inside the graph
    with httpx.stream("POST", f"{url}/threads/{thread_id}/runs/stream",
                      json={"assistant_id": "calc", "input": {"messages": 42}}) as response:
        body = response.read().decode()
    assert response.status_code == 200 and "event: error" in body and "event: end" in body
    assert httpx.get(url + "/health").json() == {"status": "ok"}


def test_a_thread_survives_a_server_restart_through_the_checkpointer(server_llm, serve_app, tmp_path):
    from agentforge.graphs import SqliteSaver

    def app(saver, replies):
        graph = create_react_agent(ScriptedChatModel(replies), [add], checkpointer=saver)
        return serve_app(create_app(server_llm, "smollm2-135m", graphs={"calc": graph}))

    with SqliteSaver.from_conn_string(str(tmp_path / "threads.db")) as saver:
        first = langgraph_sdk.get_sync_client(url=app(saver, ["first answer"]), api_key=None)
        thread_id = first.threads.create()["thread_id"]
        first.runs.wait(thread_id, "calc", input={"messages": [{"role": "user", "content": "hi"}]})
    with SqliteSaver.from_conn_string(str(tmp_path / "threads.db")) as saver:  # a new server, the same file
        second = langgraph_sdk.get_sync_client(url=app(saver, ["second answer"]), api_key=None)
        assert second.threads.get(thread_id)["metadata"] == {"assistant_id": "calc"}
        out = second.runs.wait(thread_id, "calc", input={"messages": [{"role": "user", "content": "again"}]})
        assert [m["content"] for m in out["messages"]] == ["hi", "first answer", "again", "second answer"]
