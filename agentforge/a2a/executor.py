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
from a2a.types import Artifact, Message, Role, Task, TaskState

from agentforge.agents import ChatChunk
from agentforge.agents.model import to_messages
from agentforge.graphs import Command, CompiledStateGraph
from agentforge.tracing import continue_trace

from ._parts import agent_message, message_text, message_value, value_parts

log = logging.getLogger(__name__)


class _Sink(Protocol):
    async def enqueue_event(self, event: Any) -> None: ...


class GraphAgentExecutor(AgentExecutor):
    """The `a2a-sdk` executor over `graph`, which must have a checkpointer (threads, interrupts).

    With `direct_replies`, a new task is announced with the graph's first event rather than at
    once, so a node can answer with a plain A2A `Message` instead (see `_TaskRun`); the price is
    that a client asking to return immediately waits for that first event."""

    def __init__(self, graph: CompiledStateGraph, *, direct_replies: bool = False) -> None:
        if graph.checkpointer is None:
            raise ValueError("an A2A agent needs a graph compiled with a checkpointer (contexts are its threads)")
        self.graph = graph
        self.direct_replies = direct_replies
        self._context_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        announce = task is None
        if task is None:
            task = new_task_from_user_message(context.message)
            if not self.direct_replies:
                await event_queue.enqueue_event(task)
        run = _TaskRun(task, event_queue, announce=announce and self.direct_replies)
        try:
            resuming = task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
            graph_input = Command(resume=message_value(context.message)) if resuming else self._input(context.message)
        except ValueError as exc:  # input this graph cannot take: the agent declines the task
            await run.open()
            await run.updater.reject(_message(run.updater, str(exc)))
            return
        headers = context.call_context.state.get("headers") or {}  # a traced caller's trace context
        async with self._context_locks[task.context_id]:  # one run at a time per thread
            await run.execute(self.graph, graph_input, context.message.message_id, headers)

    async def resume(self, task: Task, sink: _Sink) -> None:
        """Resume a known task from the graph's last checkpoint (after a restart), reporting into
        `sink` (e.g. the SDK's task manager for the stored task). A task killed before the graph
        stored its input (the thread's last checkpoint is another task's, or there is none) starts
        again from its user message; one killed as it took the answer to its question (the graph
        still waits on an interrupt from an earlier message) resumes with that answer."""
        async with self._context_locks[task.context_id]:
            saved = await self.graph.aget_state({"configurable": {"thread_id": task.context_id}})
            recorded = saved.metadata or {}
            last = next((m for m in reversed(task.history) if m.role == Role.ROLE_USER), None)
            graph_input = None
            if last is not None and recorded.get("a2a_task_id") != task.id:
                graph_input = self._input(last)
            elif last is not None and saved.interrupts and recorded.get("a2a_message_id") != last.message_id:
                graph_input = Command(resume=message_value(last))
            message_id = last.message_id if graph_input is not None else recorded.get("a2a_message_id")
            await _TaskRun(task, sink, announce=False).execute(self.graph, graph_input, message_id)

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


class _TaskRun:
    """One graph run for one task, as A2A events.

    A node may also send A2A objects through `get_stream_writer()`: an `Artifact` becomes an
    artifact of the task (files, data); a `Message` sent before anything else, while the task is
    not announced yet (`direct_replies`), is the whole reply: no task is created, as A2A allows
    for quick answers."""

    def __init__(self, task: Task, sink: _Sink, *, announce: bool) -> None:
        self.task, self.sink = task, sink
        self.unannounced = announce  # a new task the client hears of with the graph's first event
        self.working = False
        self.updater = TaskUpdater(sink, task.id, task.context_id)
        self.streamed: dict[str, tuple[str, list[str]]] = {}  # model message id -> (artifact id, text so far)
        self.replied = False  # answered with a Message: events after it are not sent

    async def open(self) -> None:
        """Announce the task (when new) and put it in `working`, once."""
        if self.unannounced:
            self.unannounced = False
            await self.sink.enqueue_event(self.task)
        if not self.working:
            self.working = True
            await self.updater.start_work()

    async def execute(self, graph: CompiledStateGraph, graph_input: Any, message_id: str | None,
                      headers: dict | None = None) -> None:
        # nodes that take `config` see which A2A task and message they serve; a traced graph joins
        # the trace of a caller that sent its trace context
        config = continue_trace({"configurable": {"thread_id": self.task.context_id, "a2a_task_id": self.task.id,
                                                  "a2a_message_id": message_id}}, headers or {})
        if not self.unannounced:  # a task the client knows of is working from now on
            await self.open()
        try:
            # each step is stored before the next starts, so a killed server resumes where it stopped
            async for mode, chunk in graph.astream(graph_input, config, stream_mode=["messages", "updates", "custom"],
                                                   durability="sync"):
                if not self.replied:
                    await self._event(mode, chunk)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the graph failed: the task says why, the server keeps serving
            log.warning("A2A task %s failed: %s", self.task.id, exc, exc_info=True)
            if not self.replied:
                await self.open()
                await self.updater.failed(_message(self.updater, f"{type(exc).__name__}: {exc}"))
            return
        if not self.replied:
            await self.open()
            await self._finish(await graph.aget_state(config))

    async def _event(self, mode: str, chunk: Any) -> None:
        if mode == "custom":  # only A2A objects count; other custom payloads are the graph's own
            if isinstance(chunk, Message) and self.unannounced:
                chunk.context_id = chunk.context_id or self.task.context_id
                chunk.message_id = chunk.message_id or str(uuid.uuid4())
                await self.sink.enqueue_event(chunk)
                self.replied = True
            elif isinstance(chunk, Artifact):
                await self.open()
                await self.updater.add_artifact(list(chunk.parts), artifact_id=chunk.artifact_id or None,
                                                name=chunk.name or None, last_chunk=True)
            return
        await self.open()
        if mode == "messages":
            await _stream_tokens(self.updater, chunk[0], self.streamed)
        else:
            for node in chunk:
                if node != "__interrupt__":
                    await self.updater.update_status(TaskState.TASK_STATE_WORKING, metadata={"node": node})

    async def _finish(self, snapshot) -> None:
        if snapshot.interrupts:
            await self.updater.requires_input(_message(self.updater, snapshot.interrupts[0].value))
            return
        answer, message_id = _last_reply(snapshot.values)
        if answer is not None and message_id not in self.streamed:
            await self.updater.add_artifact(value_parts(answer), name="answer", last_chunk=True)
        await self.updater.complete(_message(self.updater, answer) if answer is not None else None)


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


def _last_reply(values: Any) -> tuple[Any, str | None]:
    """What a finished run answers, and the id of the message it comes from: the last assistant
    message's text for message-state graphs, else the output values."""
    if isinstance(values, dict) and values.get("messages"):
        last = to_messages(values["messages"][-1])[0]
        return (last.content if last.role == "assistant" and last.content else None), last.id
    return values or None, None


def _message(updater: TaskUpdater, value: Any) -> Message:
    return agent_message(value, task_id=updater.task_id, context_id=updater.context_id, message_id=str(uuid.uuid4()))
