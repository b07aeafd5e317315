"""Kill the A2A server mid-task (SIGKILL), start it again: the tasks are still there, the running
one finishes from the graph's last checkpoint (nothing done twice), and an input-required task
resumes with the next message."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from _a2a_helpers import UvicornThread, asking_graph, collect, free_port, one_node_graph, sdk_client, user_message
from a2a.helpers import get_message_text, new_task_from_user_message, new_text_message
from a2a.server.context import ServerCallContext
from a2a.types import GetTaskRequest, Role, TaskState, TaskStatus

from agentforge.a2a import A2AServer
from agentforge.graphs import interrupt
from agentforge.graphs.algo import INTERRUPT, RESUME
from agentforge.graphs.sqlite import SqliteSaver

HERE = Path(__file__).parent
V1 = {"A2A-Version": "1.0"}


def _start(port: int, database: Path, env: dict) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "agentforge.cli", "a2a", "serve", "_restart_graph:graph", "--port", str(port),
         "--database", str(database)], env=env, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/.well-known/agent-card.json", timeout=1)
            return process
        except httpx.HTTPError:
            assert process.poll() is None, process.stderr.read().decode()
            time.sleep(0.1)
    raise AssertionError("the A2A server did not start")


def _rpc(url: str, method: str, params: dict) -> dict:
    body = httpx.post(url + "/", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                      headers=V1, timeout=30).json()
    assert "result" in body, body
    return body["result"]


def _send(url: str, text: str, **message) -> dict:
    return _rpc(url, "SendMessage", {"message": {"messageId": f"m-{time.time_ns()}", "role": "ROLE_USER",
                                                 "parts": [{"text": text}], **message},
                                     "configuration": {"returnImmediately": True}})["task"]


def _wait(url: str, task_id: str, state: str) -> dict:
    deadline = time.time() + 30
    while time.time() < deadline:
        task = _rpc(url, "GetTask", {"id": task_id})
        if task["status"]["state"] == state:
            return task
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not reach {state}: {task['status']}")


def _runs(tmp_path: Path) -> list[str]:
    return (tmp_path / "runs.log").read_text().split()


def test_tasks_survive_a_killed_server(tmp_path):
    env = {**os.environ, "A2A_TEST_DIR": str(tmp_path), "PYTHONPATH": str(HERE)}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = tmp_path / "agent.sqlite"
    server = _start(port, database, env)
    try:
        asking = _send(url, "greet me")
        _wait(url, asking["id"], "TASK_STATE_INPUT_REQUIRED")
        working = _send(url, "work")
        deadline = time.time() + 30
        while "slow" not in _runs(tmp_path):  # "first" is checkpointed, "slow" is running
            assert time.time() < deadline
            time.sleep(0.05)
        assert _rpc(url, "GetTask", {"id": working["id"]})["status"]["state"] == "TASK_STATE_WORKING"
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    assert _runs(tmp_path) == ["ask", "first", "slow"]

    (tmp_path / "release").touch()
    server = _start(port, database, env)
    try:
        done = _wait(url, working["id"], "TASK_STATE_COMPLETED")  # resumed from its last checkpoint
        assert done["status"]["message"]["parts"][0]["text"] == "all done"
        waiting = _rpc(url, "GetTask", {"id": asking["id"]})
        assert waiting["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        assert waiting["status"]["message"]["parts"][0]["text"] == "What is your name?"
        answer = _send(url, "Ada", taskId=asking["id"], contextId=asking["contextId"])
        greeted = _wait(url, answer["id"], "TASK_STATE_COMPLETED")
        assert greeted["id"] == asking["id"]
        assert greeted["status"]["message"]["parts"][0]["text"] == "Hello, Ada!"
        listed = _rpc(url, "ListTasks", {})
        assert {t["id"] for t in listed["tasks"]} == {asking["id"], working["id"]}
    finally:
        server.terminate()
        server.wait(timeout=30)
    # "first" ran once: only the interrupted node ran again; "ask" re-ran to take its answer
    assert _runs(tmp_path) == ["ask", "first", "slow", "slow", "ask", "greet"]


def _first_task(graph, port: int, text: str):
    """Send `text` to a server for `graph` started here, wait for its task's reply, stop the server."""
    server = UvicornThread(A2AServer(graph, url=f"http://127.0.0.1:{port}").app(), port)

    async def send():
        client = await sdk_client(f"http://127.0.0.1:{port}", streaming=False)
        [reply] = await collect(client.send_message(user_message(text)))
        return reply.task

    try:
        return asyncio.run(send())
    finally:
        server.stop()


def _restart_after(graph, port: int, kill):
    """Leave the stored tasks as a server killed mid-task would (`kill(store)` edits them and returns
    the task it left `working`), start a server on them and return that task once it leaves `working`."""
    agent = A2AServer(graph, url=f"http://127.0.0.1:{port}")

    async def stored():
        await agent.task_store.initialize()
        task = await kill(agent.task_store)
        task.status.CopyFrom(TaskStatus(state=TaskState.TASK_STATE_WORKING))
        await agent.task_store.save(task, ServerCallContext())
        return task

    task = asyncio.run(stored())
    server = UvicornThread(agent.app(), port)

    async def resumed():
        client = await sdk_client(f"http://127.0.0.1:{port}", streaming=False)
        for _ in range(300):
            now = await client.get_task(GetTaskRequest(id=task.id))
            if now.status.state != TaskState.TASK_STATE_WORKING:
                return now
            await asyncio.sleep(0.05)
        raise AssertionError("the task was not resumed")

    try:
        return asyncio.run(resumed())
    finally:
        server.stop()


def test_a_task_killed_before_its_input_was_stored_starts_again_from_its_message(tmp_path):
    """The server marked the task working and died before the graph stored its input: the thread's
    last checkpoint is an earlier task's. At the next start the task runs on its own message
    (not the earlier task's state, not an empty input)."""
    saver = SqliteSaver(tmp_path / "agent.sqlite")
    graph = one_node_graph(lambda state: {"messages": [{"role": "assistant", "content": f"echo: {state['messages'][-1].content}"}]},
                           name="echo", checkpointer=saver)
    port = free_port()
    earlier = _first_task(graph, port, "hello")
    assert get_message_text(earlier.status.message) == "echo: hello"

    async def kill(store):
        return new_task_from_user_message(new_text_message("again", role=Role.ROLE_USER, context_id=earlier.context_id))

    try:
        done = _restart_after(graph, port, kill)
        assert done.status.state == TaskState.TASK_STATE_COMPLETED, done.status
        assert get_message_text(done.status.message) == "echo: again"
        texts = [m.content for m in graph.get_state({"configurable": {"thread_id": earlier.context_id}}).values["messages"]]
        assert texts == ["hello", "echo: hello", "again", "echo: again"]
    finally:
        saver.close()


async def _answered(store, task_id: str, text: str):
    """The stored task with the user's answer `text` in its history, as the server records it on arrival."""
    task = await store.get(task_id, ServerCallContext())
    task.history.append(new_text_message(text, role=Role.ROLE_USER, task_id=task.id, context_id=task.context_id))
    return task


def test_a_task_killed_as_it_took_an_answer_resumes_with_that_answer(tmp_path):
    """The user answered the task's question, the task went `working`, and the server died before
    the graph stored the answer: at the next start the graph takes that answer (not the question
    asked again, not the first message)."""
    saver = SqliteSaver(tmp_path / "agent.sqlite")
    graph = asking_graph(saver)
    port = free_port()
    asking = _first_task(graph, port, "greet me")
    assert asking.status.state == TaskState.TASK_STATE_INPUT_REQUIRED

    async def kill(store):
        return await _answered(store, asking.id, "Ada")

    try:
        done = _restart_after(graph, port, kill)
        assert done.id == asking.id and done.status.state == TaskState.TASK_STATE_COMPLETED, done.status
        assert get_message_text(done.status.message) == "Hello, Ada!"
    finally:
        saver.close()


def test_an_answer_the_graph_stored_before_the_kill_is_taken_once(tmp_path):
    """The user answered the task's first question and the graph stored the answer (its resume value)
    before the server died: at the next start the node takes it once and asks its second question,
    rather than being sent the answer again (which its second `interrupt()` would take too)."""
    saver = SqliteSaver(tmp_path / "agent.sqlite")

    def ask(state: dict) -> dict:
        name, city = interrupt("What is your name?"), interrupt("Where do you live?")
        return {"messages": [{"role": "assistant", "content": f"{name} from {city}"}]}

    graph = one_node_graph(ask, name="asker", checkpointer=saver)
    port = free_port()
    asking = _first_task(graph, port, "hi")
    assert asking.status.state == TaskState.TASK_STATE_INPUT_REQUIRED

    async def kill(store):
        task = await _answered(store, asking.id, "Ada")
        stored = saver.get_tuple({"configurable": {"thread_id": task.context_id}})
        [asked] = {task_id for task_id, channel, _ in stored.pending_writes if channel == INTERRUPT}
        saver.put_writes(stored.config, [(RESUME, "Ada")], asked)  # as a run stores the answer first
        return task

    try:
        done = _restart_after(graph, port, kill)
        assert done.status.state == TaskState.TASK_STATE_INPUT_REQUIRED, done.status
        assert get_message_text(done.status.message) == "Where do you live?"
    finally:
        saver.close()


def test_tasks_live_in_the_graphs_postgres_database(postgres_url):
    """A graph checkpointed in PostgreSQL keeps its A2A tasks there too: a new server on the same
    database (after a restart) answers GetTask and resumes an input-required task."""
    from agentforge.graphs.postgres import PostgresSaver

    saver = PostgresSaver(postgres_url)
    graph = asking_graph(saver)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = UvicornThread(A2AServer(graph, url=url, name=f"pg-{port}").app(), port)

    async def ask():
        client = await sdk_client(url, streaming=False)
        [first] = await collect(client.send_message(user_message("greet me")))
        return first.task

    task = asyncio.run(ask())
    server.stop()
    assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    server = UvicornThread(A2AServer(graph, url=url, name=f"pg-{port}").app(), port)
    try:
        async def resume():
            client = await sdk_client(url, streaming=False)
            assert (await client.get_task(GetTaskRequest(id=task.id))).status.state == TaskState.TASK_STATE_INPUT_REQUIRED
            follow_up = user_message("Grace", task_id=task.id, context_id=task.context_id)
            [done] = await collect(client.send_message(follow_up))
            return done.task

        done = asyncio.run(resume())
        assert done.status.state == TaskState.TASK_STATE_COMPLETED
        assert get_message_text(done.status.message) == "Hello, Grace!"
    finally:
        server.stop()
        saver.close()
