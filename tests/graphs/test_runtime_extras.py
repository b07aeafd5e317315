"""What our runtime adds or does its own way: message helpers, LLM token streaming, drawing."""

from __future__ import annotations

import operator
from typing import Annotated, Literal, TypedDict

import pytest

from agentforge.engine import ChatMessage
from agentforge.graphs import (
    END,
    REMOVE_ALL_MESSAGES,
    START,
    Command,
    InMemorySaver,
    MessagesState,
    RemoveMessage,
    StateGraph,
    add_messages,
    get_message_writer,
    interrupt,
)


def test_add_messages_appends_replaces_by_id_and_removes():
    left = add_messages([], [{"role": "user", "content": "hi", "id": "1"}, "plain text becomes a user message"])
    assert [(m.role, m.content) for m in left] == [("user", "hi"), ("user", "plain text becomes a user message")]
    assert left[1].id  # ids are assigned
    replaced = add_messages(left, ChatMessage(role="user", content="hello", id="1"))
    assert [m.content for m in replaced] == ["hello", "plain text becomes a user message"]
    assert add_messages(replaced, RemoveMessage("1")) == [replaced[1]]
    assert add_messages(replaced, [RemoveMessage(REMOVE_ALL_MESSAGES), {"role": "user", "content": "new"}])[0].content == "new"
    with pytest.raises(ValueError, match="doesn't exist"):
        add_messages(replaced, RemoveMessage("nope"))
    appended = add_messages(left, {"role": "assistant", "content": "yo"})
    assert all(a is b for a, b in zip(left, appended))  # the same objects: checkpoints store only the tail


def test_message_writer_streams_llm_output_with_metadata():
    def bot(state):
        write = get_message_writer()
        text = ""
        for token in ["Hel", "lo", "!"]:
            write(token)
            text += token
        return {"messages": [{"role": "assistant", "content": text}]}

    g = StateGraph(MessagesState)
    g.add_node("bot", bot)
    g.add_edge(START, "bot")
    chunks = list(g.compile().stream({"messages": ["hi"]}, stream_mode="messages"))
    assert [c for c, _ in chunks] == ["Hel", "lo", "!"]
    assert chunks[0][1]["langgraph_node"] == "bot" and chunks[0][1]["langgraph_step"] == 1


def test_debug_stream_reports_tasks_and_checkpoints():
    class S(TypedDict):
        log: Annotated[list, operator.add]

    g = StateGraph(S)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_edge(START, "a")
    events = list(g.compile().stream({"log": []}, stream_mode="debug"))
    assert [e["type"] for e in events] == ["checkpoint", "task", "task_result", "checkpoint"]
    assert events[2]["payload"]["name"] == "a" and events[-1]["payload"]["values"] == {"log": ["a"]}


def test_drawing_mermaid_and_svg():
    class S(TypedDict):
        x: int

    def route(state) -> Literal["b", "__end__"]:
        return "b"

    g = StateGraph(S)
    g.add_node("a", lambda s: {}).add_node("b", lambda s: {})
    g.add_edge(START, "a").add_conditional_edges("a", route).add_edge("b", END)
    drawing = g.compile().get_graph()
    mermaid = drawing.draw_mermaid()
    assert "__start__ --> a;" in mermaid and "a -.-> b;" in mermaid and "a -.-> __end__;" in mermaid
    assert "b --> __end__;" in mermaid
    svg = drawing.draw_svg()
    assert svg.startswith("<svg") and svg.count("<rect") == 4 and svg.count("stroke-dasharray") == 2


def test_observers_see_events_where_they_happen_without_changing_the_stream():
    import threading

    class Log(TypedDict):
        log: Annotated[list, operator.add]

    class Observer:
        modes = ("tasks", "messages")

        def __init__(self):
            self.events = []

        def on_event(self, namespace, mode, payload):
            self.events.append((namespace, mode, payload.get("name") if mode == "tasks" else payload[0],
                                threading.current_thread().name))

    def talk(state):
        get_message_writer()("token")
        return {"log": ["talk"]}

    inner = StateGraph(Log).add_node("talk", talk).add_edge(START, "talk").compile()
    outer = StateGraph(Log).add_node("sub", inner).add_edge(START, "sub").compile()
    observer = Observer()
    plain = list(outer.stream({"log": []}, stream_mode="updates"))
    observed = list(outer.stream({"log": []}, {"observers": [observer]}, stream_mode="updates"))
    assert observed == plain  # nothing extra streams, and the run stays inline (no "live" worker threads)
    names = [(ns[0].split(":")[0] if ns else "", mode, what) for ns, mode, what, _ in observer.events]
    assert names == [("", "tasks", "sub"), ("sub", "tasks", "talk"), ("sub", "messages", "token"),
                     ("sub", "tasks", "talk"), ("", "tasks", "sub")]
    assert {thread for *_, thread in observer.events} == {threading.current_thread().name}

    class Broken:
        modes = ("tasks",)

        def on_event(self, namespace, mode, payload):
            raise RuntimeError("observer bug")

    with pytest.warns(RuntimeWarning, match="observer Broken failed"):
        assert outer.invoke({"log": []}, {"observers": [Broken()]}) == {"log": ["talk"]}


def test_task_hooks_get_what_the_tasks_events_say():
    """An observer's on_task_start / on_task_result get the "tasks" events' fields as arguments:
    starts, results, a subgraph's tasks, an interrupt and an error."""

    class Log(TypedDict):
        log: Annotated[list, operator.add]

    class Both:
        modes = ("tasks",)

        def __init__(self):
            self.events, self.hooks = [], []

        def on_event(self, namespace, mode, payload):
            self.events.append((namespace, payload))

        def on_task_start(self, namespace, id, name, input, triggers):
            self.hooks.append((namespace, {"id": id, "name": name, "input": input, "triggers": triggers}))

        def on_task_result(self, namespace, id, name, error, result, interrupts):
            self.hooks.append((namespace, {"id": id, "name": name, "error": error, "result": result,
                                           "interrupts": list(interrupts)}))

    def ask(state):
        return {"log": [interrupt("name?")]}

    def fail(state):
        raise ValueError("boom")

    inner = StateGraph(Log).add_node("talk", lambda s: {"log": ["talk"]}).add_edge(START, "talk").compile()
    graph = (StateGraph(Log).add_node("sub", inner).add_node("ask", ask).add_node("fail", fail)
             .add_edge(START, "sub").add_edge("sub", "ask").add_edge("ask", "fail")
             .compile(checkpointer=InMemorySaver()))
    both, config = Both(), {"configurable": {"thread_id": "1"}}
    graph.invoke({"log": []}, {**config, "observers": [both]})
    with pytest.raises(ValueError, match="boom"):
        graph.invoke(Command(resume="Ada"), {**config, "observers": [both]})
    assert both.hooks == both.events
    kinds = [(e["name"], "input" in e, bool(e.get("interrupts")), e.get("error") is not None) for _, e in both.hooks]
    assert kinds == [("sub", True, False, False), ("talk", True, False, False), ("talk", False, False, False),
                     ("sub", False, False, False), ("ask", True, False, False), ("ask", False, True, False),
                     ("ask", True, False, False), ("ask", False, False, False), ("fail", True, False, False),
                     ("fail", False, False, True)]

    class Broken:
        def on_task_start(self, namespace, *task):
            raise RuntimeError("hook bug")

    with pytest.warns(RuntimeWarning, match="observer Broken failed"):
        assert inner.invoke({"log": []}, {"observers": [Broken()]}) == {"log": ["talk"]}


def test_cancelling_an_async_stream_cancels_its_running_nodes():
    import asyncio

    started, cancelled = asyncio.Event(), []

    async def slow(state):
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append("slow")
            raise
        return {"messages": [{"role": "assistant", "content": "late"}]}

    graph = StateGraph(MessagesState)
    graph.add_node("slow", slow)
    graph.add_edge(START, "slow")
    graph.add_edge("slow", END)
    app = graph.compile()

    async def main():
        async def consume():
            async for _ in app.astream({"messages": ["go"]}):
                pass

        run = asyncio.create_task(consume())
        await started.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        await asyncio.sleep(0)  # the node's task sees its cancellation
        assert cancelled == ["slow"]

    asyncio.run(main())


def test_async_runs_storing_each_write_at_once_keep_the_event_loop_free():
    """With durability "sync", `astream` stores checkpoints and task writes from worker threads: a
    saver that waits on a database the event loop itself holds (an A2A server's task store in the
    same SQLite file) would otherwise deadlock the loop."""
    import asyncio
    import threading

    class Recording(InMemorySaver):
        def put(self, *args, **kwargs):
            threads.append(threading.get_ident())
            return super().put(*args, **kwargs)

        def put_writes(self, *args, **kwargs):
            threads.append(threading.get_ident())
            return super().put_writes(*args, **kwargs)

    async def slow(state):
        await asyncio.sleep(0)
        return {"log": ["slow"]}

    class S(TypedDict):
        log: Annotated[list, operator.add]

    graph = StateGraph(S)
    graph.add_node("first", lambda state: {"log": ["first"]})
    graph.add_node("slow", slow)
    graph.add_edge(START, "first")
    graph.add_edge("first", "slow")
    graph.add_edge("slow", END)
    app = graph.compile(checkpointer=Recording())
    threads: list[int] = []

    async def run():
        chunks = [c async for c in app.astream({"log": []}, {"configurable": {"thread_id": "t"}}, durability="sync")]
        return chunks, threading.get_ident()

    chunks, loop_thread = asyncio.run(run())
    assert chunks == [{"first": {"log": ["first"]}}, {"slow": {"log": ["slow"]}}]
    assert len(threads) == 7  # the input, then writes and a checkpoint for each of three steps
    assert loop_thread not in threads
