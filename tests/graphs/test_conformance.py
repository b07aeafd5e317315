"""LangGraph's semantics, rule by rule. Every program runs on both runtimes (`lg` fixture) and must
give the same result; the rare deliberate differences are marked and documented in docs/graphs.md."""

from __future__ import annotations

import asyncio
import operator
import threading
import time
from dataclasses import dataclass
from typing import Annotated, TypedDict

import pytest
from pydantic import BaseModel


class S(TypedDict, total=False):
    x: int
    log: Annotated[list, operator.add]


def logger(name, **extra):
    def node(state):
        return {"log": [name], **extra}

    node.__name__ = name
    return node


def chain(lg, *names, state=S):
    g = lg.StateGraph(state)
    for n in names:
        g.add_node(n, logger(n))
    g.add_edge(lg.START, names[0])
    for a, b in zip(names, names[1:]):
        g.add_edge(a, b)
    g.add_edge(names[-1], lg.END)
    return g


def thread(tid="t"):
    return {"configurable": {"thread_id": tid}}


# 1. linear chain; nodes see only state committed in earlier steps
def test_linear_chain_returns_the_merged_state(lg):
    g = lg.StateGraph(S)
    g.add_node("a", lambda s: {"x": s["x"] + 1, "log": ["a"]})
    g.add_node("b", lambda s: {"x": s["x"] * 10, "log": [f"b saw {s['x']}"]})
    g.add_edge(lg.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", lg.END)
    assert g.compile().invoke({"x": 1}) == {"x": 20, "log": ["a", "b saw 2"]}


def test_parallel_nodes_see_the_state_from_before_the_step(lg):
    g = lg.StateGraph(S)
    g.add_node("a", lambda s: {"log": [f"a saw {s['log']}"]})
    g.add_node("b", lambda s: {"log": [f"b saw {s['log']}"]})
    g.add_edge(lg.START, "a")
    g.add_edge(lg.START, "b")
    assert g.compile().invoke({"log": ["in"]})["log"] == ["in", "a saw ['in']", "b saw ['in']"]


# 2. two writes to a key without a reducer in one step
def test_concurrent_writes_to_a_plain_key_raise_naming_the_key(lg):
    g = lg.StateGraph(S)
    g.add_node("a", lambda s: {"x": 1})
    g.add_node("b", lambda s: {"x": 2})
    g.add_edge(lg.START, "a")
    g.add_edge(lg.START, "b")
    with pytest.raises(lg.InvalidUpdateError, match="At key 'x'"):
        g.compile().invoke({"x": 0})


# 3. reducers fold in a deterministic order: by node name, not completion time
def test_reducer_order_is_by_node_name_not_completion_time(lg):
    g = lg.StateGraph(S)
    for name, delay in (("c", 0.0), ("a", 0.05), ("b", 0.02)):
        def node(state, name=name, delay=delay):
            time.sleep(delay)
            return {"log": [name]}
        g.add_node(name, node)
        g.add_edge(lg.START, name)
    assert g.compile().invoke({"log": []})["log"] == ["a", "b", "c"]


# 4. reducers apply to the input
def test_input_goes_through_reducers(lg):
    g = chain(lg, "a")
    assert g.compile().invoke({"log": ["in"]}) == {"log": ["in", "a"]}


# 5. several writes to one key from one node fold in order
def test_one_node_writing_a_key_twice_folds_both(lg):
    g = lg.StateGraph(S)
    g.add_node("a", lambda s: lg.Command(update=[("log", ["1"]), ("log", ["2"])]))
    g.add_edge(lg.START, "a")
    assert g.compile().invoke({"log": []})["log"] == ["1", "2"]


# 6/7. Overwrite
def test_overwrite_bypasses_the_reducer_and_only_one_is_allowed(lg):
    g = lg.StateGraph(S)
    g.add_node("a", lambda s: {"log": lg.Overwrite(["fresh"])})
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_edge(lg.START, "a")
    g.add_edge("a", "b")
    assert g.compile().invoke({"log": ["old"]})["log"] == ["fresh", "b"]

    g = lg.StateGraph(S)
    g.add_node("a", lambda s: {"log": lg.Overwrite(["a"])})
    g.add_node("b", lambda s: {"log": lg.Overwrite(["b"])})
    g.add_edge(lg.START, "a")
    g.add_edge(lg.START, "b")
    with pytest.raises(lg.InvalidUpdateError, match="Overwrite"):
        g.compile().invoke({"log": []})


# 8. unknown keys ignored; a non-dict return is an error
def test_unknown_keys_are_ignored_and_bad_returns_raise(lg):
    g = lg.StateGraph(S)
    g.add_node("a", lambda s: {"x": 1, "nope": 2})
    g.add_edge(lg.START, "a")
    assert g.compile().invoke({"x": 0}) == {"x": 1, "log": []}  # a reducer key starts empty
    g = lg.StateGraph(S)
    g.add_node("a", lambda s: 42)
    g.add_edge(lg.START, "a")
    with pytest.raises(lg.InvalidUpdateError, match="Expected dict"):
        g.compile().invoke({"x": 0})


# 9/10. fan-out, join once after both, a node triggered twice in a step runs once
def test_fan_out_and_join_runs_the_join_once_after_all_sources(lg):
    g = lg.StateGraph(S)
    for n in ("a", "b", "b2", "c", "d"):
        g.add_node(n, logger(n))
    g.add_edge(lg.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "b2")
    g.add_edge("a", "c")
    g.add_edge(["b2", "c"], "d")
    assert g.compile().invoke({"log": []})["log"] == ["a", "b", "c", "b2", "d"]


def test_node_triggered_by_two_predecessors_in_one_step_runs_once(lg):
    g = lg.StateGraph(S)
    for n in ("a", "b", "c", "d"):
        g.add_node(n, logger(n))
    g.add_edge(lg.START, "a")
    g.add_edge("a", "b")
    g.add_edge("a", "c")
    g.add_edge("b", "d")
    g.add_edge("c", "d")
    assert g.compile().invoke({"log": []})["log"] == ["a", "b", "c", "d"]


# 11. defer
def test_deferred_node_waits_for_unequal_branches(lg):
    g = lg.StateGraph(S)
    for n in ("a", "b", "b2", "b3", "c"):
        g.add_node(n, logger(n))
    g.add_node("end", logger("end"), defer=True)
    g.add_edge(lg.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "b2")
    g.add_edge("b2", "b3")
    g.add_edge("a", "c")
    g.add_edge("b3", "end")
    g.add_edge("c", "end")
    assert g.compile().invoke({"log": []})["log"] == ["a", "b", "c", "b2", "b3", "end"]


# 12. conditional edges: name, list, END, path_map; the router sees the node's own writes
def test_conditional_edges_route_by_name_list_or_map(lg):
    g = lg.StateGraph(S)
    for n in ("a", "b", "c"):
        g.add_node(n, logger(n))
    g.add_node("start", lambda s: {"x": s["x"] + 1})
    g.add_edge(lg.START, "start")
    g.add_conditional_edges("start", lambda s: ["a", "c"] if s["x"] == 2 else "b")
    assert g.compile().invoke({"x": 1, "log": []})["log"] == ["a", "c"]
    assert g.compile().invoke({"x": 5, "log": []})["log"] == ["b"]

    g = lg.StateGraph(S)
    g.add_node("a", logger("a"))
    g.add_conditional_edges(lg.START, lambda s: "go" if s["x"] else "stop", {"go": "a", "stop": lg.END})
    assert g.compile().invoke({"x": 1, "log": []})["log"] == ["a"]
    assert g.compile().invoke({"x": 0, "log": []})["log"] == []


# 13/14. Send
def test_send_runs_the_node_once_per_send_with_its_own_input(lg):
    class MapState(TypedDict):
        items: list
        results: Annotated[list, operator.add]

    g = lg.StateGraph(MapState)
    g.add_node("work", lambda arg: {"results": [arg["item"] * 10]})
    g.add_node("after", lambda s: {"results": ["after"]})
    g.add_conditional_edges(lg.START, lambda s: [lg.Send("work", {"item": i}) for i in s["items"]])
    g.add_edge("work", "after")
    assert g.compile().invoke({"items": [3, 1, 2], "results": []})["results"] == [30, 10, 20, "after"]


def test_pull_writes_come_before_send_writes(lg):
    g = lg.StateGraph(S)
    g.add_node("z", logger("z"))
    g.add_node("w", lambda arg: {"log": [f"send {arg}"]})
    g.add_conditional_edges(lg.START, lambda s: [lg.Send("w", 1), "z", lg.Send("w", 2)])
    assert g.compile().invoke({"log": []})["log"] == ["z", "send 1", "send 2"]


# 15/16. Command
def test_command_updates_and_routes_and_adds_to_static_edges(lg):
    g = lg.StateGraph(S)
    g.add_node("a", lambda s: lg.Command(update={"log": ["a"]}, goto="b"))
    g.add_node("b", logger("b"))
    g.add_node("c", logger("c"))
    g.add_edge(lg.START, "a")
    assert g.compile().invoke({"log": []})["log"] == ["a", "b"]
    g.add_edge("a", "c")
    assert g.compile().invoke({"log": []})["log"] == ["a", "b", "c"]


def test_command_goto_end_and_send(lg):
    g = lg.StateGraph(S)
    g.add_node("a", lambda s: lg.Command(goto=[lg.Send("b", {"log": ["x"]}), lg.END]))
    g.add_node("b", lambda arg: {"log": ["b got " + arg["log"][0]]})
    g.add_edge(lg.START, "a")
    assert g.compile().invoke({"log": []})["log"] == ["b got x"]


# 17. Command.PARENT
def test_parent_command_routes_the_parent(lg):
    sub = lg.StateGraph(S)
    sub.add_node("inner", lambda s: lg.Command(graph=lg.Command.PARENT, goto="other", update={"log": ["inner"]}))
    sub.add_edge(lg.START, "inner")
    g = lg.StateGraph(S)
    g.add_node("child", sub.compile())
    g.add_node("other", logger("other"))
    g.add_edge(lg.START, "child")
    assert g.compile().invoke({"log": []})["log"] == ["inner", "other"]


# 18. recursion limit
def test_recursion_limit_counts_supersteps(lg):
    names = [f"n{i}" for i in range(5)]
    app = chain(lg, *names).compile()  # 6 supersteps: the input's, then one per node
    assert app.invoke({"log": []}, {"recursion_limit": 6})["log"] == names
    with pytest.raises(lg.GraphRecursionError, match="Recursion limit of 5"):
        app.invoke({"log": []}, {"recursion_limit": 5})


def test_a_loop_stops_at_the_recursion_limit(lg):
    g = lg.StateGraph(S)
    g.add_node("loop", lambda s: {"x": s["x"] + 1})
    g.add_edge(lg.START, "loop")
    g.add_edge("loop", "loop")
    with pytest.raises(lg.GraphRecursionError):
        g.compile().invoke({"x": 0}, {"recursion_limit": 10})


# 19/20. threads; errors about configuration
def test_threads_accumulate_and_are_isolated(lg):
    app = chain(lg, "a").compile(checkpointer=lg.InMemorySaver())
    app.invoke({"log": ["1"]}, thread("one"))
    assert app.invoke({"log": ["2"]}, thread("one"))["log"] == ["1", "a", "2", "a"]
    assert app.invoke({"log": ["3"]}, thread("two"))["log"] == ["3", "a"]


def test_configuration_errors(lg):
    app = chain(lg, "a").compile(checkpointer=lg.InMemorySaver())
    with pytest.raises(ValueError, match="thread_id"):
        app.invoke({"log": []})
    with pytest.raises(RuntimeError, match="checkpointer"):
        chain(lg, "a").compile().invoke(lg.Command(resume=1))
    with pytest.raises(lg.EmptyInputError):
        app.invoke(None, thread("empty"))


# 21/22/23. failure keeps the successful sibling's writes; retries
def test_failed_node_resumes_without_rerunning_its_successful_sibling(lg):
    calls = {"ok": 0, "flaky": 0}

    def ok(state):
        calls["ok"] += 1
        return {"log": ["ok"]}

    def flaky(state):
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise ConnectionError("down")
        return {"log": ["flaky"]}

    g = lg.StateGraph(S)
    g.add_node("ok", ok)
    g.add_node("flaky", flaky)
    g.add_edge(lg.START, "ok")
    g.add_edge(lg.START, "flaky")
    app = g.compile(checkpointer=lg.InMemorySaver())
    with pytest.raises(ConnectionError):
        app.invoke({"log": []}, thread(), durability="sync")
    state = app.get_state(thread())
    assert state.next == ("flaky",)
    assert state.values["log"] == ["ok"]
    assert app.invoke(None, thread())["log"] == ["flaky", "ok"]
    assert calls == {"ok": 1, "flaky": 2}


def test_retry_policy_retries_then_fails(lg):
    calls = []

    def always(state):
        calls.append(1)
        raise ConnectionError("nope")

    g = lg.StateGraph(S)
    g.add_node("a", always, retry_policy=lg.RetryPolicy(max_attempts=3, initial_interval=0.001, jitter=False))
    g.add_edge(lg.START, "a")
    with pytest.raises(ConnectionError):
        g.compile().invoke({"log": []})
    assert len(calls) == 3
    calls.clear()

    def bug(state):
        calls.append(1)
        raise ValueError("a bug is not retried")

    g = lg.StateGraph(S)
    g.add_node("a", bug, retry_policy=lg.RetryPolicy(max_attempts=3, initial_interval=0.001))
    g.add_edge(lg.START, "a")
    with pytest.raises(ValueError):
        g.compile().invoke({"log": []})
    assert len(calls) == 1


# 24-27. interrupt / resume
def test_interrupt_pauses_and_resume_reruns_the_node(lg):
    runs = []

    def ask(state):
        runs.append("ask")
        first = lg.interrupt("first?")
        second = lg.interrupt("second?")
        return {"log": [f"{first}+{second}"]}

    g = lg.StateGraph(S)
    g.add_node("ask", ask)
    g.add_edge(lg.START, "ask")
    app = g.compile(checkpointer=lg.InMemorySaver())
    out = app.invoke({"log": []}, thread())
    assert [i.value for i in out["__interrupt__"]] == ["first?"]
    out = app.invoke(lg.Command(resume="A"), thread())
    assert [i.value for i in out["__interrupt__"]] == ["second?"]
    assert app.invoke(lg.Command(resume="B"), thread())["log"] == ["A+B"]
    assert runs == ["ask"] * 3


def test_resume_with_update_applies_the_update_first(lg):
    def ask(state):
        answer = lg.interrupt("?")
        return {"log": [f"x={state['x']} answer={answer}"]}

    g = lg.StateGraph(S)
    g.add_node("ask", ask)
    g.add_edge(lg.START, "ask")
    app = g.compile(checkpointer=lg.InMemorySaver())
    app.invoke({"x": 1, "log": []}, thread())
    assert app.invoke(lg.Command(resume="yes", update={"x": 7}), thread())["log"] == ["x=7 answer=yes"]


# 28/29. parallel interrupts; a sibling is not re-run
def test_parallel_interrupts_resume_by_id_and_siblings_do_not_rerun(lg):
    calls = []

    def asker(name):
        def node(state):
            calls.append(name)
            return {"log": [f"{name}:{lg.interrupt(name)}"]}
        return node

    def plain(state):
        calls.append("plain")
        return {"log": ["plain"]}

    g = lg.StateGraph(S)
    g.add_node("p", asker("p"))
    g.add_node("q", asker("q"))
    g.add_node("plain", plain)
    for n in ("p", "q", "plain"):
        g.add_edge(lg.START, n)
    app = g.compile(checkpointer=lg.InMemorySaver())
    out = app.invoke({"log": []}, thread())
    interrupts = {i.value: i.id for i in out["__interrupt__"]}
    assert set(interrupts) == {"p", "q"}
    with pytest.raises(RuntimeError, match="multiple pending interrupts"):
        app.invoke(lg.Command(resume="x"), thread())
    out = app.invoke(lg.Command(resume={interrupts["p"]: "P", interrupts["q"]: "Q"}), thread())
    assert out["log"] == ["p:P", "plain", "q:Q"]
    assert sorted(calls) == ["p", "p", "plain", "q", "q"]


# 30. static breakpoints
def test_interrupt_before_and_after(lg):
    app = chain(lg, "a", "b", "c").compile(checkpointer=lg.InMemorySaver(), interrupt_before=["b"])
    assert app.invoke({"log": []}, thread())["log"] == ["a"]
    assert app.get_state(thread()).next == ("b",)
    assert app.invoke(None, thread())["log"] == ["a", "b", "c"]

    app = chain(lg, "a", "b", "c").compile(checkpointer=lg.InMemorySaver(), interrupt_after=["a"])
    chunks = list(app.stream({"log": []}, thread("after"), stream_mode="updates"))
    assert chunks == [{"a": {"log": ["a"]}}, {"__interrupt__": ()}]
    assert app.invoke(None, thread("after"))["log"] == ["a", "b", "c"]


# 31. update_state while paused
def test_update_state_while_paused_is_seen_on_resume(lg):
    app = chain(lg, "a", "b").compile(checkpointer=lg.InMemorySaver(), interrupt_before=["b"])
    app.invoke({"log": []}, thread())
    app.update_state(thread(), {"log": ["edited"]})
    state = app.get_state(thread())
    assert state.values["log"] == ["a", "edited"] and state.next == ("b",)
    assert state.metadata["source"] == "update"
    assert app.invoke(None, thread())["log"] == ["a", "edited", "b"]


def test_checkpoints_record_the_runs_metadata_and_plain_configurable_values(lg):
    """Each checkpoint says which request wrote it: the config's `metadata` and its plain
    `configurable` values (not the thread or checkpoint ids, not objects)."""
    app = chain(lg, "a").compile(checkpointer=lg.InMemorySaver())
    config = {"configurable": {"thread_id": "t", "user": "ada", "attempt": 2, "client": object()},
              "metadata": {"request": "r-1"}}
    app.invoke({"log": []}, config, durability="sync")
    app.update_state(thread(), {"log": ["edited"]})
    history = list(app.get_state_history(thread()))
    recorded = [{k: h.metadata.get(k) for k in ("user", "attempt", "request", "client", "thread_id")} for h in history]
    run = {"user": "ada", "attempt": 2, "request": "r-1", "client": None, "thread_id": None}
    assert recorded == [dict.fromkeys(run)] + [run] * 3  # the update was made without them


# 32/33/34. time travel and history
def test_history_replay_and_fork(lg):
    app = chain(lg, "a", "b").compile(checkpointer=lg.InMemorySaver())
    app.invoke({"log": []}, thread(), durability="sync")
    history = list(app.get_state_history(thread()))
    assert [h.metadata["step"] for h in history] == [2, 1, 0, -1]
    assert [h.next for h in history] == [(), ("b",), ("a",), ("__start__",)]
    assert [h.metadata["source"] for h in history] == ["loop", "loop", "loop", "input"]
    before_b = history[1]
    assert app.invoke(None, before_b.config)["log"] == ["a", "b"]  # replay re-runs b
    history = list(app.get_state_history(thread()))  # a new branch: a fork of before_b, then b's step
    assert [(h.metadata["step"], h.metadata["source"]) for h in history[:3]] == [(3, "loop"), (2, "fork"), (2, "loop")]
    assert history[1].parent_config["configurable"]["checkpoint_id"] == before_b.config["configurable"]["checkpoint_id"]
    assert len(history) == 6  # the old history is kept

    fork = app.update_state(before_b.config, {"log": ["forked"]}, as_node="a")
    assert app.invoke(None, fork)["log"] == ["a", "forked", "b"]


def test_durability_exit_stores_only_the_final_checkpoint(lg):
    app = chain(lg, "a", "b", "c").compile(checkpointer=lg.InMemorySaver())
    app.invoke({"log": []}, thread(), durability="exit")
    history = list(app.get_state_history(thread()))
    assert len(history) == 1 and history[0].values["log"] == ["a", "b", "c"]


# 35/36. streaming
def test_stream_modes(lg):
    app = chain(lg, "a", "b").compile()
    assert list(app.stream({"log": []}, stream_mode="updates")) == [{"a": {"log": ["a"]}}, {"b": {"log": ["b"]}}]
    assert list(app.stream({"log": ["in"]}, stream_mode="values")) == [
        {"log": ["in"]}, {"log": ["in", "a"]}, {"log": ["in", "a", "b"]}]
    assert list(app.stream({"log": []}, stream_mode=["updates"])) == [
        ("updates", {"a": {"log": ["a"]}}), ("updates", {"b": {"log": ["b"]}})]


def test_tasks_stream_gives_starts_and_results(lg):
    def fail(state):
        raise ValueError("bad")

    g = chain(lg, "a")
    g.add_node("fail", fail)
    g.add_edge("a", "fail")
    events = []
    with pytest.raises(ValueError, match="bad"):
        for event in g.compile().stream({"log": []}, stream_mode="tasks"):
            events.append(event)
    assert [sorted(e) for e in events] == [["id", "input", "name", "triggers"], ["error", "id", "interrupts", "name",
                                           "result"]] * 2
    start, done, _, failed = events
    assert (start["name"], start["input"], done["id"], done["result"], done["error"]) == (
        "a", {"log": []}, start["id"], {"log": ["a"]}, None)
    assert failed["name"] == "fail" and isinstance(failed["error"], ValueError) and failed["result"] == {}


def test_custom_stream_from_inside_a_node(lg):
    def talk(state):
        writer = lg.get_stream_writer()
        writer({"progress": 1})
        writer({"progress": 2})
        return {"log": ["talk"]}

    g = lg.StateGraph(S)
    g.add_node("talk", talk)
    g.add_edge(lg.START, "talk")
    chunks = list(g.compile().stream({"log": []}, stream_mode=["custom", "updates"]))
    assert chunks == [("custom", {"progress": 1}), ("custom", {"progress": 2}), ("updates", {"talk": {"log": ["talk"]}})]


def test_stream_subgraphs_yields_namespaced_chunks(lg):
    sub = chain(lg, "inner")
    g = lg.StateGraph(S)
    g.add_node("child", sub.compile())
    g.add_edge(lg.START, "child")
    chunks = list(g.compile().stream({"log": []}, stream_mode="updates", subgraphs=True))
    assert chunks[-1] == ((), {"child": {"log": ["inner"]}})
    ns, update = chunks[0]
    assert len(ns) == 1 and ns[0].startswith("child:") and update == {"inner": {"log": ["inner"]}}


# 37. subgraphs share keys
def test_subgraph_as_a_node_shares_keys(lg):
    sub = chain(lg, "s1", "s2")
    g = lg.StateGraph(S)
    g.add_node("before", logger("before"))
    g.add_node("child", sub.compile())
    g.add_edge(lg.START, "before")
    g.add_edge("before", "child")
    assert g.compile().invoke({"log": []})["log"] == ["before", "before", "s1", "s2"]


# state schemas
def test_dataclass_and_pydantic_state(lg):
    @dataclass
    class D:
        x: int
        log: Annotated[list, operator.add]

    g = lg.StateGraph(D)
    g.add_node("a", lambda s: {"x": s.x + 1, "log": ["a"]})
    g.add_edge(lg.START, "a")
    assert g.compile().invoke({"x": 1, "log": []}) == {"x": 2, "log": ["a"]}

    class P(BaseModel):
        x: int
        log: Annotated[list, operator.add] = []

    g = lg.StateGraph(P)
    g.add_node("a", lambda s: {"x": s.x + 1, "log": ["a"]})
    g.add_edge(lg.START, "a")
    assert g.compile().invoke({"x": 1}) == {"x": 2, "log": ["a"]}


def test_input_and_output_schemas_filter_keys(lg):
    class In(TypedDict):
        question: str

    class Out(TypedDict):
        answer: str

    class All(In, Out):
        scratch: str

    g = lg.StateGraph(All, input_schema=In, output_schema=Out)
    g.add_node("think", lambda s: {"scratch": "hmm", "answer": s["question"].upper()})
    g.add_edge(lg.START, "think")
    assert g.compile().invoke({"question": "hi", "scratch": "ignored"}) == {"answer": "HI"}


def test_add_sequence_and_async_invoke(lg):
    async def b(state):
        await asyncio.sleep(0)
        return {"log": ["b"]}

    g = lg.StateGraph(S)
    g.add_sequence([("a", logger("a")), ("b", b)])
    g.add_edge(lg.START, "a")
    assert asyncio.run(g.compile().ainvoke({"log": []}))["log"] == ["a", "b"]


def test_async_stream_parallel_nodes_overlap(lg):
    seen = []

    async def slow(state):
        seen.append(threading.get_ident())
        await asyncio.sleep(0.2)
        return {"log": ["slow"]}

    g = lg.StateGraph(S)
    g.add_node("s1", slow)
    g.add_node("s2", slow)
    g.add_edge(lg.START, "s1")
    g.add_edge(lg.START, "s2")
    start = time.perf_counter()
    out = asyncio.run(g.compile().ainvoke({"log": []}))
    assert out["log"] == ["slow", "slow"]
    assert time.perf_counter() - start < 0.38  # both sleeps overlapped


def test_graph_validation_errors(lg):
    g = lg.StateGraph(S)
    g.add_node("a", logger("a"))
    with pytest.raises(ValueError):
        g.compile()  # no entry point
    g.add_edge(lg.START, "a")
    g.add_edge("a", "missing")
    with pytest.raises(ValueError):
        g.compile()
    with pytest.raises(ValueError):
        lg.StateGraph(S).add_node("a", logger("a")).add_node("a", logger("a"))


def test_messages_state(lg):
    g = lg.StateGraph(lg.MessagesState)
    g.add_node("bot", lambda s: {"messages": [{"role": "assistant", "content": f"{len(s['messages'])} so far"}]})
    g.add_edge(lg.START, "bot")
    out = g.compile().invoke({"messages": [{"role": "user", "content": "hi"}]})
    assert [m.content for m in out["messages"]] == ["hi", "1 so far"]
    assert len({m.id for m in out["messages"]}) == 2


def test_interrupt_inside_a_subgraph_pauses_and_resumes_the_parent(lg):
    runs = []

    def before(state):
        runs.append("before")
        return {"log": ["before"]}

    def ask(state):
        runs.append("ask")
        return {"log": [f"answer:{lg.interrupt('question')}"]}

    sub = lg.StateGraph(S)
    sub.add_node("before", before)
    sub.add_node("ask", ask)
    sub.add_edge(lg.START, "before")
    sub.add_edge("before", "ask")
    g = lg.StateGraph(S)
    g.add_node("child", sub.compile())
    g.add_node("after", logger("after"))
    g.add_edge(lg.START, "child")
    g.add_edge("child", "after")
    app = g.compile(checkpointer=lg.InMemorySaver())
    out = app.invoke({"log": []}, thread())
    assert [i.value for i in out["__interrupt__"]] == ["question"]
    assert app.get_state(thread()).next == ("child",)
    out = app.invoke(lg.Command(resume="42"), thread())
    assert out["log"] == ["before", "answer:42", "after"]
    assert runs == ["before", "ask", "ask"]  # the subgraph resumed from its own checkpoint


def test_update_state_as_node_routes_from_that_node(lg):
    app = chain(lg, "a", "b", "c").compile(checkpointer=lg.InMemorySaver())
    app.invoke({"log": []}, thread())
    config = app.update_state(thread(), {"log": ["as b"]}, as_node="b")
    assert app.get_state(config).next == ("c",)
    assert app.invoke(None, thread())["log"] == ["a", "b", "c", "as b", "c"]


def test_cache_policy_skips_repeated_work(lg):
    from agentforge.graphs import InMemoryCache as OurCache

    calls = []

    def slow(state):
        calls.append(state["x"])
        return {"log": [f"computed {state['x']}"]}

    g = lg.StateGraph(S)
    g.add_node("slow", slow, cache_policy=lg.CachePolicy(ttl=60))
    g.add_edge(lg.START, "slow")
    if lg.name == "agentforge":
        app = g.compile(cache=OurCache())
    else:
        from langgraph.cache.memory import InMemoryCache

        app = g.compile(cache=InMemoryCache())
    assert app.invoke({"x": 1, "log": []})["log"] == ["computed 1"]
    assert app.invoke({"x": 1, "log": []})["log"] == ["computed 1"]
    assert app.invoke({"x": 2, "log": []})["log"] == ["computed 2"]
    assert calls == [1, 2]


def test_async_custom_stream_arrives_while_the_node_runs(lg):
    async def talk(state):
        writer = lg.get_stream_writer()
        writer("first")
        await asyncio.sleep(0.05)
        writer("second")
        return {"log": ["talk"]}

    g = lg.StateGraph(S)
    g.add_node("talk", talk)
    g.add_edge(lg.START, "talk")

    async def collect():
        return [c async for c in g.compile().astream({"log": []}, stream_mode=["custom", "updates"])]

    assert asyncio.run(collect()) == [("custom", "first"), ("custom", "second"), ("updates", {"talk": {"log": ["talk"]}})]


class Private(TypedDict):  # module level: the hints below must resolve (this file uses string annotations)
    secret: str


class Overall(TypedDict, total=False):
    x: int
    log: Annotated[list, operator.add]


def test_a_node_sees_only_the_keys_of_its_declared_input_schema(lg):
    def a(state: Overall) -> Private:
        return {"secret": f"s{state['x']}"}  # a key of b's schema only: a private channel

    def b(state: Private):
        return {"log": [f"b saw {sorted(state)} {state['secret']}"]}

    g = lg.StateGraph(Overall)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_edge(lg.START, "a")
    g.add_edge("a", "b")
    assert g.compile().invoke({"x": 1, "log": []}) == {"x": 1, "log": ["b saw ['secret'] s1"]}


# deliberate differences (docs/graphs.md): we refuse input LangGraph silently accepts


def test_invalid_run_options_are_refused(ours):
    app = chain(ours, "a").compile()
    with pytest.raises(ValueError, match="unknown stream_mode 'everything'"):
        list(app.stream({"log": []}, stream_mode="everything"))
    with pytest.raises(ValueError, match="recursion_limit"):
        app.invoke({"log": []}, {"recursion_limit": 0})
    with pytest.raises(ValueError, match="durability"):
        app.invoke({"log": []}, durability="sometimes")
    with pytest.raises(ours.InvalidUpdateError, match="Expected dict"):
        app.invoke(["not", "a", "dict"])
