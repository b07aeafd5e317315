"""`GraphAgentExecutor`: runs a compiled graph for each A2A message.

The task's `contextId` is the graph's thread, so every task of a context continues one
conversation. Each model reply streams into its own artifact, token by token; each finished node
is a `working` status update; a graph `interrupt()` puts the task in `input-required`, and the next
message on that task resumes the graph with `Command(resume=...)`. A failing graph fails its task,
never the server; a cancelled task cancels the running graph.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from typing import Any, Protocol

from a2a.helpers import new_task_from_user_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import Message, Task, TaskState

from agentforge.agents import ChatChunk
from agentforge.graphs import Command, CompiledStateGraph

from ._parts import agent_message, message_text, message_value, value_parts

log = logging.getLogger(__name__)


class _Sink(Protocol):
    async def enqueue_event(self, event: Any) -> None: ...


class GraphAgentExecutor(AgentExecutor):
    """The `a2a-sdk` executor over `graph`, which must have a checkpointer (threads, interrupts)."""

    def __init__(self, graph: CompiledStateGraph) -> None:
        if graph.checkpointer is None:
            raise ValueError("an A2A agent needs a graph compiled with a checkpointer (contexts are its threads)")
        self.graph = graph
        self._context_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        if task is None:
            task = new_task_from_user_message(context.message)
            await event_queue.enqueue_event(task)
        resuming = task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        graph_input = Command(resume=message_value(context.message)) if resuming else self._input(context.message)
        async with self._context_locks[task.context_id]:  # one run at a time per thread
            await run_task(self.graph, task, graph_input, event_queue)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        if task is not None:
            await TaskUpdater(event_queue, task.id, task.context_id).cancel()

    def _input(self, message: Message) -> Any:
        """A user message as graph input: a chat turn for message-state graphs, else the message's
        data part (a dict of input keys) or its text under the graph's single input key."""
        keys = self.graph.spec.input_keys
        if "messages" in keys:
            return {"messages": [{"role": "user", "content": message_text(message)}]}
        value = message_value(message)
        if isinstance(value, dict):
            return value
        if len(keys) == 1:
            return {keys[0]: value}
        raise ValueError(f"this graph takes {list(keys)}: send a data part with those keys")


async def run_task(graph: CompiledStateGraph, task: Task, graph_input: Any, sink: _Sink) -> None:
    """Run (or resume, with `graph_input=None`) `graph` on the task's thread and report its progress
    as A2A events into `sink` (an event queue, or a task manager after a restart)."""
    updater = TaskUpdater(sink, task.id, task.context_id)
    config = {"configurable": {"thread_id": task.context_id}}
    await updater.start_work()
    streamed: dict[str, tuple[str, list[str]]] = {}  # model message id -> (artifact id, text so far)
    try:
        async for mode, chunk in graph.astream(graph_input, config, stream_mode=["messages", "updates"]):
            if mode == "messages":
                await _stream_tokens(updater, chunk[0], streamed)
            else:
                for node in chunk:
                    if node != "__interrupt__":
                        await updater.update_status(TaskState.TASK_STATE_WORKING, metadata={"node": node})
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the graph failed: the task says why, the server keeps serving
        log.warning("A2A task %s failed: %s", task.id, exc, exc_info=True)
        await updater.failed(_message(updater, f"{type(exc).__name__}: {exc}"))
        return
    snapshot = await graph.aget_state(config)
    if snapshot.interrupts:
        await updater.requires_input(_message(updater, snapshot.interrupts[0].value))
        return
    answer = _answer(snapshot.values)
    last_id = _last_message_id(snapshot.values)
    if answer is not None and last_id not in streamed:
        await updater.add_artifact(value_parts(answer), name="answer", last_chunk=True)
    await updater.complete(_message(updater, answer) if answer is not None else None)


async def _stream_tokens(updater: TaskUpdater, chunk: Any, streamed: dict[str, tuple[str, list[str]]]) -> None:
    """A model's token delta appended to that reply's artifact. When the reply is complete the
    artifact is sent once more whole (`append=False` replaces it), so the stored task holds one
    text part per reply rather than one per token."""
    if not isinstance(chunk, ChatChunk):
        return
    if chunk.content:
        if chunk.id not in streamed:
            streamed[chunk.id] = (str(uuid.uuid4()), [])
        artifact_id, pieces = streamed[chunk.id]
        await updater.add_artifact(value_parts(chunk.content), artifact_id=artifact_id, name="reply", append=bool(pieces))
        pieces.append(chunk.content)
    if chunk.message is not None and chunk.id in streamed:
        artifact_id, pieces = streamed[chunk.id]
        await updater.add_artifact(value_parts("".join(pieces)), artifact_id=artifact_id, name="reply", last_chunk=True)


def _answer(values: Any) -> Any:
    """What a finished run answers: the last assistant message's text for message-state graphs,
    else the output values."""
    if isinstance(values, dict) and values.get("messages"):
        last = values["messages"][-1]
        role = getattr(last, "role", None) or (last.get("role") if isinstance(last, dict) else None)
        content = getattr(last, "content", None) if not isinstance(last, dict) else last.get("content")
        return content if role == "assistant" and content else None
    return values or None


def _last_message_id(values: Any) -> str | None:
    if isinstance(values, dict) and values.get("messages"):
        return getattr(values["messages"][-1], "id", None)
    return None


def _message(updater: TaskUpdater, value: Any) -> Message:
    return agent_message(value, task_id=updater.task_id, context_id=updater.context_id, message_id=str(uuid.uuid4()))
