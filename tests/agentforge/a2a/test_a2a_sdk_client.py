"""Our A2A server, driven by the official `a2a-sdk` client over JSON-RPC and HTTP+JSON on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest
from _a2a_helpers import (
    asking_graph,
    calculator_agent,
    collect,
    one_node_graph,
    run,
    sdk_client,
    start_task,
    user_message,
)
from a2a.helpers import get_artifact_text, get_message_text
from a2a.types import (
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    SendMessageConfiguration,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
    TaskState,
)
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

BINDINGS = ["JSONRPC", "HTTP+JSON"]


@pytest.mark.parametrize("binding", BINDINGS)
def test_send_uses_the_graph_and_its_tools(serve_a2a, binding):
    agent = calculator_agent([{"tool_calls": [{"name": "add", "args": {"a": 2, "b": 3}}]}, "The sum is 5."])
    url = serve_a2a(agent)

    async def main():
        client = await sdk_client(url, binding, streaming=False)
        [response] = await collect(client.send_message(user_message("What is 2 + 3?")))
        task = response.task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert get_message_text(task.status.message) == "The sum is 5."
        assert [[p.text for p in a.parts] for a in task.artifacts] == [["The sum is 5."]]
        # the tool really ran inside the graph: its result is in the thread the context maps to
        state = await agent.aget_state({"configurable": {"thread_id": task.context_id}})
        assert [m.content for m in state.values["messages"] if m.role == "tool"] == ["5"]
        fetched = await client.get_task(GetTaskRequest(id=task.id))
        assert fetched.status.state == TaskState.TASK_STATE_COMPLETED
        listed = await client.list_tasks(ListTasksRequest(context_id=task.context_id))
        assert [t.id for t in listed.tasks] == [task.id]

    run(main())


@pytest.mark.parametrize("binding", BINDINGS)
def test_stream_carries_node_updates_and_tokens(serve_a2a, binding):
    agent = calculator_agent([{"tool_calls": [{"name": "add", "args": {"a": 1, "b": 1}}]}, "One and one make two."])
    url = serve_a2a(agent)

    async def main():
        client = await sdk_client(url, binding)
        chunks = await collect(client.send_message(user_message("1 + 1?")))
        kinds = [c.WhichOneof("payload") for c in chunks]
        assert kinds[0] == "task"
        nodes = [c.status_update.metadata["node"] for c in chunks
                 if kinds and c.HasField("status_update") and "node" in c.status_update.metadata]
        assert nodes == ["agent", "tools", "agent"]
        updates = [c.artifact_update for c in chunks if c.HasField("artifact_update")]
        *deltas, whole = updates
        assert [u.append for u in deltas] == [False, True, True, True, True]  # the answer, word by word
        assert "".join(get_artifact_text(u.artifact, "") for u in deltas) == "One and one make two."
        assert not whole.append and whole.last_chunk and get_artifact_text(whole.artifact) == "One and one make two."
        assert len({u.artifact.artifact_id for u in updates}) == 1
        assert chunks[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED

    run(main())


@pytest.mark.parametrize("binding", BINDINGS)
def test_input_required_round_trip(serve_a2a, binding):
    url = serve_a2a(asking_graph())

    async def main():
        client = await sdk_client(url, binding, streaming=False)
        [first] = await collect(client.send_message(user_message("Greet me")))
        assert first.task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        assert get_message_text(first.task.status.message) == "What is your name?"
        follow_up = user_message("Ada", task_id=first.task.id, context_id=first.task.context_id)
        [second] = await collect(client.send_message(follow_up))
        assert second.task.id == first.task.id
        assert second.task.status.state == TaskState.TASK_STATE_COMPLETED
        assert get_message_text(second.task.status.message) == "Hello, Ada!"

    run(main())


def test_contexts_are_graph_threads(serve_a2a):
    agent = calculator_agent(["Hi!", "You said hello twice."])
    url = serve_a2a(agent)

    async def main():
        client = await sdk_client(url, streaming=False)
        [first] = await collect(client.send_message(user_message("hello")))
        [second] = await collect(client.send_message(user_message("hello again", context_id=first.task.context_id)))
        assert second.task.id != first.task.id
        state = await agent.aget_state({"configurable": {"thread_id": first.task.context_id}})
        assert [m.content for m in state.values["messages"]] == ["hello", "Hi!", "hello again", "You said hello twice."]

    run(main())


def _slow_graph(cancelled: list):
    async def work(state):
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return {"messages": [{"role": "assistant", "content": "done"}]}

    return one_node_graph(work, name="slow")


@pytest.mark.parametrize("binding", BINDINGS)
def test_cancel_stops_the_running_graph(serve_a2a, binding):
    cancelled: list = []
    url = serve_a2a(_slow_graph(cancelled))

    async def main():
        client = await sdk_client(url, binding, streaming=False)
        task_id = (await start_task(client, "work")).id
        await asyncio.sleep(0.3)
        canceled = await client.cancel_task(CancelTaskRequest(id=task_id))
        assert canceled.status.state == TaskState.TASK_STATE_CANCELED
        for _ in range(50):
            if cancelled:
                break
            await asyncio.sleep(0.05)
        assert cancelled == [True]
        assert (await client.get_task(GetTaskRequest(id=task_id))).status.state == TaskState.TASK_STATE_CANCELED

    run(main())


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("streaming", [False, True])
def test_push_notifications_reach_a_webhook(serve_a2a, serve_asgi, streaming, binding):
    received: list[dict] = []

    async def webhook(request):
        received.append({"body": await request.json(), "token": request.headers.get("x-a2a-notification-token")})
        return JSONResponse({})

    hook = serve_asgi(Starlette(routes=[Route("/hook", webhook, methods=["POST"])]))
    agent = calculator_agent(["Pushed."])
    url = serve_a2a(agent, private_webhooks=True)

    async def main():
        client = await sdk_client(url, binding, streaming=streaming)
        request = user_message("notify me")
        request.configuration.CopyFrom(SendMessageConfiguration(task_push_notification_config=TaskPushNotificationConfig(
            url=hook + "/hook", token="secret-token")))
        chunks = await collect(client.send_message(request))
        task_id = chunks[0].task.id
        for _ in range(100):
            if any(_state(r["body"]) == "TASK_STATE_COMPLETED" for r in received):
                break
            await asyncio.sleep(0.05)
        assert any(_state(r["body"]) == "TASK_STATE_COMPLETED" for r in received), received
        assert all(r["token"] == "secret-token" for r in received)
        assert all(task_id in str(r["body"]) for r in received)

    run(main())


def _state(body: dict) -> str | None:
    for key in ("task", "statusUpdate"):
        if key in body:
            return body[key]["status"]["state"]
    return body.get("status", {}).get("state")


@pytest.mark.parametrize("binding", BINDINGS)
def test_subscribe_to_a_running_task_and_manage_its_push_configs(serve_a2a, binding):
    import threading

    release = threading.Event()

    async def wait_for_release(state):
        await asyncio.to_thread(release.wait, 30)
        return {"messages": [{"role": "assistant", "content": "finished"}]}

    url = serve_a2a(one_node_graph(wait_for_release, name="gated"), private_webhooks=True)

    async def main():
        client = await sdk_client(url, binding, streaming=False)
        task_id = (await start_task(client, "work")).id
        config = TaskPushNotificationConfig(task_id=task_id, id="hook-1", url="http://127.0.0.1:9/hook")
        created = await client.create_task_push_notification_config(config)
        assert created.url == "http://127.0.0.1:9/hook"
        listed = await client.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest(task_id=task_id))
        assert [c.id for c in listed.configs] == ["hook-1"]
        got = await client.get_task_push_notification_config(GetTaskPushNotificationConfigRequest(task_id=task_id,
                                                                                                  id="hook-1"))
        assert got.url == created.url
        await client.delete_task_push_notification_config(DeleteTaskPushNotificationConfigRequest(task_id=task_id,
                                                                                                  id="hook-1"))
        listed = await client.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest(task_id=task_id))
        assert list(listed.configs) == []

        subscriber = await sdk_client(url, binding, streaming=True)
        events = subscriber.subscribe(SubscribeToTaskRequest(id=task_id))
        first = await anext(events)
        assert first.WhichOneof("payload") == "task" and first.task.status.state == TaskState.TASK_STATE_WORKING
        release.set()
        rest = [chunk async for chunk in events]
        states = [c.status_update.status.state for c in rest if c.HasField("status_update")]
        assert states[-1] == TaskState.TASK_STATE_COMPLETED

    run(main())
