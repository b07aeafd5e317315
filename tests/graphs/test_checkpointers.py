"""The checkpointer contract, the same for the in-memory, SQLite and PostgreSQL savers, and the
durability a graph gets from each: resume after interrupts, failures and a killed process."""

from __future__ import annotations

import asyncio
import operator
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from typing import Annotated, TypedDict

import pytest

from agentforge.graphs import END, START, Checkpoint, Command, InMemorySaver, SqliteSaver, StateGraph, interrupt
from agentforge.graphs.checkpoint import make_config, new_checkpoint_id


class S(TypedDict, total=False):
    x: int
    log: Annotated[list, operator.add]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def saver(request, tmp_path):
    if request.param == "memory":
        yield InMemorySaver()
    elif request.param == "sqlite":
        with SqliteSaver(tmp_path / "checkpoints.db") as s:
            yield s
    else:
        from agentforge.graphs.postgres import PostgresSaver

        with PostgresSaver(request.getfixturevalue("postgres_url")) as s:
            yield s


def fresh_thread() -> str:
    return uuid.uuid4().hex


def put(saver, thread_id, values, changed, parent=None, step=0, ns=""):
    checkpoint = Checkpoint(new_checkpoint_id(), step, dict(values), [("pull", "a", None)])
    checkpoint.versions = dict(parent.versions) if parent else {}
    for key in changed:
        checkpoint.versions[key] = checkpoint.id
    saver.put(make_config(thread_id, ns, None), checkpoint, {"step": step}, set(changed), parent.id if parent else None)
    return checkpoint


# --- the contract ----------------------------------------------------------------------------


def test_put_get_list(saver):
    tid = fresh_thread()
    first = put(saver, tid, {"x": 1, "log": ["a"]}, {"x", "log"})
    second = put(saver, tid, {"x": 2, "log": ["a"]}, {"x"}, parent=first, step=1)  # log unchanged: not stored again
    third = put(saver, tid, {"x": 2, "log": ["a", "b"]}, {"log"}, parent=second, step=2)
    latest = saver.get_tuple({"configurable": {"thread_id": tid}})
    assert latest.checkpoint.id == third.id and latest.checkpoint.values == {"x": 2, "log": ["a", "b"]}
    assert latest.parent_config["configurable"]["checkpoint_id"] == second.id
    by_id = saver.get_tuple(make_config(tid, "", second.id))
    assert by_id.checkpoint.values == {"x": 2, "log": ["a"]} and by_id.metadata == {"step": 1}
    assert [t.checkpoint.id for t in saver.list({"configurable": {"thread_id": tid}})] == [third.id, second.id, first.id]
    assert [t.checkpoint.id for t in saver.list({"configurable": {"thread_id": tid}}, limit=1)] == [third.id]
    before = [t.checkpoint.id for t in saver.list({"configurable": {"thread_id": tid}}, before=make_config(tid, "", third.id))]
    assert before == [second.id, first.id]
    assert saver.get_tuple(make_config(tid, "", "nope")) is None
    assert saver.get_tuple({"configurable": {"thread_id": fresh_thread()}}) is None


def test_pending_writes_accumulate_per_task_in_order(saver):
    tid = fresh_thread()
    cp = put(saver, tid, {"x": 1}, {"x"})
    config = make_config(tid, "", cp.id)
    saver.put_writes(config, [("x", 5), ("log", ["p"])], "task-a")
    saver.put_writes(config, [("__interrupt__", "why")], "task-b")
    saver.put_writes(config, [("__resume__", "because")], "task-b")
    writes = saver.get_tuple(config).pending_writes
    assert sorted(writes) == sorted([("task-a", "x", 5), ("task-a", "log", ["p"]), ("task-b", "__interrupt__", "why"),
                                     ("task-b", "__resume__", "because")])
    assert [w for w in writes if w[0] == "task-b"] == [("task-b", "__interrupt__", "why"), ("task-b", "__resume__", "because")]


def test_threads_and_namespaces_are_isolated_and_deletable(saver):
    one, two = fresh_thread(), fresh_thread()
    put(saver, one, {"x": 1}, {"x"})
    put(saver, one, {"x": 9}, {"x"}, ns="child:1")
    put(saver, two, {"x": 2}, {"x"})
    assert saver.get_tuple({"configurable": {"thread_id": one}}).checkpoint.values == {"x": 1}
    assert saver.get_tuple({"configurable": {"thread_id": one, "checkpoint_ns": "child:1"}}).checkpoint.values == {"x": 9}
    saver.delete_thread(one)
    assert saver.get_tuple({"configurable": {"thread_id": one}}) is None
    assert saver.get_tuple({"configurable": {"thread_id": two}}).checkpoint.values == {"x": 2}


def test_async_api(saver):
    tid = fresh_thread()
    cp = put(saver, tid, {"x": 1}, {"x"})

    async def run():
        await saver.aput_writes(make_config(tid, "", cp.id), [("x", 3)], "t")
        got = await saver.aget_tuple({"configurable": {"thread_id": tid}})
        listed = [t async for t in saver.alist({"configurable": {"thread_id": tid}})]
        await saver.adelete_thread(tid)
        return got, listed, await saver.aget_tuple({"configurable": {"thread_id": tid}})

    got, listed, gone = asyncio.run(run())
    assert got.pending_writes == [("t", "x", 3)] and [t.checkpoint.id for t in listed] == [cp.id] and gone is None


def test_growing_lists_are_stored_as_deltas(saver):
    tid = fresh_thread()
    messages, parent, sizes = [], None, []
    for turn in range(120):
        messages = messages + [f"message number {turn} " + "x" * 200]
        parent = put(saver, tid, {"messages": messages}, {"messages"}, parent=parent, step=turn)
        sizes.append(saver_size(saver))
    assert saver.get_tuple({"configurable": {"thread_id": tid}}).checkpoint.values["messages"] == messages
    early, late = sizes[20] - sizes[10], sizes[119] - sizes[109]
    assert late < 2 * early  # linear growth: the 10 turns after 110 cost what the 10 after 10 did


def saver_size(saver) -> int:
    return saver.size_bytes()


# --- what a graph gets from each saver -------------------------------------------------------


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_interrupt_and_failure_resume_with_every_saver(saver, durability):
    calls = {"ok": 0, "flaky": 0}

    def ok(state):
        calls["ok"] += 1
        return {"log": ["ok"]}

    def flaky(state):
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise ConnectionError("down")
        return {"log": [f"flaky:{interrupt('go?')}"]}

    g = StateGraph(S)
    g.add_node("ok", ok).add_node("flaky", flaky).add_node("last", lambda s: {"log": ["last"]})
    g.add_edge(START, "ok").add_edge(START, "flaky").add_edge(["ok", "flaky"], "last").add_edge("last", END)
    app = g.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": fresh_thread()}}
    with pytest.raises(ConnectionError):
        app.invoke({"log": []}, config, durability=durability)
    out = app.invoke(None, config, durability=durability)
    assert [i.value for i in out["__interrupt__"]] == ["go?"]
    assert app.get_state(config).next == ("flaky",)
    out = app.invoke(Command(resume="yes"), config, durability=durability)
    assert out["log"] == ["flaky:yes", "ok", "last"]
    assert calls == {"ok": 1, "flaky": 3}
    history = list(app.get_state_history(config))
    assert history[0].values["log"] == ["flaky:yes", "ok", "last"] and history[0].next == ()
    if durability == "exit":  # one checkpoint per invocation that got anywhere
        assert len(history) <= 3
    else:
        assert [h.metadata["step"] for h in history] == [2, 1, 0, -1]


def test_pydantic_state_is_validated_on_every_update(saver):
    from pydantic import BaseModel, Field

    from agentforge.graphs import InvalidUpdateError

    class P(BaseModel):
        count: int = Field(ge=0)

    g = StateGraph(P)
    g.add_node("down", lambda s: {"count": s.count - 5})
    g.add_edge(START, "down")
    app = g.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": fresh_thread()}}
    assert app.invoke({"count": 7}, config) == {"count": 2}
    with pytest.raises(InvalidUpdateError, match="'down'"):
        app.invoke({"count": 3}, config)


KILLED_RUN = """
import operator, sys, time
from typing import Annotated, TypedDict
from agentforge.graphs import StateGraph, START, END
from agentforge.graphs.sqlite import SqliteSaver

class S(TypedDict):
    log: Annotated[list, operator.add]

def make_saver(kind, where):
    if kind == "sqlite":
        return SqliteSaver(where)
    from agentforge.graphs.postgres import PostgresSaver
    return PostgresSaver(where)

def step(name):
    def node(state):
        with open(sys.argv[3], "a") as f:
            f.write(f"start {name}\\n")
        time.sleep(0.3 if name != "n3" else 30)  # the parent kills us inside n3 the first time
        with open(sys.argv[3], "a") as f:
            f.write(f"end {name}\\n")
        return {"log": [name]}
    return node

g = StateGraph(S)
names = [f"n{i}" for i in range(6)]
for n in names:
    g.add_node(n, step(n))
g.add_edge(START, "n0")
for a, b in zip(names, names[1:]):
    g.add_edge(a, b)
g.add_edge(names[-1], END)
app = g.compile(checkpointer=make_saver(sys.argv[1], sys.argv[2]))
config = {"configurable": {"thread_id": "killed"}}
if sys.argv[4] == "start":
    app.invoke({"log": []}, config, durability="sync")
else:
    print(app.invoke(None, config, durability="sync")["log"])
"""


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_killed_process_resumes_without_losing_or_repeating_steps(kind, tmp_path, request):
    where = str(tmp_path / "killed.db") if kind == "sqlite" else request.getfixturevalue("postgres_url")
    if kind == "postgres":
        from agentforge.graphs.postgres import PostgresSaver

        with PostgresSaver(where) as s:
            s.delete_thread("killed")
    script, events = tmp_path / "run.py", tmp_path / "events.log"
    script.write_text(textwrap.dedent(KILLED_RUN))
    proc = subprocess.Popen([sys.executable, str(script), kind, where, str(events), "start"])
    deadline = time.time() + 60
    while "start n3" not in (events.read_text() if events.exists() else ""):
        assert time.time() < deadline and proc.poll() is None, "the run never reached n3"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    script.write_text(textwrap.dedent(KILLED_RUN).replace("else 30", "else 0.3"))
    out = subprocess.run([sys.executable, str(script), kind, where, str(events), "resume"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str([f"n{i}" for i in range(6)])
    lines = events.read_text().splitlines()
    for i in range(6):  # every completed node ran once; n3, killed mid-run, ran again
        assert lines.count(f"end n{i}") == 1
    assert lines.count("start n3") == 2 and all(lines.count(f"start n{i}") == 1 for i in (0, 1, 2, 4, 5))


def test_sqlite_savers_sharing_a_file_write_concurrently(tmp_path):
    """Two connections to one file (two processes, or a checkpointer beside a task store) interleave
    read-then-write transactions; none may fail with "database is locked"."""
    import threading

    path = tmp_path / "shared.sqlite"
    savers = [SqliteSaver(path), SqliteSaver(path)]
    errors: list[BaseException] = []

    def write(saver: SqliteSaver, thread: str) -> None:
        try:
            for i in range(150):
                config = make_config(thread, "", f"cp-{i // 10}")
                saver.put_writes(config, [("x", i)], f"task-{i % 3}")
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=write, args=(saver, f"t{n}")) for n, saver in enumerate(savers)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    rows = savers[0].conn.execute("SELECT COUNT(*) FROM writes").fetchone()[0]
    assert rows == 300
